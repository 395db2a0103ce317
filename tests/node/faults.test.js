'use strict';
// Hostile gateways through Node: the fault cases of core/tests/faults.rs, each pinned to the
// exact `err.code` and to a bounded wall time (the call settles within its deadline + 100 ms).
// Cases that push large bodies also check that this process's resident memory stays far
// below the body size. See the README's "Under faults" table and tests/MOCK_GATEWAY.md.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');
const llm = require('claw-llm-client');
const { KEY, USER, startGateway, withEnv, closedPort, requestsFor, unique } = require('./helpers');

const MIB = 1024 * 1024;
/** What "settles within its deadline" allows on top of the deadline. */
const SLACK_MS = 100;

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

/** A client of the shared gateway, logs off (every case here fails on purpose). */
const client = (extra = {}) => llm.createClient({ baseUrl: gw.url, apiKey: KEY, logLevel: 'off', ...extra });
const inEnv = (fn, extra = {}) => withEnv({ LLM_BASE_URL: gw.url, LLM_API_KEY: KEY, LLM_LOG: 'off', ...extra }, fn);

const now = () => performance.now();

/** Awaits `promise` and asserts it settled within `deadlineMs` + 100 ms; { value, error, took }. */
async function within(deadlineMs, promise) {
  const t0 = now();
  let value;
  let error;
  try {
    value = await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    error = e;
  }
  const took = now() - t0;
  assert.ok(took < deadlineMs + SLACK_MS, `took ${took.toFixed(0)} ms, deadline ${deadlineMs} ms`);
  return { value, error, took };
}

/** A chat call that must fail within its deadline + 100 ms; { err, took }. */
async function callErr(target, model, timeoutMs, maxRetries, extra = {}) {
  const { value, error, took } = await within(
    timeoutMs,
    () => target.callSpecificModel(model, USER, { timeoutMs, maxRetries, ...extra }),
  );
  assert.equal(value, undefined, 'the call must fail');
  assert.ok(error instanceof llm.LLMClientError, `not an LLMClientError: ${error}`);
  return { err: error, took };
}

/** Reads a stream to its error; { chunks, err }. Fails if it ends without one. */
async function streamUntilErr(stream) {
  let chunks = 0;
  try {
    for await (const _ of stream) {
      chunks += 1;
      // Bounded: every stream scenario used here ends or fails well before this many chunks.
      if (chunks > 100_000) throw new Error('the stream never failed');
    }
  } catch (err) {
    assert.ok(err instanceof llm.LLMClientError, `not an LLMClientError: ${err}`);
    return { chunks, err };
  }
  throw new Error(`the stream ended without an error after ${chunks} chunks`);
}

function assertMentions(err, words) {
  for (const w of words) assert.ok(err.message.includes(w), `${JSON.stringify(err.message)} does not mention ${w}`);
}

// ---------------------------------------------------------------- memory probe

function statusKiB(field) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : 0;
}

/** A full garbage collection (node --test gives no --expose-gc: turned on at run time). */
function gc() {
  if (typeof global.gc === 'function') return global.gc();
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc')();
}

/**
 * The peak resident memory growth (KiB) of this process while `fn()` runs: sampled every
 * millisecond from /proc/self/status (the native call runs off the event loop, so the timer
 * keeps firing), and from VmHWM, reset first, where the kernel allows it.
 */
async function peakGrowthKiB(t, fn) {
  gc();
  const base = statusKiB('VmRSS');
  assert.ok(base > 0, 'VmRSS is not readable from /proc/self/status');
  let hwmReset = false;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    hwmReset = true;
  } catch {
    // not allowed here: the sampler alone
  }
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, statusKiB('VmRSS'));
  }, 1);
  let out;
  try {
    out = await fn();
  } finally {
    clearInterval(sampler);
  }
  let top = Math.max(peak, statusKiB('VmRSS'));
  if (hwmReset) top = Math.max(top, statusKiB('VmHWM'));
  const growth = Math.max(0, top - base);
  if (t) t.diagnostic(`peak RSS growth ${growth} KiB (base ${base} KiB)`);
  return { out, growth, base };
}

test('memory probe: a 48 MiB allocation shows', async (t) => {
  const { out, growth } = await peakGrowthKiB(t, async () => {
    const big = Buffer.alloc(48 * MIB, 1);
    await new Promise((r) => setTimeout(r, 20));
    return big.length;
  });
  assert.equal(out, 48 * MIB);
  assert.ok(growth > 40 * 1024, `the probe saw only ${growth} KiB`);
});

