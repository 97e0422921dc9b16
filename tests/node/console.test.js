// The web console (src/console/) in a real headless Chromium (Debian's `chromium`, driven by
// puppeteer-core) against a real voxd on the test models: signing in, a test call through
// Chromium's fake microphone fed a spoken question, History and a call's detail, untrusted
// transcript text shown as text, a live call on Now while it lasts, Latency and the
// knowledge base. A screenshot of each page goes to $VOXD_TEST_OUTPUT (default
// target/console-screenshots/).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const WebSocket = require('ws');
const puppeteer = require('puppeteer-core');
const v = require('./lib/voxd');
const audio = require('./lib/audio');

const ADMIN_TOKEN = 'console-admin-token';
const SCENARIO_TOKEN = 'console-scenario-token';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.VOXD_TEST_OUTPUT || path.join(v.REPO, 'target', 'console-screenshots');
// One breath, no comma: a pause inside the question could end the caller's turn early.
const QUESTION = 'What time do you open tomorrow morning?';
const FAQ = '# Sunny Bakery\n\nSunny Bakery is a family bakery. We bake bread, cakes and pastries every morning.\n\n'
  + '## Opening hours\n\nWe open at 8 am and close at 7 pm, Monday to Saturday. On Sunday we are closed.\n';
// What a hostile caller (or model) might get into a transcript; the page must show it as text.
const IMG = '<img src=x onerror="window.__pwned=\'img\'">';
const SCRIPT = '<script>window.__pwned=\'script\'</script>';

const dir = v.scratchDir();
const db = path.join(dir, 'voxd.db');
let voxd;
let browser;
let page;
const pageErrors = []; // uncaught exceptions and CSP refusals in the page

/** The knowledge base the console's search is tried on: a small FAQ, indexed by voxd. */
function indexFaq() {
  const docs = path.join(dir, 'docs');
  fs.mkdirSync(docs);
  fs.writeFileSync(path.join(docs, 'faq.md'), FAQ);
  const index = path.join(dir, 'kb');
  const env = { ...process.env, VOXD_KB_INDEX: index };
  delete env.VOXD_CONFIG;
  execFileSync(v.BIN, ['kb', 'index', docs], { cwd: v.REPO, env, stdio: ['ignore', 'ignore', 'pipe'] });
  return index;
}

/**
 * The fake microphone's file: 3 s of silence (voxd greets meanwhile), the question in voxd's
 * own voice, then 5 s of silence so that voxd sees the turn end. 16-bit PCM WAV.
 */
function microphoneWav() {
  const spoken = v.say(QUESTION, path.join(dir, 'question.wav'));
  const { samples, sampleRate } = audio.parseWav(fs.readFileSync(spoken));
  const padded = new Int16Array(sampleRate * 3 + samples.length + sampleRate * 5);
  padded.set(samples, sampleRate * 3);
  const file = path.join(dir, 'microphone.wav');
  fs.writeFileSync(file, audio.buildWav(padded, sampleRate));
  return file;
}

