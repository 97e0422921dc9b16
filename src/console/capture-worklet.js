// The test call's microphone capture, run on the audio thread (an AudioWorklet): takes the
// first input channel at the AudioContext's rate (`sampleRate`, e.g. 48000), brings it to
// 16 kHz by averaging the input samples that fall into each output sample (a box filter,
// enough against aliasing for speech), and posts 20 ms frames — 320 samples of PCM16
// little-endian, as an ArrayBuffer — to the page, which sends them to voxd.
'use strict';

const OUT_RATE = 16000;
const FRAME = 320; // 20 ms at 16 kHz

class Capture16k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = OUT_RATE / sampleRate; // output samples per input sample (≤ 1)
    this.pos = 0; // progress towards the next output sample
    this.sum = 0;
    this.count = 0;
    this.frame = new DataView(new ArrayBuffer(FRAME * 2));
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input connected (yet)
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count += 1;
      this.pos += this.step;
      if (this.pos >= 1) {
        this.pos -= 1;
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }

  push(value) {
    const s = Math.max(-1, Math.min(1, value));
    this.frame.setInt16(this.filled * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    this.filled += 1;
    if (this.filled === FRAME) {
      const buffer = this.frame.buffer;
      this.port.postMessage(buffer, [buffer]);
      this.frame = new DataView(new ArrayBuffer(FRAME * 2));
      this.filled = 0;
    }
  }
}

registerProcessor('capture-16k', Capture16k);
