// voxd's web console: plain JavaScript, no framework, no build step.
//
// Rules this file keeps:
// - Everything that comes from a caller, the model or the server is put on the page as text
//   (textContent / text nodes through el()), never as HTML.
// - The admin token lives in sessionStorage (this tab only) and in Authorization headers,
//   never in a URL.
// - The Content-Security-Policy forbids inline script and style: no handlers in the markup,
//   no style attributes; the look is all in style.css.
'use strict';

const TOKEN_KEY = 'voxd.token';
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// Small helpers: building elements, formatting.

/**
 * Creates an element. `props`: {class, text, data: {...}, on: {event: fn}, ...attributes};
 * children: nodes or strings (strings become text nodes), null/undefined/false are skipped.
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The same for SVG elements. */
function svg(tag, props = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setProps(node, props);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'data') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

/** Shows `message` in the error line `node` (or hides it when empty). */
function showError(node, message) {
  node.textContent = message || '';
  node.hidden = !message;
}

function fmtDateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '–';
  return `${Math.round(Number(ms))} ms`;
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function between(startIso, endIso) {
  if (!startIso || !endIso) return null;
  return new Date(endIso).getTime() - new Date(startIso).getTime();
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });

// ---------------------------------------------------------------------------------------
// The API: every call carries the token in a header. A 401 signs the console out.

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

/** Reads voxd's error body ({"error":{"code","message"}}) into an ApiError. */
async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  const e = body && body.error;
  return new ApiError(res.status, (e && e.code) || 'http_' + res.status, (e && e.message) || res.statusText || `HTTP ${res.status}`);
}

/** fetch() with the token; throws ApiError unless the answer is 2xx. */
async function api(path, options = {}, bearer = token()) {
  const headers = new Headers(options.headers || {});
  headers.set('Authorization', `Bearer ${bearer}`);
  const res = await fetch(path, { cache: 'no-store', ...options, headers });
  if (res.ok) return res;
  const err = await errorOf(res);
  if (res.status === 401 && bearer === token() && token()) {
    signOut(`Signed out: voxd refused the token (${err.message}).`);
  }
  throw err;
}

