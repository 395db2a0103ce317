"""The exception hierarchy (docs/behaviour.md#errors): one base, stable codes, Python's own bases where
they fit, openai-style status subclasses, picklable."""

from __future__ import annotations

import pickle

import pytest

import claw_llm
from claw_llm import _errors


@pytest.mark.parametrize(
    "code, status, cls, builtin",
    [
        ("LLM_CLIENT_CONFIG", None, claw_llm.ConfigError, ValueError),
        ("ETIMEDOUT", None, claw_llm.APITimeoutError, TimeoutError),
        ("LLM_CONNECTION_ERROR", None, claw_llm.APIConnectionError, ConnectionError),
        ("LLM_HTTP_ERROR", 400, claw_llm.BadRequestError, None),
        ("LLM_HTTP_ERROR", 401, claw_llm.AuthenticationError, None),
        ("LLM_HTTP_ERROR", 403, claw_llm.PermissionDeniedError, None),
        ("LLM_HTTP_ERROR", 404, claw_llm.NotFoundError, None),
        ("LLM_HTTP_ERROR", 409, claw_llm.ConflictError, None),
        ("LLM_HTTP_ERROR", 422, claw_llm.UnprocessableEntityError, None),
        ("LLM_HTTP_ERROR", 429, claw_llm.RateLimitError, None),
        ("LLM_HTTP_ERROR", 500, claw_llm.InternalServerError, None),
        ("LLM_HTTP_ERROR", 503, claw_llm.InternalServerError, None),
        ("LLM_HTTP_ERROR", 418, claw_llm.APIStatusError, None),
        ("LLM_API_ERROR", 200, claw_llm.APIError, None),
        ("LLM_BAD_RESPONSE", 200, claw_llm.BadResponseError, None),
        ("LLM_STREAM_ERROR", None, claw_llm.StreamError, None),
        ("ABORT_ERR", None, claw_llm.AbortError, None),
        ("LLM_INTERNAL_ERROR", None, claw_llm.LLMClientError, None),
    ],
)
def test_errors_map_codes_to_classes(code, status, cls, builtin):
    e = _errors._from_native(code, "boom", status, "req_1", 2, None, '{"error": {"message": "boom"}}', "t", "p", "c")
    assert type(e) is cls
    assert isinstance(e, claw_llm.LLMClientError)
    if builtin is not None:
        assert isinstance(e, builtin)
    if code == "LLM_HTTP_ERROR":
        assert isinstance(e, claw_llm.APIStatusError)
    assert e.code == code
    assert str(e) == "boom" and e.message == "boom" and e.summary == "boom"
    assert (e.status, e.request_id, e.attempts) == (status, "req_1", 2)
    assert (e.type, e.param, e.error_code) == ("t", "p", "c")
    assert e.body == {"error": {"message": "boom"}}
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is cls and again.code == code and again.body == e.body and str(again) == "boom"


def test_errors_body_text_stays_text():
    e = _errors._from_native("LLM_BAD_RESPONSE", "x", 200, None, 1, None, '"<html>"', None, None, None)
    assert e.body == "<html>"
    e = _errors._from_native("ETIMEDOUT", "timeout (5ms)", None, None, 1, 5, None, None, None, None)
    assert e.body is None and e.timeout_ms == 5


def test_errors_catchable_by_builtin_bases(gateway):
    with pytest.raises(ValueError):
        claw_llm.call_specific_model("qwen-plus", [])
    with pytest.raises(TimeoutError):
        claw_llm.call_specific_model("mock-hang", [{"role": "user", "content": "x"}], timeout_ms=100)


def test_errors_every_public_class_is_exported():
    for name in _errors.__all__:
        assert getattr(claw_llm, name) is getattr(_errors, name)
        assert name in claw_llm.__all__


def test_errors_repr_names_class_and_code():
    e = claw_llm.AuthenticationError("Invalid token", code="LLM_HTTP_ERROR", status=401, request_id="req_9")
    assert repr(e) == "AuthenticationError('Invalid token', code='LLM_HTTP_ERROR', status=401, request_id='req_9')"


def test_errors_bad_json_params_are_config_errors(gateway):
    with pytest.raises(claw_llm.ConfigError, match="cannot be encoded as JSON"):
        claw_llm.call_specific_model("qwen-plus", [{"role": "user", "content": "x"}], extra={1, 2})
    with pytest.raises(claw_llm.ConfigError):
        claw_llm.call_specific_model("qwen-plus", [{"role": "user", "content": "x"}], temperature=float("nan"))
    with pytest.raises(claw_llm.ConfigError, match="timeoutMs"):
        claw_llm.call_specific_model("qwen-plus", [{"role": "user", "content": "x"}], timeout_ms=-5)
    with pytest.raises(claw_llm.ConfigError, match="maxRetries"):
        claw_llm.call_specific_model("qwen-plus", [{"role": "user", "content": "x"}], max_retries=1.5)
    with pytest.raises(claw_llm.ConfigError, match="headers"):
        claw_llm.call_specific_model("qwen-plus", [{"role": "user", "content": "x"}], headers={"x": 1})
    assert gateway.requests() == []
