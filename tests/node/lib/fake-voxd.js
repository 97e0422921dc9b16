// A scripted voxd for the scenario tests that check the scenarios' side of a contract by itself
// (keys pressed, digits voxd asks to dial, answering machines, players over a long call): an
// HTTP server answering /voximplant/events and /voximplant/process_audio as the test says, and
// a WebSocket at /voximplant/stream that records what the scenario sends and sends what the test
// asks. No models, so these tests are quick and deterministic. Like a real voxd (started with
// server.public_url = https://HOST), it hands out audio URLs on its public address, `publicUrl`,
// which the test maps to `url` with the stand-in's `hosts` option ({[HOST]: fake.url}).
'use strict';

const http = require('node:http');
const WS = require('ws');
const audio = require('./audio');
const { HOST } = require('./session');

/** 0.4 s of a 440 Hz tone as a WAV file: a reply the stand-in can "play". */
function toneWav() {
  const rate = 8000;
  const samples = new Int16Array(rate * 0.4);
  for (let i = 0; i < samples.length; i++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate));
  return audio.buildWav(samples, rate);
}

class FakeVoxd {
  /**
   * `onEvent(body)` answers POST /voximplant/events (default {}); `onTurn(body, n)` answers
   * POST /voximplant/process_audio (n counts from 1; default a reply that continues).
   */
  constructor({ onEvent = () => ({}), onTurn = null } = {}) {
    this.publicUrl = `https://${HOST}`; // the address the scenario sees (audio URLs use it)
    this.url = null; // where it listens, once listen() has resolved
    this.events = []; // bodies of POST /voximplant/events
    this.turns = []; // bodies of POST /voximplant/process_audio
    this.received = []; // text frames from the scenario's WebSocket, parsed
    this.sockets = [];
    this.onEvent = onEvent;
    this.onTurn = onTurn || ((body, n) => ({
      call_id: body.call_id, user_text: `turn ${n}`, reply_text: `reply ${n}`,
      reply_audio_url: `${this.publicUrl}/audio/reply-${n}.wav`, action: 'continue',
    }));
    this.wav = toneWav();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.wss = new WS.WebSocketServer({ server: this.server, path: '/voximplant/stream' });
    this.wss.on('connection', (ws) => {
      this.sockets.push(ws);
      ws.on('message', (data) => {
        try {
          this.received.push(JSON.parse(data.toString()));
        } catch {
          this.received.push({ unparsed: data.toString() });
        }
      });
    });
  }

  async listen() {
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this.url;
  }

  handle(req, res) {
    if (req.method === 'GET' && req.url.startsWith('/audio/')) {
      res.writeHead(200, { 'Content-Type': 'audio/wav', 'Content-Length': this.wav.length }).end(this.wav);
      return;
    }
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const json = body ? JSON.parse(body) : {};
      let answer;
      if (req.url === '/voximplant/events') {
        this.events.push(json);
        answer = this.onEvent(json);
      } else if (req.url === '/voximplant/process_audio') {
        this.turns.push(json);
        answer = this.onTurn(json, this.turns.length);
      } else {
        res.writeHead(404).end();
        return;
      }
      const text = JSON.stringify(answer || {});
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(text);
    });
  }

  /** Sends `obj` as JSON on every open stream. */
  send(obj) {
    for (const ws of this.sockets) if (ws.readyState === WS.OPEN) ws.send(JSON.stringify(obj));
  }

  async close() {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

module.exports = { FakeVoxd };