async function getJson(path) {
  return (await api(path)).json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// ---------------------------------------------------------------------------------------
// Signing in and out, and the pages (#now, #history, #call/<id>, #latency, #kb, #test).

const PAGES = ['signin', 'now', 'history', 'call', 'latency', 'kb', 'test'];
let liveAbort = null; // aborts the live event stream on sign-out
let healthTimer = null;

async function signIn(event) {
  event.preventDefault();
  const input = $('signin-token');
  const candidate = input.value.trim();
  const error = $('signin-error');
  showError(error, '');
  $('signin-submit').disabled = true;
  try {
    // An admin endpoint tells whether the token is good.
    await api('/console/api/live', {}, candidate);
    sessionStorage.setItem(TOKEN_KEY, candidate);
    input.value = '';
    signedIn();
    if (!location.hash || location.hash === '#signin') location.hash = '#now';
    else route();
  } catch (e) {
    let why;
    if (!(e instanceof ApiError)) why = `voxd cannot be reached (${e.message})`;
    else if (e.status === 401) why = 'wrong token';
    else if (e.status === 403) why = 'this is not the admin token (the scenario token cannot open the console)';
    else why = `voxd answered ${e.status}: ${e.message}`;
    showError(error, `Sign-in refused: ${why}.`);
  } finally {
    $('signin-submit').disabled = false;
  }
}

function signedIn() {
  $('tabs').hidden = false;
  $('sign-out').hidden = false;
  startLive();
  healthTimer = setInterval(() => { if (currentPage === 'now') refreshHealth(); }, 30_000);
}

/** Forgets the token and everything shown; `message` is shown on the sign-in form. */
function signOut(message = '') {
  sessionStorage.clear();
  if (liveAbort) liveAbort.abort();
  liveAbort = null;
  setStreamState('off', '');
  clearInterval(healthTimer);
  if (testCall) endTestCall('signed out', { hard: true });
  live.clear();
  renderLive();
  for (const id of ['status', 'history-rows', 'call-detail', 'latency-summary', 'latency-chart', 'kb-passages', 'test-transcript']) {
    $(id).replaceChildren();
  }
  $('tabs').hidden = true;
  $('sign-out').hidden = true;
  showError($('signin-error'), message);
  history.replaceState(null, '', '#signin');
  route();
}

let currentPage = null;

function route() {
  const [name, ...rest] = location.hash.replace(/^#/, '').split('/');
  let page = PAGES.includes(name) ? name : 'now';
  if (!token()) page = 'signin';
  else if (page === 'signin') page = 'now';
  currentPage = page;
  for (const p of PAGES) $(`page-${p}`).hidden = p !== page;
  for (const a of $('tabs').querySelectorAll('a')) {
    const here = a.dataset.page === page || (page === 'call' && a.dataset.page === 'history');
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.body.dataset.page = page;
  if (page === 'signin') $('signin-token').focus();
  if (page === 'now') refreshHealth();
  if (page === 'history') loadHistory();
  if (page === 'call') {
    let id = '';
    try {
      id = decodeURIComponent(rest.join('/'));
    } catch {
      // A malformed link: the history shows "unknown call" for an empty id.
    }
    loadCall(id);
  }
  if (page === 'latency') loadLatency();
}

// ---------------------------------------------------------------------------------------
// Now: the daemon's status and the live calls, kept current by an event stream.

async function refreshHealth() {
  let h;
  try {
    // /health answers 503 while voxd drains or is full; the body says which.
    const res = await fetch('/health', { cache: 'no-store' });
    h = await res.json();
  } catch (e) {
    $('status').replaceChildren(el('dt', {}, 'Status'), el('dd', { class: 'bad' }, `voxd cannot be reached (${e.message})`));
    return;
  }
  const models = h.models || {};
  const langs = h.languages || {};
  const withLang = (model, lang) => (lang ? `${model || '–'} (${lang})` : model || '–');
  const engines = Object.entries(h.engines || {}).map(([name, e]) =>
    `${name}: ${e.running ?? 0}/${e.places ?? '?'} busy${e.queued ? `, ${e.queued} waiting` : ''}`);
  const facts = [
    ['Status', h.status, h.status === 'ok' ? 'ok' : 'warn'],
    ['Version', h.version],
    ['Up for', fmtDuration((h.uptime_secs || 0) * 1000)],
    ['Live calls', `${h.active_calls} of ${h.capacity} (room for ${h.room})`],
    ['Speech recognition', withLang(models.stt, langs.stt)],
    ['Language model', models.llm || '–'],
    ['Voice', withLang(models.tts, langs.tts)],
    ...Object.entries(models.voices || {}).map(([code, voice]) =>
      [`Voice for ${code}`, withLang(voice, (langs.voices || {})[code])]),
    ['Engines', engines.join(' · ') || '–'],
  ];
  $('status').replaceChildren(...facts.flatMap(([k, v, cls]) => [el('dt', {}, k), el('dd', { class: cls, data: { fact: k } }, v ?? '–')]));
}

/** The live calls by id: {call_id, transport, direction, started_at, language, turns, barge_ins, tools}. */
const live = new Map();
// The newest turns and tool calls kept per live call (voxd keeps as many).
const LIVE_TURNS = 200;
const LIVE_TOOLS = 50;

/** Keeps the newest `most` entries of `list` after adding `item`. */
function pushBounded(list, item, most) {
  list.push(item);
  if (list.length > most) list.splice(0, list.length - most);
}

function onLiveEvent(name, data) {
  switch (name) {
    case 'snapshot':
      live.clear();
      for (const c of data.calls || []) live.set(c.call_id, { turns: [], barge_ins: 0, tools: [], ...c });
      break;
    case 'call_started':
      live.set(data.call_id, { turns: [], barge_ins: 0, tools: [], ...live.get(data.call_id), ...data });
      if (currentPage === 'now') refreshHealth();
      break;
    // Facts about a call this console does not show as live (it ended), and facts its
    // snapshot already holds (numbered up to the call's `seq`), are left out.
    case 'turn':
    case 'tool':
    case 'barge_in':
    case 'language': {
      const call = live.get(data.call_id);
      if (!call || (typeof data.seq === 'number' && data.seq <= (call.seq || 0))) return;
      call.seq = data.seq;
      if (name === 'turn') pushBounded(call.turns, data, LIVE_TURNS);
      else if (name === 'tool') pushBounded(call.tools, data, LIVE_TOOLS);
      else if (name === 'language') call.language = data.language;
      else call.barge_ins += 1;
      break;
    }
    case 'call_ended':
      live.delete(data.call_id);
      if (currentPage === 'now') refreshHealth();
      break;
    default:
      return; // an event this console does not know
  }
  renderLive();
}

function renderLive() {
  const cards = [...live.values()].map(renderLiveCall);
  $('live-calls').replaceChildren(...cards);
  $('live-count').textContent = String(cards.length);
  $('live-empty').hidden = cards.length > 0;
}

function renderLiveCall(c) {
  const tools = (c.tools || []).map((t) => `${t.name} at ${fmtTime(t.at)}`);
  return el('article', { class: 'call', data: { callId: c.call_id } },
    el('header', {},
      el('strong', { class: 'call-id' }, c.call_id),
      el('span', { class: 'tag' }, c.direction || '?'),
      el('span', { class: 'tag' }, c.transport || '?'),
      c.language ? el('span', { class: 'tag', data: { language: c.language } }, c.language) : null,
      el('span', { class: 'muted small' }, `since ${fmtTime(c.started_at)}`)),
    el('p', { class: 'small muted' },
      `barge-ins: ${c.barge_ins || 0}`,
      tools.length ? ` · tools: ${tools.join(', ')}` : ''),
    transcriptList(c.turns || [], (t) => t.latency_ms));
}

/** An <ol> of turns: who, what, when, the latency `latencyOf(turn)` gives, interruptions. */
function transcriptList(turns, latencyOf, extra = () => null) {
  return el('ol', { class: 'transcript' }, turns.map((t) => {
    const latency = latencyOf(t);
    const meta = [fmtTime(t.at)];
    if (latency !== null && latency !== undefined) meta.push(`latency ${fmtMs(latency)}`);
    if (t.barged_in) meta.push('interrupted');
    return el('li', { class: `turn ${t.role === 'user' ? 'user' : 'assistant'}`, data: { role: t.role } },
      el('span', { class: 'who' }, t.role === 'user' ? 'Caller' : 'voxd'),
      el('span', { class: 'text' }, t.text),
      el('span', { class: 'meta' }, meta.join(' · ')),
      extra(t));
  }));
}

/** Follows /console/api/live/stream for as long as the console is signed in. */
function startLive() {
  if (liveAbort) liveAbort.abort();
  liveAbort = new AbortController();
  followLive(liveAbort.signal);
}

function setStreamState(state, text) {
  $('stream-state').dataset.state = state;
  $('stream-state').textContent = text;
}

async function followLive(signal) {
  let delay = 1000;
  while (!signal.aborted) {
    setStreamState('connecting', 'connecting…');
    try {
      const res = await api('/console/api/live/stream', { signal, headers: { Accept: 'text/event-stream' } });
      setStreamState('live', '· updated live');
      await readEventStream(res.body, signal, (name, data) => {
        delay = 1000; // the stream works: reconnect quickly next time
        onLiveEvent(name, data);
      });
    } catch (e) {
      if (signal.aborted || (e instanceof ApiError && e.status === 401)) return;
    }
    if (signal.aborted) return;
    setStreamState('waiting', `· reconnecting in ${Math.round(delay / 1000)} s…`);
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 30_000);
  }
}

/** Reads a text/event-stream body, calling `onEvent(name, parsedData)` per event. */
async function readEventStream(body, signal, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue; // ": ping" keeps the line open
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') name = val;
        else if (field === 'data') data.push(val);
      }
      if (!data.length) continue;
      let parsed;
      try {
        parsed = JSON.parse(data.join('\n'));
      } catch {
        continue;
      }
      onEvent(name, parsed);
    }
  }
}

