// Type definitions for claw-llm-client (hand-written; checked by tests/node/types.test.js).

/** A chat message as OpenAI-compatible gateways take it. Extra fields are sent as they are. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer' | (string & {});
  content?: string | null | Array<Record<string, unknown>>;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  [field: string]: unknown;
}

/** A tool call of an assistant message (whole arguments, as a JSON string). */
export interface ToolCall {
  id: string;
  type: 'function' | (string & {});
  function: { name: string; arguments: string };
  [field: string]: unknown;
}

/** Token usage as the gateway reports it. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [field: string]: unknown;
}

/** The assistant's message in a completion. */
export interface AssistantMessage {
  role: 'assistant' | (string & {});
  content: string | null;
  /** Reasoning text of thinking models (DeepSeek, Qwen, MiniMax…), when the gateway sends it. */
  reasoning_content?: string | null;
  tool_calls?: ToolCall[];
  refusal?: string | null;
  [field: string]: unknown;
}

/** A chat completion: the gateway's JSON, untouched (provider extras survive as extra fields). */
export interface ChatCompletion {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices: Array<{
    index: number;
    message: AssistantMessage;
    finish_reason: string | null;
    [field: string]: unknown;
  }>;
  usage?: Usage;
  /**
   * Where each attempt went, on a call that had fallbacks (endpoints, keys or models) to
   * choose from. Non-enumerable: `JSON.stringify`, spreads and `Object.keys` see the gateway's
   * JSON exactly as the drop-in returned it, so a skill that logs or forwards the reply is
   * unaffected.
   */
  readonly attemptsDetail?: AttemptDetail[];
  [field: string]: unknown;
}

/** One attempt of a call with fallbacks: where it went and how it ended. The key never appears. */
export interface AttemptDetail {
  /** The URL requested, without secret query values or a password. */
  endpoint: string;
  /** Which of the endpoint's keys was sent (0: LLM_API_KEY, then LLM_API_KEYS). */
  keyIndex: number;
  /** The model asked for (null for the models list). */
  model: string | null;
  /** The HTTP status, when a response head arrived. */
  status: number | null;
  /** The error code of a failed attempt; null for the one that succeeded. */
  code: ErrorCode | null;
  /** How long the attempt took, in ms. */
  ms: number;
}

/** One endpoint's circuit breaker (see {@link breakerState}). */
export interface BreakerState {
  /** The endpoint's base URL, without secret query values or a password. */
  endpoint: string;
  /** `open`: skipped until the cooldown passes; `half_open`: the next call is a trial. */
  state: 'closed' | 'open' | 'half_open';
  /** Consecutive failures since the last success. */
  failures: number;
  /** How long ago it (last) opened, while open or half-open. */
  openedMsAgo: number | null;
  /** How many times it opened since the process started. */
  opens: number;
}

/**
 * Every endpoint breaker of this process (shared by the free functions and every client naming
 * the same endpoint). Breakers exist only for calls that have fallback endpoints.
 */
export declare function breakerState(): BreakerState[];

/** Token counts as the gateway reported them (`usage`). */
export interface EventUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * One attempt (an HTTP request and its answer or failure) or one finished call (a completion,
 * a stream when it ends, fails or is aborted, all the batches of an embeddings call).
 */
export interface LLMEvent {
  type: 'attempt' | 'call';
  operation: 'chat' | 'stream' | 'embeddings' | 'models';
  /** The model asked for (an attempt's: the one it sent); `null` for the models list. */
  model: string | null;
  /** The URL requested, without secret query values or a password. */
  endpoint: string;
  /** An attempt's number in its call (1, 2, …); for a call, how many attempts it made. */
  attempt: number;
  /** Which of the endpoint's keys the attempt sent (never the key itself). */
  keyIndex: number | null;
  status: number | null;
  /** The error code of a failure; `null` on success. */
  code: string | null;
  message: string | null;
  ok: boolean;
  ms: number;
  /** A stream's time to its first event carrying data. */
  ttftMs: number | null;
  requestId: string | null;
  usage: EventUsage | null;
  /** For a failed attempt that is retried: the wait before the next one. */
  retryDelayMs: number | null;
}

