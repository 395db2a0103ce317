'use strict';
/**
 * claw-llm-client: a drop-in for skills/shared/llm_client.js over the claw-llm Rust core.
 *
 *   const { callSpecificModel } = require('claw-llm-client');
 *   const reply = await callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }]);
 *
 * This file only does what napi cannot: encode arguments as JSON, read process.env at each
 * call, turn native errors into real Error objects, write log lines through console.error,
 * wire AbortSignal, and wrap streams in an async iterable. Behaviour lives in the core
 * (docs/behaviour.md in the repository): this layer has no rule about HTTP, retries or timeouts.
 */

const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');

/**
 * Platforms with a prebuilt binary: each is the npm package `claw-llm-client-<platform>`, an
 * optional dependency of this one that npm installs only where its os/cpu/libc match.
 */
const PLATFORMS = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
];

const native = loadNative();

/**
 * How the native module is found: CLAW_LLM_NATIVE (a .node path), then a build in this
 * directory (a clone of the repository after `npm run build`), then the platform package.
 */
function loadNative() {
  const override = process.env.CLAW_LLM_NATIVE;
  if (override) return require(path.resolve(override));
  const triple = platformTriple();
  for (const file of [`claw-llm.${triple}.node`, 'claw-llm.node']) {
    const local = path.join(__dirname, file);
    if (fs.existsSync(local)) return require(local);
  }
  const pkg = `claw-llm-client-${triple}`;
  try {
    return require(pkg);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes(`'${pkg}'`)) {
      throw new Error(`claw-llm-client: the native binary in ${pkg} failed to load: ${e.message}`, {
        cause: e,
      });
    }
  }
  const hint = PLATFORMS.includes(triple)
    ? `install it (npm skips optional dependencies under --omit=optional or --no-optional): npm install ${pkg}`
    : `no prebuilt binary exists for ${triple}; build one from source (cargo + \`npm run build\` in a clone) and point CLAW_LLM_NATIVE at the .node file`;
  throw new Error(
    `claw-llm-client: no native binary for platform ${triple}: the package ${pkg} is not installed; ` +
      `${hint}. Supported platforms: ${PLATFORMS.join(', ')}`,
  );
}