// ---------------------------------------------------------------- connection faults

test('refused connection → LLM_CONNECTION_ERROR within the deadline', async () => {
  const port = await closedPort();
  const c = llm.createClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: KEY, logLevel: 'off' });
  // Retries are allowed, but no backoff sleep may pass the deadline.
  const { err } = await callErr(c, 'm', 1500, 2);
  assert.equal(err.code, 'LLM_CONNECTION_ERROR');
  assert.ok(err.attempts >= 1);
  assertMentions(err, ['connection failed']);
});

test('reset before the head → LLM_CONNECTION_ERROR; retried, then the last error', async () => {
  const { err } = await callErr(client(), unique('mock-reset-head:tag='), 2000, 0);
  assert.equal(err.code, 'LLM_CONNECTION_ERROR');
  assert.equal(err.attempts, 1);
  const model = unique('mock-reset-head:tag=');
  const retried = await callErr(client(), model, 6000, 2);
  assert.equal(retried.err.code, 'LLM_CONNECTION_ERROR');
  assert.equal(retried.err.attempts, 3);
  assert.equal((await requestsFor(gw, model)).length, 3);
});

test('reset mid-body → LLM_CONNECTION_ERROR, not retried', async () => {
  const model = unique('mock-reset-body:tag=');
  const { err } = await callErr(client(), model, 2000, 2);
  assert.equal(err.code, 'LLM_CONNECTION_ERROR');
  assertMentions(err, ['while reading the response']);
  assert.equal((await requestsFor(gw, model)).length, 1, 'body bytes arrived: no retry');
});

test('reset mid-stream → LLM_STREAM_ERROR after the chunks already handed out, not retried', async () => {
  const model = unique('mock-stream-reset:after=2,tag=');
  const { value } = await within(2000, async () => {
    const s = await client().callSpecificModel(model, USER, { stream: true, timeoutMs: 2000, maxRetries: 2 });
    return streamUntilErr(s);
  });
  assert.equal(value.chunks, 2);
  assert.equal(value.err.code, 'LLM_STREAM_ERROR');
  assertMentions(value.err, ['connection lost mid-stream']);
  assert.equal((await requestsFor(gw, model)).length, 1, 'stream bytes were handed out: no retry');
});

test('accepted and never answered → ETIMEDOUT at the deadline', async () => {
  const { err, took } = await callErr(client(), unique('mock-hang:tag='), 500, 2);
  assert.equal(err.code, 'ETIMEDOUT');
  assert.equal(err.timeoutMs, 500);
  assert.ok(took >= 490, `settled early: ${took} ms`);
});

test('accepted and never answered, free function → ETIMEDOUT at the deadline', () =>
  inEnv(async () => {
    const { err, took } = await callErr(llm, unique('mock-hang:tag='), 500, 2);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(err.timeoutMs, 500);
    assert.ok(took >= 490, `settled early: ${took} ms`);
  }));

test('a body trickling 1 byte/s → ETIMEDOUT at the deadline', async () => {
  const { err, took } = await callErr(client(), unique('mock-trickle:bps=1,tag='), 700, 2);
  assert.equal(err.code, 'ETIMEDOUT');
  assert.equal(err.timeoutMs, 700);
  assert.ok(took >= 690, `settled early: ${took} ms`);
});

test('a body stalled halfway → ETIMEDOUT at the deadline', async () => {
  const { err } = await callErr(client(), unique('mock-stall-body:tag='), 500, 2);
  assert.equal(err.code, 'ETIMEDOUT');
});

test('stream: the wait for the head is bounded by the deadline', async () => {
  const { error } = await within(
    400,
    () => client().callSpecificModel(unique('mock-slow:ms=5000,tag='), USER, { stream: true, timeoutMs: 400, maxRetries: 2 }),
  );
  assert.equal(error.code, 'ETIMEDOUT');
  assert.equal(error.timeoutMs, 400);
});

test('stream: the idle timeout bounds a trickling stream', async () => {
  const s = await client().callSpecificModel(unique('mock-trickle:bps=1,tag='), USER, {
    stream: true,
    timeoutMs: 10_000,
    idleTimeoutMs: 300,
    maxRetries: 0,
  });
  const { value } = await within(300, () => streamUntilErr(s));
  assert.equal(value.chunks, 0);
  assert.equal(value.err.code, 'ETIMEDOUT');
  assert.equal(value.err.timeoutMs, 300);
});