// ---------------------------------------------------------------------------------------
// History: the stored calls, filtered and paged; one call in detail.

const PAGE_SIZE = 20;
const historyState = { offset: 0 };
// Each load takes a number; an answer to an older load than the newest is dropped.
const loads = { history: 0, call: 0, latency: 0, kb: 0 };

/** Local midnight of a yyyy-mm-dd date input as Unix ms (plus `days`). */
function dayStart(value, days = 0) {
  if (!value) return '';
  const [y, m, d] = value.split('-').map(Number);
  return String(new Date(y, m - 1, d + days).getTime());
}

async function loadHistory() {
  const n = ++loads.history;
  const f = new FormData($('history-filters'));
  const params = {
    limit: PAGE_SIZE,
    offset: historyState.offset,
    since: dayStart(f.get('from')),
    until: f.get('to') ? String(Number(dayStart(f.get('to'), 1)) - 1) : '',
    direction: f.get('direction'),
    outcome: String(f.get('outcome') || '').trim(),
    phone: String(f.get('phone') || '').trim(),
  };
  showError($('history-error'), '');
  let body;
  try {
    body = await getJson(`/calls${query(params)}`);
  } catch (e) {
    if (n === loads.history) showError($('history-error'), `Cannot read the history: ${e.message}`);
    return;
  }
  if (n !== loads.history) return;
  const calls = body.calls || [];
  const total = typeof body.total === 'number' ? body.total : historyState.offset + calls.length;
  $('history-rows').replaceChildren(...calls.map((c) => {
    const href = `#call/${encodeURIComponent(c.call_id)}`;
    // data-label: the column's name, shown beside each value on a phone (style.css).
    return el('tr', { data: { callId: c.call_id } },
      el('td', { data: { label: 'Started' } }, fmtDateTime(c.started_at || c.created_at)),
      el('td', { data: { label: 'Call' } }, el('a', { href, class: 'call-link' }, c.call_id),
        c.language ? [' ', el('span', { class: 'tag', data: { language: c.language } }, c.language)] : null),
      el('td', { data: { label: 'Direction' } }, c.direction),
      el('td', { class: 'wide', data: { label: 'Transport' } }, c.transport),
      el('td', { data: { label: 'Phone' } }, c.phone || '–'),
      el('td', { data: { label: 'Status' } }, c.status),
      el('td', { data: { label: 'Outcome' } }, c.outcome || '–'),
      el('td', { class: 'wide', data: { label: 'Duration' } }, fmtDuration(between(c.started_at, c.ended_at))));
  }));
  $('history-empty').hidden = calls.length > 0;
  $('history-range').textContent = calls.length
    ? `${historyState.offset + 1}–${historyState.offset + calls.length} of ${total}`
    : `0 of ${total}`;
  $('history-prev').disabled = historyState.offset === 0;
  $('history-next').disabled = historyState.offset + calls.length >= total;
}

