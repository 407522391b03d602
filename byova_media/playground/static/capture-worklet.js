// Microphone capture for the playground: downmix, resample to 8 kHz and post 20 ms frames
// of PCM16 to the page. The context's own rate (44.1 or 48 kHz) is whatever the device uses,
// so resampling happens here: a box low-pass over one output period, then decimation.
const OUT_RATE = 8000;
const FRAME = 160; // 20 ms at 8 kHz: Webex's frame size

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.pos = 0; // position of the next output sample, in input samples
    this.acc = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const n = input[0].length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += input[c][i];
      this.acc += s / channels;
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.acc = 0;
        this.count = 0;
        this.frame[this.filled++] = Math.round(v * 32767);
        if (this.filled === FRAME) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(FRAME);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("capture-8k", CaptureProcessor);
