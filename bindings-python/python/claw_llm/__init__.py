"""claw_llm: a fast, sturdy client for OpenAI-compatible LLM gateways.

One Rust core (the same one behind the Node package ``claw-llm-client``) does the work:
configuration, URL rules, retries, deadlines, SSE decoding and error summaries. This package
is a thin layer over it.

Configuration comes from the environment, read at every call of the free functions
(explicit argument > ``LLM_*`` > ``OPENAI_*`` > default): ``LLM_BASE_URL``, ``LLM_API_KEY``,
``LLM_MODEL_ID``, ``EMBEDDING_MODEL_ID``, ``EMBEDDING_DIMS``, ``LLM_TIMEOUT_MS`` (60000),
``LLM_MAX_RETRIES`` (2), ``LLM_CHAT_URL``, ``LLM_LOG`` (``off|error|info|debug``).

    >>> import claw_llm
    >>> reply = claw_llm.call_specific_model(
    ...     "qwen-plus", [{"role": "user", "content": "Say hi"}], temperature=0.2)
    >>> reply["choices"][0]["message"]["content"]

    >>> with claw_llm.call_specific_model("qwen-plus", messages, stream=True) as stream:
    ...     for chunk in stream:
    ...         print(chunk["choices"][0]["delta"].get("content") or "", end="", flush=True)
    ...     final = stream.final_completion()

    >>> reply = await claw_llm.acall_specific_model("qwen-plus", messages)

Errors are :class:`LLMClientError` subclasses with a stable ``code``; see ``claw_llm._errors``.
Log lines go to ``logging.getLogger("claw_llm")``. Every call reports events (``on_event=``,
:func:`add_event_listener`), per-model numbers (:func:`stats`, :func:`metrics_text`) and, with
``OTEL_EXPORTER_OTLP_ENDPOINT`` set, OpenTelemetry spans (``traceparent=`` joins a trace). ``claw_llm.mem0`` plugs the client into mem0.
"""

from __future__ import annotations


def _refuse_subinterpreters() -> None:
    """The native module keeps process-wide state (one runtime, one log queue) and PyO3 binds it
    to the first interpreter that loads it: loaded in a subinterpreter first, it would refuse
    the main interpreter for the rest of the process. So a subinterpreter never loads it (nor
    anything else: this runs before the package's own imports)."""
    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            interpreters = __import__(name)
            # 3.13's `_interpreters` answers (id, whence) pairs; older ones an id.
            current, main = (
                i[0] if isinstance(i, tuple) else int(i)
                for i in (interpreters.get_current(), interpreters.get_main())
            )
        except Exception:  # not this Python's module, or not importable here
            continue
        if current != main:
            raise ImportError(
                "claw_llm does not support subinterpreters: import it in the main interpreter"
            )
        return


_refuse_subinterpreters()

# The package's imports, after the check above.
import asyncio
import atexit
import itertools
import json
import logging
import os
import threading
import weakref
from collections import deque
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence, TypedDict


from . import _errors, _native
from ._errors import (
    AbortError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    ConfigError,
    ConflictError,
    InternalServerError,
    LLMClientError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    UnprocessableEntityError,
    _from_native,
)
from ._logging import _emit

__version__: str = _native.__version__

__all__ = [
    "call_specific_model",
    "acall_specific_model",
    "embed",
    "aembed",
    "embed_vectors",
    "aembed_vectors",
    "list_models",
    "alist_models",
    "breaker_state",
    "add_event_listener",
    "remove_event_listener",
    "flush_events",
    "stats",
    "reset_stats",
    "metrics_text",
    "flush_telemetry",
    "Event",
    "Usage",
    "Stats",
    "ModelStats",
    "Latency",
    "Client",
    "Reply",
    "Stream",
    "AsyncStream",
    *_errors.__all__,
]

_native._install(_from_native, _emit)

_CHAT, _EMBED, _VECTORS, _MODELS = 0, 1, 2, 3
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_loads = json.loads

Messages = Sequence[Mapping[str, Any]]


