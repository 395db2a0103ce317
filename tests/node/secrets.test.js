'use strict';
// The API key never shows through Node (core/tests/secrets.rs): a child process with
// LLM_LOG=debug and a distinctive key runs every chat, stream and embeddings scenario family
// of the mock gateway (ok, error shapes, flaky, timeouts, resets, redirects, size caps, stream
// error frames) through the free functions and a client, and prints everything a caller can
// print: err.message, err.stack, String(err.cause), util.inspect(err), JSON.stringify(err),
// util.inspect(stream), util.inspect(client). Its whole stdout and stderr (where console.error
// writes the log lines) must not contain the key, nor a piece of it.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { ROOT, closedPort, startGateway } = require('./helpers');

const SECRET = 'sk-claw-S3CRET-7f3a9c1e5b2d';
/** Pieces of the key that must not show either (a truncated or split key is still a leak). */
const FRAGMENTS = ['S3CRET', '7f3a9c1e5b2d', 'claw-S3CR'];

let gw;
let other;
before(async () => {
  // Gateways that expect this key, so `auth` passes only if the key really was sent.
  gw = await startGateway({ expectKey: SECRET });
  other = await startGateway({ expectKey: SECRET });
});
after(async () => {
  if (gw) await gw.stop();
  if (other) await other.stop();
});

/** Runs in the child: every scenario, everything printable about its outcome to stdout. */
const CHILD = `
const util = require('node:util');
const llm = require(${JSON.stringify(path.join(ROOT, 'bindings-node', 'index.js'))});
const { GW, OTHER_PORT, DEAD_PORT } = process.env;
const SECRET = process.env.LLM_API_KEY;
const USER = [{ role: 'user', content: 'hi' }];
const o = (ms, retries) => ({ timeoutMs: ms, idleTimeoutMs: ms, maxRetries: retries });

function showErr(label, e) {
  let json;
  try { json = JSON.stringify(e); } catch (x) { json = String(x); }
  return [label + ': ' + e.code, e.message, e.stack, String(e.cause), util.inspect(e, { depth: 10, showHidden: true }), json,
    JSON.stringify(e.body)].join(' | ') + '\\n';
}
async function show(label, fn) {
  try { await fn(); return label + ': ok\\n'; } catch (e) { return showErr(label, e); }
}
const chat = (t, m, retries) => show(m, () => t.callSpecificModel(m, USER, o(1500, retries)));
const embed = (t, m) => show('embed ' + m, () => t.embed(m, ['a b', 'c'], o(1500, 1)));
async function stream(t, m) {
  let out = '';
  let s;
  try {
    s = await t.callSpecificModel(m, USER, { stream: true, ...o(1500, 1) });
  } catch (e) {
    return showErr('stream ' + m, e);
  }
  try {
    let n = 0;
    for await (const c of s) if (++n > 100000) break;
    out += 'stream ' + m + ': ok ' + JSON.stringify(await s.finalCompletion()) + '\\n';
  } catch (e) {
    out += showErr('stream ' + m, e);
  }
  return out + 'stream ' + m + ': ' + util.inspect(s, { depth: 10, showHidden: true }) + '\\n';
}

const chatModels = [
  'mock-ok', 'mock-auth', 'mock-err-oneapi:status=401', 'mock-err-message', 'mock-err-string',
  'mock-err-detail', 'mock-err-fastapi422', 'mock-err-html', 'mock-err-text', 'mock-err-empty',
  'mock-err-quota', 'mock-ok-error', 'mock-ok-html', 'mock-ok-truncated', 'mock-ok-invalid-utf8',
  'mock-flaky:fails=1,status=429,retry_after_ms=10,key=secrets-a',
  'mock-flaky:fails=5,status=503,retry_after_ms=10,key=secrets-b',
  'mock-slow:ms=100', 'mock-slow:ms=5000', 'mock-hang', 'mock-trickle:bps=20', 'mock-stall-body',
  'mock-reset-head', 'mock-reset-body', 'mock-redirect:hops=2', 'mock-redirect:status=303,hops=1',
  'mock-redirect:hops=11', 'mock-ok-gzip-bomb:bytes=1048576,corrupt=1', 'mock-no-such-scenario',
  'mock-redirect:to=http://localhost:' + OTHER_PORT + '/v1/chat/completions,hops=1',
  'mock-redirect:to=' + GW + '/v1/chat/completions',
];
const streamModels = [
  'mock-stream', 'mock-stream-keepalive', 'mock-stream-crlf', 'mock-stream-cr', 'mock-stream-bytewise',
  'mock-stream-bom', 'mock-stream-utf8split', 'mock-stream-multiline', 'mock-stream-event-error',
  'mock-stream-error-frame', 'mock-stream-truncated', 'mock-stream-truncated:abrupt=1',
  'mock-stream-done-keepopen', 'mock-stream-tools', 'mock-stream-tools-noindex', 'mock-stream-reasoning',
  'mock-stream-large:bytes=65536', 'mock-stream-stall:after=1', 'mock-stream-reset:after=1',
  'mock-stream-malformed', 'mock-stream-invalid-utf8', 'mock-ok', 'mock-err-oneapi:status=401',
  'mock-flaky:fails=1,status=503,retry_after_ms=10,key=secrets-c', 'mock-slow:ms=5000',
];
const embedModels = [
  'text-embedding-v4', 'mock-embed', 'mock-auth', 'mock-err-oneapi:status=401',
  'mock-flaky:fails=1,status=503,retry_after_ms=10,key=secrets-d', 'mock-slow:ms=5000', 'mock-ok-truncated',
];

(async () => {
  // The free functions read LLM_BASE_URL / LLM_API_KEY / LLM_LOG=debug from the environment.
  const client = llm.createClient();
  const capped = llm.createClient({ maxResponseBytes: 64 * 1024 });
  const jobs = [];
  chatModels.forEach((m, i) => jobs.push(chat(i % 2 ? client : llm, m, 2)));
  streamModels.forEach((m, i) => jobs.push(stream(i % 2 ? client : llm, m)));
  embedModels.forEach((m, i) => jobs.push(embed(i % 2 ? client : llm, m)));
  jobs.push((async () =>
    (await chat(capped, 'mock-ok-huge:bytes=1048576,chunked=1', 0)) +
    (await chat(capped, 'mock-ok-gzip-bomb:bytes=1048576', 0)) +
    (await stream(capped, 'mock-stream-endless-line')) +
    (await stream(capped, 'mock-stream-big-event:bytes=131072')))());
  jobs.push((async () => {
    // A refused connection, and keys the client itself rejects before sending.
    const dead = llm.createClient({ baseUrl: 'http://127.0.0.1:' + DEAD_PORT, apiKey: SECRET });
    let out = await chat(dead, 'm', 1);
    const nonAscii = llm.createClient({ baseUrl: 'http://127.0.0.1:9', apiKey: SECRET + '\\u00e9' });
    out += await chat(nonAscii, 'm', 0);
    try {
      llm.createClient({ baseUrl: 'http://127.0.0.1:9', apiKey: SECRET + '\\u0007' });
      out += 'control character in key: accepted\\n';
    } catch (e) {
      out += showErr('control character in key', e);
    }
    return out;
  })());
  const transcript = (await Promise.all(jobs)).join('');
  process.stdout.write(transcript);
  process.stdout.write('clients: ' + util.inspect([client, capped, llm], { depth: 10, showHidden: true }) + ' ' +
    JSON.stringify(client) + '\\n');
  process.stdout.write('CHILD DONE\\n');
})().catch((e) => {
  console.log('child failed: ' + (e && e.stack));
  process.exitCode = 1;
});
`;