// ---------------------------------------------------------------- bad 2xx bodies

test('2xx truncated JSON → LLM_BAD_RESPONSE, not retried', async () => {
  const { err } = await callErr(client(), unique('mock-ok-truncated:tag='), 2000, 2);
  assert.equal(err.code, 'LLM_BAD_RESPONSE');
  assert.equal(err.status, 200);
  assert.equal(err.attempts, 1, 'a bad 2xx body is not retried');
});

test('invalid UTF-8 in 2xx JSON → LLM_BAD_RESPONSE with the first bytes', async () => {
  const { err } = await callErr(client(), unique('mock-ok-invalid-utf8:tag='), 2000, 2);
  assert.equal(err.code, 'LLM_BAD_RESPONSE');
  assertMentions(err, ['not valid UTF-8']);
  assert.equal(err.status, 200);
  assert.ok(typeof err.body === 'string' && err.body.startsWith('{'), `body: ${err.body}`);
});

test('invalid UTF-8 in an SSE event → LLM_STREAM_ERROR after the events before it', async () => {
  const { value } = await within(2000, async () => {
    const s = await client().callSpecificModel(unique('mock-stream-invalid-utf8:tag='), USER, {
      stream: true,
      timeoutMs: 2000,
      maxRetries: 0,
    });
    return streamUntilErr(s);
  });
  assert.equal(value.chunks, 1, 'the token before the bad event is delivered');
  assert.equal(value.err.code, 'LLM_STREAM_ERROR');
  assertMentions(value.err, ['UTF-8']);
});

test('corrupt gzip body → LLM_BAD_RESPONSE, not retried', async () => {
  const { err } = await callErr(client(), unique('mock-ok-gzip-bomb:corrupt=1,tag='), 2000, 2);
  assert.equal(err.code, 'LLM_BAD_RESPONSE');
  assertMentions(err, ['could not be decoded']);
  assert.equal(err.attempts, 1);
});

// ---------------------------------------------------------------- size cap

test('size cap: LLM_MAX_RESPONSE_BYTES is honoured by the free functions', () =>
  inEnv(
    async () => {
      const { err } = await callErr(llm, unique('mock-ok-huge:bytes=1048577,chunked=1,tag='), 5000, 0);
      assert.equal(err.code, 'LLM_BAD_RESPONSE');
      assertMentions(err, ['size cap of 1048576 bytes', 'LLM_MAX_RESPONSE_BYTES']);
      const ok = await llm.callSpecificModel(unique('mock-ok-huge:bytes=1048576,chunked=1,tag='), USER, {
        timeoutMs: 5000,
        maxRetries: 0,
      });
      assert.ok(ok.choices[0].message.content.length > 1_000_000, 'exactly the cap is allowed');
    },
    { LLM_MAX_RESPONSE_BYTES: String(MIB) },
  ));

test('size cap: the default is 64 MiB', async () => {
  const { err } = await callErr(client(), unique(`mock-ok-huge:bytes=${64 * MIB + 1},tag=`), 5000, 0);
  assert.equal(err.code, 'LLM_BAD_RESPONSE');
  assertMentions(err, ['size cap of 67108864 bytes']);
});

test('size cap: a 256 MiB body with its length is refused from the head, memory bounded', async (t) => {
  const c = client({ maxResponseBytes: 8 * MIB });
  const model = unique(`mock-ok-huge:bytes=${256 * MIB},tag=`);
  const { out, growth } = await peakGrowthKiB(t, () => callErr(c, model, 5000, 2));
  assert.equal(out.err.code, 'LLM_BAD_RESPONSE');
  assertMentions(out.err, ['size cap']);
  assert.equal(out.err.attempts, 1);
  assert.ok(out.took < 1000, `took ${out.took} ms`);
  assert.ok(growth < 32 * 1024, `RSS grew ${growth} KiB for a 256 MiB body`);
});

test('size cap: a 256 MiB chunked 2xx body → LLM_BAD_RESPONSE at the cap, memory bounded', async (t) => {
  const c = client({ maxResponseBytes: 8 * MIB });
  const model = unique(`mock-ok-huge:bytes=${256 * MIB},chunked=1,tag=`);
  const { out, growth } = await peakGrowthKiB(t, () => callErr(c, model, 10_000, 2));
  assert.equal(out.err.code, 'LLM_BAD_RESPONSE');
  assertMentions(out.err, ['size cap of 8388608 bytes']);
  assert.equal((await requestsFor(gw, model)).length, 1, 'not retried');
  assert.ok(growth < 64 * 1024, `RSS grew ${growth} KiB for a 256 MiB body`);
});

