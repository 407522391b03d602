// Microphone capture for the playground: downmix, resample to 8 kHz and post 20 ms frames
// of PCM16 to the page. The context's own rate (44.1 or 48 kHz, or any other) is whatever the
// device uses, so resampling happens here.
//
// The resampler is a Kaiser-windowed sinc low-pass evaluated at each output instant's
// fractional input position (a polyphase table): flat to 3.4 kHz (within 0.01 dB), 59 dB
// down at 4 kHz and 65 dB or more from 4.3 kHz, so microphone content above 4 kHz does not
// fold back into the voice band (`python -m tests.playground.capture` measures it). The taps
// span about 6 ms of input whatever the rate, and each costs one multiply-add per output
// sample: 268 at 44.1 kHz, 292 at 48 kHz, 98 at 16 kHz, 582 at 96 kHz (at most 4.7 million
// a second). Outputs lag the input by half the span, 3 ms.
//
// The DSP (designResampler, Resampler) touches no Web Audio API, so a test can load this file
// in Node with a stubbed AudioWorkletProcessor, registerProcessor and sampleRate.
const OUT_RATE = 8000;
const FRAME = 160; // 20 ms at 8 kHz: Webex's frame size
const PASS_HZ = 3400; // top of the telephone voice band: kept flat
const STOP_HZ = 4000; // the output's Nyquist frequency: everything above would alias
const STOP_DB = 60; // design attenuation; 10 dB above the 50 dB the playground needs
const MAX_PHASES = 1024; // above this, output instants round to the nearest 1/1024 sample

// Modified Bessel function of the first kind, order 0 (the Kaiser window's shape), by its
// power series; 60 terms converge far beyond double precision for the betas used here.
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 60 && term > sum * 1e-17; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

// Phases per input sample: exact when the rate ratio is a small fraction (44.1 kHz → 8 kHz
// is 441/80, so 80 phases; 48 kHz is 6/1, one phase), else MAX_PHASES with nearest rounding.
function phaseCount(inRate) {
  if (!Number.isInteger(inRate)) return MAX_PHASES;
  const phases = OUT_RATE / gcd(inRate, OUT_RATE);
  return phases <= MAX_PHASES ? phases : MAX_PHASES;
}

// The filter for one input rate: `table` holds phases + 1 rows of `taps` coefficients; row j
// weighs the newest `taps` input samples (oldest first) for an output instant j / phases of
// an input sample after the last whole one. Each row sums to 1, so every phase has unity
// gain at DC and no phase-dependent gain modulates the signal.
function designResampler(inRate) {
  if (!(inRate > 2 * STOP_HZ)) throw new RangeError(`cannot resample ${inRate} Hz down to 8 kHz`);
  const cutoff = (PASS_HZ + STOP_HZ) / 2 / inRate; // cycles per input sample, mid-transition
  const deltaOmega = (2 * Math.PI * (STOP_HZ - PASS_HZ)) / inRate;
  const half = (STOP_DB - 7.95) / (2.285 * deltaOmega) / 2; // Kaiser's length estimate, halved
  const beta = 0.1102 * (STOP_DB - 8.7);
  // Rows span offsets 1 - taps/2 - f .. taps/2 - f for an instant f in [0, 1] past a sample:
  // every tap closer than `half` to the instant, whatever f, and nothing wasted.
  const taps = 2 * Math.ceil(half);
  const phases = phaseCount(inRate);
  const table = new Float32Array((phases + 1) * taps);
  const i0Beta = besselI0(beta);
  for (let j = 0; j <= phases; j++) {
    const row = new Float64Array(taps);
    let sum = 0;
    for (let i = 0; i < taps; i++) {
      const t = i - taps / 2 + 1 - j / phases; // tap's distance from the output instant
      const x = t / half;
      if (Math.abs(x) >= 1) continue;
      const arg = 2 * cutoff * t;
      const sinc = arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
      row[i] = 2 * cutoff * sinc * (besselI0(beta * Math.sqrt(1 - x * x)) / i0Beta);
      sum += row[i];
    }
    for (let i = 0; i < taps; i++) table[j * taps + i] = row[i] / sum;
  }
  return { step: inRate / OUT_RATE, taps, phases, table };
}

// Streaming resampler: feed mono samples in blocks of any size; it carries the input history
// and the position of the next output instant from one block to the next, so the output does
// not depend on where the blocks split.
class Resampler {
  constructor(inRate) {
    const design = designResampler(inRate);
    this.taps = design.taps;
    this.phases = design.phases;
    this.table = design.table;
    this.stepWhole = Math.floor(design.step);
    this.stepFrac = design.step - this.stepWhole;
    // History written twice (at w and w + taps) so the newest `taps` samples are always the
    // contiguous run history[w .. w + taps - 1], oldest first. It starts as silence.
    this.history = new Float64Array(2 * this.taps);
    this.w = 0;
    this.frac = 0; // fractional part of the next output instant, in input samples
    // Output 0 sits at input 0 and needs half the taps after it; later outputs need `step`
    // more input samples each.
    this.untilNext = this.taps / 2 + 1;
  }

  // Resample `count` samples of `input`; write the outputs to `out` and return how many.
  // The input rate is above 8 kHz, so each input sample completes at most one output and
  // `out` needs room for `count` samples.
  write(input, count, out) {
    const { taps, table, history } = this;
    let written = 0;
    for (let n = 0; n < count; n++) {
      const s = input[n];
      history[this.w] = s;
      history[this.w + taps] = s;
      this.w = this.w + 1 === taps ? 0 : this.w + 1;
      if (--this.untilNext > 0) continue;
      const row = Math.round(this.frac * this.phases) * taps;
      let acc = 0;
      for (let i = 0, h = this.w; i < taps; i++, h++) acc += history[h] * table[row + i];
      out[written++] = acc;
      this.frac += this.stepFrac;
      this.untilNext = this.stepWhole;
      if (this.frac >= 1) {
        this.frac -= 1;
        this.untilNext += 1;
      }
    }
    return written;
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate);
    this.mono = new Float32Array(128);
    this.out = new Float64Array(128); // see Resampler.write: at most one output per input
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const n = input[0].length;
    if (this.mono.length < n) {
      this.mono = new Float32Array(n);
      this.out = new Float64Array(n);
    }
    this.downmix(input, n);
    const produced = this.resampler.write(this.mono, n, this.out);
    for (let k = 0; k < produced; k++) {
      const v = Math.max(-1, Math.min(1, this.out[k]));
      this.frame[this.filled++] = Math.round(v * 32767);
      if (this.filled === FRAME) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME);
        this.filled = 0;
      }
    }
    return true;
  }

  // The channels' average into this.mono.
  downmix(input, n) {
    const channels = input.length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += input[c][i];
      this.mono[i] = s / channels;
    }
  }
}

registerProcessor("capture-8k", CaptureProcessor);
