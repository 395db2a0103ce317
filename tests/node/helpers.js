'use strict';
// Shared by every Node test: the mock gateway (tests/MOCK_GATEWAY.md), environment and
// console.error capture. Nothing here reaches beyond 127.0.0.1.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const GATEWAY_BIN = path.join(
  ROOT,
  'target',
  'debug',
  process.platform === 'win32' ? 'claw-mock-gateway.exe' : 'claw-mock-gateway',
);
/** The key the gateway expects; distinctive so a leak is easy to find. */
const KEY = 'sk-test-0123456789-SECRET';
const USER = [{ role: 'user', content: 'hi' }];

/**
 * Starts claw-mock-gateway on a free port (it exits when its stdin closes, so a dying test
 * process never leaves it behind). Resolves to { url, requests(), clear(), stats(), stop() }.
 */
function startGateway({ expectKey = KEY, args: extraArgs = [] } = {}) {
  if (!fs.existsSync(GATEWAY_BIN)) {
    throw new Error(`${GATEWAY_BIN} is missing: run \`cargo build -p claw-mock-gateway\` first`);
  }
  const args = ['--port', '0', '--host', '127.0.0.1'];
  if (expectKey) args.push('--expect-key', expectKey);
  args.push(...extraArgs);
  const child = spawn(GATEWAY_BIN, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error('claw-mock-gateway did not print its address within 10 s'));
    }, 10_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`claw-mock-gateway exited early (code ${code})`));
    });
    child.stdout.on('data', function onData(d) {
      out += d;
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stdout.resume();
      child.removeAllListeners('exit');
      const url = out.slice(0, nl).trim();
      resolve({
        url,
        child,
        requests: () => getJson(`${url}/__mock/requests`),
        clear: () => fetch(`${url}/__mock/requests`, { method: 'DELETE' }).then((r) => r.text()),
        stats: () => getJson(`${url}/__mock/stats`),
        stop: () => stopChild(child),
      });
    });
  });
}

async function getJson(url) {
  const r = await fetch(url);
  return r.json();
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin.end();
  });
}

const ENV_NAMES = [
  'LLM_BASE_URL',
  'OPENAI_BASE_URL',
  'OPENAI_API_BASE',
  'LLM_API_KEY',
  'OPENAI_API_KEY',
  'LLM_CHAT_URL',
  'LLM_MODEL_ID',
  'EMBEDDING_MODEL_ID',
  'EMBEDDING_DIMS',
  'LLM_TIMEOUT_MS',
  'LLM_MAX_RETRIES',
  'LLM_LOG',
  'LLM_MAX_RESPONSE_BYTES',
  'EMBEDDING_BATCH_SIZE',
  'EMBEDDING_CONCURRENCY',
  'EMBEDDING_SEND_DIMS',
  'LLM_REASONING',
  'LLM_CA_BUNDLE',
  'LLM_CLIENT_CERT',
  'LLM_CLIENT_KEY',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'LLM_API_KEYS',
  'LLM_FALLBACK_BASE_URLS',
  'LLM_FALLBACK_API_KEYS',
  'LLM_FALLBACK_MODELS',
  'LLM_BREAKER_FAILURES',
  'LLM_BREAKER_COOLDOWN_MS',
  'LLM_PROVIDERS',
  'OPENCLAW_CONFIG_PATH',
];

/** Sets exactly `vars` among the client's variables (others unset) for the duration of `fn`. */
async function withEnv(vars, fn) {
  const saved = {};
  for (const name of ENV_NAMES) {
    saved[name] = process.env[name];
    delete process.env[name];
  }
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const name of ENV_NAMES) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}

/** Runs `fn` with console.error captured; resolves to { result, error, lines }. */
async function captureLogs(fn) {
  const lines = [];
  const original = console.error;
  console.error = (...args) => lines.push(args.join(' '));
  try {
    return { result: await fn(), lines };
  } catch (error) {
    return { error, lines };
  } finally {
    console.error = original;
  }
}

/** The error `promise` rejects with (fails if it resolves). */
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Requests the gateway received whose body.model is `model`. */
async function requestsFor(gw, model) {
  return (await gw.requests()).filter((r) => r.body && r.body.model === model);
}

/** A unique suffix so flaky scenarios keyed by spec do not share counters across tests. */
let counter = 0;
function unique(prefix = 'k') {
  counter += 1;
  return `${prefix}${process.pid}x${counter}x${Date.now()}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = {
  ROOT,
  KEY,
  USER,
  startGateway,
  withEnv,
  captureLogs,
  rejection,
  closedPort,
  requestsFor,
  unique,
  sleep,
};