const TOOL_EVENTS = new Set(['hangup', 'transfer', 'save_lead']);

async function loadCall(id) {
  const n = ++loads.call;
  const box = $('call-detail');
  box.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  showError($('call-error'), '');
  let c;
  try {
    c = await getJson(`/calls/${encodeURIComponent(id)}`);
  } catch (e) {
    if (n !== loads.call) return;
    box.replaceChildren();
    showError($('call-error'), `Cannot show the call: ${e.message}`);
    return;
  }
  if (n !== loads.call) return;
  const facts = [
    ['Direction', c.direction], ['Transport', c.transport], ['Language', c.language || '–'],
    ['Phone', c.phone || '–'],
    ['Status', c.status], ['Outcome', c.outcome || '–'], ['Created', fmtDateTime(c.created_at)],
    ['Started', fmtDateTime(c.started_at)], ['Ended', fmtDateTime(c.ended_at)],
    ['Duration', fmtDuration(between(c.started_at, c.ended_at))],
  ];
  const events = c.events || [];
  const tools = events.filter((e) => TOOL_EVENTS.has(e.event));
  const leads = c.leads || [];
  box.replaceChildren(
    el('div', { class: 'card' },
      el('h2', { class: 'call-id' }, c.call_id),
      el('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
      c.context ? el('details', {}, el('summary', {}, 'Context'), el('pre', {}, JSON.stringify(c.context, null, 2))) : null),
    el('div', { class: 'card' },
      el('h2', {}, 'Transcript'),
      (c.turns || []).length
        ? transcriptList(c.turns, turnLatency, (t) => [timingDetails(t.timings), audioPlayer(t.audio_url)])
        : el('p', { class: 'muted' }, 'No turns.')),
    el('div', { class: 'card' },
      el('h2', {}, 'Tool calls'),
      tools.length ? table(['At', 'Tool', 'Details'], tools.map((e) => [fmtTime(e.at), e.event, details(e)]))
        : el('p', { class: 'muted' }, 'None.')),
    el('div', { class: 'card' },
      el('h2', {}, 'Leads'),
      leads.length ? table(['At', 'Name', 'Phone', 'Request', 'Delivery'],
        leads.map((l) => [fmtTime(l.at), l.name || '–', l.phone || '–', l.request || '–', l.delivery || '–']))
        : el('p', { class: 'muted' }, 'None.')),
    el('div', { class: 'card' },
      el('h2', {}, 'Events'),
      events.length ? table(['At', 'Event', 'Details'], events.map((e) => [fmtTime(e.at), e.event, details(e)]))
        : el('p', { class: 'muted' }, 'None.')));
}

/** A turn's latency: voice-to-voice on a real-time call, the whole turn on a recording. */
function turnLatency(t) {
  const tm = t.timings || {};
  if (typeof tm.latency_ms === 'number') return tm.latency_ms;
  if (typeof tm.total === 'number') return tm.total;
  return null;
}

function timingDetails(timings) {
  if (!timings) return null;
  const parts = Object.entries(timings)
    .filter(([k, v]) => k !== 'latency_ms' && k !== 'total' && typeof v === 'number')
    .map(([k, v]) => `${k.replace(/_/g, ' ')} ${fmtMs(v)}`);
  return parts.length ? el('span', { class: 'timings' }, parts.join(' · ')) : null;
}

/** An event's details (everything but its name and time) as one line of JSON text. */
function details(e) {
  const { event, at, ...rest } = e;
  return Object.keys(rest).length ? JSON.stringify(rest) : '';
}

function table(head, rows) {
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.map((r) => el('tr', {}, r.map((v, i) => el('td', { data: { label: head[i] } }, v)))))));
}

