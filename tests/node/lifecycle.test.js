'use strict';
// Worker threads coming and going: a terminated worker's requests stop at once, the one-worker
// runtime survives any number of environments, and each worker prints only its own log lines.
// Each case runs in a child Node process (so a crash or a hang is its own) and checks its exit
// status and stderr.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { KEY, startGateway, sleep } = require('./helpers');

const PACKAGE = require.resolve('claw-llm-client');

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

/** Runs `script` in a child `node`; resolves to { code, signal, stdout, stderr, lines }. */
function runNode(script, { timeoutMs = 30_000, onLine } = {}) {
  const env = {
    ...process.env,
    LLM_BASE_URL: gw.url,
    LLM_API_KEY: KEY,
    CLAW_PACKAGE: PACKAGE,
    NO_PROXY: '127.0.0.1',
  };
  delete env.LLM_LOG;
  const child = spawn(process.execPath, ['-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    partial += d;
    let nl;
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (onLine) onLine(line);
    }
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, lines: stdout.split('\n').filter(Boolean) });
    });
  });
}

test('terminating a worker cancels its calls and streams at once', async () => {
  const base = (await gw.stats()).open_connections;
  const samples = [];
  let terminatedAt = 0;
  let polling = null;
  const run = runNode(
    `
    const { Worker } = require('node:worker_threads');
    // The main thread loads claw-llm too: the process (and its runtime) outlives the worker.
    require(process.env.CLAW_PACKAGE);
    const w = new Worker(\`
      const { parentPort } = require('node:worker_threads');
      const llm = require(process.env.CLAW_PACKAGE);
      const M = [{ role: 'user', content: 'hi' }];
      for (let i = 0; i < 50; i++) llm.callSpecificModel('mock-hang', M).catch(() => {});
      (async () => {
        const streams = await Promise.all(Array.from({ length: 50 }, () =>
          llm.callSpecificModel('mock-stream-stall', M, { stream: true })));
        // Half are being read (a read is pending), half sit unread.
        for (const s of streams.slice(0, 25)) (async () => { for await (const _ of s); })().catch(() => {});
        parentPort.postMessage('ready');
      })();
    \`, { eval: true });
    w.on('message', async () => {
      console.log('ready');
      await new Promise((r) => setTimeout(r, 300));
      console.log('terminate');
      await w.terminate();
      console.log('terminated');
      setTimeout(() => {}, 2500); // stay alive while the test watches the gateway
    });
    w.on('error', (e) => { console.error(e); process.exitCode = 1; });
    `,
    {
      onLine: (line) => {
        if (line === 'ready' && !polling) {
          polling = (async () => {
            for (let i = 0; i < 150 && !(terminatedAt && Date.now() - terminatedAt > 1500); i++) {
              samples.push({ at: Date.now(), open: (await gw.stats()).open_connections });
              await sleep(20);
            }
          })();
        }
        if (line === 'terminate') terminatedAt = Date.now();
      },
    },
  );
  const out = await run;
  await polling;
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, '');
  assert.deepEqual(out.lines, ['ready', 'terminate', 'terminated']);
  const before = samples.filter((s) => s.at < terminatedAt);
  assert.ok(before.length > 0 && before.at(-1).open >= base + 100, JSON.stringify(before.at(-1)));
  const closed = samples.find((s) => s.at >= terminatedAt && s.open <= base);
  assert.ok(closed, `connections still open after terminate: ${JSON.stringify(samples.slice(-3))}`);
  assert.ok(closed.at - terminatedAt < 1000, `closed ${closed.at - terminatedAt} ms after terminate`);
});

test('four workers one after another each run on the one claw-llm runtime thread', async () => {
  const out = await runNode(`
    const { Worker } = require('node:worker_threads');
    (async () => {
      for (let i = 0; i < 4; i++) {
        const w = new Worker(\`
          const fs = require('node:fs');
          const { parentPort } = require('node:worker_threads');
          const llm = require(process.env.CLAW_PACKAGE);
          llm.callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }]).then(() => {
            const names = fs.readdirSync('/proc/self/task').map((t) => {
              try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim(); }
              catch { return ''; }
            });
            parentPort.postMessage(names);
          });
        \`, { eval: true });
        const names = await new Promise((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        });
        await w.terminate();
        const count = (n) => names.filter((x) => x === n).length;
        console.log(JSON.stringify({ claw: count('claw-llm'), napi: count('tokio-rt-worker') }));
      }
    })().catch((e) => { console.error(e); process.exitCode = 1; });
  `);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, '');
  assert.deepEqual(
    out.lines.map((l) => JSON.parse(l)),
    Array.from({ length: 4 }, () => ({ claw: 1, napi: 0 })),
  );
});

