'use strict';
// Every entry of tests/scenarios.json, under its exact name, against claw-mock-gateway.
// The same names are pinned in core/tests (Rust) and tests/python.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');
const llm = require('claw-llm-client');
const {
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
} = require('./helpers');

const SCENARIOS = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'scenarios.json'), 'utf8'),
).scenarios.map((s) => s.name);

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  if (gw) await gw.stop();
});

/** The gateway's environment, plus `extra`. */
const env = (extra = {}) => ({ LLM_BASE_URL: gw.url, LLM_API_KEY: KEY, ...extra });
/** Runs `fn` with the gateway's environment (plus `extra`). */
const inEnv = (fn, extra) => withEnv(env(extra), fn);
const call = (model, options, messages = USER) => llm.callSpecificModel(model, messages, options);

const defined = new Set();
/** A test named exactly like a scenarios.json entry. */
function scenario(name, fn) {
  defined.add(name);
  test(name, { timeout: 30_000 }, fn);
}

test('every scenario in tests/scenarios.json has a Node test', () => {
  const missing = SCENARIOS.filter((n) => !defined.has(n));
  assert.deepEqual(missing, [], `scenarios without a Node test: ${missing.join(', ')}`);
});

// ---------------------------------------------------------------- calls

scenario('call_returns_gateway_json_untouched', () =>
  inEnv(async () => {
    const r = await call('qwen-plus');
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.content, 'echo: hi');
    assert.deepEqual(r.x_provider_extra, { kept: true });
    assert.equal(r.mock_echo.method, 'POST');
    assert.ok(r.usage.total_tokens > 0);
  }));

scenario('call_sends_bearer_key_and_body', () =>
  inEnv(async () => {
    const model = unique('bearer-');
    await call(model);
    const [req] = await requestsFor(gw, model);
    assert.equal(req.headers.authorization, 'Bearer <redacted>');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(req.body, { model, messages: USER });
  }));

scenario('call_passes_unknown_options_through', () =>
  inEnv(async () => {
    const model = unique('opts-');
    const options = {
      temperature: 0.3,
      max_tokens: 64,
      response_format: { type: 'json_object' },
      x_vendor_flag: { nested: [1, 'two', null] },
      timeoutMs: 5000,
      maxRetries: 1,
      idleTimeoutMs: 4000,
      headers: { 'x-team': 'skills' },
    };
    await call(model, options);
    const [req] = await requestsFor(gw, model);
    assert.equal(req.body.temperature, 0.3);
    assert.equal(req.body.max_tokens, 64);
    assert.deepEqual(req.body.response_format, { type: 'json_object' });
    assert.deepEqual(req.body.x_vendor_flag, { nested: [1, 'two', null] });
    for (const own of ['timeoutMs', 'maxRetries', 'idleTimeoutMs', 'headers', 'signal', 'stream']) {
      assert.ok(!(own in req.body), `${own} must not be sent`);
    }
    assert.equal(req.headers['x-team'], 'skills');
  }));

scenario('call_model_sent_verbatim_with_provider_prefix', () =>
  inEnv(async () => {
    await gw.clear();
    const r = await call('kimi:moonshot-v1-8k', { headers: { 'x-mock-scenario': 'ok' } });
    assert.equal(r.choices[0].message.content, 'echo: hi');
    const [req] = await requestsFor(gw, 'kimi:moonshot-v1-8k');
    assert.equal(req.body.model, 'kimi:moonshot-v1-8k');
  }));

scenario('call_model_falls_back_to_llm_model_id', () =>
  inEnv(
    async () => {
      const r = await call('');
      assert.equal(r.mock_echo.body.model, 'MiniMax-M2.5');
      const r2 = await call(undefined);
      assert.equal(r2.mock_echo.body.model, 'MiniMax-M2.5');
    },
    { LLM_MODEL_ID: 'MiniMax-M2.5' },
  ));

// ---------------------------------------------------------------- configuration

scenario('config_missing_base_url_is_config_error', () =>
  withEnv({ LLM_API_KEY: KEY }, async () => {
    await gw.clear();
    const e = await rejection(call('qwen-plus'));
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.match(e.message, /LLM_BASE_URL/);
    assert.deepEqual(await gw.requests(), []);
  }));

scenario('config_missing_api_key_is_config_error', () =>
  withEnv({ LLM_BASE_URL: gw.url }, async () => {
    const e = await rejection(call('qwen-plus'));
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.match(e.message, /LLM_API_KEY/);
  }));

scenario('config_invalid_base_url_names_value', () =>
  withEnv({ LLM_BASE_URL: 'gateway.internal:3000', LLM_API_KEY: KEY }, async () => {
    const e = await rejection(call('qwen-plus'));
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.match(e.message, /gateway\.internal:3000/);
  }));

scenario('config_messages_must_be_non_empty_array', () =>
  inEnv(async () => {
    await gw.clear();
    for (const bad of ['hello', {}, []]) {
      const e = await rejection(llm.callSpecificModel('qwen-plus', bad));
      assert.equal(e.code, 'LLM_CLIENT_CONFIG', util.inspect(bad));
      assert.match(e.message, /messages must be a non-empty array/);
    }
    assert.deepEqual(await gw.requests(), []);
  }));

scenario('config_model_must_be_non_empty', () =>
  inEnv(async () => {
    const e = await rejection(call(''));
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.match(e.message, /model/);
  }));

scenario('config_stream_must_be_boolean', () =>
  inEnv(async () => {
    const e = await rejection(call('qwen-plus', { stream: 'yes' }));
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.match(e.message, /stream/);
  }));

scenario('config_env_read_at_call_time', () =>
  inEnv(async () => {
    const model = unique('envtime-');
    process.env.LLM_BASE_URL = `${gw.url}/first/v1`;
    await call(model);
    process.env.LLM_BASE_URL = `${gw.url}/second/v1`;
    await call(model);
    const paths = (await requestsFor(gw, model)).map((r) => r.path);
    assert.deepEqual(paths, ['/first/v1/chat/completions', '/second/v1/chat/completions']);
    process.env.LLM_API_KEY = 'sk-wrong';
    const r = await call(model, { headers: { 'x-mock-scenario': 'ok' } });
    assert.equal(r.mock_echo.headers.authorization, '<mismatch>');
  }));

scenario('config_values_are_trimmed', () =>
  withEnv({ LLM_BASE_URL: ` ${gw.url}/ \n`, LLM_API_KEY: `${KEY}\n`, LLM_TIMEOUT_MS: ' 5000 ' }, async () => {
    const model = unique('trim-');
    const r = await call(model);
    assert.equal(r.mock_echo.path, '/v1/chat/completions');
    assert.equal(r.mock_echo.headers.authorization, 'Bearer <redacted>');
  }));

// ---------------------------------------------------------------- URLs

scenario('url_version_base_appends_chat_completions', async () => {
  for (const [base, expected] of [
    ['/v1', '/v1/chat/completions'],
    ['/compatible-mode/v1', '/compatible-mode/v1/chat/completions'],
    ['/api/paas/v4', '/api/paas/v4/chat/completions'],
    ['/api/v3/', '/api/v3/chat/completions'],
  ]) {
    await withEnv(env({ LLM_BASE_URL: gw.url + base }), async () => {
      const r = await call('qwen-plus');
      assert.equal(r.mock_echo.path, expected, base);
    });
  }
});

scenario('url_plain_base_appends_v1', async () => {
  for (const base of ['', '/', '//']) {
    await withEnv(env({ LLM_BASE_URL: gw.url + base }), async () => {
      const r = await call('qwen-plus');
      assert.equal(r.mock_echo.path, '/v1/chat/completions', JSON.stringify(base));
    });
  }
});