/** A button that fetches a reply's audio (with the token) and plays it from a blob: URL. */
function audioPlayer(url) {
  if (!url) return null;
  const holder = el('span', { class: 'audio' });
  const button = el('button', {
    type: 'button',
    class: 'small-button',
    on: {
      click: async () => {
        button.disabled = true;
        try {
          // Only voxd's own reply audio, by its path (connect-src is 'self'; the token goes
          // nowhere else).
          const u = new URL(url, location.href);
          if (!u.pathname.startsWith('/audio/')) throw new Error('not a reply audio path');
          const res = await api(u.pathname);
          const blob = await res.blob();
          const audio = el('audio', { controls: true, src: URL.createObjectURL(blob) });
          holder.replaceChildren(audio);
          audio.play().catch(() => {});
        } catch (e) {
          holder.replaceChildren(el('span', { class: 'muted small' },
            e.status === 404 ? 'audio no longer kept' : `audio unavailable (${e.message})`));
        }
      },
    },
  }, '▶ reply audio');
  holder.append(button);
  return holder;
}

// ---------------------------------------------------------------------------------------
// Latency: voice-to-voice and processing per turn, as an SVG chart with p50/p95.

async function loadLatency() {
  const n = ++loads.latency;
  const f = new FormData($('latency-form'));
  const since = new Date(Date.now() - Number(f.get('period')) * 1000).toISOString();
  showError($('latency-error'), '');
  let body;
  try {
    body = await getJson(`/console/api/latency${query({ since, limit: f.get('limit') })}`);
  } catch (e) {
    if (n === loads.latency) showError($('latency-error'), `Cannot read the latencies: ${e.message}`);
    return;
  }
  if (n !== loads.latency) return;
  const v = body.voice_to_voice || {};
  const p = body.processing || {};
  $('latency-summary').replaceChildren(
    el('dt', {}, 'Voice-to-voice'), el('dd', { data: { fact: 'voice_to_voice' } }, `p50 ${fmtMs(v.p50_ms)} · p95 ${fmtMs(v.p95_ms)} · ${v.count || 0} turns`),
    el('dt', {}, 'Processing'), el('dd', { data: { fact: 'processing' } }, `p50 ${fmtMs(p.p50_ms)} · p95 ${fmtMs(p.p95_ms)} · ${p.count || 0} turns`));
  $('latency-chart').replaceChildren(latencyChart(body.turns || [], v, p));
}