async function screenshot(name) {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

/** Goes to a page of the console (#name) and waits for its section to show. */
async function open(name, section = name) {
  await page.evaluate((h) => { location.hash = h; }, `#${name}`);
  await page.waitForSelector(`#page-${section}:not([hidden])`);
}

function text(selector) {
  return page.$eval(selector, (e) => e.textContent);
}

/** Runs `fn` and adds voxd's log to a failure. */
async function withLog(fn) {
  try {
    await fn();
  } catch (err) {
    err.message += `\npage errors: ${JSON.stringify(pageErrors)}\nvoxd log:\n${voxd ? voxd.log().slice(-4000) : '(no voxd)'}`;
    throw err;
  }
}

test.before(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-deps (Debian's chromium)`);
  const kb = indexFaq();
  voxd = await v.startVoxd({
    VOXD_SERVER_SCENARIO_TOKEN: SCENARIO_TOKEN,
    VOXD_SERVER_ADMIN_TOKEN: ADMIN_TOKEN,
    VOXD_HISTORY_DATABASE: db,
    VOXD_KB_ENABLED: 'true',
    VOXD_KB_INDEX: kb,
  });
  const mic = microphoneWav();
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      // Root (a container, CI) cannot use Chromium's sandbox.
      ...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
      '--disable-dev-shm-usage',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${mic}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.on('pageerror', (e) => pageErrors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
});

test.after(async () => {
  if (browser) await browser.close();
  if (voxd) await voxd.stop();
});

test('sign-in: a wrong token is refused with a message, the admin token opens the console', () => withLog(async () => {
  const res = await page.goto(`${voxd.url}/`);
  assert.equal(new URL(page.url()).pathname, '/console/', '/ leads to the console');
  const csp = res.headers()['content-security-policy'] || '';
  assert.match(csp, /script-src 'self'/, `the console's CSP: ${csp}`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);

  await page.waitForSelector('#signin-form');
  const signIn = async (token) => {
    await page.$eval('#signin-token', (e) => { e.value = ''; });
    await page.type('#signin-token', token);
    await page.click('#signin-submit');
  };
  // The scenario token (pasted into VoxEngine scenarios) is no key to the console.
  await signIn(SCENARIO_TOKEN);
  await page.waitForFunction(() => /refused.*admin token/.test(document.querySelector('#signin-error').textContent));
  await signIn('not-the-token');
  await page.waitForFunction(() => /refused: wrong token/i.test(document.querySelector('#signin-error').textContent));
  assert.equal(await page.$eval('#signin-error', (e) => e.hidden), false, 'the message is visible');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');
  await screenshot('sign-in');


  await signIn(ADMIN_TOKEN);
  await page.waitForSelector('#page-now:not([hidden])');
  await page.waitForSelector('#status [data-fact="Version"]');
  assert.ok(!page.url().includes(ADMIN_TOKEN), 'the token is never in the URL');
  assert.match(await text('#status'), /ggml-tiny/, 'the speech model is shown');
  await page.waitForSelector('#stream-state[data-state="live"]', { timeout: 10_000 });
  await screenshot('now');
}));

test('a test call through the browser\'s microphone: transcripts, reply audio, then History', { timeout: 180_000 }, () => withLog(async () => {
  await open('test');
  await page.click('#test-start');
  let callId;
  try {
    await page.waitForSelector('#test-state[data-state="connected"]', { timeout: 20_000 });
    callId = await text('#test-call-id');
    assert.match(callId, /^test-/);

    // voxd hears the question (the fake microphone's file) and answers it, in words and audio.
    const userTurns = () => page.$$eval('#test-transcript li[data-role="user"] .text', (els) => els.map((e) => e.textContent));
    await page.waitForSelector('#test-transcript li[data-role="user"]', { timeout: 60_000 });
    const samplesBefore = Number(await page.$eval('#test-received', (e) => e.dataset.samples));
    await page.waitForSelector('#test-transcript li[data-role="user"] ~ li[data-role="assistant"]', { timeout: 60_000 });
    const heard = (await userTurns()).join(' ');
    assert.ok(v.sharedWords(heard, QUESTION).length >= 3, `voxd heard ${JSON.stringify(await userTurns())}`);
    await page.waitForFunction(
      (before) => Number(document.querySelector('#test-received').dataset.samples) > before + 4000,
      { timeout: 30_000 }, samplesBefore);
    const sent = Number(await page.$eval('#test-sent', (e) => e.dataset.frames));
    assert.ok(sent > 100, `${sent} microphone frames sent`);
    await screenshot('test-call');
  } finally {
    // Hang up whatever happened, so that no call outlives this test.
    if (await page.$('#test-hangup:not([disabled])')) await page.click('#test-hangup');
  }
  await page.waitForSelector('#test-state[data-state="ended"]');
  await page.waitForSelector('#test-history:not([hidden]) a');

  // History: filtered to test calls, the call is there; its detail has the turns and latencies.
  await open('history');
  await page.select('#history-filters select[name="direction"]', 'test');
  await page.click('#history-filters button[type="submit"]');
  const row = `#history-rows tr[data-call-id="${callId}"]`;
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('#history-rows tr')];
    return rows.some((r) => r.dataset.callId === id) && rows.every((r) => r.children[2].textContent === 'test');
  }, { timeout: 15_000 }, callId);
  await screenshot('history');

  await page.click(`${row} a`);
  await page.waitForSelector('#page-call:not([hidden]) #call-detail .transcript');
  const detail = await text('#call-detail');
  assert.ok(detail.includes(callId));
  const turns = await page.$$eval('#call-detail .transcript li', (lis) =>
    lis.map((li) => ({ role: li.dataset.role, text: li.querySelector('.text').textContent, meta: li.querySelector('.meta').textContent })));
  const user = turns.find((t) => t.role === 'user' && v.sharedWords(t.text, QUESTION).length >= 2);
  assert.ok(user, `the question is not in the transcript: ${JSON.stringify(turns)}`);
  const answered = turns.slice(turns.indexOf(user) + 1).find((t) => t.role === 'assistant');
  assert.ok(answered, `no reply after the question: ${JSON.stringify(turns)}`);
  assert.match(answered.meta, /latency \d+ ms/, `the reply's latency: ${JSON.stringify(turns)}`);
  await screenshot('call-detail');
}));