scenario('url_chat_url_override_used_verbatim', () =>
  inEnv(
    async () => {
      const r = await call('qwen-plus');
      assert.equal(r.mock_echo.path, '/v1/chat');
      assert.equal(r.mock_echo.query, 'tenant=a');
    },
    { LLM_CHAT_URL: `${gw.url}/v1/chat?tenant=a` },
  ));

// ---------------------------------------------------------------- errors

/** The error of a call to `spec` (no retries unless asked). */
const failing = (spec, options = {}) => rejection(call(`mock-${spec}`, { maxRetries: 0, ...options }));

scenario('error_oneapi_shape', () =>
  inEnv(async () => {
    const e = await failing('err-oneapi:status=401');
    assert.ok(e instanceof Error);
    assert.ok(e instanceof llm.LLMClientError);
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 401);
    assert.equal(e.message, 'Invalid token');
    assert.equal(e.cause, 'Invalid token');
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.errorCode, 'invalid_api_key');
    assert.match(e.requestId, /^req_\d+$/);
    assert.equal(e.attempts, 1);
    assert.deepEqual(e.body.error.code, 'invalid_api_key');
  }));

scenario('error_message_shape', () =>
  inEnv(async () => {
    const e = await failing('err-message');
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 400);
    assert.equal(e.message, 'Model not found');
    assert.deepEqual(e.body, { message: 'Model not found' });
  }));

scenario('error_string_shape', () =>
  inEnv(async () => {
    const e = await failing('err-string');
    assert.equal(e.message, 'Bad gateway config');
    assert.equal(e.cause, 'Bad gateway config');
  }));

scenario('error_detail_shape', () =>
  inEnv(async () => {
    const e = await failing('err-detail');
    assert.equal(e.message, 'Not authenticated');
  }));

scenario('error_fastapi_422_list', () =>
  inEnv(async () => {
    const e = await failing('err-fastapi422');
    assert.equal(e.status, 422);
    assert.equal(e.message, 'body.messages: field required; body.model: str type expected');
  }));

scenario('error_html_502_title', () =>
  inEnv(async () => {
    const e = await failing('err-html:status=502');
    assert.equal(e.status, 502);
    assert.equal(e.message, '502 Bad Gateway');
    assert.equal(typeof e.body, 'string');
    assert.match(e.body, /<title>502 Bad Gateway<\/title>/);
  }));

scenario('error_text_500', () =>
  inEnv(async () => {
    const e = await failing('err-text:status=500');
    assert.equal(e.status, 500);
    assert.equal(e.message, 'upstream exploded');
  }));

scenario('error_empty_body_uses_status', () =>
  inEnv(async () => {
    const e = await failing('err-empty:status=503');
    assert.equal(e.status, 503);
    assert.equal(e.message, 'HTTP 503');
  }));

scenario('error_200_with_error_is_api_error', () =>
  inEnv(async () => {
    const e = await failing('ok-error');
    assert.equal(e.code, 'LLM_API_ERROR');
    assert.equal(e.status, 200);
    assert.equal(e.message, '当前分组上游负载已饱和');
    assert.equal(e.errorCode, 'overloaded');
  }));

scenario('error_200_html_is_bad_response', () =>
  inEnv(async () => {
    const e = await failing('ok-html');
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.equal(e.status, 200);
    assert.match(e.message, /\/v1/);
    assert.match(e.body, /<html>/);
  }));

scenario('error_truncated_json_is_bad_response', () =>
  inEnv(async () => {
    const e = await failing('ok-truncated');
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
  }));

scenario('error_connection_refused', async () => {
  const port = await closedPort();
  await withEnv({ LLM_BASE_URL: `http://127.0.0.1:${port}`, LLM_API_KEY: KEY }, async () => {
    const e = await rejection(call('qwen-plus', { maxRetries: 0 }));
    assert.equal(e.code, 'LLM_CONNECTION_ERROR');
    assert.match(e.message, new RegExp(String(port)));
    assert.equal(e.attempts, 1);
  });
});

// ---------------------------------------------------------------- retries

scenario('retries_429_then_succeeds', () =>
  inEnv(async () => {
    const model = `mock-flaky:fails=2,status=429,retry_after_ms=50,key=${unique()}`;
    const r = await call(model);
    assert.equal(r.choices[0].message.content, 'echo: hi');
    assert.equal((await requestsFor(gw, model)).length, 3);
  }));

scenario('retries_honour_retry_after_seconds', () =>
  inEnv(async () => {
    const model = `mock-flaky:fails=1,status=503,retry_after=1,key=${unique()}`;
    const t0 = Date.now();
    await call(model);
    assert.ok(Date.now() - t0 >= 950, `retried after ${Date.now() - t0} ms`);
    assert.equal((await requestsFor(gw, model)).length, 2);
  }));

scenario('retries_exhausted_reports_attempts', () =>
  inEnv(async () => {
    const model = `mock-flaky:fails=9,status=503,retry_after_ms=10,key=${unique()}`;
    const e = await rejection(call(model, { maxRetries: 2 }));
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 503);
    assert.equal(e.attempts, 3);
    assert.equal((await requestsFor(gw, model)).length, 3);
  }));

scenario('retries_not_on_insufficient_quota', () =>
  inEnv(async () => {
    const model = 'mock-err-quota';
    await gw.clear();
    const e = await rejection(call(model));
    assert.equal(e.status, 429);
    assert.equal(e.type, 'insufficient_quota');
    assert.equal((await requestsFor(gw, model)).length, 1);
  }));

scenario('retries_respect_x_should_retry_false', () =>
  inEnv(async () => {
    const model = `mock-flaky:fails=1,status=503,should_retry=false,key=${unique()}`;
    const e = await rejection(call(model));
    assert.equal(e.status, 503);
    assert.equal(e.attempts, 1);
    assert.equal((await requestsFor(gw, model)).length, 1);
  }));

scenario('retries_not_on_400', () =>
  inEnv(async () => {
    const model = 'mock-err-message:status=400';
    await gw.clear();
    const e = await rejection(call(model));
    assert.equal(e.status, 400);
    assert.equal((await requestsFor(gw, model)).length, 1);
  }));

scenario('retries_never_sleep_past_deadline', () =>
  inEnv(async () => {
    const model = `mock-flaky:fails=1,status=503,retry_after=5,key=${unique()}`;
    const t0 = Date.now();
    const e = await rejection(call(model, { timeoutMs: 800 }));
    const ms = Date.now() - t0;
    assert.ok(ms < 1100, `settled after ${ms} ms`);
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 503);
  }));

// ---------------------------------------------------------------- time

scenario('timeout_total_deadline_settles', () =>
  inEnv(async () => {
    const t0 = Date.now();
    const e = await rejection(call('mock-slow:ms=5000', { timeoutMs: 300 }));
    const ms = Date.now() - t0;
    assert.equal(e.code, 'ETIMEDOUT');
    assert.equal(e.timeoutMs, 300);
    assert.equal(e.message, 'timeout (300ms)');
    assert.ok(ms < 600, `settled after ${ms} ms`);
  }));

scenario('timeout_on_never_answered_request', () =>
  inEnv(async () => {
    const t0 = Date.now();
    const e = await rejection(call('mock-hang', { timeoutMs: 300 }));
    assert.equal(e.code, 'ETIMEDOUT');
    assert.ok(Date.now() - t0 < 1000);
  }));

// ---------------------------------------------------------------- streams

/** Opens `spec` as a stream; resolves to { stream, chunks, content }. */
async function readStream(spec, options = {}) {
  const stream = await call(`mock-${spec}`, { stream: true, ...options });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const content = chunks.map((c) => (c.choices && c.choices[0] && c.choices[0].delta.content) || '').join('');
  return { stream, chunks, content };
}