test('each worker prints only its own calls log lines', async () => {
  const out = await runNode(`
    const { Worker } = require('node:worker_threads');
    const worker = (tag) => new Promise((resolve, reject) => {
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads');
        const llm = require(process.env.CLAW_PACKAGE);
        const lines = [];
        console.error = (line) => lines.push(String(line));
        (async () => {
          for (let i = 0; i < 20; i++) {
            await Promise.all([1, 2].map((j) => llm
              .callSpecificModel('mock-err-text:tag=' + workerData + '-' + i + '-' + j,
                [{ role: 'user', content: 'hi' }], { maxRetries: 0 })
              .catch(() => {})));
            await new Promise((r) => setTimeout(r, 5));
          }
          parentPort.postMessage(lines);
        })();
      \`, { eval: true, workerData: tag });
      w.once('message', (lines) => { w.terminate(); resolve(lines); });
      w.once('error', reject);
    });
    Promise.all([worker('A'), worker('B')]).then(([a, b]) => {
      console.log(JSON.stringify({ a, b }));
    }, (e) => { console.error(e); process.exitCode = 1; });
  `);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, '');
  const { a, b } = JSON.parse(out.lines[0]);
  for (const [tag, lines] of [
    ['A', a],
    ['B', b],
  ]) {
    assert.equal(lines.length, 40, `worker ${tag}: ${JSON.stringify(lines.slice(0, 3))}`);
    for (const line of lines) {
      assert.match(line, new RegExp(`^\\[LLM_Client\\] Error calling mock-err-text:tag=${tag}-`));
    }
  }
});

test('free functions see process.env as it is at each call, on the main thread and in a worker', async () => {
  // The main thread's process.env is the process's environment (the native side reads it);
  // a worker's is its own copy (index.js sends it). Each must see its own changes at once.
  const r = await runNode(`
    const { Worker } = require('node:worker_threads');
    const llm = require(process.env.CLAW_PACKAGE);
    const M = [{ role: 'user', content: 'hi' }];
    const url = process.env.LLM_BASE_URL;
    const key = process.env.LLM_API_KEY;
    const outcome = (p) => p.then(() => 'ok', (e) => e.code + (e.status ? ' ' + e.status : ''));
    (async () => {
      console.log('main ' + await outcome(llm.callSpecificModel('mock-auth', M)));
      process.env.LLM_API_KEY = 'sk-wrong-key-0000000000';
      console.log('main-wrong-key ' + await outcome(llm.callSpecificModel('mock-auth', M, { maxRetries: 0 })));
      delete process.env.LLM_BASE_URL;
      console.log('main-unset ' + await outcome(llm.callSpecificModel('mock-ok', M)));
      // The worker's copy has the base URL and the wrong key; the worker fixes the key.
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads');
        const llm = require(process.env.CLAW_PACKAGE);
        process.env.LLM_API_KEY = workerData;
        llm.callSpecificModel('mock-auth', [{ role: 'user', content: 'hi' }])
          .then(() => parentPort.postMessage('worker ok'), (e) => parentPort.postMessage('worker ' + e.code));
      \`, { eval: true, workerData: key, env: { ...process.env, LLM_BASE_URL: url } });
      w.on('message', (m) => { console.log(m); w.terminate(); });
      w.on('exit', () => {
        console.log('main-after-worker ' + process.env.LLM_API_KEY + ' ' + (process.env.LLM_BASE_URL === undefined));
      });
    })().catch((e) => { console.error(e); process.exitCode = 1; });
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.lines, [
    'main ok',
    'main-wrong-key LLM_HTTP_ERROR 401',
    'main-unset LLM_CLIENT_CONFIG',
    'worker ok',
    'main-after-worker sk-wrong-key-0000000000 true',
  ]);
});

// ---------------------------------------------------------------- telemetry at exit

/** A child that makes one call whose span goes to `collector`, and exits on its own. */
const exitScript = (model) => `
  const llm = require(process.env.CLAW_PACKAGE);
  llm.callSpecificModel(${JSON.stringify(model)}, [{ role: 'user', content: 'hi' }], { maxRetries: 0 })
    .then(() => console.log('called'));
`;

async function spansOf(model) {
  const all = await (await fetch(`${gw.url}/__mock/spans`)).json();
  return all.filter((s) => s.attributes['gen_ai.request.model'] === model);
}

test('spans still queued are exported when the process exits', async () => {
  const model = `mock-ok:tag=exit${process.pid}`;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = gw.url;
  try {
    const r = await runNode(exitScript(model));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /called/);
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  }
  assert.equal((await spansOf(model)).length, 1, 'the span queued at exit was not exported');
});

test('a collector that never answers delays the exit by at most the bound', async () => {
  const model = `mock-ok:tag=deadexit${process.pid}`;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `${gw.url}/__gw/hang`;
  const started = Date.now();
  try {
    const r = await runNode(exitScript(model));
    assert.equal(r.code, 0, r.stderr);
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  }
  assert.ok(Date.now() - started < 8000, `exit took ${Date.now() - started} ms`);
});
