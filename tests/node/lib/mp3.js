// MP3 for the stand-in's players: the frame headers of MPEG-1, 2 and 2.5 Layer III (how much
// audio each frame carries, so a stream's bytes say how many seconds have arrived), decoding a
// whole file with the lame command-line tool, and the clock of a progressive player, which
// starts with the first audio and plays in real time: audio that arrives after it should have
// played is a stall (the player ran dry; Voximplant may end the playback silently).
'use strict';

const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');

// Layer III bitrates in kbit/s by bitrate index (0: free format, 15: invalid).
const BITRATES = {
  1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
// Sample rates by version (the header's two version bits) and sample-rate index.
const VERSIONS = {
  3: { name: 'MPEG-1', rates: [44100, 48000, 32000], table: 1, samples: 1152, coefficient: 144 },
  2: { name: 'MPEG-2', rates: [22050, 24000, 16000], table: 2, samples: 576, coefficient: 72 },
  0: { name: 'MPEG-2.5', rates: [11025, 12000, 8000], table: 2, samples: 576, coefficient: 72 },
};

/**
 * The Layer III frame header at `pos` of `buf`: {version, sampleRate, bitrate (bit/s), padding,
 * channels, protected, length (bytes, header included), samples (per channel), seconds}, or
 * null where there is no valid one (no sync, a reserved field, another layer, free format).
 */
function parseFrameHeader(buf, pos = 0) {
  if (pos + 4 > buf.length) return null;
  const [b0, b1, b2, b3] = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
  if (b0 !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const version = VERSIONS[(b1 >> 3) & 3];
  if (!version || ((b1 >> 1) & 3) !== 1) return null; // reserved version, or not Layer III
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 3;
  if (bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return null;
  const bitrate = BITRATES[version.table][bitrateIndex] * 1000;
  const sampleRate = version.rates[rateIndex];
  const padding = (b2 >> 1) & 1;
  const length = Math.floor((version.coefficient * bitrate) / sampleRate) + padding;
  return {
    version: version.name,
    sampleRate,
    bitrate,
    padding,
    channels: b3 >> 6 === 3 ? 1 : 2,
    protected: (b1 & 1) === 0,
    length,
    samples: version.samples,
    seconds: version.samples / sampleRate,
  };
}

/** Whether `buf` starts as an MP3 file (an ID3v2 tag or a Layer III frame). */
function looksLikeMp3(buf) {
  return (buf.length >= 3 && buf.toString('latin1', 0, 3) === 'ID3') || parseFrameHeader(buf, 0) !== null;
}

/**
 * Reads an MP3 stream as its bytes arrive: `push(bytes)` returns the seconds of audio in the
 * frames it completed. An ID3v2 tag at the start is skipped, as is an ID3v1 tag at the end
 * (`end()`); anything else that is not a frame is an error (voxd's streams are bare frames).
 */
class Mp3Frames {
  constructor() {
    this.pending = Buffer.alloc(0);
    this.offset = 0; // of `pending` in the stream
    this.started = false;
    this.frames = 0;
    this.seconds = 0;
    this.sampleRates = new Set();
    this.bitrates = new Set();
    this.channels = new Set();
    this.versions = new Set();
    this.id3 = false;
    this.skip = 0; // bytes of an ID3v2 tag still to skip
  }

  push(bytes) {
    this.pending = this.pending.length ? Buffer.concat([this.pending, bytes]) : Buffer.from(bytes);
    let pos = 0;
    let seconds = 0;
    for (;;) {
      if (this.skip) {
        const n = Math.min(this.skip, this.pending.length - pos);
        this.skip -= n;
        pos += n;
        if (this.skip) break;
      }
      if (!this.started) {
        if (this.pending.length - pos < 10) break;
        if (this.pending.toString('latin1', pos, pos + 3) === 'ID3') {
          const p = this.pending;
          const size = ((p[pos + 6] & 0x7f) << 21) | ((p[pos + 7] & 0x7f) << 14) | ((p[pos + 8] & 0x7f) << 7) | (p[pos + 9] & 0x7f);
          this.skip = 10 + size + (p[pos + 5] & 0x10 ? 10 : 0);
          this.id3 = true;
          this.started = true;
          continue;
        }
        this.started = true;
      }
      if (this.pending.length - pos < 4) break;
      const header = parseFrameHeader(this.pending, pos);
      if (!header) {
        if (this.pending.length - pos >= 3 && this.pending.toString('latin1', pos, pos + 3) === 'TAG') break; // ID3v1, checked at end()
        const at = this.offset + pos;
        const head = this.pending.subarray(pos, pos + 4).toString('hex');
        throw new Error(`not an MP3 Layer III frame at byte ${at} (${head}) after ${this.frames} frame(s)`);
      }
      if (this.pending.length - pos < header.length) break;
      pos += header.length;
      this.frames += 1;
      seconds += header.seconds;
      this.sampleRates.add(header.sampleRate);
      this.bitrates.add(header.bitrate);
      this.channels.add(header.channels);
      this.versions.add(header.version);
    }
    this.pending = this.pending.subarray(pos);
    this.offset += pos;
    this.seconds += seconds;
    return seconds;
  }

  /** The stream has ended: what is left must be an ID3v1 tag or nothing. */
  end() {
    const rest = this.pending;
    if (rest.length === 128 && rest.toString('latin1', 0, 3) === 'TAG') return;
    if (rest.length) throw new Error(`the MP3 stream ends in ${rest.length} byte(s) that are not a whole frame (at byte ${this.offset})`);
    if (this.skip) throw new Error('the MP3 stream ends inside its ID3v2 tag');
  }
}

/**
 * Reads a WAV stream as its bytes arrive, from the byte rate of its fmt chunk: `push(bytes)`
 * returns the seconds of audio (whole sample frames) it brought.
 */
class WavFrames {
  constructor() {
    this.head = Buffer.alloc(0);
    this.byteRate = 0;
    this.blockAlign = 0;
    this.dataBytes = 0; // arrived in the data chunk
    this.inData = false;
    this.seconds = 0;
  }

  push(bytes) {
    if (!this.inData) {
      this.head = Buffer.concat([this.head, bytes]);
      const found = this.findData();
      if (!found) return 0;
      bytes = this.head.subarray(found);
      this.inData = true;
      this.head = null;
    }
    const before = Math.floor(this.dataBytes / this.blockAlign) * this.blockAlign;
    this.dataBytes += bytes.length;
    const after = Math.floor(this.dataBytes / this.blockAlign) * this.blockAlign;
    const seconds = (after - before) / this.byteRate;
    this.seconds += seconds;
    return seconds;
  }

  /** The offset in `head` where the data chunk's bytes start, once the headers are in. */
  findData() {
    const h = this.head;
    if (h.length < 12) return null;
    if (h.toString('ascii', 0, 4) !== 'RIFF' || h.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a RIFF/WAVE stream');
    let pos = 12;
    while (pos + 8 <= h.length) {
      const id = h.toString('ascii', pos, pos + 4);
      const size = h.readUInt32LE(pos + 4);
      if (id === 'data') {
        if (!this.byteRate) throw new Error('WAV data chunk before fmt chunk');
        return pos + 8;
      }
      if (id === 'fmt ') {
        if (pos + 8 + 16 > h.length) return null;
        this.byteRate = h.readUInt32LE(pos + 8 + 8);
        this.blockAlign = h.readUInt16LE(pos + 8 + 12);
        if (!this.byteRate || !this.blockAlign) throw new Error('WAV fmt chunk with no byte rate');
      }
      pos += 8 + size + (size % 2);
    }
    return null;
  }

  end() {}
}

/**
 * The clock of a progressive player. `push(bytes, t)` feeds a chunk that arrived at `t`
 * (seconds, any origin); playback starts with the first chunk that completes some audio (t0)
 * and runs in real time, so by a chunk arriving at t the player has needed t - t0 seconds of
 * audio. If less than that minus `slack` arrived before the chunk, the player ran dry: a stall
 * ({at: t - first audio's arrival, had: seconds of audio before the chunk, behind: how long
 * the player had been dry}), returned and kept in `stalls`; the player then
 * plays on from the chunk's arrival (t0 moves by the gap). `format` is 'mp3' or 'wav'; null
 * decides by the first bytes.
 */
class ProgressiveClock {
  constructor({ format = null, slack = 0.25 } = {}) {
    this.slack = slack;
    this.format = null;
    this.reader = null;
    if (format) this.use(format);
    this.t0 = null; // when playback started (moved on by the time it spent dry)
    this.first = null; // when the first audio arrived
    this.seconds = 0; // of audio arrived
    this.chunks = 0;
    this.stalls = [];
    this.sniff = Buffer.alloc(0);
  }

  use(format) {
    if (format !== 'mp3' && format !== 'wav') throw new Error(`unknown audio format ${format}`);
    this.format = format;
    this.reader = format === 'mp3' ? new Mp3Frames() : new WavFrames();
  }

  push(bytes, t) {
    this.chunks += 1;
    let stall = null;
    if (this.t0 !== null && this.seconds < t - this.t0 - this.slack) {
      stall = { at: t - this.first, had: this.seconds, behind: t - this.t0 - this.seconds };
      this.stalls.push(stall);
      // The player ran dry at `had` and plays on from now: the next stall is a new one.
      this.t0 = t - this.seconds;
    }
    if (!this.reader) {
      this.sniff = Buffer.concat([this.sniff, bytes]);
      if (this.sniff.length < 4) return stall;
      const format = this.sniff.toString('ascii', 0, 4) === 'RIFF' ? 'wav' : looksLikeMp3(this.sniff) ? 'mp3' : null;
      if (!format) throw new Error(`neither WAV nor MP3 (it starts with ${this.sniff.subarray(0, 8).toString('hex')})`);
      this.use(format);
      bytes = this.sniff;
      this.sniff = null;
    }
    this.seconds += this.reader.push(bytes);
    if (this.t0 === null && this.seconds > 0) this.t0 = this.first = t;
    return stall;
  }

  /** The first audio has arrived (the player has started). */
  get started() {
    return this.t0 !== null;
  }

  end() {
    if (!this.reader) throw new Error(`${this.sniff.length} byte(s) of audio, too few to tell its format`);
    this.reader.end();
  }
}

/** Decodes an MP3 file with lame into a 16-bit PCM WAV file's bytes. */
async function decodeMp3(mp3) {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'voxd-mp3-'));
  try {
    const input = path.join(dir, 'in.mp3');
    const output = path.join(dir, 'out.wav');
    await fs.promises.writeFile(input, mp3);
    try {
      await promisify(execFile)('lame', ['--decode', '--quiet', input, output]);
    } catch (err) {
      throw new Error(`lame cannot decode the MP3: ${(err.stderr || err.message).toString().trim()}`);
    }
    return await fs.promises.readFile(output);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

module.exports = { parseFrameHeader, looksLikeMp3, Mp3Frames, WavFrames, ProgressiveClock, decodeMp3 };