/** Opens `spec` as a stream and reads until it fails; resolves to { chunks, error }. */
async function failingStream(spec, options = {}) {
  const stream = await call(`mock-${spec}`, { stream: true, ...options });
  const chunks = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (error) {
    return { stream, chunks, error };
  }
  throw new Error(`${spec}: the stream ended without an error`);
}

const sameContent = (spec) => () =>
  inEnv(async () => {
    const { stream, content } = await readStream(spec);
    assert.equal(content, 'Hello, world!');
    const done = await stream.finalCompletion();
    assert.equal(done.choices[0].message.content, 'Hello, world!');
    assert.equal(done.choices[0].finish_reason, 'stop');
  });

scenario('stream_yields_chunks_and_final_completion', () =>
  inEnv(async () => {
    const { stream, chunks } = await readStream('stream');
    const tokens = chunks
      .map((c) => c.choices[0] && c.choices[0].delta.content)
      .filter((t) => t !== undefined && t !== null);
    assert.deepEqual(tokens, ['Hello', ',', ' world', '!']);
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    const done = await stream.finalCompletion();
    assert.equal(done.choices[0].message.content, 'Hello, world!');
    assert.equal(done.choices[0].message.role, 'assistant');
    assert.equal(done.choices[0].finish_reason, 'stop');
    assert.ok(done.usage.total_tokens > 0);
    assert.match(stream.requestId, /^req_\d+$/);
    assert.equal(stream.status, 200);
  }));

scenario('stream_keepalive_comments_ignored', sameContent('stream-keepalive'));
scenario('stream_crlf_line_ends', sameContent('stream-crlf'));
scenario('stream_cr_line_ends', sameContent('stream-cr'));
scenario('stream_one_byte_per_write', sameContent('stream-bytewise'));
scenario('stream_leading_bom', sameContent('stream-bom'));

scenario('stream_split_inside_utf8_char', () =>
  inEnv(async () => {
    const { stream, content } = await readStream('stream-utf8split');
    assert.equal(content, '你好世界');
    assert.equal((await stream.finalCompletion()).choices[0].message.content, '你好世界');
  }));

scenario('stream_multiline_data', () =>
  inEnv(async () => {
    const { stream, chunks } = await readStream('stream-multiline');
    assert.ok(chunks.length > 0);
    assert.ok((await stream.finalCompletion()).choices[0].message.content.length > 0);
  }));

scenario('stream_event_error_is_stream_error', () =>
  inEnv(async () => {
    const { chunks, error } = await failingStream('stream-event-error');
    assert.equal(chunks.length, 2);
    assert.equal(error.code, 'LLM_STREAM_ERROR');
    assert.equal(error.message, 'upstream overloaded');
  }));

scenario('stream_error_frame_mid_stream', () =>
  inEnv(async () => {
    const { error, stream } = await failingStream('stream-error-frame');
    assert.equal(error.code, 'LLM_STREAM_ERROR');
    assert.equal(error.message, 'rate limited mid-stream');
    await assert.rejects(stream.finalCompletion(), { code: 'LLM_STREAM_ERROR' });
  }));

scenario('stream_truncated_is_stream_error', () =>
  inEnv(async () => {
    const { chunks, error } = await failingStream('stream-truncated');
    assert.equal(chunks.length, 2);
    assert.equal(error.code, 'LLM_STREAM_ERROR');
    assert.match(error.message, /truncated/);
  }));

scenario('stream_done_stops_even_if_socket_open', () =>
  inEnv(async () => {
    const t0 = Date.now();
    const { content } = await readStream('stream-done-keepopen', { idleTimeoutMs: 5000 });
    assert.equal(content, 'Hello, world!');
    assert.ok(Date.now() - t0 < 2000, `ended after ${Date.now() - t0} ms`);
  }));

const twoToolCalls = (spec) => () =>
  inEnv(async () => {
    const { stream } = await readStream(spec);
    const done = await stream.finalCompletion();
    const choice = done.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    const calls = choice.message.tool_calls;
    assert.equal(calls.length, 2);
    for (const c of calls) {
      assert.equal(typeof c.id, 'string');
      assert.equal(typeof c.function.name, 'string');
      assert.doesNotThrow(() => JSON.parse(c.function.arguments), c.function.arguments);
    }
    assert.notEqual(calls[0].id, calls[1].id);
  });

scenario('stream_tool_calls_merge_by_index', twoToolCalls('stream-tools'));
scenario('stream_tool_calls_merge_by_id_without_index', twoToolCalls('stream-tools-noindex'));

scenario('stream_reasoning_content_accumulated', () =>
  inEnv(async () => {
    const { stream } = await readStream('stream-reasoning');
    const { message } = (await stream.finalCompletion()).choices[0];
    assert.ok(message.reasoning_content.length > 0);
    assert.ok(message.content.length > 0);
  }));

scenario('stream_idle_timeout_fires_on_stall', () =>
  inEnv(async () => {
    const t0 = Date.now();
    const { chunks, error } = await failingStream('stream-stall', { idleTimeoutMs: 300 });
    assert.equal(chunks.length, 2);
    assert.equal(error.code, 'ETIMEDOUT');
    assert.equal(error.timeoutMs, 300);
    assert.ok(Date.now() - t0 < 2000);
  }));

scenario('stream_http_error_thrown_before_stream', () =>
  inEnv(async () => {
    const e = await rejection(call('mock-err-oneapi:status=401', { stream: true }));
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 401);
    assert.equal(e.message, 'Invalid token');
  }));

scenario('stream_break_early_cancels_request', () =>
  inEnv(async () => {
    const before = (await gw.stats()).open_connections;
    const stream = await call('mock-stream-stall', { stream: true });
    let seen = 0;
    for await (const chunk of stream) {
      assert.ok(chunk);
      seen += 1;
      break;
    }
    assert.equal(seen, 1);
    let open = Infinity;
    for (let i = 0; i < 40 && open > before; i++) {
      await sleep(50);
      open = (await gw.stats()).open_connections;
    }
    assert.ok(open <= before, `open connections ${open} > ${before} after break`);
    const next = await stream.next();
    assert.equal(next.done, true);
  }));

scenario('stream_abort', () =>
  inEnv(async () => {
    const stream = await call('mock-stream-stall', { stream: true });
    assert.equal((await stream.next()).done, false);
    assert.equal((await stream.next()).done, false);
    const pending = stream.next();
    await sleep(50);
    stream.abort();
    const e = await rejection(pending);
    assert.equal(e.code, 'ABORT_ERR');
    assert.equal(e.name, 'AbortError');
    assert.ok(e instanceof Error);
    assert.equal((await stream.next()).done, true);
  }));

// ---------------------------------------------------------------- embeddings

scenario('embed_returns_vectors_with_dimensions', () =>
  inEnv(async () => {
    const r = await llm.embed('text-embedding-v4', 'hello world', { dimensions: 8 });
    assert.equal(r.data.length, 1);
    assert.equal(r.data[0].embedding.length, 8);
    assert.ok(r.data[0].embedding.every((x) => typeof x === 'number'));
  }));

scenario('embed_list_input', () =>
  inEnv(async () => {
    const r = await llm.embed('text-embedding-v4', ['hello world', 'goodbye moon'], { dimensions: 16 });
    assert.deepEqual(
      r.data.map((d) => d.index),
      [0, 1],
    );
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
  }));

scenario('embed_float_encoding_by_default', () =>
  inEnv(async () => {
    const model = unique('emb-');
    await llm.embed(model, 'hello');
    const [req] = await requestsFor(gw, model);
    assert.equal(req.path, '/v1/embeddings');
    assert.equal(req.body.encoding_format, 'float');
    assert.equal(req.body.input, 'hello');
  }));

// ---------------------------------------------------------------- logs