/** Receives events; it runs on the JS thread after the fact, never inside the call. */
export type EventListener = (event: LLMEvent) => void;

/**
 * Every call's events, process-wide: `'event'` (all), `'attempt'` and `'call'`. The core builds
 * events only while this emitter (or an `onEvent`) has a listener.
 */
export declare const events: import('node:events').EventEmitter;

/**
 * Hands the events queued so far to their listeners now (waiting at most `timeoutMs`, default
 * 5000); `true` when nothing was left behind.
 */
export declare function flushEvents(timeoutMs?: number): boolean;

/** One model's numbers (see {@link stats}). */
export interface ModelStats {
  calls: number;
  /** Failed calls by error code. */
  failures: Record<string, number>;
  /** Attempts beyond the first of each request (retries and failovers). */
  retries: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  latencyMs: { p50: number; p95: number; p99: number };
}

/** Per model since the process started or {@link resetStats}. */
export interface Stats {
  models: Record<string, ModelStats>;
  /** Events dropped because listeners fell behind. */
  droppedEvents: number;
}

export declare function stats(): Stats;
export declare function resetStats(): void;
/** The statistics in Prometheus' text format (`claw_llm_*`, labels `model` and `code`). */
export declare function metricsText(): string;
/**
 * Exports the OpenTelemetry spans still queued (waiting at most `timeoutMs`, default 2000);
 * it also happens by itself at process exit.
 */
export declare function flushTelemetry(timeoutMs?: number): boolean;

/** One `chat.completion.chunk` of a stream, as the gateway sent it. */
export interface ChatCompletionChunk {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices: Array<{
    index: number;
    delta: {
      role?: string;
      content?: string | null;
      reasoning_content?: string | null;
      tool_calls?: Array<{
        index?: number;
        id?: string;
        type?: string;
        function?: { name?: string; arguments?: string };
      }>;
      [field: string]: unknown;
    };
    finish_reason: string | null;
    [field: string]: unknown;
  }>;
  usage?: Usage | null;
  [field: string]: unknown;
}

/** Options that belong to the client and are never sent to the gateway. */
export interface RequestOptions {
  /** Models tried in order when the requested one keeps failing with a retryable error or a
   *  404 "model not found" (else LLM_FALLBACK_MODELS). Not sent. */
  fallbackModels?: string[] | null;
  /** Total deadline of the call in ms, retries included (default LLM_TIMEOUT_MS or 60000). */
  timeoutMs?: number | null;
  /** Retries after the first attempt (default LLM_MAX_RETRIES or 2). */
  maxRetries?: number | null;
  /** Extra request headers for this call. */
  headers?: Record<string, string> | null;
  /** Longest gap between two reads of a stream, in ms (default: timeoutMs). */
  idleTimeoutMs?: number | null;
  /** Cancels the call (or the stream) with an `AbortError` (code `ABORT_ERR`). */
  signal?: AbortSignal | null;
  /** Receives this call's events (its attempts, then the call); see {@link LLMEvent}. */
  onEvent?: EventListener | null;
  /**
   * The caller's W3C trace context (`00-<trace id>-<span id>-<flags>`): the call's span is its
   * child, and the gateway gets the `traceparent` header. Not sent in the body.
   */
  traceparent?: string | null;
}

/** Options of a non-streamed call: every key other than the client's own is sent as is. */
export interface CallOptions extends RequestOptions {
  stream?: false | null;
  /**
   * `'split'` moves a leading `<think>…</think>` block of `content` to `reasoning_content`
   * (MiniMax-M2.x, Qwen3, DeepSeek-R1 behind some gateways); `'raw'` (default, else
   * LLM_REASONING) returns the gateway's answer as it is. Not sent to the gateway.
   */
  reasoning?: 'raw' | 'split';
  temperature?: number;
  max_tokens?: number;
  [param: string]: unknown;
}