def _payload(
    key: str,
    value: Any,
    params: dict[str, Any],
    timeout_ms: float | None,
    max_retries: int | None,
    idle_timeout_ms: float | None,
    headers: Mapping[str, str] | None,
    stream: Any = False,
) -> str:
    """The request as one JSON object: ``key`` (messages/input), the pass-through params and
    the client's own options under the names the core validates (same rules as Node)."""
    params[key] = value
    if timeout_ms is not None:
        params["timeoutMs"] = timeout_ms
    if max_retries is not None:
        params["maxRetries"] = max_retries
    if idle_timeout_ms is not None:
        params["idleTimeoutMs"] = idle_timeout_ms
    if headers is not None:
        params["headers"] = headers
    if stream is not False:
        params["stream"] = stream
    try:
        return _encode(params)
    except (TypeError, ValueError) as e:
        _tagged.pop(params.get("onEvent"), None)  # no native listener will ever close it
        raise ConfigError(f"the request cannot be encoded as JSON: {e}") from None


def _observed(params: dict[str, Any], on_event: Callable[..., object] | None, traceparent: str | None) -> dict[str, Any]:
    """``on_event=`` (as the tag of its listener) and ``traceparent=`` under the names the core
    takes out of the request (neither is sent in the body)."""
    if traceparent is not None:
        params["traceparent"] = traceparent
    if on_event is not None:
        params["onEvent"] = _listen(on_event)
    return params


# ---------------------------------------------------------------------------------------
# Streams


class Stream:
    """A streamed chat completion (sync): an iterator of ``chat.completion.chunk`` dicts.

    Use it as a context manager, or call :meth:`close`, to stop early: that cancels the
    request and closes the connection. Chunks cross from Rust in batches, so iteration is
    cheap; the GIL is released while waiting and Ctrl-C aborts the stream.

    Attributes:
        request_id: the gateway's ``x-request-id``.
        status: the HTTP status of the stream's response.
    """

    __slots__ = ("_native", "_buf", "_done", "__weakref__")

    def __init__(self, native: _native.NativeStream) -> None:
        self._native = native
        self._buf: deque[dict[str, Any]] = deque()
        self._done = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        buf = self._buf
        if buf:
            return buf.popleft()
        if self._done:
            raise StopIteration
        batch = _loads(self._native.next_batch())
        if not batch:
            self._done = True
            raise StopIteration
        buf.extend(batch)
        return buf.popleft()

    def final_completion(self) -> dict[str, Any]:
        """The completion accumulated from the chunks (all of them once the stream ended):
        ``choices[i].message`` with content, reasoning_content and tool_calls merged,
        ``finish_reason`` and ``usage`` — the shape a non-streamed call returns."""
        return _loads(self._native.final_completion())

    @property
    def request_id(self) -> str | None:
        return self._native.request_id

    @property
    def attempts_detail(self) -> list[dict[str, Any]]:
        """Where each attempt went before the stream opened (calls with fallbacks; else ``[]``)."""
        detail = self._native.attempts_detail_json
        return _loads(detail) if detail else []

    @property
    def status(self) -> int:
        return self._native.status

    def close(self) -> None:
        """Stops the stream: cancels the request and closes the connection. A read pending in
        another thread fails with :class:`AbortError`; later iteration just stops."""
        self._done = True
        self._buf.clear()
        self._native.abort()

    abort = close

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<claw_llm.Stream status={self.status} request_id={self.request_id!r}>"


class AsyncStream:
    """A streamed chat completion (asyncio): an async iterator of chunk dicts.

    ``async with`` it, or call :meth:`aclose`, to stop early (cancels the request).
    Cancelling the task that iterates it also cancels the request.
    """

    __slots__ = ("_native", "_buf", "_done", "__weakref__")

    def __init__(self, native: _native.NativeStream) -> None:
        self._native = native
        self._buf: deque[dict[str, Any]] = deque()
        self._done = False

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        buf = self._buf
        if buf:
            return buf.popleft()
        if self._done:
            raise StopAsyncIteration
        ready = self._native.try_next_batch()
        batch = _loads(ready if ready is not None else await _submit(self._native.start_next_batch))
        if not batch:
            self._done = True
            raise StopAsyncIteration
        buf.extend(batch)
        return buf.popleft()

    def final_completion(self) -> dict[str, Any]:
        """The completion accumulated from the chunks (see :meth:`Stream.final_completion`)."""
        return _loads(self._native.final_completion())

    @property
    def request_id(self) -> str | None:
        return self._native.request_id

    @property
    def attempts_detail(self) -> list[dict[str, Any]]:
        """Where each attempt went before the stream opened (calls with fallbacks; else ``[]``)."""
        detail = self._native.attempts_detail_json
        return _loads(detail) if detail else []

    @property
    def status(self) -> int:
        return self._native.status

    def close(self) -> None:
        """Cancels the request and closes the connection (see :meth:`aclose`)."""
        self._done = True
        self._buf.clear()
        self._native.abort()

    abort = close

    async def aclose(self) -> None:
        """Stops the stream: cancels the request and closes the connection."""
        self.close()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<claw_llm.AsyncStream status={self.status} request_id={self.request_id!r}>"