scenario('log_error_line_on_failure', () =>
  inEnv(async () => {
    const { error, lines } = await captureLogs(() => call('mock-err-oneapi:status=401'));
    assert.equal(error.code, 'LLM_HTTP_ERROR');
    assert.deepEqual(lines, ['[LLM_Client] Error calling mock-err-oneapi:status=401: Invalid token']);
    const t = await captureLogs(() => call('mock-slow:ms=3000', { timeoutMs: 200 }));
    assert.deepEqual(t.lines, ['[LLM_Client] Error calling mock-slow:ms=3000: timeout (200ms)']);
  }));

scenario('log_off_silences', () =>
  inEnv(
    async () => {
      const { error, lines } = await captureLogs(() => call('mock-err-oneapi:status=401'));
      assert.equal(error.code, 'LLM_HTTP_ERROR');
      assert.deepEqual(lines, []);
    },
    { LLM_LOG: 'off' },
  ));

scenario('log_debug_line_per_attempt', () =>
  inEnv(
    async () => {
      const model = `mock-flaky:fails=1,status=503,retry_after_ms=10,key=${unique()}`;
      const { result, lines } = await captureLogs(() => call(model));
      assert.equal(result.choices[0].message.content, 'echo: hi');
      const attempts = lines.filter((l) => /POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions -> \d+ in \d+ms/.test(l));
      assert.equal(attempts.length, 2, lines.join('\n'));
      assert.match(attempts[0], /-> 503 /);
      assert.match(attempts[1], /-> 200 /);
    },
    { LLM_LOG: 'debug' },
  ));

scenario('secret_never_in_errors_or_logs', () =>
  inEnv(
    async () => {
      const seen = [];
      for (const spec of ['err-oneapi:status=401', 'ok-html', 'hang']) {
        const { error, lines } = await captureLogs(() =>
          call(`mock-${spec}`, { timeoutMs: 300, maxRetries: 0 }),
        );
        seen.push(error.message, error.stack, util.inspect(error, { depth: 10 }), JSON.stringify(error), ...lines);
      }
      const client = llm.createClient({ apiKey: KEY, baseUrl: gw.url });
      seen.push(util.inspect(client, { showHidden: true, depth: 10 }), JSON.stringify(client));
      const e = await rejection(client.callSpecificModel('mock-stream-truncated', USER, { stream: true }).then(async (s) => {
        for await (const c of s) assert.ok(c);
      }));
      seen.push(util.inspect(e), e.stack);
      const text = seen.join('\n');
      assert.ok(text.includes('[LLM_Client] Error calling'), 'logs were captured');
      assert.ok(!text.includes(KEY), 'the API key leaked');
      assert.ok(!text.includes(KEY.slice(8)), 'part of the API key leaked');
    },
    { LLM_LOG: 'debug' },
  ));

// ------------------------------- streams alive without progress, defects behind real gateways

/** No message may show the JSON parser's words. */
function assertNoParserWords(message) {
  for (const word of ['invalid length', 'expected struct', 'Probe', 'trailing characters', 'EOF while']) {
    assert.ok(!message.includes(word), `${JSON.stringify(message)} shows ${word}`);
  }
}

scenario('stream_pings_without_data_time_out', () =>
  inEnv(async () => {
    const t0 = Date.now();
    const { chunks, error } = await failingStream('stream-ping-forever', { idleTimeoutMs: 400, timeoutMs: 5000 });
    assert.equal(chunks.length, 0);
    assert.equal(error.code, 'ETIMEDOUT');
    assert.equal(error.timeoutMs, 400);
    // Pings arrived every 100 ms all along: only the idle rule can have ended the stream.
    assert.ok(Date.now() - t0 >= 350, `ended after ${Date.now() - t0} ms`);
  }));

scenario('stream_pings_after_tokens_time_out', () =>
  inEnv(async () => {
    const { chunks, error, stream } = await failingStream('stream-ping-forever:after=2', {
      idleTimeoutMs: 400,
      timeoutMs: 5000,
    });
    assert.equal(chunks.length, 2);
    assert.equal(error.code, 'ETIMEDOUT');
    assert.equal(error.timeoutMs, 400);
    assert.ok(stream);
  }));

scenario('ok_json_not_object_is_bad_response', () =>
  inEnv(async () => {
    for (const [shape, what] of [
      ['pair', 'a JSON array of 2 items'],
      ['string', 'a JSON string'],
      ['number', 'a JSON number'],
    ]) {
      const e = await rejection(call(`mock-ok-not-object:shape=${shape}`));
      assert.equal(e.code, 'LLM_BAD_RESPONSE', shape);
      assert.equal(e.status, 200);
      assert.equal(e.message, `the gateway answered 200 with ${what}, not a chat completion`);
      assertNoParserWords(e.message);
    }
  }));

scenario('ok_json_array_of_completions_is_not_a_result', () =>
  inEnv(async () => {
    const e = await rejection(call('mock-ok-not-object:shape=triple'));
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.equal(e.message, 'the gateway answered 200 with a JSON array of 3 items, not a chat completion');
  }));

scenario('ok_litellm_fanout_array_is_bad_response', () =>
  inEnv(async () => {
    const e = await rejection(call('mock-ok-not-object:shape=fanout'));
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.equal(e.message, 'the gateway answered 200 with a JSON array of 4 items, not a chat completion');
    assertNoParserWords(e.message);
  }));

scenario('stream_answered_with_json_array_is_bad_response', () =>
  inEnv(async () => {
    const e = await rejection(call('mock-ok-not-object:shape=triple', { stream: true }));
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.match(e.message, /a JSON array of 3 items, not a chat completion$/);
  }));

scenario('embed_json_array_is_bad_response', () =>
  inEnv(async () => {
    const e = await rejection(llm.embed('mock-ok-not-object', 'hi'));
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.equal(e.message, 'the gateway answered 200 with a JSON array of 2 items, not an embeddings response');
  }));

scenario('ok_truncated_json_is_worded', () =>
  inEnv(async () => {
    const e = await rejection(call('mock-ok-truncated'));
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.match(
      e.message,
      /^the gateway answered 200 with a body that is not a chat completion: it is cut short at line 1 column \d+$/,
    );
    assertNoParserWords(e.message);
  }));

scenario('timeout_after_failed_attempt_keeps_last_error', () =>
  inEnv(async () => {
    const model = `mock-flaky:fails=9,status=500,ms=500,retry_after_ms=50,key=${unique('deadline-cut-')}`;
    const e = await rejection(call(model, { timeoutMs: 800, maxRetries: 2 }));
    assert.equal(e.code, 'ETIMEDOUT');
    assert.equal(e.timeoutMs, 800);
    assert.equal(e.attempts, 2);
    assert.equal(
      e.message,
      'timeout (800ms) after 2 attempts; last: HTTP 500 upstream temporarily unavailable (mock flaky failure 1 of 9)',
    );
    assert.equal(e.status, 500);
    assert.match(e.requestId, /^req_\d+$/);
    assert.equal(e.body.error.code, 'mock_flaky');
    assert.equal(e.errorCode, 'mock_flaky');
    assert.equal(e.type, 'one_api_error');
  }));

scenario('stream_error_frame_keeps_fields', () =>
  inEnv(async () => {
    const { error } = await failingStream('stream-error-frame');
    assert.equal(error.code, 'LLM_STREAM_ERROR');
    assert.equal(error.message, 'rate limited mid-stream');
    assert.deepEqual(error.body, { error: { message: 'rate limited mid-stream', code: '429' } });
    assert.equal(error.errorCode, '429');
    assert.match(error.requestId, /^req_\d+$/);
    const framed = (await failingStream('stream-event-error')).error;
    assert.equal(framed.message, 'upstream overloaded');
    assert.equal(framed.body.error.message, 'upstream overloaded');
  }));

