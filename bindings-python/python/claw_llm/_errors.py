"""The exceptions of claw_llm: one hierarchy under :class:`LLMClientError`.

Every exception carries the stable ``code`` listed in docs/behaviour.md#errors (the same string in Rust and
Node) and the structured fields the core filled in; the message is the core's summary of
what went wrong (identical to the Node error's ``message``)::

    LLMClientError
    ├── ConfigError            LLM_CLIENT_CONFIG     (also ValueError)
    ├── APITimeoutError        ETIMEDOUT             (also TimeoutError)
    ├── APIConnectionError     LLM_CONNECTION_ERROR  (also ConnectionError)
    ├── APIStatusError         LLM_HTTP_ERROR
    │   ├── BadRequestError            400
    │   ├── AuthenticationError        401
    │   ├── PermissionDeniedError      403
    │   ├── NotFoundError              404
    │   ├── ConflictError              409
    │   ├── UnprocessableEntityError   422
    │   ├── RateLimitError             429
    │   └── InternalServerError        >= 500
    ├── APIError               LLM_API_ERROR  (a 2xx whose JSON is an ``error``)
    ├── BadResponseError       LLM_BAD_RESPONSE
    ├── StreamError            LLM_STREAM_ERROR
    └── AbortError             ABORT_ERR
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
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


class LLMClientError(Exception):
    """Base class of every claw_llm error.

    Attributes:
        code: stable error code (``LLM_CLIENT_CONFIG``, ``ETIMEDOUT``, ``LLM_HTTP_ERROR``,
            ``LLM_API_ERROR``, ``LLM_BAD_RESPONSE``, ``LLM_CONNECTION_ERROR``,
            ``LLM_STREAM_ERROR``, ``ABORT_ERR``).
        message: the summary of what went wrong (also ``str(err)``); alias ``summary``.
        status: HTTP status when a response arrived (for a timeout that cut a retry short,
            the last failed attempt's), else ``None``.
        body: the response body (parsed JSON, or text) for status errors; the first bytes
            of the body for ``BadResponseError``; a stream error frame's JSON; for a timeout
            that cut a retry short, the last failed attempt's body; else ``None``.
        request_id: the gateway's ``x-request-id`` when known.
        attempts: attempts made (retries included); 0 when none was made.
        timeout_ms: the deadline that expired (``APITimeoutError``).
        type, param, error_code: ``error.type``, ``error.param`` and ``error.code`` of an
            OpenAI-shaped error body.
        attempts_detail: where each attempt went, for a call that had fallbacks (endpoints,
            keys or models): ``[{"endpoint", "key_index", "model", "status", "code", "ms"}]``;
            ``[]`` otherwise. The key never appears.
    """

    code: str = "LLM_CLIENT_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        body: Any = None,
        request_id: str | None = None,
        attempts: int = 0,
        timeout_ms: int | None = None,
        type: str | None = None,
        param: str | None = None,
        error_code: str | None = None,
        attempts_detail: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.body = body
        self.request_id = request_id
        self.attempts = attempts
        self.timeout_ms = timeout_ms
        self.type = type
        self.param = param
        self.error_code = error_code
        self.attempts_detail = attempts_detail if attempts_detail is not None else []

    @property
    def summary(self) -> str:
        """The server's words (or what went wrong), as in the log line."""
        return self.message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}"
            for k, v in (("status", self.status), ("request_id", self.request_id))
            if v is not None
        )
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}{extra})"

    # Picklable across processes (multiprocessing, concurrent.futures).
    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status,
            "body": self.body,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "timeout_ms": self.timeout_ms,
            "type": self.type,
            "param": self.param,
            "error_code": self.error_code,
            "attempts_detail": self.attempts_detail,
        }


def _rebuild(cls: type[LLMClientError], message: str, fields: dict[str, Any]) -> LLMClientError:
    return cls(message, **fields)


class ConfigError(LLMClientError, ValueError):
    """Missing or invalid configuration or arguments (``LLM_CLIENT_CONFIG``); raised before
    any network I/O."""

    code = "LLM_CLIENT_CONFIG"


class APITimeoutError(LLMClientError, TimeoutError):
    """The call's deadline (``timeout_ms``) or a stream's idle timeout expired (``ETIMEDOUT``)."""

    code = "ETIMEDOUT"


class APIConnectionError(LLMClientError, ConnectionError):
    """DNS failure, refused or reset connection, TLS failure (``LLM_CONNECTION_ERROR``)."""

    code = "LLM_CONNECTION_ERROR"


class APIStatusError(LLMClientError):
    """The gateway answered a non-2xx status (``LLM_HTTP_ERROR``); see ``status`` and ``body``."""

    code = "LLM_HTTP_ERROR"


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the key was refused."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""


class NotFoundError(APIStatusError):
    """HTTP 404: wrong URL or unknown model."""


class ConflictError(APIStatusError):
    """HTTP 409."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422."""


class RateLimitError(APIStatusError):
    """HTTP 429 (after the retries, or at once for ``insufficient_quota``)."""


class InternalServerError(APIStatusError):
    """HTTP 500 and above."""


class APIError(LLMClientError):
    """A 2xx answer whose JSON is an ``{"error": ...}`` envelope (``LLM_API_ERROR``, OneAPI)."""

    code = "LLM_API_ERROR"


class BadResponseError(LLMClientError):
    """A 2xx body that is not the expected JSON, e.g. an HTML page (``LLM_BAD_RESPONSE``)."""

    code = "LLM_BAD_RESPONSE"


class StreamError(LLMClientError):
    """A stream failed after it started: error frame, truncation, malformed chunk, lost
    connection (``LLM_STREAM_ERROR``)."""

    code = "LLM_STREAM_ERROR"


class AbortError(LLMClientError):
    """The call or stream was cancelled by the caller (``ABORT_ERR``)."""

    code = "ABORT_ERR"


_BY_CODE: dict[str, type[LLMClientError]] = {
    "LLM_CLIENT_CONFIG": ConfigError,
    "ETIMEDOUT": APITimeoutError,
    "LLM_CONNECTION_ERROR": APIConnectionError,
    "LLM_HTTP_ERROR": APIStatusError,
    "LLM_API_ERROR": APIError,
    "LLM_BAD_RESPONSE": BadResponseError,
    "LLM_STREAM_ERROR": StreamError,
    "ABORT_ERR": AbortError,
}

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def _from_native(
    code: str,
    message: str,
    status: int | None,
    request_id: str | None,
    attempts: int,
    timeout_ms: int | None,
    body_json: str | None,
    type_: str | None,
    param: str | None,
    error_code: str | None,
    attempts_detail_json: str | None = None,
) -> LLMClientError:
    """Builds the exception for a core error (called by ``claw_llm._native``)."""
    cls = _BY_CODE.get(code, LLMClientError)
    if cls is APIStatusError and status is not None:
        cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    body = None
    if body_json is not None:
        try:
            body = json.loads(body_json)
        except ValueError:
            body = body_json
    return cls(
        message,
        code=code,
        status=status,
        body=body,
        request_id=request_id,
        attempts=attempts,
        timeout_ms=timeout_ms,
        type=type_,
        param=param,
        error_code=error_code,
        attempts_detail=json.loads(attempts_detail_json) if attempts_detail_json else None,
    )
