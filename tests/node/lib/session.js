// What every scenario test does: one voxd per test file, started with the values the
// scenario files ship with, and one VoxEngine session at a time, run to its end, with the
// stand-in's timeline and voxd's log in the message of any failure.
'use strict';

const test = require('node:test');
const { StandIn } = require('./voxengine');
const { startVoxd } = require('./voxd');

// The values in scenarios/*.js as shipped: the stand-in routes HOST to the test voxd, which
// is given the same token and public URL.
const HOST = 'voxd.example.com';
const TOKEN = 'change-me';
// The scenarios ship CALLER_ID as the placeholder +10000000000 and refuse to dial from it;
// tests that dial set this one instead (settings: {CALLER_ID}), as an account owner would.
const CALLER_ID = '+74951230000';
const PLACEHOLDER_CALLER_ID = '+10000000000';

/**
 * Starts voxd before the file's tests and stops it after; `ref.voxd` is the running daemon.
 * `env` is an object, or an async function giving one (for values known only once the file's
 * other servers listen: top-level before hooks run at the same time).
 */
function sharedVoxd(env = {}) {
  const ref = {};
  test.before(async () => {
    const extra = typeof env === 'function' ? await env() : env;
    ref.voxd = await startVoxd({ VOXD_SERVER_TOKEN: TOKEN, VOXD_SERVER_PUBLIC_URL: `https://${HOST}`, ...extra });
  });
  test.after(async () => {
    if (ref.voxd) await ref.voxd.stop();
  });
  return ref;
}

/**
 * Runs one session of `scenario`: `start(standin)` sets things going (ring a call, queue
 * utterances), `drive(standin)` plays the other side; then waits for VoxEngine.terminate()
 * and for every WebSocket to close. Returns the stand-in for the test's assertions.
 */
async function runSession({ scenario, options, voxd, start = () => {}, drive = async () => {}, ms = 180_000 }) {
  const standin = new StandIn(options);
  try {
    await standin.load(scenario);
    start(standin);
    await drive(standin);
    await standin.waitTerminated(ms);
    await standin.waitFor(() => standin.sockets.every((w) => w.state === 'closed'), 5_000, 'the WebSocket to close');
    // A report the scenario sent just before it ended (e.g. Transferred) may still be on its
    // way: the tests read every request's answer.
    await standin.waitFor(() => standin.requests.every((r) => r.code !== undefined), 10_000, "the scenario's HTTP requests to finish");
    return standin;
  } catch (err) {
    err.message += `\n${standin.report()}\nvoxd log:\n${voxd ? voxd.log().slice(-4000) : '(no voxd)'}`;
    throw err;
  } finally {
    await standin.close();
  }
}

module.exports = { HOST, TOKEN, CALLER_ID, PLACEHOLDER_CALLER_ID, sharedVoxd, runSession };
