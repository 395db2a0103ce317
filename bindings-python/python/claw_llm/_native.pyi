"""Private native module of claw_llm (Rust, pyo3). Use the ``claw_llm`` package instead."""

from typing import Any, Callable, Final, final

__all__ = [
    "ENV_NAMES",
    "Handle",
    "NativeClient",
    "NativeStream",
    "Notifier",
    "PANIC_CODE",
    "__version__",
    "_after_fork_in_child",
    "_at_exit",
    "_events_flush",
    "_events_global",
    "_events_wait",
    "_install",
    "breaker_state_json",
    "call",
    "flush_telemetry",
    "metrics_text",
    "reset_stats",
    "start",
    "stats_json",
]

__version__: Final[str]
ENV_NAMES: Final[list[str]]
PANIC_CODE: Final[str]

def _install(error_factory: Callable[..., BaseException], log_emitter: Callable[[list[tuple[int, str]]], None]) -> None: ...
def _at_exit() -> None:
    """``atexit`` hook: cancels the requests in flight; threads still waiting on one park
    instead of re-entering the finalizing interpreter."""

def _after_fork_in_child() -> None:
    """``os.register_at_fork`` hook of the child."""

def call(
    client: NativeClient | None, model: Any, payload: str, kind: int
) -> dict[str, Any] | tuple[dict[str, Any], str] | NativeStream | list[list[float]]:
    """Runs a request synchronously (GIL released, Ctrl-C cancels). ``kind``: 0 chat,
    1 embeddings, 2 embedding vectors. ``payload``: JSON object of messages/input and options."""

def _events_global(enabled: bool) -> None:
    """Turns the process-wide core listener feeding the event queue on or off."""
def _events_wait(timeout_ms: int) -> list[tuple[int, str | None]]:
    """The event pump's wait (GIL released): ``[(tag, event JSON or None when the tag closed)]``,
    ``[]`` after ``timeout_ms``; marks the previous batch delivered."""
def _events_flush(timeout_ms: int) -> bool:
    """Waits until every event so far reached the pump's listeners (never from the pump)."""
def stats_json() -> str: ...
def reset_stats() -> None: ...
def metrics_text() -> str: ...
def flush_telemetry(timeout_ms: int) -> bool:
    """Exports the queued spans, waiting at most ``timeout_ms`` (GIL released)."""
def doctor(args: list[str], env: dict[str, str]) -> dict[str, Any]: ...
def breaker_state_json() -> str:
    """Every endpoint breaker of the process, as JSON."""
def start(notifier: Notifier, client: NativeClient | None, model: Any, payload: str, kind: int) -> Handle:
    """Starts a request for asyncio; the outcome arrives through ``notifier``."""

@final
class NativeClient:
    def __new__(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        embedding_model: str | None = None,
        embedding_dims: int | None = None,
        timeout_ms: float | None = None,
        max_retries: int | None = None,
        headers: dict[str, str] | None = None,
        chat_url: str | None = None,
        log_level: str | None = None,
        max_response_bytes: int | None = None,
        embedding_batch_size: int | None = None,
        embedding_concurrency: int | None = None,
        send_embedding_dims: bool | None = None,
        reasoning: str | None = None,
        ca_bundle: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        fallbacks: list[tuple[str, str | None]] | None = None,
        api_keys: list[str] | None = None,
        fallback_models: list[str] | None = None,
        breaker_failures: int | None = None,
        breaker_cooldown_ms: int | None = None,
        on_event: int | None = None,
    ) -> NativeClient: ...
    def breaker_state_json(self) -> str: ...
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

@final
class NativeStream:
    def next_batch(self) -> str:
        """The next chunks as the text of a JSON array; ``"[]"`` at the end."""
    def try_next_batch(self) -> str | None:
        """The next batch if one is ready now, else ``None`` (never waits)."""
    def start_next_batch(self, notifier: Notifier) -> Handle: ...
    def final_completion(self) -> str: ...
    def abort(self) -> None: ...
    def is_finished(self) -> bool: ...
    @property
    def attempts_detail_json(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def status(self) -> int: ...

@final
class Notifier:
    def __new__(cls) -> Notifier: ...
    def fileno(self) -> int: ...
    def drain(self) -> list[tuple[int, bool, Any]]: ...

@final
class Handle:
    @property
    def id(self) -> int: ...
    def cancel(self) -> None: ...