/** Options of a streamed call. */
export interface StreamCallOptions extends RequestOptions {
  stream: true;
  /** As for {@link CallOptions.reasoning}: splits every delta, tags split across chunks included. */
  reasoning?: 'raw' | 'split';
  temperature?: number;
  max_tokens?: number;
  [param: string]: unknown;
}

/** Options of an embeddings call: `dimensions`, `encoding_format` and anything else is sent. */
export interface EmbedOptions extends RequestOptions {
  /** Expected vector size, sent unless EMBEDDING_SEND_DIMS=0; another size is LLM_BAD_RESPONSE. */
  dimensions?: number;
  /**
   * Inputs per request (else EMBEDDING_BATCH_SIZE, else the model's known limit: DashScope
   * text-embedding-v3/v4 10, v1/v2 25; else 2048). Longer lists are sent in several requests,
   * at most EMBEDDING_CONCURRENCY (4) at a time, and merged in input order. Not sent.
   */
  batchSize?: number;
  encoding_format?: 'float' | 'base64';
  [param: string]: unknown;
}

/** An embeddings reply. `E` is `number[]`, or `string` with `encoding_format: 'base64'`. */
export interface EmbeddingResponse<E = number[]> {
  object?: string;
  data: Array<{ object?: string; index: number; embedding: E; [field: string]: unknown }>;
  model?: string;
  usage?: { prompt_tokens?: number; total_tokens?: number; [field: string]: unknown };
  [field: string]: unknown;
}

/** Every `code` an error can carry (docs/behaviour.md#errors); `LLM_INTERNAL_ERROR` means a bug in claw-llm. */
export type ErrorCode =
  | 'LLM_CLIENT_CONFIG'
  | 'ETIMEDOUT'
  | 'LLM_HTTP_ERROR'
  | 'LLM_API_ERROR'
  | 'LLM_BAD_RESPONSE'
  | 'LLM_CONNECTION_ERROR'
  | 'LLM_STREAM_ERROR'
  | 'ABORT_ERR'
  | 'LLM_INTERNAL_ERROR';

/** The error of every failed call. `name` is `'Error'` (`'AbortError'` for aborts). */
export declare class LLMClientError extends Error {
  protected constructor();
  /** Stable code, the same in Rust, Node and Python. */
  readonly code: ErrorCode;
  /** The server's words, summarised (also the message of status errors). */
  readonly cause: string;
  /** HTTP status, when a response arrived (status errors, 2xx errors, bad responses; for a
   *  timeout that cut a retry short, the last failed attempt's). */
  readonly status?: number;
  /** The response body: parsed JSON, or text (the first bytes for a bad response); a stream
   *  error frame's JSON; for a timeout that cut a retry short, the last failed attempt's body. */
  readonly body?: unknown;
  /** The gateway's request id (`x-request-id`). */
  readonly requestId?: string;
  /** Attempts made (0 when the call failed before any request). */
  readonly attempts: number;
  /** The deadline that expired (`ETIMEDOUT`). */
  readonly timeoutMs?: number;
  /** `error.type` of an OpenAI-shaped error body. */
  readonly type?: string;
  /** `error.param` of an OpenAI-shaped error body. */
  readonly param?: string;
  /** `error.code` of an OpenAI-shaped error body (e.g. `invalid_api_key`). */
  readonly errorCode?: string;
  /** What the server asked to wait before retrying (`Retry-After` / `retry-after-ms`). */
  readonly retryAfterMs?: number;
  /** Where each attempt went, on a call that had fallbacks (endpoints, keys or models). */
  readonly attemptsDetail?: AttemptDetail[];
}

/** A call or stream cancelled through `signal` or `stream.abort()`. */
export declare class AbortError extends LLMClientError {
  readonly code: 'ABORT_ERR';
  readonly name: 'AbortError';
}

/**
 * A streamed chat completion: `for await (const chunk of stream)`; `break` cancels the request.
 * Errors after the stream started (error frames, truncation, idle timeout) are thrown by the loop.
 */
