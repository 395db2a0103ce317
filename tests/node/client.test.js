'use strict';
// createClient, AbortSignal, errors as Error objects and the stream object's API.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const util = require('node:util');
const llm = require('claw-llm-client');
const { KEY, USER, startGateway, withEnv, captureLogs, rejection, requestsFor, unique, sleep } = require('./helpers');

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

const inEnv = (fn, extra = {}) => withEnv({ LLM_BASE_URL: gw.url, LLM_API_KEY: KEY, ...extra }, fn);

test('createClient: explicit options win over the environment, snapshot taken at creation', () =>
  withEnv({ LLM_BASE_URL: 'http://127.0.0.1:9/elsewhere', LLM_API_KEY: 'sk-wrong' }, async () => {
    const client = llm.createClient({ baseUrl: `${gw.url}/v1`, apiKey: KEY, headers: { 'x-team': 'a' } });
    assert.equal(client.chatUrl, `${gw.url}/v1/chat/completions`);
    assert.equal(client.embeddingsUrl, `${gw.url}/v1/embeddings`);
    process.env.LLM_BASE_URL = 'http://127.0.0.1:9/changed';
    const model = unique('client-');
    const r = await client.callSpecificModel(model, USER, { temperature: 0 });
    assert.equal(r.mock_echo.headers.authorization, 'Bearer <redacted>');
    assert.equal(r.mock_echo.headers['x-team'], 'a');
    assert.equal(r.mock_echo.body.temperature, 0);
    const e = await client.embed('text-embedding-v4', ['a', 'b'], { dimensions: 4 });
    assert.equal(e.data.length, 2);
  }));

test('createClient: configuration from the environment, model defaults', () =>
  inEnv(async () => {
    const client = llm.createClient({ model: 'default-chat', embeddingModel: 'default-emb', embeddingDims: 8 });
    const r = await client.callSpecificModel('', USER);
    assert.equal(r.mock_echo.body.model, 'default-chat');
    const e = await client.embed(null, 'hello');
    assert.equal(e.data[0].embedding.length, 8);
    assert.equal(llm.createClient().chatUrl, `${gw.url}/v1/chat/completions`);
  }));

test('createClient: invalid configuration throws LLM_CLIENT_CONFIG synchronously', () =>
  withEnv({}, () => {
    for (const bad of [
      undefined,
      { apiKey: KEY },
      { baseUrl: 'ftp://nope', apiKey: KEY },
      { baseUrl: 'http://h', apiKey: KEY, timeout: 5 },
      { baseUrl: 'http://h', apiKey: KEY, maxRetries: 'two' },
      { baseUrl: 'http://h', apiKey: KEY, logLevel: 'loud' },
      { baseUrl: 'http://h', apiKey: KEY, headers: { 'x-a': 1 } },
      'http://h',
      42,
    ]) {
      assert.throws(
        () => llm.createClient(bad),
        (e) => e instanceof llm.LLMClientError && e.code === 'LLM_CLIENT_CONFIG',
        util.inspect(bad),
      );
    }
    const circular = { baseUrl: 'http://h', apiKey: KEY };
    circular.self = circular;
    assert.throws(() => llm.createClient(circular), { code: 'LLM_CLIENT_CONFIG' });
  }));

test('createClient: logLevel and timeoutMs apply to its calls', () =>
  inEnv(async () => {
    const quiet = llm.createClient({ logLevel: 'off', timeoutMs: 200 });
    const { error, lines } = await captureLogs(() => quiet.callSpecificModel('mock-hang', USER));
    assert.equal(error.code, 'ETIMEDOUT');
    assert.equal(error.timeoutMs, 200);
    assert.deepEqual(lines, []);
  }));

test('LLM_TIMEOUT_MS and LLM_MAX_RETRIES from the environment apply to free calls', () =>
  inEnv(
    async () => {
      const model = `mock-flaky:fails=5,status=503,retry_after_ms=10,key=${unique()}`;
      const e = await rejection(llm.callSpecificModel(model, USER));
      assert.equal(e.attempts, 2);
      const t = await rejection(llm.callSpecificModel('mock-hang', USER));
      assert.equal(t.timeoutMs, 250);
    },
    { LLM_TIMEOUT_MS: '250', LLM_MAX_RETRIES: '1' },
  ));