scenario('stream_closed_before_any_event', () =>
  inEnv(async () => {
    for (const spec of ['stream-empty', 'stream-empty:abrupt=1']) {
      const { chunks, error } = await failingStream(spec);
      assert.equal(chunks.length, 0);
      assert.equal(error.code, 'LLM_STREAM_ERROR', spec);
      assert.equal(
        error.message,
        'the gateway closed the stream before sending any event (its upstream probably failed)',
        spec,
      );
    }
  }));

scenario('not_found_names_url_without_secrets', () =>
  withEnv(env({ LLM_BASE_URL: `${gw.url}/v1?api-key=s3cret&api-version=1` }), async () => {
    const e = await rejection(call('mock-err-not-found'));
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 404);
    assert.equal(e.message, `Not Found (POST ${gw.url}/v1/chat/completions?api-key=***&api-version=1)`);
    assert.ok(!util.inspect(e).includes('s3cret'));
  }));

scenario('flask_wrapped_error_summary_is_inner_message', () =>
  inEnv(async () => {
    const e = await rejection(call('mock-err-flask'));
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 401);
    assert.equal(e.message, 'Invalid token');
    assert.match(e.body.error, /^API Error: \{/);
  }));

// ---------------------------------------------------------------- embedding batches, vector size

const texts = (tag, n) => Array.from({ length: n }, (_, i) => `${tag} item ${i}`);
/** Logged embeddings requests whose first input starts with `tag`. */
const embedRequests = async (tag) =>
  (await gw.requests()).filter(
    (r) => r.body && Array.isArray(r.body.input) && String(r.body.input[0]).startsWith(tag),
  );

scenario('embed_batches_split_to_the_model_limit', () =>
  inEnv(async () => {
    const tag = unique('batch');
    const r = await llm.embed('text-embedding-v4', texts(tag, 200), { dimensions: 8, timeoutMs: 20_000 });
    assert.equal(r.data.length, 200);
    assert.deepEqual(
      r.data.map((d) => d.index),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.deepEqual(r.usage, { prompt_tokens: 600, total_tokens: 600 });
    assert.equal(r.model, 'text-embedding-v4');
    assert.equal(r.object, 'list');
    const reqs = await embedRequests(tag);
    assert.equal(reqs.length, 20);
    assert.ok(reqs.every((q) => q.body.input.length === 10));
    for (const i of [0, 57, 199]) {
      const one = await llm.embed('text-embedding-v4', `${tag} item ${i}`, { dimensions: 8 });
      assert.deepEqual(one.data[0].embedding, r.data[i].embedding, `item ${i}`);
    }
  }));

scenario('embed_batches_bounded_concurrency', () =>
  inEnv(
    async () => {
      const key = unique('conc');
      const model = `mock-dashscope-embed:ms=100,key=${key}`;
      const r = await llm.embed(model, texts(key, 60), { batchSize: 10, timeoutMs: 20_000 });
      assert.equal(r.data.length, 60);
      assert.equal((await requestsFor(gw, model)).length, 6);
      const stats = await gw.stats();
      assert.equal(stats.in_flight_peak[key], 2, JSON.stringify(stats));
    },
    { EMBEDDING_CONCURRENCY: '2' },
  ));

scenario('embed_batch_failure_names_range_and_batch_size', () =>
  inEnv(async () => {
    const e = await rejection(
      llm.embed(`mock-dashscope-embed:tag=${unique('fail')}`, texts('x', 25), { batchSize: 20, maxRetries: 0 }),
    );
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 400);
    assert.match(e.message, /^inputs 0-19 of 25: /);
    assert.match(e.message, /batch size is invalid, it should not be larger than 10/);
    assert.match(e.message, /EMBEDDING_BATCH_SIZE/);
  }));

scenario('embed_empty_list_is_config_error', () =>
  inEnv(async () => {
    const model = unique('emb-empty-');
    const e = await rejection(llm.embed(model, []));
    assert.equal(e.code, 'LLM_CLIENT_CONFIG');
    assert.deepEqual(await requestsFor(gw, model), []);
  }));

scenario('embed_dims_mismatch_is_bad_response', () =>
  inEnv(async () => {
    const e = await rejection(llm.embed('mock-embed:dims=4', ['a', 'b'], { dimensions: 8 }));
    assert.equal(e.code, 'LLM_BAD_RESPONSE');
    assert.match(e.message, /4 values/);
    assert.match(e.message, /8 were expected/);
  }));

scenario('embed_send_dims_off_keeps_dimensions_out', () =>
  inEnv(
    async () => {
      const model = `mock-embed:dims=8,tag=${unique('nodims')}`;
      const r = await llm.embed(model, 'hello');
      assert.equal(r.data[0].embedding.length, 8);
      const [req] = await requestsFor(gw, model);
      assert.equal(req.body.dimensions, undefined);
      const client = llm.createClient({ embeddingDims: 16, sendEmbeddingDims: false });
      const e = await rejection(client.embed(model, 'hello'));
      assert.equal(e.code, 'LLM_BAD_RESPONSE');
    },
    { EMBEDDING_DIMS: '8', EMBEDDING_SEND_DIMS: '0' },
  ));

// ---------------------------------------------------------------- reasoning split

const THINK = 'The user wants a short answer. Let me think it through first.';

/** Content pieces and joined reasoning of every delta of a stream. */
async function streamParts(model, options) {
  const stream = await call(model, { stream: true, ...options });
  const pieces = [];
  let reasoning = '';
  for await (const c of stream) {
    const d = (c.choices && c.choices[0] && c.choices[0].delta) || {};
    if (typeof d.content === 'string') pieces.push(d.content);
    if (typeof d.reasoning_content === 'string') reasoning += d.reasoning_content;
  }
  return { stream, pieces, content: pieces.join(''), reasoning };
}

scenario('reasoning_split_plain', () =>
  inEnv(async () => {
    const r = await call('mock-minimax', { reasoning: 'split' });
    assert.equal(r.choices[0].message.content, 'echo: hi');
    assert.equal(r.choices[0].message.reasoning_content, `\n${THINK}\n`);
    assert.deepEqual(r.x_provider_extra, { kept: true });
    const [req] = await requestsFor(gw, 'mock-minimax');
    assert.equal(req.body.reasoning, undefined, 'the option is not sent');
  }));

scenario('reasoning_split_streamed', () =>
  inEnv(
    async () => {
      const { stream, pieces, content, reasoning } = await streamParts('mock-minimax');
      assert.ok(pieces.every((p) => !p.includes('<')), JSON.stringify(pieces));
      assert.equal(content, 'echo: hi');
      assert.equal(reasoning, `\n${THINK}\n`);
      const done = await stream.finalCompletion();
      assert.equal(done.choices[0].message.content, 'echo: hi');
      assert.equal(done.choices[0].message.reasoning_content, `\n${THINK}\n`);
    },
    { LLM_REASONING: 'split' },
  ));

scenario('reasoning_split_one_char_per_chunk', () =>
  inEnv(async () => {
    const { stream, pieces, content, reasoning } = await streamParts('mock-minimax:chunk=1', {
      reasoning: 'split',
      response_format: { type: 'json_object' },
    });
    const answer = '```json\n{"answer":"echo: hi"}\n```';
    assert.equal(content, answer);
    assert.ok(pieces.every((p) => [...p].length === 1), JSON.stringify(pieces));
    assert.equal(reasoning, `\n${THINK}\n`);
    assert.equal((await stream.finalCompletion()).choices[0].message.content, answer);
  }));

scenario('reasoning_raw_by_default_untouched', () =>
  inEnv(async () => {
    const raw = `<think>\n${THINK}\n</think>\n\necho: hi`;
    const r = await call('mock-minimax');
    assert.equal(r.choices[0].message.content, raw);
    assert.equal(r.choices[0].message.reasoning_content, undefined);
    const { content, reasoning } = await streamParts('mock-minimax');
    assert.equal(content, raw);
    assert.equal(reasoning, '');
  }));

