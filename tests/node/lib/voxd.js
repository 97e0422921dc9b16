// Runs the real voxd for the scenario tests: the release binary on the test models, on a free
// loopback port, plus the CLI helpers the tests use to make and check speech (`voxd say`,
// `voxd transcribe`) and the audio tools from scripts/install-deps (lame, sox).
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const audio = require('./audio');

const REPO = path.resolve(__dirname, '..', '..', '..');
const BIN = process.env.VOXD_BIN || path.join(REPO, 'target', 'release', 'voxd');

/** A TCP port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `voxd serve` with `env` added to the test configuration and waits until /health
 * answers. Returns {url, port, log(), stop()}; the daemon's log is kept for failure messages.
 */
async function startVoxd(env = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run scripts/setup first`);
  const port = await freePort();
  const data = scratchDir();
  let log = '';
  const child = spawn(BIN, ['serve'], {
    cwd: REPO,
    env: testEnv({
      VOXD_SERVER_BIND: `127.0.0.1:${port}`,
      VOXD_TTS_DETERMINISTIC: 'true',
      VOXD_CALLS_MAX_LIVE: '16',
      VOXD_HISTORY_DATABASE: path.join(data, 'voxd.db'),
      RUST_LOG: process.env.RUST_LOG || 'voxd=info,warn',
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk) => {
    log += chunk.toString();
    if (process.env.VOXD_TEST_LOG) process.stderr.write(chunk);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const done = await Promise.race([exited, new Promise((r) => setTimeout(r, 200, null))]);
    if (done) throw new Error(`voxd exited during start-up (${JSON.stringify(done)}):\n${log}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`voxd did not become healthy in 180 s:\n${log}`);
    }
  }
  return {
    url,
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const res = await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000, null))]);
      if (!res) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** The environment for a voxd child: the test configuration (no config file) plus `extra`. */
function testEnv(extra) {
  const env = { ...process.env, ...extra };
  delete env.VOXD_CONFIG;
  return env;
}

/** A scratch directory removed when the process exits. */
function scratchDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxd-standin-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Speaks `text` with voxd's own voice into a WAV file (22.05 kHz) and returns its path. */
function say(text, file) {
  execFileSync(BIN, ['say', text, '-o', file], {
    cwd: REPO,
    env: testEnv({ VOXD_TTS_DETERMINISTIC: 'true' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return file;
}

/** Transcribes an audio file with voxd's Whisper; returns the text. */
function transcribe(file) {
  return execFileSync(BIN, ['transcribe', file], {
    cwd: REPO,
    env: testEnv({}),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
    .toString()
    .trim();
}

/** The MP3 a Voximplant recording would be: 8 kHz mono, 32 kbit/s. */
function toRecordingMp3(wav, mp3) {
  execFileSync('lame', ['--quiet', '--resample', '8', '-m', 'm', '-b', '32', wav, mp3]);
  return mp3;
}

/** Resamples a WAV to mono 16-bit at `rate` (sox). */
function resampleWav(wav, out, rate) {
  execFileSync('sox', [wav, '-r', String(rate), '-c', '1', '-b', '16', '-e', 'signed-integer', out]);
  return out;
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40);
}

/** What a caller says in recording mode: {file: the MP3 Voximplant would record, durationMs, text}. */
function recordedUtterance(text, dir) {
  const wav = say(text, path.join(dir, `${slug(text)}.wav`));
  const { samples, sampleRate } = audio.parseWav(fs.readFileSync(wav));
  return { file: toRecordingMp3(wav, path.join(dir, `${slug(text)}.mp3`)), durationMs: (samples.length / sampleRate) * 1000, text };
}

/** What a caller says on a media stream: Int16 samples at `rate`. */
function streamedUtterance(text, dir, rate) {
  const wav = say(text, path.join(dir, `${slug(text)}.wav`));
  const out = resampleWav(wav, path.join(dir, `${slug(text)}-${rate}.wav`), rate);
  return audio.parseWav(fs.readFileSync(out)).samples;
}

/** Writes Int16 samples to a WAV file and transcribes it with voxd's Whisper. */
function transcribeSamples(samples, rate, file) {
  fs.writeFileSync(file, audio.buildWav(samples, rate));
  return transcribe(file);
}

/** Lower-cased words of a text, without punctuation. */
function words(text) {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) || [];
}

/** Words two texts share. */
function sharedWords(a, b) {
  const bs = new Set(words(b));
  return [...new Set(words(a))].filter((w) => bs.has(w));
}

module.exports = {
  REPO,
  BIN,
  startVoxd,
  freePort,
  scratchDir,
  say,
  transcribe,
  transcribeSamples,
  recordedUtterance,
  streamedUtterance,
  words,
  sharedWords,
};
