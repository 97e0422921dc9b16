// Audio helpers for the stand-in: WAV parsing, G.711 (μ-law, A-law) and the sample formats
// of Voximplant's media stream (WebSocketAudioEncoding), and a loudness measure.
'use strict';

/** Parses a 16-bit PCM WAV file: {sampleRate, channels, samples: Int16Array (interleaved)}. */
function parseWav(buf) {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let pos = 12;
  let fmt = null;
  while (pos + 8 <= buf.length) {
    const id = buf.toString('ascii', pos, pos + 4);
    const size = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data chunk before fmt chunk');
      if (fmt.format !== 1 || fmt.bits !== 16) throw new Error(`WAV is not 16-bit PCM (format ${fmt.format}, ${fmt.bits} bits)`);
      const end = Math.min(buf.length, body + size);
      const data = buf.subarray(body, end - ((end - body) % 2));
      const samples = new Int16Array(data.length / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(i * 2);
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, samples };
    }
    pos = body + size + (size % 2);
  }
  throw new Error('WAV has no data chunk');
}

/** A mono 16-bit PCM WAV file of `samples` at `sampleRate`. */
function buildWav(samples, sampleRate) {
  const data = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) data.writeInt16LE(samples[i], i * 2);
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'ascii');
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVEfmt ', 8, 'ascii');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20);
  head.writeUInt16LE(1, 22);
  head.writeUInt32LE(sampleRate, 24);
  head.writeUInt32LE(sampleRate * 2, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36, 'ascii');
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

function ulawDecode(byte) {
  const u = ~byte & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function ulawEncode(sample) {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (s >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | mant) & 0xff;
}

function alawDecode(byte) {
  const a = byte ^ 0x55;
  const exp = (a & 0x70) >> 4;
  let t = (a & 0x0f) << 4;
  t = exp === 0 ? t + 8 : (t + 0x108) << (exp - 1);
  return a & 0x80 ? t : -t;
}

function alawEncode(sample) {
  let s = Math.max(-32767, Math.min(32767, sample));
  const sign = s >= 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  let out;
  if (s < 256) {
    out = s >> 4;
  } else {
    let exp = 1;
    for (let v = s >> 8; v > 1 && exp < 7; v >>= 1) exp++;
    out = (exp << 4) | ((s >> (exp + 3)) & 0x0f);
  }
  return (out | sign) ^ 0x55;
}

/** Sample rate and codec of each media-stream encoding voxd and the scenarios use. */
const ENCODINGS = {
  PCM8: { sampleRate: 8000, bytesPerSample: 2 },
  PCM16: { sampleRate: 16000, bytesPerSample: 2 },
  ULAW: { sampleRate: 8000, bytesPerSample: 1 },
  ALAW: { sampleRate: 8000, bytesPerSample: 1 },
};

function encodingInfo(name) {
  const info = ENCODINGS[name];
  if (!info) throw new Error(`unsupported media encoding ${JSON.stringify(name)}`);
  return info;
}

/** Int16 samples → the payload bytes of `encoding`. */
function encodeSamples(samples, encoding) {
  encodingInfo(encoding);
  if (encoding === 'ULAW' || encoding === 'ALAW') {
    const f = encoding === 'ULAW' ? ulawEncode : alawEncode;
    return Buffer.from(Array.from(samples, f));
  }
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i], i * 2);
  return out;
}

/** Payload bytes of `encoding` → Int16 samples. */
function decodeSamples(bytes, encoding) {
  encodingInfo(encoding);
  if (encoding === 'ULAW' || encoding === 'ALAW') {
    const f = encoding === 'ULAW' ? ulawDecode : alawDecode;
    return Int16Array.from(bytes, f);
  }
  if (bytes.length % 2) throw new Error(`odd PCM payload length ${bytes.length}`);
  const out = new Int16Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(i * 2);
  return out;
}

/** Root-mean-square level of Int16 samples, 0..32767. */
function rms(samples) {
  if (!samples.length) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

module.exports = { parseWav, buildWav, encodeSamples, decodeSamples, encodingInfo, rms };