// ---------------------------------------------------------------- models list

scenario('models_list_returns_gateway_json', () =>
  inEnv(async () => {
    const free = await llm.listModels({ timeoutMs: 5000 });
    assert.equal(free.object, 'list');
    const ids = free.data.map((m) => m.id);
    assert.ok(ids.includes('qwen-plus') && ids.includes('text-embedding-v4'), ids.join(','));
    const log = await gw.requests();
    const req = log.filter((r) => r.path === '/v1/models').pop();
    assert.equal(req.method, 'GET');
    assert.equal(req.headers.authorization, 'Bearer <redacted>');
    assert.equal(req.body, null);
    const client = llm.createClient();
    assert.deepEqual((await client.listModels()).data.map((m) => m.id), ids);
  }));

scenario('models_404_is_http_error', () =>
  inEnv(async () => {
    const e = await rejection(llm.listModels({ maxRetries: 2, headers: { 'x-mock-scenario': 'err-notfound' } }));
    assert.ok(e instanceof llm.LLMClientError);
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.status, 404);
    assert.match(e.message, /Not Found/);
  }));

// ---------------------------------------------------------------- failover

const refused = async () => `http://127.0.0.1:${await closedPort()}`;
/** A base URL on the shared gateway whose every request answers as `spec`. */
const gwAs = (spec) => `${gw.url}/__gw/${spec}/v1`;
const routed = (baseUrl, fallbacks, extra = {}) =>
  llm.createClient({ baseUrl, apiKey: KEY, fallbacks: fallbacks.map((u) => ({ baseUrl: u, apiKey: KEY })), ...extra });

scenario('failover_key_429_rotates_to_next_key', () =>
  withEnv({ LLM_BASE_URL: gw.url, LLM_API_KEY: 'sk-one', LLM_API_KEYS: 'sk-two' }, async () => {
    const started = Date.now();
    const r = await call('qwen-plus', { maxRetries: 2, headers: { 'x-mock-scenario': 'limit-key:bearer=sk-one' } });
    assert.ok(Date.now() - started < 450, 'no backoff between keys');
    assert.equal(r.choices[0].message.content, 'echo: hi');
    const d = r.attemptsDetail;
    assert.deepEqual(d.map((a) => [a.keyIndex, a.status, a.code]), [[0, 429, 'LLM_HTTP_ERROR'], [1, 200, null]]);
    assert.ok(!JSON.stringify(d).includes('sk-'), 'a key leaked');
    // Non-enumerable: the reply serialises exactly as the gateway's JSON.
    assert.ok(!Object.keys(r).includes('attemptsDetail'));
    assert.ok(!JSON.stringify(r).includes('attemptsDetail'));
  }));

scenario('failover_refused_endpoint_moves_to_next', async () => {
  const dead = await refused();
  await withEnv({ LLM_BASE_URL: dead, LLM_API_KEY: KEY, LLM_FALLBACK_BASE_URLS: gw.url }, async () => {
    const r = await call('qwen-plus', { maxRetries: 0 });
    assert.equal(r.choices[0].message.content, 'echo: hi');
    const d = r.attemptsDetail;
    assert.equal(d.length, 2);
    assert.equal(d[0].endpoint, `${dead}/v1/chat/completions`);
    assert.equal(d[0].code, 'LLM_CONNECTION_ERROR');
    assert.equal(d[0].status, null);
    assert.equal(d[1].endpoint, `${gw.url}/v1/chat/completions`);
    assert.equal(d[1].status, 200);
  });
});

scenario('failover_gateway_killed_mid_run', async () => {
  const primary = await startGateway();
  const client = routed(primary.url, [gw.url]);
  assert.equal((await client.callSpecificModel('qwen-plus', USER, { maxRetries: 0 })).attemptsDetail.length, 1);
  await primary.stop();
  const r = await client.callSpecificModel('qwen-plus', USER, { maxRetries: 0 });
  assert.equal(r.attemptsDetail.length, 2);
  assert.equal(r.attemptsDetail[0].code, 'LLM_CONNECTION_ERROR');
  assert.equal(r.choices[0].message.content, 'echo: hi');
});

scenario('failover_model_not_found_uses_fallback_model', () =>
  inEnv(async () => {
    const r = await call('mock-err-message:status=404', { maxRetries: 0, fallbackModels: ['mock-ok'] });
    assert.equal(r.mock_echo.body.model, 'mock-ok');
    assert.ok(!('fallbackModels' in r.mock_echo.body), 'fallbackModels is not sent');
    assert.deepEqual(r.attemptsDetail.map((a) => [a.model, a.status]), [['mock-err-message:status=404', 404], ['mock-ok', 200]]);
  }));

scenario('failover_400_ends_at_once', async () => {
  const client = routed(gw.url, [gw.url], { fallbackModels: ['mock-ok'] });
  for (const model of ['mock-err-oneapi:status=400', 'mock-err-fastapi422']) {
    const e = await rejection(client.callSpecificModel(model, USER, { maxRetries: 2 }));
    assert.equal(e.code, 'LLM_HTTP_ERROR');
    assert.equal(e.attempts, 1, model);
    assert.equal(e.attemptsDetail.length, 1, model);
  }
});

scenario('failover_open_breaker_is_skipped', async () => {
  const dead = await refused();
  const client = routed(dead, [gw.url], { breakerFailures: 2, breakerCooldownMs: 60_000 });
  for (let i = 0; i < 2; i++) {
    assert.equal((await client.callSpecificModel('qwen-plus', USER, { maxRetries: 0 })).attemptsDetail.length, 2);
  }
  const [mine, fallback] = client.breakerState();
  assert.equal(mine.endpoint, dead);
  assert.equal(mine.state, 'open');
  assert.equal(mine.opens, 1);
  assert.equal(fallback.state, 'closed');
  const r = await client.callSpecificModel('qwen-plus', USER, { maxRetries: 0 });
  assert.equal(r.attemptsDetail.length, 1, 'the open endpoint is skipped');
  assert.ok(r.attemptsDetail[0].endpoint.startsWith(gw.url));
  // Shared by the process: another client and the free function see it.
  assert.equal(routed(dead, [gw.url]).breakerState()[0].state, 'open');
  assert.ok(llm.breakerState().some((b) => b.endpoint === dead && b.state === 'open'));
});

scenario('failover_all_open_tries_the_first_opened', async () => {
  const [a, b] = [await refused(), await refused()];
  const client = routed(a, [b], { breakerFailures: 1, breakerCooldownMs: 60_000 });
  const first = await rejection(client.callSpecificModel('qwen-plus', USER, { maxRetries: 0 }));
  assert.equal(first.attemptsDetail.length, 2);
  assert.ok(client.breakerState().every((s) => s.state === 'open'));
  const e = await rejection(client.callSpecificModel('qwen-plus', USER, { maxRetries: 0 }));
  assert.equal(e.code, 'LLM_CONNECTION_ERROR');
  assert.equal(e.attemptsDetail.length, 1, 'one request still goes out');
  assert.ok(e.attemptsDetail[0].endpoint.startsWith(a));
});

scenario('failover_stream_before_first_byte', async () => {
  const client = routed(gwAs('err-empty:status=503'), [gw.url]);
  const s = await client.callSpecificModel('qwen-plus', USER, { stream: true, maxRetries: 0 });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Hello, world!');
  assert.deepEqual(s.attemptsDetail.map((a) => a.status), [503, 200]);
});

scenario('failover_stream_not_after_first_byte', async () => {
  const tag = unique('after-');
  const client = routed(gwAs('stream-reset:after=2'), [gwAs(`ok:tag=${tag}`)]);
  const s = await client.callSpecificModel('qwen-plus', USER, { stream: true, maxRetries: 2 });
  let got = 0;
  const e = await rejection((async () => {
    for await (const _ of s) got += 1;
  })());
  assert.equal(got, 2);
  assert.equal(e.code, 'LLM_STREAM_ERROR');
  const moved = (await gw.requests()).filter((r) => r.path.includes(tag));
  assert.equal(moved.length, 0, 'the call moved after stream bytes reached the caller');
});