test('untrusted text in the history is shown as text and runs nothing', () => withLog(async () => {
  const id = 'console-untrusted';
  const seed = `
import json, sqlite3, sys, time
db, cid, img, script = sys.argv[1:5]
now = int(time.time() * 1000)
c = sqlite3.connect(db, timeout=10)
c.execute("INSERT INTO calls (id, transport, direction, phone, status, outcome, created_at, started_at, ended_at) VALUES (?, 'stream', 'inbound', ?, 'ended', ?, ?, ?, ?)", (cid, img, script, now - 9000, now - 9000, now))
c.execute("INSERT INTO turns (call_id, role, text, at, timings, barged_in) VALUES (?, 'user', ?, ?, ?, 0)", (cid, img, now - 6000, None))
c.execute("INSERT INTO turns (call_id, role, text, at, timings, barged_in) VALUES (?, 'assistant', ?, ?, ?, 1)", (cid, script, now - 5000, json.dumps({"latency_ms": 640})))
c.execute("INSERT INTO events (call_id, event, at, details) VALUES (?, 'save_lead', ?, ?)", (cid, now - 4000, json.dumps({"name": img})))
c.execute("INSERT INTO leads (call_id, name, phone, request, at, delivery) VALUES (?, ?, '+15550100', ?, ?, 'none')", (cid, img, script, now - 4000))
c.commit()
`;
  execFileSync('python3', ['-c', seed, db, id, IMG, SCRIPT]);

  await open('history');
  await page.select('#history-filters select[name="direction"]', '');
  await page.click('#history-filters button[type="submit"]');
  await page.waitForSelector(`#history-rows tr[data-call-id="${id}"]`);
  await open(`call/${id}`, 'call');
  await page.waitForFunction((cid) => document.querySelector('#call-detail h2')?.textContent === cid, {}, id);
  const turns = await page.$$eval('#call-detail .transcript li .text', (els) => els.map((e) => e.textContent));
  assert.deepEqual(turns, [IMG, SCRIPT], 'the literal text is shown');
  const visible = await page.$eval('#call-detail', (e) => e.innerText);
  assert.ok(visible.includes(IMG) && visible.includes(SCRIPT), 'the markup is visible as text');
  assert.equal(await page.$$eval('#page-call img, #page-call script', (els) => els.length), 0, 'no element made from the text');
  await new Promise((r) => setTimeout(r, 500)); // an <img onerror> would have fired by now
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'nothing ran');
  await screenshot('call-untrusted');
}));

