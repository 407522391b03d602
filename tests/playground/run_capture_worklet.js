// Runs the playground's capture worklet outside a browser, for tests/playground.
//
//   node run_capture_worklet.js WORKLET RATE CHANNELS BLOCK < planar float32 > int16
//
// stdin holds CHANNELS channels of float32 samples at RATE Hz, one channel after the other;
// they reach process() BLOCK frames at a time (0: all in one call), as Web Audio's
// 128-frame render quanta would. stdout gets the posted 160-sample frames, concatenated.
// The worklet file is run as is in a fresh context whose AudioWorkletProcessor,
// registerProcessor and sampleRate are stubs, so the test exercises the shipped code.
"use strict";

const fs = require("fs");
const vm = require("vm");

function loadProcessor(path, rate) {
  const registered = {};
  class AudioWorkletProcessor {
    constructor() {
      this.posted = [];
      this.port = { postMessage: (buffer) => this.posted.push(Buffer.from(buffer)) };
    }
  }
  const context = {
    AudioWorkletProcessor,
    sampleRate: rate,
    registerProcessor: (name, cls) => {
      registered[name] = cls;
    },
  };
  vm.runInNewContext(fs.readFileSync(path, "utf8"), context, { filename: path });
  const Processor = registered["capture-8k"];
  if (!Processor) throw new Error(`${path} registers no "capture-8k" processor`);
  return new Processor();
}

function main() {
  const [path, rateArg, channelsArg, blockArg] = process.argv.slice(2);
  const rate = Number(rateArg);
  const channels = Number(channelsArg);
  const raw = fs.readFileSync(0);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  const length = all.length / channels;
  const planes = [];
  for (let c = 0; c < channels; c++) planes.push(all.slice(c * length, (c + 1) * length));
  const block = Number(blockArg) || length;
  const processor = loadProcessor(path, rate);
  for (let start = 0; start < length; start += block) {
    const end = Math.min(start + block, length);
    // Fresh arrays per call, as the audio thread hands each quantum over.
    const input = planes.map((plane) => plane.slice(start, end));
    if (processor.process([input], [], {}) !== true) throw new Error("process() stopped");
  }
  process.stdout.write(Buffer.concat(processor.posted));
}

main();