test('OPENAI_* variables (mem0 names) configure calls too', () =>
  withEnv({ OPENAI_BASE_URL: `${gw.url}/v1`, OPENAI_API_KEY: KEY }, async () => {
    const r = await llm.callSpecificModel('qwen-plus', USER);
    assert.equal(r.mock_echo.headers.authorization, 'Bearer <redacted>');
  }));

test('errors are Error instances with code, name Error, and a stack from the caller', () =>
  inEnv(async () => {
    const e = await rejection(llm.callSpecificModel('mock-err-message', USER));
    assert.ok(e instanceof Error && e instanceof llm.LLMClientError);
    assert.equal(e.name, 'Error');
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.match(e.stack, /client\.test\.js/);
    assert.doesNotMatch(e.stack, /bindings-node[\\/]index\.js/);
    assert.match(util.inspect(e), /code: 'LLM_HTTP_ERROR'/);
  }));

test('signal: an already aborted signal rejects with AbortError and sends nothing', () =>
  inEnv(async () => {
    const model = unique('pre-aborted-');
    const { error, lines } = await captureLogs(() =>
      llm.callSpecificModel(model, USER, { signal: AbortSignal.abort() }),
    );
    assert.equal(error.code, 'ABORT_ERR');
    assert.equal(error.name, 'AbortError');
    assert.ok(error instanceof llm.AbortError && error instanceof Error);
    assert.deepEqual(lines, []);
    assert.deepEqual(await requestsFor(gw, model), []);
  }));

test('signal: aborting a pending call rejects it promptly with ABORT_ERR', () =>
  inEnv(async () => {
    const controller = new AbortController();
    const t0 = Date.now();
    const pending = llm.callSpecificModel('mock-slow:ms=5000', USER, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const e = await rejection(pending);
    assert.equal(e.code, 'ABORT_ERR');
    assert.ok(Date.now() - t0 < 1000, `aborted after ${Date.now() - t0} ms`);
    const t = await rejection(llm.embed('mock-slow:ms=5000', 'x', { signal: AbortSignal.timeout(100) }));
    assert.equal(t.code, 'ABORT_ERR');
  }));

test('signal: aborting mid-stream fails the pending read with ABORT_ERR', () =>
  inEnv(async () => {
    const controller = new AbortController();
    const stream = await llm.callSpecificModel('mock-stream-stall', USER, { stream: true, signal: controller.signal });
    const chunks = [];
    const e = await rejection(
      (async () => {
        for await (const chunk of stream) {
          chunks.push(chunk);
          if (chunks.length === 2) setTimeout(() => controller.abort(), 50);
        }
      })(),
    );
    assert.equal(chunks.length, 2);
    assert.equal(e.code, 'ABORT_ERR');
    assert.equal(e.name, 'AbortError');
  }));

test('signal: a signal that is not an AbortSignal is a config error', () =>
  inEnv(async () => {
    const e = await rejection(llm.callSpecificModel('qwen-plus', USER, { signal: 'stop' }));
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.match(e.message, /AbortSignal/);
  }));

test('stream: finalCompletion reads the rest when the loop was not run', () =>
  inEnv(async () => {
    const stream = await llm.callSpecificModel('mock-stream:tokens=500', USER, { stream: true });
    const done = await stream.finalCompletion();
    assert.equal(done.choices[0].message.content, Array.from({ length: 500 }, (_, i) => `t${i}`).join(''));
    assert.equal((await stream.next()).done, true);
  }));

test('stream: a large stream arrives whole and in order', () =>
  inEnv(async () => {
    const stream = await llm.callSpecificModel('mock-stream-large:bytes=2000000', USER, { stream: true });
    let bytes = 0;
    let chunks = 0;
    for await (const c of stream) {
      chunks += 1;
      bytes += ((c.choices[0] && c.choices[0].delta.content) || '').length;
    }
    assert.ok(bytes >= 1_900_000, `${bytes} bytes`);
    assert.ok(chunks > 1000);
  }));

test('stream: the client streams too, and the stream is an async iterator', () =>
  inEnv(async () => {
    const client = llm.createClient();
    const stream = await client.callSpecificModel('qwen-plus', USER, { stream: true });
    assert.ok(stream instanceof llm.ChatStream);
    assert.equal(stream[Symbol.asyncIterator](), stream);
    const first = await stream.next();
    assert.equal(first.done, false);
    assert.equal(first.value.object, 'chat.completion.chunk');
    await stream.return();
    assert.equal((await stream.next()).done, true);
    await sleep(10);
  }));
