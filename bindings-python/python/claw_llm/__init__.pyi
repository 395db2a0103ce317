"""Type stubs of claw_llm (the public API; see the module docstring and help())."""

import os
from types import TracebackType
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence, TypedDict, TypeVar, overload

from . import _native
from ._errors import (
    AbortError as AbortError,
    APIConnectionError as APIConnectionError,
    APIError as APIError,
    APIStatusError as APIStatusError,
    APITimeoutError as APITimeoutError,
    AuthenticationError as AuthenticationError,
    BadRequestError as BadRequestError,
    BadResponseError as BadResponseError,
    ConfigError as ConfigError,
    ConflictError as ConflictError,
    InternalServerError as InternalServerError,
    LLMClientError as LLMClientError,
    NotFoundError as NotFoundError,
    PermissionDeniedError as PermissionDeniedError,
    RateLimitError as RateLimitError,
    StreamError as StreamError,
    UnprocessableEntityError as UnprocessableEntityError,
)

__version__: str
__all__ = [
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
    "Reply",
    "call_specific_model",
    "acall_specific_model",
    "embed",
    "aembed",
    "embed_vectors",
    "aembed_vectors",
    "Client",
    "Stream",
    "AsyncStream",
    "LLMClientError",
    "ConfigError",
    "APITimeoutError",
    "APIConnectionError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "APIError",
    "BadResponseError",
    "StreamError",
    "AbortError",
]

Messages = Sequence[Mapping[str, Any]]

class Usage(TypedDict):
    """Token counts as the gateway reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

class Event(TypedDict):
    """One HTTP attempt (``type == "attempt"``) or one finished call (``type == "call"``)."""

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
    """Call latency percentiles, in milliseconds."""

    p50: float
    p95: float
    p99: float

class ModelStats(TypedDict):
    """One model's numbers."""

    calls: int
    failures: dict[str, int]
    retries: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms: Latency

class Stats(TypedDict):
    """What stats() returns."""

    models: dict[str, ModelStats]
    dropped_events: int

_F = TypeVar("_F", bound=Callable[[Event], object])

def add_event_listener(listener: _F) -> _F:
    """Calls listener(event) for every attempt and call of the process; returns listener."""
def remove_event_listener(listener: Callable[[Event], object]) -> bool:
    """Removes a listener added with add_event_listener."""
def flush_events(timeout: float = 5.0) -> bool:
    """Waits until every event so far reached its listeners (at most timeout seconds)."""
def stats() -> Stats:
    """Usage per model since the process started (or reset_stats())."""
def reset_stats() -> None: ...
def metrics_text() -> str:
    """stats() in the Prometheus text format."""
def flush_telemetry(timeout: float = 2.0) -> bool:
    """Exports the queued OpenTelemetry spans (at most timeout seconds)."""

class Reply(dict[str, Any]):
    """The reply of a call that had fallbacks: the gateway's JSON plus ``attempts_detail``."""

    attempts_detail: list[dict[str, Any]]
    def __init__(self, value: dict[str, Any], attempts_detail: list[dict[str, Any]]) -> None: ...

def breaker_state() -> list[dict[str, Any]]:
    """Every endpoint breaker of this process."""

class Stream:
    """A streamed chat completion (sync iterator of chunk dicts, context manager)."""

    def __init__(self, native: _native.NativeStream) -> None: ...
    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def __next__(self) -> dict[str, Any]: ...
    def final_completion(self) -> dict[str, Any]: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def attempts_detail(self) -> list[dict[str, Any]]: ...
    @property
    def status(self) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def __enter__(self) -> Stream: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

class AsyncStream:
    """A streamed chat completion (async iterator of chunk dicts, async context manager)."""

    def __init__(self, native: _native.NativeStream) -> None: ...
    def __aiter__(self) -> AsyncStream: ...
    async def __anext__(self) -> dict[str, Any]: ...
    def final_completion(self) -> dict[str, Any]: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def attempts_detail(self) -> list[dict[str, Any]]: ...
    @property
    def status(self) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> AsyncStream: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

@overload
def call_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: Literal[False] = False,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Chat completion: the gateway's JSON (dict), or a Stream with stream=True."""
@overload
def call_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: Literal[True],
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> Stream: ...
@overload
def call_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> dict[str, Any] | Stream: ...

@overload
async def acall_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: Literal[False] = False,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Chat completion for asyncio: the JSON (dict), or an AsyncStream with stream=True."""
@overload
async def acall_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: Literal[True],
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> AsyncStream: ...
@overload
async def acall_specific_model(
    model: str | None,
    messages: Messages,
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    idle_timeout_ms: float | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
    **params: Any,
) -> dict[str, Any] | AsyncStream: ...

def list_models(
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]: ...
async def alist_models(
    *,
    timeout_ms: float | None = None,
    max_retries: int | None = None,
    headers: Mapping[str, str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]: ...
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
) -> dict[str, Any]: ...
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
) -> dict[str, Any]: ...
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
) -> list[list[float]]: ...
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
) -> list[list[float]]: ...

class Client:
    """A client with a configuration fixed at creation (arguments > LLM_* > OPENAI_* env)."""

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
    ) -> None: ...
    def breaker_state(self) -> list[dict[str, Any]]: ...
    @property
    def base_url(self) -> str: ...
    @property
    def chat_url(self) -> str: ...
    @property
    def embeddings_url(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def embedding_model(self) -> str | None: ...
    @property
    def embedding_dims(self) -> int | None: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def max_retries(self) -> int: ...
    @overload
    def call_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: Literal[False] = False,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> dict[str, Any]: ...
    @overload
    def call_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: Literal[True],
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> Stream: ...
    @overload
    def call_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> dict[str, Any] | Stream: ...
    @overload
    async def acall_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: Literal[False] = False,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> dict[str, Any]: ...
    @overload
    async def acall_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: Literal[True],
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> AsyncStream: ...
    @overload
    async def acall_specific_model(
        self,
        model: str | None,
        messages: Messages,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        idle_timeout_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
        **params: Any,
    ) -> dict[str, Any] | AsyncStream: ...
    def list_models(
        self,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
    ) -> dict[str, Any]: ...
    async def alist_models(
        self,
        *,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_event: Callable[[Event], object] | None = None,
        traceparent: str | None = None,
    ) -> dict[str, Any]: ...
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
    ) -> dict[str, Any]: ...
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
    ) -> dict[str, Any]: ...
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
    ) -> list[list[float]]: ...
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
    ) -> list[list[float]]: ...