# ---------------------------------------------------------------------------------------
# Observability: events, stats, Prometheus text, OpenTelemetry spans. The core calls its
# listeners on a thread of its own that never runs Python: the native side queues each event
# for one daemon thread of this package (the pump), which calls the Python listeners (see
# bindings-python/src/events.rs).


class Usage(TypedDict):
    """Token counts as the gateway reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Event(TypedDict):
    """What a listener receives: one HTTP attempt (``type == "attempt"``) or one finished call
    (``type == "call"``: a completion, a stream when it ends, fails or is aborted, the
    embeddings of all its batches, or the models list). Never holds a key."""

    type: Literal["attempt", "call"]
    operation: Literal["chat", "stream", "embeddings", "models"]
    model: str | None
    endpoint: str
    attempt: int
    key_index: int | None
    status: int | None
    code: str | None
    message: str | None
    ok: bool
    ms: float
    ttft_ms: float | None
    request_id: str | None
    usage: Usage | None
    retry_delay_ms: int | None


class Latency(TypedDict):
    """Call latency percentiles, in milliseconds (0 before the first call)."""

    p50: float
    p95: float
    p99: float


class ModelStats(TypedDict):
    """One model's numbers since the process started (or :func:`reset_stats`)."""

    calls: int
    failures: dict[str, int]
    retries: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms: Latency


class Stats(TypedDict):
    """What :func:`stats` returns."""

    models: dict[str, ModelStats]
    dropped_events: int


_Listener = Callable[[Event], object]

_log = logging.getLogger("claw_llm")
# The pump waits this long per native call; interpreter exit wakes it at once.
_PUMP_WAIT_MS = 60_000
_GLOBAL_TAG = 0
# The process-wide listeners, replaced (never mutated) so the pump iterates a stable tuple.
_global_listeners: tuple[_Listener, ...] = ()
# A call's or a client's listener by tag; the native side closes a tag (and it is forgotten
# here) once the call or client is gone and its last event was delivered.
_tagged: dict[int, _Listener] = {}
_next_tag = itertools.count(1)
_lock = threading.Lock()
_pump_thread: threading.Thread | None = None


def _pump() -> None:
    wait = _native._events_wait
    while True:
        for tag, text in wait(_PUMP_WAIT_MS):
            _deliver(tag, text)


def _deliver(tag: int, text: str | None) -> None:
    if text is None:
        _tagged.pop(tag, None)
        return
    if tag == _GLOBAL_TAG:
        listeners: Sequence[_Listener | None] = _global_listeners
    else:
        listeners = (_tagged.get(tag),)
    for listener in listeners:
        if listener is None:
            continue
        try:
            listener(_loads(text))
        except BaseException:
            # A listener's failure is its own: the call, the next listener and the next event
            # are not affected. It is logged, with its traceback, to the `claw_llm` logger.
            _log.exception("claw_llm: an event listener raised (ignored): %r", listener)


def _start_pump() -> None:
    """Starts the pump thread once per process, when the first listener is registered."""
    global _pump_thread
    with _lock:
        if _pump_thread is None:
            _pump_thread = threading.Thread(target=_pump, name="claw-llm-events", daemon=True)
            _pump_thread.start()


def _checked(listener: Any, what: str) -> _Listener:
    if not callable(listener):
        raise ConfigError(f"{what} must be callable, got {type(listener).__name__}")
    return listener  # type: ignore[no-any-return]


def _listen(listener: Any) -> int:
    """Registers a call's or a client's ``on_event`` and returns its tag."""
    tag = next(_next_tag)
    _tagged[tag] = _checked(listener, "on_event")
    _start_pump()
    return tag


def add_event_listener(listener: _Listener) -> _Listener:
    """Calls ``listener(event)`` for every attempt and every finished call of the process
    (free functions and every client); returns ``listener``, so it also works as a decorator::

        @claw_llm.add_event_listener
        def log_call(event):
            if event["type"] == "call":
                print(event["model"], event["ok"], event["ms"], event["usage"])

    ``event`` is an :class:`Event` dict. Listeners run on one daemon thread of this package,
    never on the caller's, in the order events happened; a slow listener delays only later
    events (beyond 4096 waiting, new ones are dropped and counted in ``stats()``), and one that
    raises is logged with ``logging.getLogger("claw_llm").exception`` and otherwise ignored.
    A call or client can also take its own listener: ``on_event=``.
    """
    global _global_listeners
    listener = _checked(listener, "listener")
    with _lock:
        first = not _global_listeners
        _global_listeners = (*_global_listeners, listener)
        if first:
            _native._events_global(True)
    _start_pump()
    return listener


