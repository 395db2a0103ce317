'use strict';
// The drop-in promise: skills that call callSpecificModel through
// `require('claw-llm-client')` (examples/node/skill.js) or through a shared/llm_client.js whose
// body is `module.exports = require('claw-llm-client')` behave as before, in a fresh process.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { ROOT, KEY, startGateway } = require('./helpers');

const SKILL = path.join(ROOT, 'examples', 'node', 'skill.js');
const SHIM_SKILL = path.join(__dirname, 'fixtures', 'skills', 'echo', 'index.js');

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

/** Runs a script in a fresh node with exactly `vars` as the client's environment. */
function runNode(args, vars, cwd = os.tmpdir()) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(LLM_|OPENAI_|EMBEDDING_)/.test(k)) env[k] = v;
  }
  Object.assign(env, vars);
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env, cwd, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

const runSkill = (vars, question = 'What is OpenClaw?') => runNode([SKILL, question], vars);
const gateway = (model, extra = {}) => ({
  LLM_BASE_URL: gw.url,
  LLM_API_KEY: KEY,
  LLM_MODEL_ID: model,
  LLM_MAX_RETRIES: '0',
  ...extra,
});

test('require("claw-llm-client") resolves from the repository (package self-reference)', async () => {
  const r = await runNode(['-e', "console.log(typeof require('claw-llm-client').callSpecificModel)"], {}, ROOT);
  assert.equal(r.stdout, 'function', r.stderr);
  const esm = await runNode(
    ['--input-type=module', '-e', "import { callSpecificModel } from 'claw-llm-client'; console.log(typeof callSpecificModel)"],
    {},
    ROOT,
  );
  assert.equal(esm.stdout, 'function', esm.stderr);
});

test('drop-in: skill.js succeeds against the gateway', async () => {
  const r = await runSkill(gateway('qwen-plus'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'echo: What is OpenClaw?');
  assert.equal(r.stderr, '');
});

test('drop-in: a skill using shared/llm_client.js = require("claw-llm-client") succeeds', async () => {
  const r = await runNode([SHIM_SKILL, 'ping'], gateway('qwen-plus'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'echo: ping');
});

test('drop-in: timeout settles with ETIMEDOUT and one log line', async () => {
  const t0 = Date.now();
  const r = await runSkill(gateway('mock-slow:ms=5000', { LLM_TIMEOUT_MS: '300' }));
  assert.ok(Date.now() - t0 < 4000);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, 'skill failed: ETIMEDOUT: timeout (300ms)');
  assert.equal(r.stderr, '[LLM_Client] Error calling mock-slow:ms=5000: timeout (300ms)');
});

test('drop-in: missing configuration is LLM_CLIENT_CONFIG, logged', async () => {
  const r = await runSkill({ LLM_API_KEY: KEY });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^skill failed: LLM_CLIENT_CONFIG: LLM_BASE_URL is not set/);
  assert.match(r.stderr, /^\[LLM_Client\] Error calling qwen-plus: LLM_BASE_URL is not set/);
});

test('drop-in: the shim reports cause = the summary', async () => {
  const r = await runNode([SHIM_SKILL], gateway('mock-err-oneapi:status=401'));
  assert.equal(r.stdout, 'skill failed: LLM_HTTP_ERROR: Invalid token (cause: Invalid token)');
});

const HTTP_SHAPES = [
  ['err-oneapi:status=401', 'LLM_HTTP_ERROR 401', 'Invalid token'],
  ['err-message', 'LLM_HTTP_ERROR 400', 'Model not found'],
  ['err-string', 'LLM_HTTP_ERROR 400', 'Bad gateway config'],
  ['err-detail', 'LLM_HTTP_ERROR 400', 'Not authenticated'],
  ['err-fastapi422', 'LLM_HTTP_ERROR 422', 'body.messages: field required; body.model: str type expected'],
  ['err-html:status=502', 'LLM_HTTP_ERROR 502', '502 Bad Gateway'],
  ['err-text:status=500', 'LLM_HTTP_ERROR 500', 'upstream exploded'],
  ['err-empty:status=503', 'LLM_HTTP_ERROR 503', 'HTTP 503'],
  ['err-quota', 'LLM_HTTP_ERROR 429', 'You exceeded your current quota'],
  ['ok-error', 'LLM_API_ERROR 200', '当前分组上游负载已饱和'],
];

for (const [spec, what, summary] of HTTP_SHAPES) {
  test(`drop-in: ${spec} → ${what} "${summary}"`, async () => {
    const model = `mock-${spec}`;
    const r = await runSkill(gateway(model));
    assert.equal(r.code, 1);
    assert.equal(r.stdout, `skill failed: ${what}: ${summary}`);
    assert.equal(r.stderr, `[LLM_Client] Error calling ${model}: ${summary}`);
  });
}

test('drop-in: a 200 HTML page is LLM_BAD_RESPONSE hinting at /v1', async () => {
  const r = await runSkill(gateway('mock-ok-html'));
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^skill failed: LLM_BAD_RESPONSE 200: .*\/v1/);
});

test('examples/node/stream.js prints the tokens, then the finish reason and usage', async () => {
  const r = await runNode([path.join(ROOT, 'examples', 'node', 'stream.js'), 'hi'], gateway('qwen-plus'));
  assert.equal(r.code, 0, r.stderr);
  const [text, summary] = r.stdout.split('\n');
  assert.equal(text, 'Hello, world!');
  assert.match(summary, /^\[stop\] request req_\d+, usage \{"prompt_tokens":\d+/);
});

test('examples/node/observability.js prints the tokens spent and the calls counter', async () => {
  const r = await runNode([path.join(ROOT, 'examples', 'node', 'observability.js')], gateway('mock-ok'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Name a colour\. -> echo: Name a colour\./);
  assert.match(r.stdout, /spent \d+ tokens in 3 calls \(p50 [\d.]+ ms\)/);
  assert.match(r.stdout, /claw_llm_calls_total\{model="mock-ok"\} 3/);
});