export declare class ChatStream implements AsyncIterable<ChatCompletionChunk> {
  private constructor();
  /** The gateway's request id (`x-request-id`). */
  readonly requestId: string | undefined;
  /** The HTTP status of the response. */
  readonly status: number;
  /** Where each attempt went before the stream opened (calls with fallbacks only). */
  readonly attemptsDetail?: AttemptDetail[];
  [Symbol.asyncIterator](): ChatStream;
  next(): Promise<IteratorResult<ChatCompletionChunk, undefined>>;
  /** Ends the iteration and cancels the request (what `break` calls). */
  return(value?: unknown): Promise<IteratorResult<ChatCompletionChunk, undefined>>;
  /** Cancels the request: a pending or the next read fails with an `AbortError`. */
  abort(): void;
  /**
   * The completion accumulated from the chunks (content, reasoning_content, tool_calls,
   * finish_reason, usage), shaped like a non-streamed reply. Reads the rest of the stream
   * first; rejects with the stream's error if it failed.
   */
  finalCompletion(): Promise<ChatCompletion>;
}

/**
 * Sends a chat completion to the gateway configured by `process.env` at this call
 * (LLM_BASE_URL, LLM_API_KEY, …) and resolves to its JSON, untouched. An empty model falls back
 * to LLM_MODEL_ID. With `stream: true`, resolves to a {@link ChatStream} once the head arrived.
 *
 * @example
 * const { callSpecificModel } = require('claw-llm-client');
 * const reply = await callSpecificModel('qwen-plus', [{ role: 'user', content: 'hi' }], { temperature: 0.2 });
 * console.log(reply.choices[0].message.content);
 */
export declare function callSpecificModel(
  modelName: string | null | undefined,
  messages: ChatMessage[],
  options: StreamCallOptions,
): Promise<ChatStream>;
export declare function callSpecificModel(
  modelName: string | null | undefined,
  messages: ChatMessage[],
  options?: CallOptions,
): Promise<ChatCompletion>;

/**
 * Creates embeddings for a string or a list of strings (`encoding_format` is `float` unless
 * asked otherwise). An empty model falls back to EMBEDDING_MODEL_ID.
 */
export declare function embed(
  model: string | null | undefined,
  input: string | string[],
  options: EmbedOptions & { encoding_format: 'base64' },
): Promise<EmbeddingResponse<string>>;
export declare function embed(
  model: string | null | undefined,
  input: string | string[],
  options?: EmbedOptions,
): Promise<EmbeddingResponse>;

/** Options of {@link listModels}: only the client's own. */
export type ListModelsOptions = Pick<CallOptions, 'timeoutMs' | 'maxRetries' | 'headers' | 'signal'>;

/** The gateway's models list as it sent it (OpenAI's shape; unknown fields survive). */
export interface ModelList {
  object?: string;
  data: Array<{ id: string; object?: string; owned_by?: string; [field: string]: unknown }>;
  [field: string]: unknown;
}

/** GETs `{base}/models` (same URL rules as chat) and resolves to the gateway's JSON as is. */
export declare function listModels(options?: ListModelsOptions): Promise<ModelList>;

/**
 * Runs `claw-llm doctor` with `args` (the words after `doctor`: `--model`, `--embedding-model`,
 * `--timeout-ms`, `--json`) against `process.env`. `exitCode` is 0 only when the chat call works.
 */
export declare function doctor(args?: string[]): Promise<{ output: string; exitCode: number }>;

