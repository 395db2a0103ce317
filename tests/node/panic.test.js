'use strict';
// No Rust panic crosses into Node: a debug build with the `test-panic` feature exposes
// __forcePanicForTests, which panics inside the binding (synchronously, and inside a future on
// the runtime). Both must surface as an LLM_INTERNAL_ERROR, and the process must keep working.
// Builds the variant with cargo (debug profile, shared target dir) on first use.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, KEY, startGateway } = require('./helpers');

function hasCargo() {
  try {
    execFileSync('cargo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Builds claw-llm-node with `test-panic` and copies the library to a temporary .node file. */
function buildPanicVariant() {
  return new Promise((resolve, reject) => {
    execFile(
      'cargo',
      ['build', '-p', 'claw-llm-node', '--features', 'test-panic', '--message-format=json'],
      { cwd: ROOT, maxBuffer: 256 * 1024 * 1024, timeout: 15 * 60_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`cargo build failed:\n${stderr}`));
        let lib;
        for (const line of stdout.split('\n')) {
          if (!line.startsWith('{')) continue;
          const msg = JSON.parse(line);
          if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'claw_llm_node') {
            lib = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f));
          }
        }
        if (!lib) return reject(new Error('cargo did not report the claw_llm_node library'));
        const dest = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'claw-llm-panic-')), 'claw-llm.node');
        fs.copyFileSync(lib, dest);
        resolve(dest);
      },
    );
  });
}

const CHILD = `
const MARK = '\\u0001claw-llm-error:';
const native = require(process.env.CLAW_LLM_NATIVE);
const decode = (e) => JSON.parse(e.message.slice(MARK.length));
(async () => {
  const out = {};
  try { native.__forcePanicForTests(false); out.sync = 'no error'; } catch (e) { out.sync = decode(e); }
  try { await native.__forcePanicForTests(true); out.async = 'no error'; } catch (e) { out.async = decode(e); }
  const llm = require(${JSON.stringify(path.join(ROOT, 'bindings-node', 'index.js'))});
  const r = await llm.callSpecificModel('qwen-plus', [{ role: 'user', content: 'still alive' }]);
  out.after = r.choices[0].message.content;
  console.log(JSON.stringify(out));
})();
`;

let gw;
let variant;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
  if (variant) fs.rmSync(path.dirname(variant), { recursive: true, force: true });
});

test('a panic inside the binding becomes LLM_INTERNAL_ERROR, never a crash', { timeout: 16 * 60_000 }, async (t) => {
  if (!hasCargo()) {
    t.skip('cargo is not on PATH: cannot build the test-panic variant');
    return;
  }
  variant = await buildPanicVariant();
  const env = { ...process.env, CLAW_LLM_NATIVE: variant, LLM_BASE_URL: gw.url, LLM_API_KEY: KEY, RUST_BACKTRACE: '0' };
  const { stdout, stderr, code } = await new Promise((resolve) => {
    execFile(process.execPath, ['-e', CHILD], { env, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr }),
    );
  });
  assert.equal(code, 0, `the process died:\n${stderr}`);
  const out = JSON.parse(stdout);
  for (const where of ['sync', 'async']) {
    assert.equal(out[where].code, 'LLM_INTERNAL_ERROR', `${where}: ${JSON.stringify(out[where])}`);
    assert.match(out[where].message, /forced panic for tests/);
  }
  assert.equal(out.after, 'echo: still alive');
});