function platformTriple() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl() {
  try {
    return !process.report.getReport().header.glibcVersionRuntime;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- environment (docs/behaviour.md#configuration)

/** The variables the core reads; their values are sent with every free-function call. */
const ENV_KEYS = native.envKeys();

/**
 * On the main thread process.env is the process's own environment (reads are getenv, writes
 * setenv), so the native side reads it itself, at the same moment and far cheaper than a
 * process.env lookup per variable. A worker's process.env is its own copy: it is sent.
 */
const MAIN_THREAD = require('node:worker_threads').isMainThread;

/**
 * process.env as the core should see it now: the values of ENV_KEYS joined by NUL, or null on
 * the main thread (the native side reads the same environment).
 */
function envSnapshot() {
  if (MAIN_THREAD) return null;
  const env = process.env;
  let s = '';
  for (let i = 0; i < ENV_KEYS.length; i++) {
    if (i > 0) s += '\0';
    const v = env[ENV_KEYS[i]];
    if (v !== undefined) s += v.indexOf('\0') === -1 ? v : v.replace(/\0/g, '');
  }
  // OpenClaw's config names variables of its own (`${VAR}`, SecretRefs, <PROVIDER>_API_KEYS):
  // with LLM_PROVIDERS set, every variable follows as NAME=value.
  if (env.LLM_PROVIDERS) {
    for (const [k, v] of Object.entries(env)) {
      if (typeof v === 'string' && v.indexOf('\0') === -1) s += `\0${k}=${v}`;
    }
  }
  return s;
}

// ---------------------------------------------------------------- logs (docs/behaviour.md#logs-and-secrets)

/** Writes the core's queued log lines through console.error. */
function flushLogs() {
  const lines = native.drainLogs();
  if (lines) for (const line of lines) console.error(line);
}

// ---------------------------------------------------------------- errors (docs/behaviour.md#errors)

/** Prefix of a native error message carrying structured fields (see bindings-node/src/error.rs). */
const MARK = '\u0001claw-llm-error:';

/**
 * Every error claw-llm raises: `code` is one of LLM_CLIENT_CONFIG, ETIMEDOUT, LLM_HTTP_ERROR,
 * LLM_API_ERROR, LLM_BAD_RESPONSE, LLM_CONNECTION_ERROR, LLM_STREAM_ERROR, ABORT_ERR (or
 * LLM_INTERNAL_ERROR for a bug in claw-llm). `cause` is the server's words, summarised.
 * Its `name` stays 'Error' (as the original llm_client.js errors) except for aborts.
 */
class LLMClientError extends Error {
  constructor(fields) {
    super(fields.message, { cause: fields.summary === undefined ? fields.message : fields.summary });
    this.code = fields.code;
    for (const key of FIELDS) {
      if (fields[key] !== undefined && fields[key] !== null) this[key] = fields[key];
    }
  }
}

/** A call or stream cancelled through `options.signal` or `stream.abort()` (code ABORT_ERR). */
class AbortError extends LLMClientError {}
Object.defineProperty(AbortError.prototype, 'name', {
  value: 'AbortError',
  writable: true,
  configurable: true,
});

const FIELDS = [
  'status',
  'requestId',
  'type',
  'param',
  'errorCode',
  'attempts',
  'timeoutMs',
  'retryAfterMs',
  'body',
  'attemptsDetail',
];

function makeError(fields) {
  return fields.code === 'ABORT_ERR' ? new AbortError(fields) : new LLMClientError(fields);
}

/** A native rejection as the Error the caller sees. */
function toError(e) {
  const message = e && typeof e.message === 'string' ? e.message : String(e);
  if (message.startsWith(MARK)) {
    try {
      return makeError(JSON.parse(message.slice(MARK.length)));
    } catch {
      // fall through: report it as an internal error below
    }
  }
  return makeError({
    code: 'LLM_INTERNAL_ERROR',
    message: `internal error in claw-llm (please report it): ${message}`,
    attempts: 0,
  });
}

// ---------------------------------------------------------------- arguments

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const t = typeof v;
  return t === 'object' || t === 'undefined' ? t : `a ${t}`;
}

function isAbortSignal(s) {
  return typeof s === 'object' && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function';
}

/**
 * Encodes one call for the native side. Nothing here validates what the core validates
 * (messages shape, option values, `stream` type): a value JS cannot even encode becomes
 * `argError`, which the core reports as LLM_CLIENT_CONFIG (and logs like any failed call).
 */
function encode(model, payload, options, what) {
  const a = { model: '', payload: '', options: 'null', argError: null, signal: null, stream: false };
  if (typeof model === 'string') a.model = model;
  else if (model !== undefined && model !== null) {
    a.model = `<${typeof model}>`;
    a.argError = `model must be a non-empty string, got ${describe(model)}`;
    return a;
  }
  try {
    if (options !== undefined && options !== null) {
      if (typeof options === 'object') {
        const signal = options.signal;
        if (signal !== undefined && signal !== null) {
          if (!isAbortSignal(signal)) {
            a.argError = `signal must be an AbortSignal, got ${describe(signal)}`;
            return a;
          }
          a.signal = signal;
        }
        a.stream = options.stream === true;
        const onEvent = options.onEvent;
        if (onEvent !== undefined && onEvent !== null) {
          if (typeof onEvent !== 'function') {
            a.argError = `onEvent must be a function, got ${describe(onEvent)}`;
            return a;
          }
          options = { ...options, onEvent: listen(onEvent, true) };
        }
      }
      const json = JSON.stringify(options);
      if (json === undefined) {
        a.argError = `options must be an object, got ${describe(options)}`;
        return a;
      }
      a.options = json;
    }
  } catch (e) {
    a.argError = `options cannot be sent: ${e && e.message}`;
    return a;
  }
  try {
    const json = JSON.stringify(payload);
    a.payload = json === undefined ? 'null' : json;
  } catch (e) {
    a.argError = `${what} cannot be sent: ${e && e.message}`;
  }
  return a;
}

/** A native cancel handle driven by `signal`, or null. */
function link(signal) {
  if (!signal) return null;
  const handle = new native.CancelHandle();
  if (signal.aborted) {
    handle.cancel();
    return { handle, unlink() {} };
  }
  const onAbort = () => handle.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  return { handle, unlink: () => signal.removeEventListener('abort', onAbort) };
}

// ---------------------------------------------------------------- events

/**
 * Every attempt and every finished call is an event (see README, "Observability"). The core
 * delivers them off the request path; the native side hands them over on this thread, tagged:
 * 0 for `events` (the process-wide emitter), another tag for one call's or one client's
 * `onEvent`. A listener that throws is reported as a process warning and never breaks a call.
 */
const events = new EventEmitter();
const EVENT_NAMES = new Set(['event', 'attempt', 'call']);
const JS_NAMES = {
  key_index: 'keyIndex',
  ttft_ms: 'ttftMs',
  request_id: 'requestId',
  retry_delay_ms: 'retryDelayMs',
};
/** tag -> { fn, once }: `once` entries (a call's) go after its `call` event. */
const eventListeners = new Map();
const MAX_CALL_LISTENERS = 10_000;
let lastTag = 0;
let globalListener = null;

function listen(fn, once) {
  const tag = ++lastTag;
  if (once && eventListeners.size >= MAX_CALL_LISTENERS) {
    // A call that failed before reaching the core sends no call event: forget the oldest.
    for (const [t, l] of eventListeners) {
      if (l.once) {
        eventListeners.delete(t);
        break;
      }
    }
  }
  eventListeners.set(tag, { fn, once });
  return tag;
}

function jsEvent(text) {
  const raw = JSON.parse(text);
  const ev = {};
  for (const k of Object.keys(raw)) ev[JS_NAMES[k] || k] = raw[k];
  return ev;
}

function reportListenerError(e) {
  process.emitWarning(`an onEvent listener threw: ${(e && e.stack) || e}`, 'ClawLLMWarning');
}

function emitTo(name, ev) {
  for (const fn of events.rawListeners(name)) {
    try {
      fn.call(events, ev);
    } catch (e) {
      reportListenerError(e);
    }
  }
}

function deliverEvents(tags, texts) {
  for (let i = 0; i < tags.length; i++) {
    let ev;
    try {
      ev = jsEvent(texts[i]);
    } catch {
      continue;
    }
    const tag = tags[i];
    if (tag === 0) {
      emitTo('event', ev);
      emitTo(ev.type, ev);
      continue;
    }
    const l = eventListeners.get(tag);
    if (l === undefined) continue;
    if (l.once && ev.type === 'call') eventListeners.delete(tag);
    try {
      l.fn(ev);
    } catch (e) {
      reportListenerError(e);
    }
  }
}

native.eventsAttach(deliverEvents);

// The core builds events only while someone listens: the native listener behind `events` is
// there only while `events` has a listener for one of its names.
events.on('newListener', (name) => {
  if (EVENT_NAMES.has(name) && globalListener === null) globalListener = native.eventsListen();
});
events.on('removeListener', () => {
  const n = events.listenerCount('event') + events.listenerCount('attempt') + events.listenerCount('call');
  if (n === 0 && globalListener !== null) {
    native.eventsUnlisten(globalListener);
    globalListener = null;
  }
});

/**
 * Hands every event queued so far to its listeners now (waiting at most `timeoutMs` for the
 * core's event thread); `true` when nothing was left behind. Handy before reading what a
 * listener collected, and at the end of a short script.
 */
function flushEvents(timeoutMs = 5000) {
  const b = native.eventsFlush(Math.max(0, Math.min(Number(timeoutMs) || 0, 0xffffffff)));
  deliverEvents(b.tags, b.events);
  return b.delivered;
}

/**
 * Per model since the process started (or `resetStats()`): `{ models: { [model]: { calls,
 * failures: { [code]: n }, retries, promptTokens, completionTokens, totalTokens, latencyMs:
 * { p50, p95, p99 } } }, droppedEvents }`.
 */
function stats() {
  return JSON.parse(native.statsJson());
}

/** Starts the statistics again from zero. */
function resetStats() {
  native.resetStats();
}

/** The statistics in Prometheus' text format (`claw_llm_*` metrics, labels model and code). */
function metricsText() {
  return native.metricsText();
}

/**
 * Exports the OpenTelemetry spans still queued, waiting at most `timeoutMs`; `true` when done
 * in time. It also happens by itself when the process exits (bounded to 2 s).
 */
function flushTelemetry(timeoutMs = 2000) {
  return native.flushTelemetry(Math.max(0, Math.min(Number(timeoutMs) || 0, 0xffffffff)));
}

// ---------------------------------------------------------------- completions

/**
 * Chat and embeddings calls settle through one native completion queue: the native side calls
 * `settle` with every call finished since its last call (ids negated for failures), instead of
 * one promise bridge per call. `completions` keeps the process alive while any call is pending.
 */
const pending = new Map();
let lastId = 0;
const completions = new native.Completions(settle);

function settle(ids, texts) {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const key = Math.abs(id);
    const p = pending.get(key);
    if (p === undefined) continue;
    pending.delete(key);
    if (id > 0) p.resolve(texts[i]);
    else p.reject(toError({ message: texts[i] }));
  }
  if (pending.size === 0) completions.release();
}

/** Starts one native call: `target` is a NativeClient, or null for the environment. */
function start(target, kind, a, handle) {
  if (kind === 'stream') {
    if (target) return target.stream(a.model, a.payload, a.options, handle, a.argError);
    return native.stream(envSnapshot(), a.model, a.payload, a.options, handle, a.argError);
  }
  return new Promise((resolve, reject) => {
    const id = ++lastId;
    if (pending.size === 0) completions.hold();
    pending.set(id, { resolve, reject });
    try {
      if (target) target[kind](completions, id, a.model, a.payload, a.options, handle, a.argError);
      else native[kind](completions, id, envSnapshot(), a.model, a.payload, a.options, handle, a.argError);
    } catch (e) {
      pending.delete(id);
      if (pending.size === 0) completions.release();
      reject(e);
    }
  });
}

/**
 * A reply's JSON. A call that had fallbacks (endpoints, keys or models) to choose from sends
 * `\u0002<attempts detail>\u0000<body>`: the detail becomes `attemptsDetail`, a non-enumerable
 * property, so the returned object serialises (JSON.stringify, spread, Object.keys) exactly as
 * the gateway's JSON, as the drop-in promises.
 */
function parseReply(text) {
  if (text.charCodeAt(0) !== 2) return JSON.parse(text);
  const end = text.indexOf('\u0000');
  const value = JSON.parse(text.slice(end + 1));
  if (value !== null && typeof value === 'object') {
    Object.defineProperty(value, 'attemptsDetail', {
      value: JSON.parse(text.slice(1, end)),
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  return value;
}

async function run(target, kind, model, payload, options) {
  const a = encode(model, payload, options, kind === 'embed' ? 'input' : 'messages');
  const linked = link(a.signal);
  const handle = linked ? linked.handle : null;
  let streaming = false;
  try {
    if (kind === 'call' && a.stream) {
      const s = new ChatStream(await start(target, 'stream', a, handle), linked);
      streaming = true;
      return s;
    }
    return parseReply(await start(target, kind, a, handle));
  } catch (e) {
    const err = e instanceof LLMClientError ? e : toError(e);
    // The stack starts at the caller's await, not inside this file.
    Error.captureStackTrace(err, run);
    throw err;
  } finally {
    flushLogs();
    if (linked && !streaming) linked.unlink();
  }
}

// ---------------------------------------------------------------- streams (docs/behaviour.md#streams)

/** Chunks fetched per crossing of the native boundary. */
const BATCH = 256;

/**
 * A streamed chat completion: `for await (const chunk of stream)` yields
 * `chat.completion.chunk` objects; `break` cancels the request.
 */
class ChatStream {
  #native;
  #linked;
  #buf = [];
  #pos = 0;
  #done = false;
  #error = null;
  #thrown = false;
  #reading = null;
  #ahead = null;

  constructor(nativeStream, linked) {
    this.#native = nativeStream;
    this.#linked = linked;
    /** The gateway's request id (`x-request-id`), or undefined. */
    this.requestId = nativeStream.requestId ?? undefined;
    /** The HTTP status of the response. */
    this.status = nativeStream.status;
    const detail = nativeStream.attemptsDetailJson;
    /** Where each attempt went before the stream opened (calls with fallbacks only). */
    if (detail != null) this.attemptsDetail = JSON.parse(detail);
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** The next chunk. */
  async next() {
    for (;;) {
      if (this.#pos < this.#buf.length) {
        const raw = this.#buf[this.#pos];
        this.#buf[this.#pos++] = undefined;
        return { value: JSON.parse(raw), done: false };
      }
      if (this.#done) {
        if (this.#error && !this.#thrown) {
          this.#thrown = true;
          throw this.#error;
        }
        return { value: undefined, done: true };
      }
      await this.#fill();
    }
  }

  /** Called by `break` / `return` in a for-await loop: cancels the request. */
  async return(value) {
    this.abort();
    this.#finish(null);
    return { value, done: true };
  }

  /** Cancels the request: the connection closes and a pending (or the next) read fails with ABORT_ERR. */
  abort() {
    if (!this.#done) this.#native.abort();
  }

  /**
   * The completion accumulated from the chunks (content, reasoning_content, tool_calls,
   * finish_reason, usage), shaped like a non-streamed reply. Reads the rest of the stream
   * first; rejects with the stream's error if it failed.
   */
  async finalCompletion() {
    while (!this.#done) {
      this.#pos = this.#buf.length;
      await this.#fill();
    }
    if (this.#error) throw this.#error;
    return JSON.parse(await this.#native.finalCompletion());
  }

  #fill() {
    if (!this.#reading) {
      this.#reading = this.#read().finally(() => {
        this.#reading = null;
      });
    }
    return this.#reading;
  }

  /**
   * Takes the next batch. The read after it starts at once, so the native side decodes the
   * next batch while JS parses this one (one batch of read-ahead at most).
   */
  async #read() {
    try {
      const ahead = this.#ahead || this.#native.nextBatch(BATCH);
      this.#ahead = null;
      const batch = await ahead;
      if (batch.length === 0) this.#finish(null);
      else {
        this.#buf = batch;
        this.#pos = 0;
        if (!this.#done) {
          this.#ahead = this.#native.nextBatch(BATCH);
          // Settled by the next #read; a stream abandoned after `return()` never reads it.
          this.#ahead.catch(() => {});
        }
      }
    } catch (e) {
      this.#finish(toError(e));
    } finally {
      flushLogs();
    }
  }

  #finish(error) {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    if (this.#linked) this.#linked.unlink();
  }
}

// ---------------------------------------------------------------- public API

/**
 * POSTs `{model, messages, ...options}` to the gateway's chat endpoint and resolves to its
 * JSON, untouched. Configuration comes from process.env at this call (LLM_BASE_URL,
 * LLM_API_KEY, …). Client options (timeoutMs, maxRetries, headers, idleTimeoutMs, signal,
 * stream, fallbackModels, reasoning, batchSize, onEvent, traceparent) are not sent; every
 * other option is. With `stream: true`, resolves to a ChatStream.
 */
async function callSpecificModel(modelName, messages, options) {
  return run(null, 'call', modelName, messages, options);
}

/** POSTs `{model, input, encoding_format: 'float', ...options}` to the embeddings endpoint. */
async function embed(model, input, options) {
  return run(null, 'embed', model, input, options);
}

/**
 * GETs the gateway's models list (`{base}/models`, same URL rules as chat) and resolves to its
 * JSON as is. Options: timeoutMs, maxRetries, headers, signal.
 */
async function listModels(options) {
  return run(null, 'listModels', null, null, options);
}

/**
 * Runs `claw-llm doctor` (the core's checks) with `args` (the words after `doctor`) against
 * process.env; resolves to `{ output, exitCode }`. `bindings-node/doctor.js` is its command line.
 */
async function doctor(args = []) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (typeof v === 'string') env[k] = v;
  const r = JSON.parse(await native.doctor(JSON.stringify(args.map(String)), JSON.stringify(env)));
  return { output: r.output, exitCode: r.code };
}

/**
 * Every endpoint breaker of this process (shared by the free functions and every client):
 * `[{ endpoint, state: 'closed' | 'open' | 'half_open', failures, openedMsAgo, opens }]`.
 */
function breakerState() {
  return JSON.parse(native.breakerStateJson(envSnapshot()));
}

/** A client with its own configuration snapshot and connection pool (see createClient). */
class Client {
  #native;

  constructor(nativeClient) {
    this.#native = nativeClient;
  }

  /** The chat endpoint this client posts to. */
  get chatUrl() {
    return this.#native.chatUrl;
  }

  /** The embeddings endpoint this client posts to. */
  get embeddingsUrl() {
    return this.#native.embeddingsUrl;
  }

  /** The breakers of this client's endpoints (base URL first, then its fallbacks). */
  breakerState() {
    return JSON.parse(this.#native.breakerStateJson());
  }

  /** Like the free callSpecificModel, with this client's configuration. */
  async callSpecificModel(modelName, messages, options) {
    return run(this.#native, 'call', modelName, messages, options);
  }

  /** Like the free listModels, with this client's configuration. */
  async listModels(options) {
    return run(this.#native, 'listModels', null, null, options);
  }

  /** Like the free embed, with this client's configuration. */
  async embed(model, input, options) {
    return run(this.#native, 'embed', model, input, options);
  }
}

/**
 * Creates a client whose configuration is taken now: explicit options (baseUrl, apiKey,
 * chatUrl, model, embeddingModel, embeddingDims, timeoutMs, maxRetries, headers, logLevel,
 * maxResponseBytes, embeddingBatchSize, embeddingConcurrency, sendEmbeddingDims, reasoning,
 * caBundle, clientCert, clientKey, fallbacks: [{ baseUrl, apiKey }], apiKeys, fallbackModels,
 * breakerFailures, breakerCooldownMs, onEvent) over process.env. Throws LLM_CLIENT_CONFIG when it is invalid
 * (an unreadable PEM file included).
 */
function createClient(options) {
  let json;
  try {
    if (options !== null && typeof options === 'object' && options.onEvent !== undefined && options.onEvent !== null) {
      if (typeof options.onEvent !== 'function') {
        throw makeError({
          code: 'LLM_CLIENT_CONFIG',
          message: `onEvent must be a function, got ${describe(options.onEvent)}`,
          attempts: 0,
        });
      }
      options = { ...options, onEvent: listen(options.onEvent, false) };
    }
    json = JSON.stringify(options === undefined ? null : options);
  } catch (e) {
    if (e instanceof LLMClientError) throw e;
    throw makeError({
      code: 'LLM_CLIENT_CONFIG',
      message: `createClient options cannot be read as JSON: ${e && e.message}`,
      attempts: 0,
    });
  }
  try {
    return new Client(native.NativeClient.create(json === undefined ? '"?"' : json, envSnapshot()));
  } catch (e) {
    throw toError(e);
  }
}

module.exports = {
  callSpecificModel,
  embed,
  listModels,
  doctor,
  breakerState,
  events,
  flushEvents,
  stats,
  resetStats,
  metricsText,
  flushTelemetry,
  createClient,
  Client,
  ChatStream,
  LLMClientError,
  AbortError,
};
