'use strict';
// Bad input never crashes or hangs: every case below settles with a clear LLM_CLIENT_CONFIG
// error (a rejected promise, never a synchronous throw), and the process keeps working.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const util = require('node:util');
const llm = require('claw-llm-client');
const { KEY, USER, startGateway, withEnv, captureLogs } = require('./helpers');

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

const inEnv = (fn) => withEnv({ LLM_BASE_URL: gw.url, LLM_API_KEY: KEY, LLM_LOG: 'off' }, fn);

/** Calls `fn` (which must return a promise, not throw) and expects LLM_CLIENT_CONFIG. */
async function configError(what, fn, message) {
  let promise;
  assert.doesNotThrow(() => {
    promise = fn();
  }, `${what}: threw synchronously`);
  assert.ok(promise instanceof Promise, `${what}: did not return a promise`);
  const e = await promise.then(
    () => assert.fail(`${what}: succeeded`),
    (err) => err,
  );
  assert.ok(e instanceof Error, `${what}: not an Error`);
  assert.equal(e.code, 'LLM_CLIENT_CONFIG', `${what}: ${e.code} ${e.message}`);
  if (message) assert.match(e.message, message, what);
  return e;
}

const circular = () => {
  const o = { role: 'user', content: 'hi' };
  o.self = o;
  return [o];
};
const deep = (n) => {
  let v = 'x';
  for (let i = 0; i < n; i++) v = [v];
  return [{ role: 'user', content: v }];
};

test('non-string models', () =>
  inEnv(async () => {
    for (const model of [42, {}, [], true, Symbol('m'), () => 'm', 10n]) {
      await configError(`model ${String(typeof model)}`, () => llm.callSpecificModel(model, USER), /model must be/);
    }
  }));

test('non-object options', () =>
  inEnv(async () => {
    for (const options of ['fast', 42, true, ['a'], () => ({}), Symbol('o')]) {
      await configError(`options ${util.inspect(options)}`, () => llm.callSpecificModel('m', USER, options), /options/);
    }
  }));

test('bad client options are reported by the core', () =>
  inEnv(async () => {
    for (const options of [
      { timeoutMs: -1 },
      { timeoutMs: 'soon' },
      { maxRetries: 1.5 },
      { headers: 'x-a: 1' },
      { headers: { 'x-a': 1 } },
      { headers: { 'bad name': '1' } },
      { headers: { 'x-a': 'line\nbreak' } },
      { stream: 1 },
    ]) {
      await configError(util.inspect(options), () => llm.callSpecificModel('m', USER, options));
    }
  }));

test('messages that JSON cannot carry: circular, BigInt, functions, undefined', () =>
  inEnv(async () => {
    await configError('circular', () => llm.callSpecificModel('m', circular()), /circular/i);
    await configError('bigint', () => llm.callSpecificModel('m', [{ role: 'user', content: 1n }]), /BigInt/);
    await configError('function', () => llm.callSpecificModel('m', () => USER), /messages must be a non-empty array/);
    await configError('undefined', () => llm.callSpecificModel('m'), /messages must be a non-empty array/);
    await configError('null', () => llm.callSpecificModel('m', null), /messages must be a non-empty array/);
    const opts = { temperature: 1 };
    opts.self = opts;
    await configError('circular options', () => llm.callSpecificModel('m', USER, opts), /circular/i);
    await configError('bigint option', () => llm.callSpecificModel('m', USER, { seed: 1n }), /BigInt/);
  }));

test('hostile option objects: throwing getters and proxies', () =>
  inEnv(async () => {
    const getter = Object.defineProperty({}, 'temperature', {
      enumerable: true,
      get() {
        throw new Error('no peeking');
      },
    });
    await configError('getter', () => llm.callSpecificModel('m', USER, getter), /no peeking/);
    const proxy = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    await configError('proxy options', () => llm.callSpecificModel('m', USER, proxy), /trap/);
    await configError('proxy messages', () => llm.callSpecificModel('m', proxy), /trap/);
    const toJSON = { toJSON() { throw new Error('toJSON exploded'); } };
    await configError('toJSON', () => llm.callSpecificModel('m', [toJSON]), /toJSON exploded/);
  }));

test('lone surrogates are a clear error; paired ones go through', () =>
  inEnv(async () => {
    const e = await configError('lone surrogate', () =>
      llm.callSpecificModel('m', [{ role: 'user', content: 'cut emoji \ud83d' }]),
    );
    assert.match(e.message, /lone UTF-16 surrogate/);
    await configError('lone low surrogate', () => llm.callSpecificModel('m', [{ role: 'user', content: '\ude00x' }]));
    const ok = await llm.callSpecificModel('m', [{ role: 'user', content: 'emoji 😀 ok' }]);
    assert.equal(ok.choices[0].message.content, 'echo: emoji 😀 ok');
    const model = await llm.callSpecificModel('m\ud800', USER);
    assert.equal(model.mock_echo.body.model, 'm\ufffd');
  }));

test('deep nesting is a clear error, never a crash', () =>
  inEnv(async () => {
    await configError('200 levels', () => llm.callSpecificModel('m', deep(200)), /nested/);
    await configError('a million levels', () => llm.callSpecificModel('m', deep(1_000_000)), /call stack/);
  }));

test('a 10 MB message goes through without blocking the event loop for long', () =>
  inEnv(async () => {
    const content = 'x'.repeat(10 * 1024 * 1024);
    let maxGap = 0;
    let last = Date.now();
    const ticker = setInterval(() => {
      maxGap = Math.max(maxGap, Date.now() - last);
      last = Date.now();
    }, 5);
    try {
      const r = await llm.callSpecificModel('m', [{ role: 'user', content }], { timeoutMs: 30_000 });
      assert.equal(r.choices[0].message.content.length, content.length + 'echo: '.length);
    } finally {
      clearInterval(ticker);
    }
    assert.ok(maxGap < 500, `event loop blocked for ${maxGap} ms`);
  }));

test('bad embed input', () =>
  inEnv(async () => {
    for (const input of [42, [], [1, 2], null, undefined, { text: 'x' }]) {
      await configError(`input ${util.inspect(input)}`, () => llm.embed('e', input), /input/);
    }
    await configError('bad model', () => llm.embed(7, 'x'), /model/);
  }));

test('config errors are logged like any failed call (LLM_LOG respected)', () =>
  withEnv({ LLM_BASE_URL: gw.url, LLM_API_KEY: KEY }, async () => {
    const { error, lines } = await captureLogs(() => llm.callSpecificModel(42, USER));
    assert.equal(error.code, 'LLM_CLIENT_CONFIG');
    assert.deepEqual(lines, ['[LLM_Client] Error calling <number>: model must be a non-empty string, got a number']);
  }));

test('after all of that, a normal call still works', () =>
  inEnv(async () => {
    const r = await llm.callSpecificModel('m', USER);
    assert.equal(r.choices[0].message.content, 'echo: hi');
  }));
