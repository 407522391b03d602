// The playground page: place a call, stream the microphone, play the agent's prompts.
// Protocol of the WebSocket: see byova_media/playground/bridge.py.
const $ = (id) => document.getElementById(id);
const RATE = 8000;

let ws = null;
let ctx = null;
let mic = null;
let nextStart = 0; // context time at which the next prompt chunk starts
let sources = [];
let bargeable = false; // the audio queued last may be cut by the caller
let callStart = 0;

function since() {
  return ((performance.now() - callStart) / 1000).toFixed(2) + " s";
}

function logEvent(text, cls, name) {
  const li = document.createElement("li");
  li.textContent = `${since()}  ${text}`;
  if (cls) li.className = cls;
  if (name) li.dataset.name = name;
  $("events").append(li);
}

function setState(state, status) {
  document.body.dataset.state = state;
  $("status").textContent = status;
  $("call").disabled = state !== "idle";
  $("hangup").disabled = state !== "in-call";
}

function playing() {
  return ctx !== null && nextStart > ctx.currentTime;
}

function play(buffer) {
  const pcm = new Int16Array(buffer);
  const audio = ctx.createBuffer(1, pcm.length, RATE);
  const data = audio.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
  const source = ctx.createBufferSource();
  source.buffer = audio;
  source.connect(ctx.destination);
  const at = Math.max(ctx.currentTime + 0.05, nextStart);
  source.start(at);
  nextStart = at + audio.duration;
  sources.push(source);
  source.onended = () => { sources = sources.filter((s) => s !== source); };
  document.body.dataset.playing = "true";
  const played = Number(document.body.dataset.chunksPlayed || 0) + 1;
  document.body.dataset.chunksPlayed = String(played);
}

function stopPlayback() {
  const cutMs = Math.max(0, (nextStart - ctx.currentTime) * 1000);
  for (const source of sources) source.stop();
  sources = [];
  nextStart = ctx.currentTime;
  document.body.dataset.playing = "false";
  return cutMs;
}

function onEvent(message) {
  const name = message.name;
  const terminal = name === "TRANSFER_TO_AGENT" || name === "SESSION_END";
  if (name === "START_OF_INPUT" && bargeable && playing()) {
    const cut = stopPlayback();
    document.body.dataset.barged = String(Number(document.body.dataset.barged || 0) + 1);
    logEvent(`barge-in: playback stopped, ${cut.toFixed(0)} ms not played`, "barge-in", "barge-in");
  }
  const meta = Object.keys(message.metadata || {}).length ? " " + JSON.stringify(message.metadata) : "";
  logEvent(`RPC ${message.rpc + 1} ${name}${meta}`, terminal ? "terminal" : "", name);
}

function onTurn(turn) {
  const parts = [];
  if (turn.speech_end_ms != null && turn.end_of_input_ms != null)
    parts.push(`end of speech → END_OF_INPUT ${(turn.end_of_input_ms - turn.speech_end_ms).toFixed(0)} ms`);
  if (turn.end_of_input_ms != null && turn.first_audio_ms != null)
    parts.push(`END_OF_INPUT → first audio ${(turn.first_audio_ms - turn.end_of_input_ms).toFixed(0)} ms`);
  for (const [mark, at] of Object.entries(turn.marks || {})) {
    if (turn.end_of_input_ms == null) continue;
    const after = at - turn.end_of_input_ms;
    parts.push(`${mark} ${after >= 0 ? "+" : ""}${after.toFixed(0)} ms`);
  }
  const li = document.createElement("li");
  li.textContent = `turn ${turn.turn}: ${parts.join(", ") || "no marks"}`;
  $("turns").append(li);
}

function onMessage(event) {
  if (event.data instanceof ArrayBuffer) {
    play(event.data);
    return;
  }
  const message = JSON.parse(event.data);
  switch (message.type) {
    case "started":
      setState("in-call", "in call");
      document.body.dataset.conversationId = message.conversation_id;
      $("timeline").href = `/calls/${encodeURIComponent(message.conversation_id)}`;
      $("timeline").hidden = false;
      break;
    case "rpc":
      if (message.state === "open") logEvent(`RPC ${message.rpc + 1} ${message.kind} open`, "", "rpc-open");
      else logEvent(`RPC ${message.rpc + 1} complete ${message.status}`, "", "rpc-complete");
      break;
    case "event":
      onEvent(message);
      break;
    case "prompt":
      bargeable = message.bargeable;
      if (message.text) {
        const li = document.createElement("li");
        li.textContent = message.text + (message.bargeable ? "" : " (not bargeable)");
        $("prompts").append(li);
      }
      break;
    case "final":
      logEvent(`RPC ${message.rpc + 1} FINAL`, "", "FINAL");
      break;
    case "turn":
      onTurn(message);
      break;
    case "transcript":
      $("transcript").textContent = message.text;
      break;
    case "ended":
      endCall(message.event, message.metadata);
      break;
    case "error":
      logEvent(`error: ${message.message}`, "terminal", "error");
      $("status").textContent = message.message;
      break;
  }
}

function endCall(eventName, metadata) {
  $("ended-event").textContent = eventName;
  $("ended").dataset.event = eventName;
  $("ended-metadata").textContent = JSON.stringify(metadata || {}, null, 2);
  $("ended").hidden = false;
  setState("ended", "call ended");
  if (mic) mic.getTracks().forEach((t) => t.stop());
  mic = null;
}

async function startCall() {
  setState("connecting", "connecting…");
  ctx = new AudioContext();
  await ctx.resume();
  await ctx.audioWorklet.addModule("/playground/static/capture-worklet.js");
  mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false },
  });
  const capture = new AudioWorkletNode(ctx, "capture-8k");
  ctx.createMediaStreamSource(mic).connect(capture);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}/playground/ws`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = onMessage;
  ws.onclose = () => { if (document.body.dataset.state === "in-call") setState("ended", "connection closed"); };
  capture.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) ws.send(e.data); };
  ws.onopen = () => {
    callStart = performance.now();
    ws.send(JSON.stringify({ type: "call", agent: $("agent").value }));
  };
}

async function loadAgents() {
  const response = await fetch("/playground/agents.json");
  const body = await response.json();
  if (!response.ok) {
    $("status").textContent = body.error || "cannot list the agents";
    return;
  }
  for (const agent of body.agents) {
    const option = new Option(`${agent.name} (${agent.virtual_agent_id})`, agent.virtual_agent_id);
    option.selected = agent.is_default;
    $("agent").append(option);
  }
  setState("idle", body.agents.length ? "ready" : "this server has no agents");
  $("call").disabled = body.agents.length === 0;
}

$("call").addEventListener("click", () => {
  startCall().catch((err) => { setState("idle", `cannot start: ${err.message}`); });
});
$("hangup").addEventListener("click", () => ws && ws.send(JSON.stringify({ type: "hangup" })));
for (const key of document.querySelectorAll(".keypad button")) {
  key.addEventListener("click", () => {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "dtmf", digits: key.dataset.key }));
      logEvent(`pressed ${key.dataset.key}`, "", "dtmf");
    }
  });
}
loadAgents();