def remove_event_listener(listener: _Listener) -> bool:
    """Removes a listener added with :func:`add_event_listener` (one registration of it);
    ``False`` when it was not registered."""
    global _global_listeners
    with _lock:
        found = next((i for i, f in enumerate(_global_listeners) if f == listener), None)
        if found is None:
            return False
        _global_listeners = _global_listeners[:found] + _global_listeners[found + 1 :]
        if not _global_listeners:
            _native._events_global(False)
    return True


def _timeout_ms(timeout: float) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ConfigError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
    return int(min(timeout, 86_400.0) * 1000)


def flush_events(timeout: float = 5.0) -> bool:
    """Waits until every event so far has reached its listeners, at most ``timeout`` seconds;
    ``True`` when all did. Tests and short scripts call it before reading what listeners got.
    Called from inside a listener it cannot wait for itself and returns ``False`` at once."""
    ms = _timeout_ms(timeout)
    if threading.current_thread() is _pump_thread:
        return False
    return _native._events_flush(ms)


def stats() -> Stats:
    """Usage per model since the process started (or :func:`reset_stats`), every call of the
    process counted, listener or not::

        {"models": {"qwen-plus": {"calls": 4, "failures": {"LLM_HTTP_ERROR": 1}, "retries": 2,
          "prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52,
          "latency_ms": {"p50": 180.2, "p95": 420.0, "p99": 420.0}}},
         "dropped_events": 0}

    ``retries`` counts attempts beyond the first (retries and failovers); ``failures`` is by
    error code; ``dropped_events`` counts events listeners never got because they fell behind.
    """
    return _loads(_native.stats_json())  # type: ignore[no-any-return]


def reset_stats() -> None:
    """Forgets what :func:`stats` and :func:`metrics_text` report (e.g. between tests)."""
    _native.reset_stats()


def metrics_text() -> str:
    """The numbers of :func:`stats` in the Prometheus text format, for a ``/metrics`` route:
    ``claw_llm_calls_total``, ``claw_llm_failures_total``, ``claw_llm_retries_total``, token
    counters and the ``claw_llm_call_duration_seconds`` summary, labelled by ``model``."""
    return _native.metrics_text()


def flush_telemetry(timeout: float = 2.0) -> bool:
    """Exports the OpenTelemetry spans still queued, waiting at most ``timeout`` seconds;
    ``True`` when all went out in time. Spans are on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and ``LLM_OTEL`` is not ``off``; one
    ``chat <model>`` / ``embeddings <model>`` span per call (GenAI semantic conventions,
    messages only with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``). Interpreter
    exit flushes by itself (bounded), so scripts need not call it."""
    return _native.flush_telemetry(_timeout_ms(timeout))


# ---------------------------------------------------------------------------------------
# asyncio plumbing: no Rust task ever calls into Python. Each event loop watches one native
# Notifier (a socket the runtime writes a byte to when results are ready); its callback
# drains the finished results and resolves the futures by id.


class _LoopWaiter:
    __slots__ = ("notifier", "pending", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.notifier = _native.Notifier()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        loop.add_reader(self.notifier.fileno(), self._ready)

    def _ready(self) -> None:
        pending = self.pending
        for id_, ok, value in self.notifier.drain():
            fut = pending.pop(id_, None)
            if fut is None or fut.done():
                continue  # cancelled meanwhile: a stream dropped here is aborted
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


_waiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaiter] = (
    weakref.WeakKeyDictionary()
)


def _after_fork_in_child() -> None:
    """In a forked child: the calls pending on an event loop ran on the parent's runtime and
    will never finish here, so their awaits fail at once; later calls get a fresh notifier.
    The event pump did not survive the fork: it starts again (now, when listeners exist)."""
    global _lock, _pump_thread
    _native._after_fork_in_child()
    _lock = threading.Lock()  # another thread may have held it at the fork
    _pump_thread = None
    if _global_listeners or _tagged:
        _start_pump()
    waiters = list(_waiters.values())
    _waiters.clear()
    for waiter in waiters:
        for fut in waiter.pending.values():
            if not fut.done():
                fut.set_exception(
                    ConfigError("this call was started before fork() in another process")
                )
        waiter.pending.clear()