/** Configuration of {@link createClient}; each value left out comes from `process.env` now. */
export interface ClientConfig {
  /** Gateway base URL (else LLM_BASE_URL, OPENAI_BASE_URL, OPENAI_API_BASE). */
  baseUrl?: string;
  /** Alias of `baseUrl` (the openai SDK's spelling). */
  baseURL?: string;
  /** Bearer key (else LLM_API_KEY, OPENAI_API_KEY). */
  apiKey?: string;
  /** Full chat endpoint used verbatim (else LLM_CHAT_URL). */
  chatUrl?: string;
  /** Model used when a call names none (else LLM_MODEL_ID). */
  model?: string;
  /** Embedding model used when a call names none (else EMBEDDING_MODEL_ID). */
  embeddingModel?: string;
  /** Embedding dimensions sent when a call gives none (else EMBEDDING_DIMS). */
  embeddingDims?: number;
  /** Total deadline of a call in ms (else LLM_TIMEOUT_MS, default 60000). */
  timeoutMs?: number;
  /** Retries after the first attempt (else LLM_MAX_RETRIES, default 2). */
  maxRetries?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Log level (else LLM_LOG, default 'error'). */
  logLevel?: 'off' | 'error' | 'info' | 'debug';
  /** Cap on a response body or one stream event, in bytes (else LLM_MAX_RESPONSE_BYTES, 64 MiB). */
  maxResponseBytes?: number;
  /** Inputs per embeddings request (else EMBEDDING_BATCH_SIZE, else the model's known limit, else 2048). */
  embeddingBatchSize?: number;
  /** Embeddings requests in flight at once for one call (else EMBEDDING_CONCURRENCY, default 4). */
  embeddingConcurrency?: number;
  /** Whether embeddingDims is sent as `dimensions` (else EMBEDDING_SEND_DIMS, default true). */
  sendEmbeddingDims?: boolean;
  /** Default of the `reasoning` call option (else LLM_REASONING, default 'raw'). */
  reasoning?: 'raw' | 'split';
  /** Extra trusted roots: a PEM file's path or PEM text (else LLM_CA_BUNDLE; NODE_EXTRA_CA_CERTS is added too). */
  caBundle?: string;
  /** Client certificate for mTLS: a PEM file's path or PEM text (else LLM_CLIENT_CERT); needs clientKey. */
  clientCert?: string;
  /** Private key of clientCert: a PEM file's path or PEM text (else LLM_CLIENT_KEY). */
  clientKey?: string;
  /**
   * Further gateways tried in order when the base URL fails (else LLM_FALLBACK_BASE_URLS and
   * LLM_FALLBACK_API_KEYS); each base URL follows the same rules; no apiKey: this client's key.
   */
  fallbacks?: Array<{ baseUrl: string; apiKey?: string }>;
  /** Several keys for the base URL's gateway, rotated on 429 and quota errors (else LLM_API_KEYS). */
  apiKeys?: string[];
  /** Models tried in order when the requested one keeps failing (else LLM_FALLBACK_MODELS). */
  fallbackModels?: string[];
  /** Consecutive failures that open an endpoint's breaker (else LLM_BREAKER_FAILURES, default 5). */
  breakerFailures?: number;
  /** How long an open breaker skips its endpoint, in ms (else LLM_BREAKER_COOLDOWN_MS, default 30000). */
  breakerCooldownMs?: number;
  /** Receives the events of every call of this client; see {@link LLMEvent}. */
  onEvent?: EventListener;
}

/** A client with its own configuration snapshot and connection pool. */
export declare class Client {
  private constructor();
  /** The chat endpoint this client posts to. */
  readonly chatUrl: string;
  /** The embeddings endpoint this client posts to. */
  readonly embeddingsUrl: string;
  callSpecificModel(
    modelName: string | null | undefined,
    messages: ChatMessage[],
    options: StreamCallOptions,
  ): Promise<ChatStream>;
  callSpecificModel(
    modelName: string | null | undefined,
    messages: ChatMessage[],
    options?: CallOptions,
  ): Promise<ChatCompletion>;
  embed(
    model: string | null | undefined,
    input: string | string[],
    options: EmbedOptions & { encoding_format: 'base64' },
  ): Promise<EmbeddingResponse<string>>;
  embed(model: string | null | undefined, input: string | string[], options?: EmbedOptions): Promise<EmbeddingResponse>;
  listModels(options?: ListModelsOptions): Promise<ModelList>;
  /** The breakers of this client's endpoints (base URL first, then its fallbacks). */
  breakerState(): BreakerState[];
}

/**
 * A client whose configuration is taken now (explicit values over `process.env`).
 * Throws an {@link LLMClientError} with code `LLM_CLIENT_CONFIG` when it is invalid.
 */
export declare function createClient(config?: ClientConfig): Client;