scenario('failover_deadline_held_across_chain', async () => {
  const slowFail = () => gwAs(`flaky:fails=1000,ms=300,key=${unique('chain-')}`);
  const client = routed(slowFail(), [slowFail(), slowFail()]);
  const started = Date.now();
  const e = await rejection(client.callSpecificModel('qwen-plus', USER, { timeoutMs: 800, maxRetries: 5 }));
  assert.ok(Date.now() - started < 1500, `${Date.now() - started} ms`);
  assert.equal(e.code, 'ETIMEDOUT');
  assert.equal(e.status, 503, "the last attempt's status is kept");
  assert.ok(e.attemptsDetail.length >= 2);
  assert.equal(e.attemptsDetail[0].status, 503);
});

// ---------------------------------------------------------------- OpenClaw providers

const OPENCLAW_FIXTURE = path.join(__dirname, '..', 'fixtures', 'openclaw.json');
const openclawEnv = (extra = {}) =>
  env({
    LLM_PROVIDERS: 'openclaw',
    OPENCLAW_CONFIG_PATH: OPENCLAW_FIXTURE,
    CLAW_TEST_GATEWAY: gw.url,
    CLAW_TEST_ONEAPI_KEY: KEY,
    CLAW_TEST_DASHSCOPE_KEY: KEY,
    CLAW_TEST_TEAM: 'claw',
    ...extra,
  });

scenario('openclaw_provider_model_resolved_from_config', () =>
  withEnv(openclawEnv(), async () => {
    // Variables the config names are read from process.env at the call, like every setting.
    const extraNames = ['CLAW_TEST_GATEWAY', 'CLAW_TEST_ONEAPI_KEY', 'CLAW_TEST_DASHSCOPE_KEY', 'CLAW_TEST_TEAM'];
    try {
      let r = await call('oneapi/qwen-plus', { maxRetries: 0 });
      assert.equal(r.mock_echo.body.model, 'qwen-plus', 'the model id after the slash');
      assert.equal(r.mock_echo.path, '/v1/chat/completions');
      assert.equal(r.mock_echo.headers.authorization, 'Bearer <redacted>', "the SecretRef's key");
      assert.equal(r.mock_echo.headers['x-openclaw-team'], 'claw');
      r = await call('dashscope/qwen-max', { maxRetries: 0 });
      assert.equal(r.mock_echo.path, '/compatible-mode/v1/chat/completions');
      assert.equal(r.mock_echo.body.model, 'qwen-max');
      assert.equal(r.mock_echo.headers.authorization, 'Bearer <redacted>');
      r = await call('openrouter/qwen-plus', { maxRetries: 0 });
      assert.equal(r.mock_echo.body.model, 'openrouter/qwen-plus', 'a provider the file does not name keeps the env gateway');
      assert.equal(r.mock_echo.headers['x-openclaw-team'], undefined);
      const client = llm.createClient();
      r = await client.callSpecificModel('oneapi/qwen-plus', USER, { maxRetries: 0 });
      assert.equal(r.mock_echo.body.model, 'qwen-plus');
    } finally {
      for (const n of extraNames) delete process.env[n];
    }
  }));

scenario('openclaw_bad_config_names_file_and_line', async () => {
  const bad = path.join(require('node:os').tmpdir(), `${unique('openclaw-bad-')}.json`);
  fs.writeFileSync(bad, '{\n  models: {\n    providers: { p: { baseUrl: , } },\n  },\n}\n');
  const extraNames = ['CLAW_TEST_GATEWAY', 'CLAW_TEST_ONEAPI_KEY', 'CLAW_TEST_DASHSCOPE_KEY', 'CLAW_TEST_TEAM'];
  try {
    await withEnv(openclawEnv({ OPENCLAW_CONFIG_PATH: bad }), async () => {
      const e = await rejection(call('oneapi/qwen-plus', { maxRetries: 0 }));
      assert.equal(e.code, 'LLM_CLIENT_CONFIG');
      assert.ok(e.message.includes(bad), e.message);
      assert.match(e.message, /line 3/);
    });
    await withEnv(openclawEnv({ CLAW_TEST_TEAM: '' }), async () => {
      const e = await rejection(call('oneapi/qwen-plus', { maxRetries: 0 }));
      assert.equal(e.code, 'LLM_CLIENT_CONFIG');
      assert.match(e.message, /CLAW_TEST_TEAM/);
      assert.match(e.message, /x-openclaw-team/);
    });
  } finally {
    fs.rmSync(bad, { force: true });
    for (const n of extraNames) delete process.env[n];
  }
});

// ---------------------------------------------------------------- observability

const parsePrometheus = require('parse-prometheus-text-format');

/** A listener that keeps what it got, and those events after `llm.flushEvents()`. */
function collector() {
  const got = [];
  const fn = (e) => got.push(e);
  fn.take = () => {
    assert.ok(llm.flushEvents(5000), 'events delivered in time');
    return got.splice(0);
  };
  return fn;
}
const shape = (events) => events.map((e) => [e.type, e.attempt, e.ok]);

scenario('events_success_attempt_then_call', () =>
  inEnv(async () => {
    const seen = collector();
    const model = `mock-ok:tag=${unique('ev')}`;
    const r = await call(model, { maxRetries: 0, onEvent: seen });
    const events = seen.take();
    assert.deepEqual(shape(events), [['attempt', 1, true], ['call', 1, true]]);
    const [attempt, done] = events;
    assert.equal(attempt.status, 200);
    assert.equal(attempt.model, model);
    assert.equal(attempt.keyIndex, 0);
    assert.ok(attempt.endpoint.endsWith('/v1/chat/completions'), attempt.endpoint);
    assert.match(attempt.requestId, /^req_/);
    assert.equal(done.operation, 'chat');
    assert.equal(done.code, null);
    assert.deepEqual(done.usage, r.usage);
    assert.ok(done.ms >= attempt.ms);
  }));

scenario('events_retry_reports_delay', () =>
  inEnv(async () => {
    const seen = collector();
    await call(`mock-flaky:fails=1,status=500,retry_after_ms=50,key=${unique('evr')}`, { maxRetries: 2, onEvent: seen });
    const events = seen.take();
    assert.deepEqual(shape(events), [['attempt', 1, false], ['attempt', 2, true], ['call', 2, true]]);
    assert.equal(events[0].status, 500);
    assert.equal(events[0].code, 'LLM_HTTP_ERROR');
    assert.equal(events[0].retryDelayMs, 50);
    assert.equal(events[1].retryDelayMs, null);
  }));

scenario('events_failover_names_endpoint_and_key', async () => {
  const dead = await refused();
  const seen = collector();
  const client = llm.createClient({
    baseUrl: dead,
    apiKey: 'sk-dead-secret',
    fallbacks: [{ baseUrl: gw.url, apiKey: KEY }],
    breakerFailures: 1000,
    onEvent: seen,
  });
  await client.callSpecificModel(`mock-ok:tag=${unique('evf')}`, USER, { maxRetries: 0 });
  const events = seen.take();
  assert.deepEqual(shape(events), [['attempt', 1, false], ['attempt', 2, true], ['call', 2, true]]);
  assert.ok(events[0].endpoint.startsWith(dead), events[0].endpoint);
  assert.equal(events[0].code, 'LLM_CONNECTION_ERROR');
  assert.ok(events[1].endpoint.startsWith(gw.url));
  const text = JSON.stringify(events);
  assert.ok(!text.includes('sk-dead-secret') && !text.includes(KEY), text);
});