def _at_exit() -> None:
    """Interpreter exit: cancels the requests in flight and keeps threads still waiting on one,
    the event pump included, from re-entering Python during finalization (see
    bindings-python/src/lifecycle.rs). The spans still queued are exported by the core when
    the process ends (at most 2 s), after finalization, without Python."""
    _native._at_exit()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


async def _submit(start: Callable[[_native.Notifier], _native.Handle]) -> Any:
    loop = asyncio.get_running_loop()
    waiter = _waiters.get(loop)
    if waiter is None:
        waiter = _waiters[loop] = _LoopWaiter(loop)
    handle = start(waiter.notifier)
    fut = loop.create_future()
    waiter.pending[handle.id] = fut
    try:
        return await fut
    except BaseException:
        if not fut.done() or fut.cancelled():
            handle.cancel()  # the task was cancelled: abort the HTTP request
            waiter.pending.pop(handle.id, None)
        raise


# ---------------------------------------------------------------------------------------
# The calls, shared by the free functions (client None: the environment) and Client.


class Reply(dict):  # type: ignore[type-arg]
    """The reply of a call that had fallbacks (endpoints, keys or models) to choose from: the
    gateway's JSON, a ``dict`` like every reply, plus :attr:`attempts_detail`, where each
    attempt went (``[{"endpoint", "key_index", "model", "status", "code", "ms"}]``; the key
    never appears). A call without fallbacks returns a plain ``dict``."""

    __slots__ = ("attempts_detail",)

    def __init__(self, value: dict[str, Any], attempts_detail: list[dict[str, Any]]) -> None:
        super().__init__(value)
        self.attempts_detail = attempts_detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reply, (dict(self), self.attempts_detail))


def _reply(out: Any) -> Any:
    """A native reply: a dict, or ``(dict, attempts detail JSON)`` after a routed call."""
    if out.__class__ is tuple:
        return Reply(out[0], _loads(out[1]))
    return out


def _chat(client, model, messages, timeout_ms, max_retries, idle_timeout_ms, headers, stream, params):
    _fallback_option(params)
    payload = _payload("messages", messages, params, timeout_ms, max_retries, idle_timeout_ms, headers, stream)
    out = _native.call(client, model, payload, _CHAT)
    cls = out.__class__
    return out if cls is dict else _reply(out) if cls is tuple else Stream(out)


async def _achat(client, model, messages, timeout_ms, max_retries, idle_timeout_ms, headers, stream, params):
    _fallback_option(params)
    payload = _payload("messages", messages, params, timeout_ms, max_retries, idle_timeout_ms, headers, stream)
    out = await _submit(lambda n: _native.start(n, client, model, payload, _CHAT))
    cls = out.__class__
    return out if cls is dict else _reply(out) if cls is tuple else AsyncStream(out)


def _fallback_option(params):
    """``fallback_models=`` under the name the core validates."""
    if "fallback_models" in params:
        params["fallbackModels"] = params.pop("fallback_models")


def _client_options(params):
    """``batch_size=`` (inputs per request) and ``fallback_models=`` under the names the core
    validates."""
    if "batch_size" in params:
        params["batchSize"] = params.pop("batch_size")
    _fallback_option(params)




def _embed(client, kind, model, input, dimensions, timeout_ms, max_retries, headers, params):
    if dimensions is not None:
        params["dimensions"] = dimensions
    _client_options(params)
    return _reply(_native.call(client, model, _payload("input", input, params, timeout_ms, max_retries, None, headers), kind))


async def _aembed(client, kind, model, input, dimensions, timeout_ms, max_retries, headers, params):
    if dimensions is not None:
        params["dimensions"] = dimensions
    _client_options(params)
    payload = _payload("input", input, params, timeout_ms, max_retries, None, headers)
    return _reply(await _submit(lambda n: _native.start(n, client, model, payload, kind)))


def _models(client, timeout_ms, max_retries, headers, params):
    return _native.call(client, None, _payload("input", None, params, timeout_ms, max_retries, None, headers), _MODELS)


async def _amodels(client, timeout_ms, max_retries, headers, params):
    payload = _payload("input", None, params, timeout_ms, max_retries, None, headers)
    return await _submit(lambda n: _native.start(n, client, None, payload, _MODELS))


def breaker_state() -> list[dict[str, Any]]:
    """Every endpoint breaker of this process (shared by the free functions and every client
    naming the same endpoint): ``[{"endpoint", "state", "failures", "opened_ms_ago", "opens"}]``,
    ``state`` being ``"closed"``, ``"open"`` or ``"half_open"``. Breakers exist only for calls
    that have fallback endpoints."""
    return _loads(_native.breaker_state_json())