test('size cap: a 256 MiB gzip bomb → LLM_BAD_RESPONSE at the cap, memory bounded', async (t) => {
  const c = client({ maxResponseBytes: 8 * MIB });
  const model = unique(`mock-ok-gzip-bomb:bytes=${256 * MIB},tag=`);
  const { out, growth } = await peakGrowthKiB(t, () => callErr(c, model, 10_000, 2));
  assert.equal(out.err.code, 'LLM_BAD_RESPONSE');
  assertMentions(out.err, ['size cap of 8388608 bytes']);
  assert.ok(growth < 64 * 1024, `RSS grew ${growth} KiB for a 256 MiB bomb`);
});

test('size cap: a gzip body within the cap is inflated', async () => {
  const c = client({ maxResponseBytes: 8 * MIB });
  const r = await c.callSpecificModel(unique(`mock-ok-gzip-bomb:bytes=${MIB},tag=`), USER, { timeoutMs: 5000 });
  assert.deepEqual(r.choices, []);
});

// ---------------------------------------------------------------- redirects

test('a cross-host redirect does not carry Authorization', async () => {
  const other = await startGateway();
  try {
    const port = other.url.split(':').pop();
    // 127.0.0.1 → localhost: another host (and port) for the client.
    const model = unique(`mock-redirect:to=http://localhost:${port}/v1/chat/completions,hops=1,tag=`);
    const { value, error } = await within(5000, () => client().callSpecificModel(model, USER, { timeoutMs: 5000, maxRetries: 0 }));
    assert.equal(error, undefined, `the redirect is followed: ${error}`);
    assert.equal(value.mock_echo.query, 'hop=1');
    const first = await requestsFor(gw, model);
    assert.equal(first.length, 1);
    assert.equal(first[0].headers.authorization, 'Bearer <redacted>');
    const second = await other.requests();
    assert.equal(second.length, 1, JSON.stringify(second));
    assert.equal(
      second[0].headers.authorization,
      undefined,
      `the key followed a cross-host redirect: ${JSON.stringify(second[0].headers)}`,
    );
    assert.equal(second[0].method, 'POST');
  } finally {
    await other.stop();
  }
});

test('a redirect loop → LLM_CONNECTION_ERROR fast, cut by the hop limit, not retried', async () => {
  const model = unique(`mock-redirect:to=${gw.url}/v1/chat/completions,tag=`);
  const { err, took } = await callErr(client(), model, 5000, 2);
  assert.equal(err.code, 'LLM_CONNECTION_ERROR');
  assertMentions(err, ['redirect']);
  assert.ok(took < 1000, `took ${took} ms`);
  assert.equal((await requestsFor(gw, model)).length, 11);
});

// ---------------------------------------------------------------- large stream events
// (the endless line first: its memory probe must not start on the big event's freed pages)

test('stream: an endless SSE line is refused at the cap → LLM_STREAM_ERROR, memory bounded', async (t) => {
  const c = client({ maxResponseBytes: MIB });
  const { out, growth } = await peakGrowthKiB(t, () =>
    within(5000, async () => {
      const s = await c.callSpecificModel(unique('mock-stream-endless-line:tag='), USER, {
        stream: true,
        timeoutMs: 5000,
        maxRetries: 0,
      });
      return streamUntilErr(s);
    }),
  );
  assert.equal(out.error, undefined, `${out.error}`);
  assert.equal(out.value.chunks, 0);
  assert.equal(out.value.err.code, 'LLM_STREAM_ERROR');
  assertMentions(out.value.err, ['exceeds 1048576 bytes']);
  assert.ok(growth < 32 * 1024, `RSS grew ${growth} KiB for a 1 MiB cap`);
});

test('stream: an SSE event larger than 8 MiB is accepted under the default cap', async () => {
  const bytes = 9 * MIB;
  const { value, error } = await within(20_000, async () => {
    const s = await client().callSpecificModel(unique(`mock-stream-big-event:bytes=${bytes},tag=`), USER, {
      stream: true,
      timeoutMs: 20_000,
      maxRetries: 0,
    });
    let content = 0;
    for await (const chunk of s) {
      const c = chunk.choices[0] && chunk.choices[0].delta.content;
      content += c ? c.length : 0;
    }
    return content;
  });
  assert.equal(error, undefined, `${error}`);
  assert.equal(value, bytes);
});