function latencyChart(turns, v2v, proc) {
  const rows = [...turns].sort((a, b) => new Date(a.at) - new Date(b.at));
  if (!rows.length) return el('p', { class: 'muted' }, 'No turns in this period.');
  const W = 720, H = 280, L = 56, R = 12, T = 12, B = 28;
  const values = rows.flatMap((r) => [r.voice_to_voice_ms, r.processing_ms]).filter((x) => typeof x === 'number');
  const top = niceCeil(Math.max(1, ...values, v2v.p95_ms || 0, proc.p95_ms || 0) * 1.05);
  const x = (i) => L + (rows.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (rows.length - 1));
  const y = (ms) => T + (H - T - B) * (1 - ms / top);
  const parts = [];
  for (let k = 0; k <= 4; k++) {
    const ms = (top * k) / 4;
    parts.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(ms), y2: y(ms) }),
      svg('text', { class: 'axis', x: L - 6, y: y(ms) + 4, 'text-anchor': 'end' }, `${Math.round(ms)} ms`));
  }
  parts.push(svg('text', { class: 'axis', x: L, y: H - 8 }, fmtDateTime(rows[0].at)),
    svg('text', { class: 'axis', x: W - R, y: H - 8, 'text-anchor': 'end' }, fmtDateTime(rows[rows.length - 1].at)));
  for (const [key, cls, stats, label] of [['voice_to_voice_ms', 'v2v', v2v, 'voice-to-voice'], ['processing_ms', 'proc', proc, 'processing']]) {
    for (const [q, dash] of [['p50_ms', 'p50'], ['p95_ms', 'p95']]) {
      if (typeof stats[q] !== 'number') continue;
      parts.push(svg('line', { class: `pct ${cls} ${dash}`, x1: L, x2: W - R, y1: y(stats[q]), y2: y(stats[q]) },
        svg('title', {}, `${label} ${dash}: ${fmtMs(stats[q])}`)),
      // Voice-to-voice labels on the right, processing ones on the left: they do not collide.
      svg('text', cls === 'v2v'
        ? { class: `pct-label ${cls}`, x: W - R - 4, y: y(stats[q]) - 3, 'text-anchor': 'end' }
        : { class: `pct-label ${cls}`, x: L + 4, y: y(stats[q]) - 3 }, `${dash} ${fmtMs(stats[q])}`));
    }
    const pts = rows.map((r, i) => [i, r[key]]).filter(([, ms]) => typeof ms === 'number');
    if (pts.length > 1) {
      parts.push(svg('polyline', { class: `series ${cls}`, points: pts.map(([i, ms]) => `${x(i)},${y(ms)}`).join(' ') }));
    }
    for (const [i, ms] of pts) {
      parts.push(svg('circle', { class: `dot ${cls}`, cx: x(i), cy: y(ms), r: 3.5 },
        svg('title', {}, `${label} ${fmtMs(ms)} · ${fmtDateTime(rows[i].at)} · ${rows[i].call_id}`)));
    }
  }
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Latency per turn' }, parts);
}

function niceCeil(v) {
  const step = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * step) return m * step;
  return 10 * step;
}

// ---------------------------------------------------------------------------------------
// Knowledge base: what a question retrieves.

async function searchKb(event) {
  event.preventDefault();
  const q = String(new FormData($('kb-form')).get('q') || '').trim();
  const verdict = $('kb-verdict');
  showError($('kb-error'), '');
  if (!q) return;
  const n = ++loads.kb;
  let body;
  try {
    body = await getJson(`/console/api/kb${query({ q })}`);
  } catch (e) {
    if (n === loads.kb) showError($('kb-error'), `Cannot search: ${e.message}`);
    return;
  }
  if (n !== loads.kb) return;
  const passages = body.passages || [];
  verdict.hidden = false;
  verdict.className = 'verdict';
  if (!body.enabled) {
    verdict.textContent = 'The knowledge base is off ([kb] enabled = false in the config).';
  } else if (body.handoff) {
    verdict.textContent = 'no match → hand-off';
    verdict.classList.add('handoff');
  } else {
    verdict.textContent = `${passages.length} passage(s) would be given to the model.`;
    verdict.classList.add('match');
  }
  $('kb-passages').replaceChildren(...passages.map((p) =>
    el('li', { class: 'passage' },
      el('div', { class: 'passage-head' },
        el('strong', {}, p.source || '(no source)'),
        el('span', { class: 'score' }, `score ${typeof p.score === 'number' ? p.score.toFixed(3) : '–'}`)),
      el('p', {}, p.text))));
}

// ---------------------------------------------------------------------------------------
// Test call: the browser speaks Voximplant's media-stream protocol to /voximplant/stream.
// The microphone goes through capture-worklet.js (16 kHz PCM16 frames of 20 ms); voxd's
// audio is scheduled back to back on the AudioContext's clock, and dropped on "clear".