scenario('events_stream_end_has_ttft_and_usage', () =>
  inEnv(async () => {
    const seen = collector();
    const s = await call('mock-stream', { stream: true, onEvent: seen });
    for await (const chunk of s) assert.ok(chunk);
    const done = seen.take().find((e) => e.type === 'call');
    assert.equal(done.operation, 'stream');
    assert.equal(done.ok, true);
    assert.ok(done.ttftMs > 0 && done.ttftMs <= done.ms, `${done.ttftMs} ${done.ms}`);
    assert.ok(done.usage.total_tokens > 0);
  }));

scenario('events_stream_abort_emits_call', () =>
  inEnv(async () => {
    const seen = collector();
    const s = await call('mock-stream-stall:after=2', { stream: true, onEvent: seen });
    for await (const chunk of s) {
      assert.ok(chunk);
      break; // leaving the loop closes the stream
    }
    await sleep(100);
    const done = seen.take().find((e) => e.type === 'call');
    assert.equal(done.operation, 'stream');
    assert.equal(done.code, 'ABORT_ERR');
    assert.equal(done.ok, false);
  }));

scenario('events_listener_that_throws_never_breaks_the_call', async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const client = llm.createClient({
      baseUrl: gw.url,
      apiKey: KEY,
      onEvent: () => {
        throw new Error('a listener with a bug');
      },
    });
    const model = `mock-ok:tag=${unique('evt')}`;
    const calls = [];
    const onCall = (e) => {
      if (e.model === model) calls.push(e);
    };
    llm.events.on('call', onCall);
    try {
      for (let i = 0; i < 3; i++) await client.callSpecificModel(model, USER, { maxRetries: 0 });
      assert.ok(llm.flushEvents(5000));
    } finally {
      llm.events.off('call', onCall);
    }
    assert.equal(calls.length, 3);
    await sleep(10); // warnings are emitted on the next tick
    assert.ok(warnings.some((w) => String(w.message).includes('a listener with a bug')), 'reported');
  } finally {
    process.off('warning', onWarning);
  }
});

scenario('stats_after_known_mix', () =>
  inEnv(async () => {
    const ok = `mock-ok:tag=${unique('st')}`;
    let tokens = 0;
    for (let i = 0; i < 4; i++) tokens += (await call(ok, { maxRetries: 0 }, [{ role: 'user', content: 'one two three' }])).usage.total_tokens;
    const flaky = `mock-flaky:fails=2,status=503,retry_after_ms=1,key=${unique('stf')}`;
    await call(flaky, { maxRetries: 2 });
    const bad = `mock-err-oneapi:tag=${unique('stb')}`;
    await rejection(call(bad, { maxRetries: 0 }));
    const s = llm.stats();
    const m = s.models[ok];
    assert.equal(m.calls, 4);
    assert.deepEqual(m.failures, {});
    assert.equal(m.retries, 0);
    assert.equal(m.totalTokens, tokens);
    assert.equal(m.promptTokens + m.completionTokens, tokens);
    const l = m.latencyMs;
    assert.ok(l.p50 > 0 && l.p50 <= l.p95 && l.p95 <= l.p99, JSON.stringify(l));
    assert.equal(s.models[flaky].retries, 2);
    assert.equal(s.models[bad].failures.LLM_HTTP_ERROR, 1);
    assert.equal(typeof s.droppedEvents, 'number');
  }));

scenario('metrics_text_parses_as_prometheus', () =>
  inEnv(async () => {
    const model = unique('pm-model-');
    await call(model, { maxRetries: 0, headers: { 'x-mock-scenario': 'ok' } });
    const families = parsePrometheus(llm.metricsText());
    const calls = families.find((f) => f.name === 'claw_llm_calls_total');
    assert.equal(calls.type, 'COUNTER');
    const sample = calls.metrics.find((x) => x.labels.model === model);
    assert.equal(Number(sample.value), 1);
    const latency = families.find((f) => f.name === 'claw_llm_call_duration_seconds');
    assert.equal(latency.type, 'SUMMARY');
    assert.ok(latency.metrics.some((x) => x.quantiles && x.quantiles['0.99'] !== undefined));
    assert.ok(families.every((f) => f.name.startsWith('claw_llm_')));
  }));

/** The spans the mock's OTLP receiver got for `model` (after a flush). */
async function spansFor(model) {
  assert.ok(llm.flushTelemetry(5000), 'spans exported in time');
  const res = await fetch(`${gw.url}/__mock/spans`);
  const all = await res.json();
  return all.filter((s) => s.attributes['gen_ai.request.model'] === model);
}

scenario('otel_span_has_genai_attributes_and_parent', () =>
  inEnv(
    async () => {
      const model = `mock-ok:tag=${unique('otel')}`;
      const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const r = await call(model, { maxRetries: 0, traceparent: parent }, [{ role: 'user', content: 'secret words' }]);
      const spans = await spansFor(model);
      assert.equal(spans.length, 1, JSON.stringify(spans));
      const s = spans[0];
      assert.equal(s.name, `chat ${model}`);
      assert.equal(s.kind, 'client');
      assert.equal(s.trace_id, '0af7651916cd43dd8448eb211c80319c');
      assert.equal(s.parent_span_id, 'b7ad6b7169203331');
      const a = s.attributes;
      assert.equal(a['gen_ai.operation.name'], 'chat');
      assert.equal(a['gen_ai.provider.name'], 'openai');
      assert.equal(a['gen_ai.response.model'], r.model);
      assert.equal(a['gen_ai.response.id'], r.id);
      assert.equal(a['gen_ai.usage.input_tokens'], r.usage.prompt_tokens);
      assert.equal(a['gen_ai.usage.output_tokens'], r.usage.completion_tokens);
      assert.deepEqual(a['gen_ai.response.finish_reasons'], ['stop']);
      assert.equal(a['gen_ai.input.messages'], undefined);
      const [sent] = await requestsFor(gw, model);
      assert.equal(sent.headers.traceparent, `00-${s.trace_id}-${s.span_id}-01`);
      assert.equal(sent.body.traceparent, undefined);
    },
    { OTEL_EXPORTER_OTLP_ENDPOINT: gw.url },
  ));

scenario('otel_content_only_when_capture_enabled', () =>
  inEnv(
    async () => {
      const model = `mock-ok:tag=${unique('otelc')}`;
      await call(model, { maxRetries: 0 }, [{ role: 'user', content: 'say cheese' }]);
      const [s] = await spansFor(model);
      assert.ok(s.attributes['gen_ai.input.messages'].includes('say cheese'));
      assert.ok(s.attributes['gen_ai.output.messages'].includes('echo: say cheese'));
    },
    { OTEL_EXPORTER_OTLP_ENDPOINT: gw.url, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true' },
  ));

scenario('observability_never_shows_the_key', async () => {
  const secret = 'sk-obs-secret-never-shown';
  const own = await startGateway({ expectKey: secret });
  try {
    await withEnv({ LLM_BASE_URL: own.url, LLM_API_KEY: secret, OTEL_EXPORTER_OTLP_ENDPOINT: gw.url }, async () => {
      const seen = collector();
      const model = `mock-ok:tag=${unique('obsk')}`;
      const bad = `mock-err-oneapi:tag=${unique('obsk')}`;
      await call(model, { maxRetries: 0, onEvent: seen });
      await rejection(call(bad, { maxRetries: 0, onEvent: seen }));
      let everything = JSON.stringify(seen.take());
      everything += JSON.stringify(llm.stats()) + llm.metricsText();
      everything += JSON.stringify(await spansFor(model)) + JSON.stringify(await spansFor(bad));
      assert.ok(everything.includes(model), 'nothing recorded');
      assert.ok(!everything.includes(secret), 'the key leaked');
    });
  } finally {
    await own.stop();
  }
});