/** A call over /voximplant/stream the way a VoxEngine scenario makes it (PCM16, 16 kHz). */
async function streamCall(callId) {
  const ws = new WebSocket(`ws://127.0.0.1:${voxd.port}/voximplant/stream`, {
    headers: { Authorization: `Bearer ${SCENARIO_TOKEN}` },
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let seq = 0;
  let chunk = 0;
  let timestamp = 0;
  ws.send(JSON.stringify({ event: 'start', sequenceNumber: seq++, start: { mediaFormat: { encoding: 'PCM16', sampleRate: 16000 }, customParameters: { call_id: callId } } }));
  const speech = v.streamedUtterance('What time do you open on Saturday?', dir, 16000);
  const samples = new Int16Array(16000 + speech.length + 16000 * 30); // 1 s, the question, 30 s of silence
  samples.set(speech, 16000);
  const frame = (i) => {
    const part = samples.subarray(i * 320, (i + 1) * 320);
    const bytes = Buffer.alloc(part.length * 2);
    for (let k = 0; k < part.length; k++) bytes.writeInt16LE(part[k], k * 2);
    return bytes.toString('base64');
  };
  let i = 0;
  const timer = setInterval(() => {
    if (ws.readyState !== WebSocket.OPEN || (i + 1) * 320 > samples.length) return;
    ws.send(JSON.stringify({ event: 'media', sequenceNumber: seq++, media: { chunk: ++chunk, timestamp, payload: frame(i++) } }));
    timestamp += 320;
  }, 20);
  return {
    async hangUp() {
      clearInterval(timer);
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: 'stop', sequenceNumber: seq++ }));
      ws.close(1000);
      await new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r() : ws.once('close', r)));
    },
  };
}

test('Now shows a live call from /voximplant/stream while it lasts, with its transcript', { timeout: 120_000 }, () => withLog(async () => {
  await open('now');
  const id = `console-live-${Date.now()}`;
  const card = `#live-calls [data-call-id="${id}"]`;
  const call = await streamCall(id);
  try {
    await page.waitForSelector(card, { timeout: 15_000 });
    // The transcript grows as the call goes on: the caller's question appears.
    await page.waitForFunction((sel) => [...document.querySelectorAll(`${sel} li[data-role="user"] .text`)]
      .some((e) => /open|saturday/i.test(e.textContent)), { timeout: 60_000 }, card);
    await screenshot('now-live-call');
  } finally {
    await call.hangUp();
  }
  await page.waitForFunction((sel) => !document.querySelector(sel), { timeout: 15_000 }, card);
  assert.equal(await page.$eval('#live-empty', (e) => e.hidden), false, '"No call is live" again');
}));

test('Latency: a chart of the turns with p50/p95', () => withLog(async () => {
  await open('latency');
  await page.waitForSelector('#latency-chart svg circle', { timeout: 15_000 });
  assert.match(await text('#latency-summary'), /Voice-to-voice\s*p50 \d+ ms · p95 \d+ ms · [1-9]\d* turns/);
  assert.ok(await page.$('#latency-chart svg line.pct.p50'), 'the p50 line is drawn');
  await screenshot('latency');
}));

test('Knowledge base: what a question retrieves, and "no match → hand-off"', () => withLog(async () => {
  await open('kb');
  const search = async (q) => {
    await page.$eval('#kb-form input[name="q"]', (e) => { e.value = ''; });
    await page.type('#kb-form input[name="q"]', q);
    await page.click('#kb-form button[type="submit"]');
  };
  await search('When are you closed?');
  await page.waitForSelector('#kb-passages li');
  assert.match(await text('#kb-passages'), /Sunday we are closed/);
  assert.match(await text('#kb-passages'), /score \d+\.\d{3}/);
  assert.doesNotMatch(await text('#kb-verdict'), /hand-off/);
  await screenshot('knowledge-base');
  await search('Do you repair bicycles?');
  await page.waitForFunction(() => /no match → hand-off/.test(document.querySelector('#kb-verdict').textContent));
  await screenshot('knowledge-base-handoff');
}));

test('a phone-sized screen, then sign-out forgets the token', () => withLog(async () => {
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await open('now');
  await screenshot('now-phone');
  await page.setViewport({ width: 1200, height: 900 });
  await page.click('#sign-out');
  await page.waitForSelector('#page-signin:not([hidden])');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.reload();
  await page.waitForSelector('#page-signin:not([hidden])');
  assert.deepEqual(pageErrors, [], 'no uncaught error, nothing the CSP refused');
}));
