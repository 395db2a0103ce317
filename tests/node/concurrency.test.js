'use strict';
// All I/O runs on the Rust runtime: 64 slow calls overlap, and the event loop stays free.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const llm = require('claw-llm-client');
const { KEY, USER, startGateway, withEnv } = require('./helpers');

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

const inEnv = (fn) => withEnv({ LLM_BASE_URL: gw.url, LLM_API_KEY: KEY }, fn);

test('64 concurrent calls to slow:ms=500 finish well under 2 s', () =>
  inEnv(async () => {
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const t0 = Date.now();
    try {
      const replies = await Promise.all(
        Array.from({ length: 64 }, (_, i) =>
          llm.callSpecificModel('mock-slow:ms=500', [{ role: 'user', content: `n${i}` }]),
        ),
      );
      const ms = Date.now() - t0;
      assert.ok(ms < 1500, `took ${ms} ms`);
      assert.deepEqual(
        replies.map((r) => r.choices[0].message.content),
        Array.from({ length: 64 }, (_, i) => `echo: n${i}`),
      );
      assert.ok(ticks >= 20, `the event loop ran only ${ticks} timer ticks in ${ms} ms`);
    } finally {
      clearInterval(ticker);
    }
  }));

test('64 concurrent streams and a client mix', () =>
  inEnv(async () => {
    const client = llm.createClient();
    const t0 = Date.now();
    const contents = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const target = i % 2 ? client : llm;
        const stream = await target.callSpecificModel('mock-slow:ms=300', USER, { stream: true });
        let text = '';
        for await (const c of stream) text += (c.choices[0] && c.choices[0].delta.content) || '';
        return text;
      }),
    );
    assert.ok(contents.every((c) => c === 'Hello, world!'));
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  }));

test('1000 quick calls share the pool (few connections)', () =>
  inEnv(async () => {
    const before = (await gw.stats()).total_connections;
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 100 }, () => llm.callSpecificModel('m', USER)));
    }
    const opened = (await gw.stats()).total_connections - before;
    assert.ok(opened <= 150, `${opened} connections opened for 1000 calls`);
  }));

test('a pending call keeps the process alive; once every call settled it exits by itself', async () => {
  // Calls settle through one shared native completion queue (bindings-node/src/completions.rs)
  // that holds the event loop only while a call is pending: the child must neither exit before
  // its answers nor hang after them.
  const { execFile } = require('node:child_process');
  const path = require('node:path');
  const child = `
    const llm = require(${JSON.stringify(path.resolve(__dirname, '..', '..'))});
    const user = [{ role: 'user', content: 'late' }];
    llm.callSpecificModel('mock-slow:ms=300', user).then((r) => console.log('ok', r.choices[0].message.content));
    llm.callSpecificModel('mock-err-oneapi:status=400', user).catch((e) => console.log('failed', e.code, e.status));`;
  const env = { ...process.env, LLM_BASE_URL: gw.url, LLM_API_KEY: KEY, LLM_MAX_RETRIES: '0', LLM_LOG: 'off' };
  const t0 = Date.now();
  const { code, stdout } = await new Promise((resolve) => {
    execFile(process.execPath, ['-e', child], { env, timeout: 10_000 }, (error, out) =>
      resolve({ code: error ? error.code ?? error.signal : 0, stdout: out }),
    );
  });
  assert.equal(code, 0);
  assert.deepEqual(stdout.trim().split('\n').sort(), ['failed LLM_HTTP_ERROR 400', 'ok echo: late']);
  assert.ok(Date.now() - t0 < 5000, `the child took ${Date.now() - t0} ms to exit`);
});