def _fallback_pairs(fallbacks: Any) -> list[tuple[str, str | None]] | None:
    """``fallbacks=[{"base_url": ..., "api_key": ...}]`` as the native side takes them."""
    if fallbacks is None:
        return None
    bad = ConfigError("fallbacks must be a list of {'base_url': str, 'api_key': str} dicts")
    if isinstance(fallbacks, (str, bytes, Mapping)):
        raise bad
    pairs = []
    for f in fallbacks:
        if not isinstance(f, Mapping) or not isinstance(f.get("base_url"), str) or set(f) - {"base_url", "api_key"}:
            raise bad
        key = f.get("api_key")
        if key is not None and not isinstance(key, str):
            raise bad
        pairs.append((f["base_url"], key))
    return pairs


def _names(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what} must be a list of strings")
    return list(value)


def list_models(
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """Lists the gateway's models (``GET {base}/models``, same URL rules as chat) and returns
    its JSON as is, e.g. ``{"object": "list", "data": [{"id": "qwen-plus", ...}]}``::

        ids = [m["id"] for m in claw_llm.list_models()["data"]]

    ``on_event=`` and ``traceparent=`` as for :func:`call_specific_model`.
    """
    return _models(None, timeout_ms, max_retries, headers, _observed({}, on_event, traceparent))


async def alist_models(
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """The asyncio form of :func:`list_models`."""
    return await _amodels(None, timeout_ms, max_retries, headers, _observed({}, on_event, traceparent))


def call_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> Any:
    """Sends a chat completion to the gateway configured by the environment.

    Args:
        model: sent verbatim (``"kimi:moonshot-v1-8k"`` stays as is); empty or ``None`` uses
            ``LLM_MODEL_ID``.
        messages: a non-empty list of ``{"role", "content"}`` dicts.
        timeout_ms: total deadline of the call, retries and backoff included (default
            ``LLM_TIMEOUT_MS`` or 60000). For a stream: the wait for the response head.
        max_retries: retries after the first attempt (default ``LLM_MAX_RETRIES`` or 2) on
            connection failures, 408/409/429/5xx and ``x-should-retry: true``.
        idle_timeout_ms: for a stream, the longest gap between two reads (default: the timeout).
        headers: extra request headers.
        stream: ``True`` returns a :class:`Stream` once the response head arrived.
        on_event: receives this call's events (:class:`Event` dicts: one per attempt, then
            one for the call), on the package's event thread; see :func:`add_event_listener`.
        traceparent: the caller's W3C trace context (``"00-<trace id>-<span id>-<flags>"``):
            the call's OpenTelemetry span is its child, and the gateway gets a ``traceparent``
            header (this one when no collector is set); not sent in the body. Malformed:
            ``ConfigError``.
        **params: ``fallback_models=[...]`` (models tried in order when this one keeps failing,
            else ``LLM_FALLBACK_MODELS``; not sent); everything else is passed to the gateway
            untouched (temperature, max_tokens, tools, response_format, vendor fields, ...).

    Returns:
        The gateway's JSON as a dict (unknown fields kept), or a :class:`Stream`. After a
        call that had fallbacks (endpoints, keys or models), a :class:`Reply` (a dict) whose
        ``attempts_detail`` says where each attempt went.

    Raises:
        LLMClientError: a subclass per failure, e.g. ``ConfigError`` before any I/O,
        ``APITimeoutError``, ``AuthenticationError``, ``RateLimitError``.

    Example::

        reply = claw_llm.call_specific_model(
            "qwen-plus", [{"role": "user", "content": "hi"}], temperature=0.2, timeout_ms=10_000)
        print(reply["choices"][0]["message"]["content"])

    The environment is read at every call; the GIL is released while the request runs and
    Ctrl-C cancels it.
    """
    return _chat(None, model, messages, timeout_ms, max_retries, idle_timeout_ms, headers, stream, _observed(params, on_event, traceparent))


async def acall_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> Any:
    """The asyncio form of :func:`call_specific_model`.

    Returns the gateway's JSON, or with ``stream=True`` an :class:`AsyncStream`::

        reply = await claw_llm.acall_specific_model("qwen-plus", messages)

        async with await claw_llm.acall_specific_model("qwen-plus", messages, stream=True) as s:
            async for chunk in s:
                ...

    Cancelling the awaiting task cancels the HTTP request.
    """
    return await _achat(None, model, messages, timeout_ms, max_retries, idle_timeout_ms, headers, stream, _observed(params, on_event, traceparent))


def embed(
    model: str | None,
    input: str | Sequence[str],
    *,
    dimensions: int | None = None,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Creates embeddings for a string or a list of strings; returns the gateway's JSON.

    ``model`` empty or ``None`` uses ``EMBEDDING_MODEL_ID``; ``dimensions`` defaults to
    ``EMBEDDING_DIMS`` when set and is the expected vector size (another size raises
    ``BadResponseError``); ``encoding_format`` is ``"float"`` unless given. A list longer than
    ``batch_size=`` (else ``EMBEDDING_BATCH_SIZE``, else the model's known limit, e.g. 10 for
    DashScope ``text-embedding-v4``, else 2048) is sent in several requests, at most
    ``EMBEDDING_CONCURRENCY`` (4) at a time, and merged into one reply in input order.
    ``on_event=`` and ``traceparent=`` as for :func:`call_specific_model` (one call event for
    all the batches).

        claw_llm.embed("text-embedding-v4", ["a", "b"], dimensions=1024)["data"][1]["embedding"]
    """
    return _embed(None, _EMBED, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))


async def aembed(
    model: str | None,
    input: str | Sequence[str],
    *,
    dimensions: int | None = None,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """The asyncio form of :func:`embed`."""
    return await _aembed(None, _EMBED, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))


def embed_vectors(
    model: str | None,
    input: str | Sequence[str],
    *,
    dimensions: int | None = None,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> list[list[float]]:
    """Like :func:`embed` but returns just the vectors, one per input, in input order.

        [vec] = claw_llm.embed_vectors(None, "hello")  # EMBEDDING_MODEL_ID
    """
    return _embed(None, _VECTORS, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))


async def aembed_vectors(
    model: str | None,
    input: str | Sequence[str],
    *,
    dimensions: int | None = None,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> list[list[float]]:
    """The asyncio form of :func:`embed_vectors`."""
    return await _aembed(None, _VECTORS, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))


def _pem_or_path(value: str | os.PathLike[str] | None) -> str | None:
    """A path object as its string; PEM text and plain strings as they are."""
    return None if value is None else os.fspath(value)


class Client:
    """A client for one gateway whose configuration is fixed when it is created.

    Every argument is optional and wins over the environment (``LLM_*``, then ``OPENAI_*``),
    which is read once, now. Methods are those of the module: :meth:`call_specific_model`,
    :meth:`acall_specific_model`, :meth:`embed`, :meth:`aembed`, :meth:`embed_vectors`,
    :meth:`aembed_vectors`. A client is thread-safe and keeps its own connection pool.

        client = claw_llm.Client(base_url="http://127.0.0.1:3000", api_key="sk-...",
                                 model="qwen-plus", timeout_ms=20_000)
        client.call_specific_model(None, [{"role": "user", "content": "hi"}])

    TLS: ``ca_bundle`` (extra trusted roots, else ``LLM_CA_BUNDLE``) and ``client_cert`` +
    ``client_key`` (mTLS, else ``LLM_CLIENT_CERT`` + ``LLM_CLIENT_KEY``) each take a PEM file's
    path or the PEM text itself.

    Failover: ``fallbacks=[{"base_url": ..., "api_key": ...}]`` (further gateways, else
    ``LLM_FALLBACK_BASE_URLS`` + ``LLM_FALLBACK_API_KEYS``), ``api_keys`` (else
    ``LLM_API_KEYS``), ``fallback_models`` (else ``LLM_FALLBACK_MODELS``), ``breaker_failures``
    and ``breaker_cooldown_ms`` (else ``LLM_BREAKER_FAILURES`` / ``LLM_BREAKER_COOLDOWN_MS``).

    Events: ``on_event=fn`` receives every attempt and call of this client as an
    :class:`Event` dict (besides the listeners of :func:`add_event_listener` and a call's own
    ``on_event=``), on the package's event thread; see :func:`add_event_listener`.

    Raises:
        ConfigError: missing base URL or key, invalid URL or values, an unreadable PEM file.
    """

    __slots__ = ("_native", "__weakref__")

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        *,
        embedding_model: str | None = None,
        embedding_dims: int | None = None,
        chat_url: str | None = None,
        log_level: str | None = None,
        max_response_bytes: int | None = None,
        embedding_batch_size: int | None = None,
        embedding_concurrency: int | None = None,
        send_embedding_dims: bool | None = None,
        reasoning: str | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
        fallbacks: Sequence[Mapping[str, str]] | None = None,
        api_keys: Sequence[str] | None = None,
        fallback_models: Sequence[str] | None = None,
        breaker_failures: int | None = None,
        breaker_cooldown_ms: int | None = None,
        on_event: Callable[[Event], object] | None = None,
    ) -> None:
        self._native = _native.NativeClient(
            base_url=base_url,
            api_key=api_key,
            model=model,
            embedding_model=embedding_model,
            embedding_dims=embedding_dims,
            timeout_ms=timeout_ms,
            max_retries=max_retries,
            headers=dict(headers) if headers is not None else None,
            chat_url=chat_url,
            log_level=log_level,
            max_response_bytes=max_response_bytes,
            embedding_batch_size=embedding_batch_size,
            embedding_concurrency=embedding_concurrency,
            send_embedding_dims=send_embedding_dims,
            reasoning=reasoning,
            ca_bundle=_pem_or_path(ca_bundle),
            client_cert=_pem_or_path(client_cert),
            client_key=_pem_or_path(client_key),
            fallbacks=_fallback_pairs(fallbacks),
            api_keys=_names(api_keys, "api_keys"),
            fallback_models=_names(fallback_models, "fallback_models"),
            breaker_failures=breaker_failures,
            breaker_cooldown_ms=breaker_cooldown_ms,
            on_event=None if on_event is None else _listen(on_event),
        )

    @property
    def base_url(self) -> str:
        return self._native.base_url

    @property
    def chat_url(self) -> str:
        return self._native.chat_url

    @property
    def embeddings_url(self) -> str:
        return self._native.embeddings_url

    @property
    def model(self) -> str | None:
        return self._native.model

    @property
    def embedding_model(self) -> str | None:
        return self._native.embedding_model

    @property
    def embedding_dims(self) -> int | None:
        return self._native.embedding_dims

    @property
    def timeout_ms(self) -> int:
        return self._native.timeout_ms

    @property
    def max_retries(self) -> int:
        return self._native.max_retries

    def __repr__(self) -> str:
        return f"claw_llm.Client(base_url={self.base_url!r}, model={self.model!r})"

    def breaker_state(self) -> list[dict[str, Any]]:
        """The breakers of this client's endpoints (base URL first, then its fallbacks); see
        :func:`claw_llm.breaker_state`."""
        return _loads(self._native.breaker_state_json())

    def call_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> Any:
        """See :func:`claw_llm.call_specific_model`; ``model`` empty uses the client's model."""
        return _chat(self._native, model, messages, timeout_ms, max_retries, idle_timeout_ms, headers, stream, _observed(params, on_event, traceparent))

    async def acall_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> Any:
        """See :func:`claw_llm.acall_specific_model`."""
        return await _achat(
            self._native,
            model,
            messages,
            timeout_ms,
            max_retries,
            idle_timeout_ms,
            headers,
            stream,
            _observed(params, on_event, traceparent),
        )

    def list_models(
        self,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
    ) -> dict[str, Any]:
        """See :func:`claw_llm.list_models`."""
        return _models(self._native, timeout_ms, max_retries, headers, _observed({}, on_event, traceparent))

    async def alist_models(
        self,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
    ) -> dict[str, Any]:
        """See :func:`claw_llm.alist_models`."""
        return await _amodels(self._native, timeout_ms, max_retries, headers, _observed({}, on_event, traceparent))

    def embed(
        self,
        model: str | None,
        input: str | Sequence[str],
        *,
        dimensions: int | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """See :func:`claw_llm.embed`; ``model`` empty uses the client's embedding model."""
        return _embed(self._native, _EMBED, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))

    async def aembed(
        self,
        model: str | None,
        input: str | Sequence[str],
        *,
        dimensions: int | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """See :func:`claw_llm.aembed`."""
        return await _aembed(self._native, _EMBED, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))

    def embed_vectors(
        self,
        model: str | None,
        input: str | Sequence[str],
        *,
        dimensions: int | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> list[list[float]]:
        """See :func:`claw_llm.embed_vectors`."""
        return _embed(self._native, _VECTORS, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))

    async def aembed_vectors(
        self,
        model: str | None,
        input: str | Sequence[str],
        *,
        dimensions: int | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> list[list[float]]:
        """See :func:`claw_llm.aembed_vectors`."""
        return await _aembed(self._native, _VECTORS, model, input, dimensions, timeout_ms, max_retries, headers, _observed(params, on_event, traceparent))
