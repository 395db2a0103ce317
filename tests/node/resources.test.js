'use strict';
// Resource checks through Node (core/tests/resources.rs): 1,000 streams abandoned midway
// (`break` out of the for-await loop) and 10,000 calls in a row leave this process's open file
// descriptors (/proc/self/fd) and resident memory (VmRSS, after a full GC) flat, and the
// gateway sees every abandoned connection closed. 32 calls in flight keep it quick.
//
// The baseline is taken after a warm-up of the same work (allocator arenas, V8's heap and JIT
// code grow once, then stay flat: warm-up, not a leak).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');
const llm = require('claw-llm-client');
const { KEY, startGateway, sleep } = require('./helpers');

/** Absolute slack on top of the 10 % allowed growth of RSS (allocator, V8 and JIT noise). */
const RSS_SLACK_KIB = 4 * 1024;
/** Descriptors that may come and go on their own (runtime, pool churn). */
const FD_SLACK = 2;
const IN_FLIGHT = 32;

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

const openFds = () => fs.readdirSync('/proc/self/fd').length;

function rssKiB() {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : 0;
}

/** A full garbage collection (node --test gives no --expose-gc: turned on at run time). */
function gc() {
  if (typeof global.gc === 'function') return global.gc();
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc')();
}

/** RSS once garbage was collected and dropped connections had a moment to close. */
async function settledRss() {
  await sleep(100);
  gc();
  await sleep(20);
  gc();
  return rssKiB();
}

/** Waits (bounded) for the descriptor count to come down to `limit`; returns the last count. */
async function settledFds(limit) {
  let n = openFds();
  for (let i = 0; i < 100 && n > limit; i++) {
    await sleep(20);
    n = openFds();
  }
  return n;
}

/** Runs `job(i)` for i in [from, to) with IN_FLIGHT of them at a time. */
async function runAll(from, to, job) {
  let next = from;
  const worker = async () => {
    while (next < to) await job(next++);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

function assertFlat(t, what, rssThen, rssNow, fdsThen, fdsNow) {
  t.diagnostic(`${what}: RSS ${rssThen} → ${rssNow} KiB, fds ${fdsThen} → ${fdsNow}`);
  assert.ok(rssNow <= rssThen + rssThen / 10 + RSS_SLACK_KIB, `${what}: RSS grew ${rssThen} → ${rssNow} KiB`);
  assert.ok(fdsNow <= fdsThen + FD_SLACK, `${what}: fds grew ${fdsThen} → ${fdsNow}`);
}

test('1,000 streams abandoned midway (after 1,000 to warm up) leave fds and RSS flat, connections closed', { timeout: 120_000 }, async (t) => {
  const client = llm.createClient({ baseUrl: gw.url, apiKey: KEY, logLevel: 'off' });
  // Half the streams would go on (20 tokens), half stall after 3 tokens with the socket open:
  // only cancelling on `break` closes those.
  const abandon = async (i) => {
    const model = i % 2 ? 'mock-stream:tokens=20' : 'mock-stream-stall:after=3';
    const stream = await client.callSpecificModel(model, [{ role: 'user', content: `s${i}` }], {
      stream: true,
      timeoutMs: 10_000,
      maxRetries: 0,
    });
    let seen = 0;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (++seen === 2) break; // midway
    }
    assert.equal(seen, 2);
  };
  // The first fetch() loads undici (its WebAssembly HTTP parser alone adds ~20 MiB of RSS),
  // which is not ours to count: load it before the warm-up.
  await gw.stats();
  const t0 = Date.now();
  await runAll(0, 1000, abandon);
  const connsThen = (await gw.stats()).open_connections;
  const fdsThen = await settledFds(Infinity);
  const rssThen = await settledRss();
  assert.ok(rssThen > 0, 'VmRSS is not readable');
  await runAll(1000, 2000, abandon);
  const fdsNow = await settledFds(fdsThen);
  const rssNow = await settledRss();
  t.diagnostic(`2,000 streams in ${Date.now() - t0} ms`);
  assertFlat(t, '1,000 abandoned streams', rssThen, rssNow, fdsThen, fdsNow);
  let connsNow = (await gw.stats()).open_connections;
  for (let i = 0; i < 100 && connsNow > connsThen; i++) {
    await sleep(20);
    connsNow = (await gw.stats()).open_connections;
  }
  t.diagnostic(`gateway connections ${connsThen} → ${connsNow}`);
  assert.ok(connsNow <= connsThen, `the gateway still holds ${connsNow} connections (was ${connsThen})`);
});

test('10,000 calls in a row (one in ten failing) leave fds and RSS flat', { timeout: 300_000 }, async (t) => {
  // Logs off: every tenth call fails on purpose (the error path must not leak either).
  const client = llm.createClient({ baseUrl: gw.url, apiKey: KEY, logLevel: 'off' });
  const call = async (i) => {
    const failing = i % 10 === 9;
    const content = `call ${i}`;
    try {
      const r = await client.callSpecificModel(failing ? 'mock-err-oneapi' : 'mock-ok', [{ role: 'user', content }], {
        timeoutMs: 10_000,
        maxRetries: 0,
      });
      assert.ok(!failing, `call ${i} should have failed`);
      assert.equal(r.choices[0].message.content, `echo: ${content}`);
    } catch (e) {
      if (!(e instanceof llm.LLMClientError)) throw e;
      assert.ok(failing, `call ${i}: ${e.message}`);
      assert.equal(e.code, 'LLM_HTTP_ERROR');
      assert.equal(e.status, 401);
    }
  };
  const t0 = Date.now();
  // Warm-up: V8 sizes its heap to this load and malloc keeps its arenas, in steps, for about the
  // first 20,000 calls on a busy 2-core machine; after that RSS stays flat (measured up to 50,000
  // calls). A leak keeps growing and fails the check on the 10,000 calls after the warm-up.
  const done = 20_000;
  await runAll(0, done, call);
  const fdsThen = await settledFds(Infinity);
  const rssThen = await settledRss();
  assert.ok(rssThen > 0, 'VmRSS is not readable');
  t.diagnostic(`warm-up: ${done} calls`);
  await runAll(done, done + 10_000, call);
  const fdsNow = await settledFds(fdsThen);
  const rssNow = await settledRss();
  t.diagnostic(`10,000 calls in ${Date.now() - t0} ms`);
  assertFlat(t, '10,000 calls', rssThen, rssNow, fdsThen, fdsNow);
});