let testCall = null;

function setTestState(state, text) {
  const node = $('test-state');
  node.dataset.state = state;
  node.textContent = text;
}

function base64FromBytes(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function bytesFromBase64(b64) {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

async function startTestCall() {
  if (testCall) return;
  $('test-start').disabled = true;
  $('test-transcript').replaceChildren();
  $('test-history').hidden = true;
  showError($('test-error'), '');
  const call = {
    ws: null, ctx: null, mic: null, node: null, callId: null, seq: 0, chunk: 0, sentSamples: 0,
    sentFrames: 0, rate: 16000, playhead: 0, sources: new Set(), recvFrames: 0, recvSamples: 0, ended: false,
  };
  testCall = call;
  updateCounters(call);
  setTestState('starting', 'Opening the microphone…');
  try {
    // The AudioContext is made inside the click, so that the browser lets it play.
    call.ctx = new AudioContext({ latencyHint: 'interactive' });
    call.mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    await call.ctx.audioWorklet.addModule('/console/capture-worklet.js');
    if (call.ended) return;
    setTestState('starting', 'Asking voxd for a test call…');
    const { call_id: callId, ticket } = await (await api('/console/api/test_call', { method: 'POST' })).json();
    if (call.ended) return;
    call.callId = callId;
    $('test-call-id').textContent = callId;
    const wsUrl = new URL(`/voximplant/stream?ticket=${encodeURIComponent(ticket)}`, location.href);
    wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    call.ws = new WebSocket(wsUrl);
    call.ws.onopen = () => onTestOpen(call);
    call.ws.onmessage = (m) => onTestMessage(call, m);
    call.ws.onclose = (e) => {
      if (!call.ended) endTestCall(`the connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`);
    };
    call.ws.onerror = () => {};
    $('test-hangup').disabled = false;
    setTestState('connecting', 'Connecting…');
  } catch (e) {
    showError($('test-error'), `The test call could not start: ${e.message}`);
    endTestCall('not started', { hard: true });
  }
}

function sendJson(call, msg) {
  if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(msg));
}

function onTestOpen(call) {
  sendJson(call, {
    event: 'start',
    sequenceNumber: call.seq++,
    start: { mediaFormat: { encoding: 'PCM16', sampleRate: 16000 }, customParameters: { call_id: call.callId } },
  });
  const source = call.ctx.createMediaStreamSource(call.mic);
  call.node = new AudioWorkletNode(call.ctx, 'capture-16k', { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
  call.node.port.onmessage = (m) => {
    if (call.ended) return;
    // m.data: an ArrayBuffer of 320 samples, PCM16 little-endian, 16 kHz.
    const payload = base64FromBytes(new Uint8Array(m.data));
    call.chunk += 1;
    sendJson(call, {
      event: 'media',
      sequenceNumber: call.seq++,
      media: { chunk: call.chunk, timestamp: call.sentSamples, payload },
    });
    call.sentSamples += m.data.byteLength / 2;
    call.sentFrames += 1;
    if (call.sentFrames % 10 === 0) updateCounters(call);
  };
  source.connect(call.node);
  call.node.connect(call.ctx.destination); // the worklet outputs silence; this keeps it running
  setTestState('connected', 'In call: speak now.');
}

function onTestMessage(call, message) {
  if (call.ended || typeof message.data !== 'string') return;
  let msg;
  try {
    msg = JSON.parse(message.data);
  } catch {
    return;
  }
  if (msg.event === 'start') {
    const fmt = (msg.start && msg.start.mediaFormat) || {};
    call.rate = Number(fmt.sampleRate) || 16000;
  } else if (msg.event === 'media' && msg.media && msg.media.payload) {
    play(call, bytesFromBase64(msg.media.payload));
  } else if (msg.type === 'transcript') {
    addTestTranscript(msg);
  } else if (msg.type === 'clear') {
    stopPlayback(call); // the caller interrupted: drop what is queued at once
  } else if (msg.type === 'hangup') {
    endTestCall('voxd hung up');
  } else if (msg.type === 'transfer') {
    addTestNote(`voxd transfers the call to ${msg.to || 'an operator'}`);
    endTestCall(`transferred to ${msg.to || 'an operator'}`);
  } else if (msg.type === 'busy') {
    endTestCall('voxd is busy: every line is taken');
  }
}

/** Queues PCM16 LE `bytes` right after what is already queued (gap-free). */
function play(call, bytes) {
  const n = bytes.length >> 1;
  if (!n) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  const samples = new Float32Array(n);
  for (let i = 0; i < n; i++) samples[i] = view.getInt16(i * 2, true) / 32768;
  const buffer = call.ctx.createBuffer(1, n, call.rate);
  buffer.copyToChannel(samples, 0);
  const src = call.ctx.createBufferSource();
  src.buffer = buffer;
  src.connect(call.ctx.destination);
  const at = Math.max(call.playhead, call.ctx.currentTime + 0.05);
  src.start(at);
  call.playhead = at + buffer.duration;
  call.sources.add(src);
  src.onended = () => call.sources.delete(src);
  call.recvFrames += 1;
  call.recvSamples += n;
  updateCounters(call);
}

function stopPlayback(call) {
  for (const src of call.sources) {
    try {
      src.stop();
    } catch {
      // not started yet or already stopped
    }
  }
  call.sources.clear();
  call.playhead = 0;
}

function updateCounters(call) {
  const sent = $('test-sent');
  sent.dataset.frames = String(call.sentFrames);
  sent.textContent = `${call.sentFrames} frames (${(call.sentSamples / 16000).toFixed(1)} s)`;
  const recv = $('test-received');
  recv.dataset.frames = String(call.recvFrames);
  recv.dataset.samples = String(call.recvSamples);
  recv.textContent = `${call.recvFrames} frames (${(call.recvSamples / call.rate).toFixed(1)} s of audio)`;
}

function addTestTranscript(msg) {
  const meta = typeof msg.latency_ms === 'number' ? `latency ${fmtMs(msg.latency_ms)}` : '';
  $('test-transcript').append(el('li', { class: `turn ${msg.role === 'user' ? 'user' : 'assistant'}`, data: { role: msg.role } },
    el('span', { class: 'who' }, msg.role === 'user' ? 'You' : 'voxd'),
    el('span', { class: 'text' }, msg.text),
    el('span', { class: 'meta' }, meta)));
}

function addTestNote(text) {
  $('test-transcript').append(el('li', { class: 'turn note' }, el('span', { class: 'text' }, text)));
}

/** Ends the test call: stop to voxd, the socket closed, the microphone released. */
function endTestCall(reason, { hard = false } = {}) {
  const call = testCall;
  if (!call || call.ended) return;
  call.ended = true;
  testCall = null;
  sendJson(call, { event: 'stop', sequenceNumber: call.seq++ });
  if (call.ws && call.ws.readyState <= WebSocket.OPEN) call.ws.close(1000, 'hang-up');
  if (call.node) call.node.disconnect();
  if (call.mic) for (const track of call.mic.getTracks()) track.stop();
  updateCounters(call);
  // Let voxd's last words (a goodbye) finish unless the caller hung up.
  const remaining = hard || reason === 'you hung up' ? 0 : Math.max(0, call.playhead - (call.ctx ? call.ctx.currentTime : 0));
  setTimeout(() => {
    stopPlayback(call);
    if (call.ctx) call.ctx.close().catch(() => {});
  }, remaining * 1000);
  $('test-start').disabled = false;
  $('test-hangup').disabled = true;
  setTestState('ended', `Call ended: ${reason}.`);
  if (call.callId) {
    $('test-history').replaceChildren('See it in History: ',
      el('a', { href: `#call/${encodeURIComponent(call.callId)}`, class: 'call-link' }, call.callId));
    $('test-history').hidden = false;
  }
}

// ---------------------------------------------------------------------------------------
// Wiring.

function init() {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('history-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    historyState.offset = 0;
    loadHistory();
  });
  $('history-prev').addEventListener('click', () => {
    historyState.offset = Math.max(0, historyState.offset - PAGE_SIZE);
    loadHistory();
  });
  $('history-next').addEventListener('click', () => {
    historyState.offset += PAGE_SIZE;
    loadHistory();
  });
  $('latency-form').addEventListener('submit', (e) => {
    e.preventDefault();
    loadLatency();
  });
  $('kb-form').addEventListener('submit', searchKb);
  $('test-start').addEventListener('click', startTestCall);
  $('test-hangup').addEventListener('click', () => endTestCall('you hung up'));
  window.addEventListener('hashchange', route);
  if (token()) signedIn();
  route();
}

init();
