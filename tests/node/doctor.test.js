'use strict';
// `npx claw-llm-client doctor` (bindings-node/doctor.js) against claw-mock-gateway: the core's
// doctor through the Node entry point, asserting on the --json facts and the exit status.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const llm = require('claw-llm-client');
const { KEY, startGateway } = require('./helpers');

const DOCTOR = path.join(__dirname, '..', '..', 'bindings-node', 'doctor.js');

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

/** Runs `node bindings-node/doctor.js doctor --json …` with exactly `env`. */
function runDoctor(env, args = []) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [DOCTOR, 'doctor', '--json', '--timeout-ms', '5000', ...args],
      { env: { PATH: process.env.PATH, NO_PROXY: '127.0.0.1', ...env } },
      (err, stdout) => resolve({ code: err ? err.code : 0, stdout, report: JSON.parse(stdout) }),
    );
  });
}

const step = (r, name) => r.steps.find((s) => s.name === name);

test('doctor_entry_point_healthy_gateway', { timeout: 30_000 }, async () => {
  const { code, stdout, report } = await runDoctor({
    LLM_BASE_URL: gw.url,
    LLM_API_KEY: KEY,
    LLM_MODEL_ID: 'qwen-plus',
    EMBEDDING_MODEL_ID: 'text-embedding-v4',
  });
  assert.equal(code, 0, stdout);
  assert.equal(report.ok, true);
  for (const name of ['configuration', 'network', 'models', 'chat', 'stream', 'json_mode', 'tools', 'embeddings']) {
    assert.equal(step(report, name).status, 'ok', `${name}: ${JSON.stringify(step(report, name))}`);
  }
  assert.equal(step(report, 'configuration').facts.sources.api_key, 'LLM_API_KEY');
  assert.match(step(report, 'configuration').facts.api_key, /^sk-…/);
  assert.ok(!stdout.includes(KEY), 'the key must never be printed');
  assert.deepEqual(report.verdict, []);
});

test('doctor_entry_point_html_without_v1', { timeout: 30_000 }, async () => {
  const { code, report } = await runDoctor(
    { LLM_BASE_URL: `${gw.url}/__gw/strict/chat/completions`, LLM_API_KEY: KEY },
    ['--model', 'qwen-plus'],
  );
  assert.equal(code, 1);
  assert.deepEqual(report.verdict.map((f) => f.id), ['base_url_lacks_v1']);
});

test('doctor function resolves to the text report', { timeout: 30_000 }, async () => {
  const saved = { ...process.env };
  Object.assign(process.env, { LLM_BASE_URL: gw.url, LLM_API_KEY: KEY });
  try {
    const { output, exitCode } = await llm.doctor(['--model', 'qwen-plus', '--timeout-ms', '5000']);
    assert.equal(exitCode, 0);
    assert.match(output, /✔ chat/);
  } finally {
    process.env = saved;
  }
});

test('doctor_entry_point_tls_node_extra_ca_certs', { timeout: 30_000 }, async () => {
  // The doctor trusts what Node's calls trust: NODE_EXTRA_CA_CERTS names the source that
  // accepted the private CA's certificate.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claw-doctor-tls-'));
  const tls = await startGateway({ args: ['--tls-dir', dir] });
  try {
    const env = { LLM_BASE_URL: tls.url, LLM_API_KEY: KEY, LLM_MODEL_ID: 'qwen-plus' };
    let { code, report } = await runDoctor(env);
    assert.equal(code, 1);
    assert.equal(step(report, 'tls').status, 'fail');
    assert.equal(step(report, 'tls').facts.issuer, 'CN=claw mock gateway CA');
    assert.deepEqual(report.verdict.map((f) => f.id), ['tls_untrusted']);
    ({ code, report } = await runDoctor({ ...env, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') }));
    assert.equal(code, 0, JSON.stringify(step(report, 'tls')));
    assert.equal(step(report, 'tls').facts.trusted_by, 'NODE_EXTRA_CA_CERTS');
    assert.equal(step(report, 'tls').facts.protocol, 'TLSv1_3');
  } finally {
    await tls.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