test('the API key appears in no log line, error, inspect() of an error, stream or client', { timeout: 60_000 }, async (t) => {
  const deadPort = await closedPort();
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(LLM_|OPENAI_|EMBEDDING_)/.test(k)) delete env[k];
  Object.assign(env, {
    LLM_BASE_URL: gw.url,
    LLM_API_KEY: SECRET,
    LLM_LOG: 'debug',
    GW: gw.url,
    OTHER_PORT: other.url.split(':').pop(),
    DEAD_PORT: String(deadPort),
  });
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(process.execPath, ['-e', CHILD], { env, cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 50_000 }, (error, out, err) =>
      resolve({ code: error ? error.code : 0, stdout: out, stderr: err }),
    );
  });
  t.diagnostic(`child: ${stdout.length} bytes of stdout, ${stderr.split('\n').length} lines of stderr`);
  assert.equal(code, 0, `the child failed:\n${stdout}\n${stderr}`);
  assert.ok(stdout.endsWith('CHILD DONE\n'), stdout.slice(-2000));
  for (const c of [
    'LLM_CLIENT_CONFIG',
    'ETIMEDOUT',
    'LLM_HTTP_ERROR',
    'LLM_API_ERROR',
    'LLM_BAD_RESPONSE',
    'LLM_CONNECTION_ERROR',
    'LLM_STREAM_ERROR',
  ]) {
    assert.ok(stdout.includes(`: ${c}`), `no ${c} case ran:\n${stdout}`);
  }
  // The key really went out: the gateway expecting it let `auth` through (chat and embeddings).
  assert.ok(stdout.includes('\nmock-auth: ok\n'), `auth did not pass:\n${stdout}`);
  assert.ok(stdout.includes('\nembed mock-auth: ok\n'), `auth did not pass:\n${stdout}`);
  // Debug logging was on, through console.error (stderr).
  assert.ok(stderr.includes('[LLM_Client] POST ') && stderr.includes('[LLM_Client] retrying in '), stderr);
  assert.ok(stderr.includes('[LLM_Client] Error calling '), stderr);
  for (const [what, text] of [
    ['stdout (errors, inspect, streams, clients)', stdout],
    ['stderr (log lines)', stderr],
  ]) {
    for (const needle of [SECRET, ...FRAGMENTS]) {
      assert.ok(!text.includes(needle), `${what} contains ${JSON.stringify(needle)}:\n${text}`);
    }
  }
});
