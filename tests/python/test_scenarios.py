"""The shared behaviour list (tests/scenarios.json), one test per entry, same names as the
Rust and Node suites (`test_<name>`). test_every_scenario_has_a_python_test keeps it complete."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

import claw_llm
from claw_llm import (
    AbortError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadResponseError,
    ConfigError,
    InternalServerError,
    LLMClientError,
    NotFoundError,
    RateLimitError,
    StreamError,
)
from conftest import KEY, ROOT, USER, chat_requests

call = claw_llm.call_specific_model
SCENARIOS = json.loads((ROOT / "tests" / "scenarios.json").read_text())["scenarios"]


def unique(spec: str) -> str:
    """A flaky spec with its own key, so no other test shares its failure counter."""
    return f"mock-{spec},key={uuid.uuid4().hex}"


def stream_text(stream) -> str:
    return "".join((c["choices"][0]["delta"].get("content") or "") for c in stream if c.get("choices"))


def test_every_scenario_has_a_python_test():
    defined: set[str] = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined.add(node.name)
    missing = [s["name"] for s in SCENARIOS if f"test_{s['name']}" not in defined]
    assert not missing, f"scenarios without a Python test: {missing}"


# --- calls ---------------------------------------------------------------------------------


def test_call_returns_gateway_json_untouched(gateway):
    reply = call("qwen-plus", USER)
    assert reply["choices"][0]["message"]["content"] == "echo: hi"
    assert reply["x_provider_extra"] == {"kept": True}
    assert reply["mock_echo"]["body"]["model"] == "qwen-plus"
    assert reply["usage"]["total_tokens"] > 0


def test_call_sends_bearer_key_and_body(gateway):
    call("qwen-plus", USER)
    [req] = chat_requests(gateway)
    assert req["method"] == "POST"
    assert req["headers"]["authorization"] == "Bearer <redacted>"
    assert req["headers"]["content-type"].startswith("application/json")
    assert req["headers"]["user-agent"].startswith("claw-llm/")
    assert req["body"] == {"model": "qwen-plus", "messages": USER}


def test_call_passes_unknown_options_through(gateway):
    call(
        "qwen-plus",
        USER,
        temperature=0.3,
        response_format={"type": "json_object"},
        x_vendor_field={"nested": [1, "two", None]},
        timeout_ms=5000,
        max_retries=1,
        idle_timeout_ms=4000,
        headers={"x-team": "alpha"},
    )
    [req] = chat_requests(gateway)
    body = req["body"]
    assert body["temperature"] == 0.3
    assert body["response_format"] == {"type": "json_object"}
    assert body["x_vendor_field"] == {"nested": [1, "two", None]}
    for own in ("timeoutMs", "timeout_ms", "maxRetries", "max_retries", "idleTimeoutMs", "headers", "stream"):
        assert own not in body
    assert req["headers"]["x-team"] == "alpha"


def test_call_model_sent_verbatim_with_provider_prefix(gateway):
    call("kimi:moonshot-v1-8k", USER, headers={"x-mock-scenario": "ok"})
    [req] = chat_requests(gateway)
    assert req["body"]["model"] == "kimi:moonshot-v1-8k"


def test_call_model_falls_back_to_llm_model_id(gateway, monkeypatch):
    monkeypatch.setenv("LLM_MODEL_ID", "MiniMax-M2.5")
    call("", USER)
    call(None, USER)
    assert [r["body"]["model"] for r in chat_requests(gateway)] == ["MiniMax-M2.5"] * 2


# --- configuration -------------------------------------------------------------------------


def test_config_missing_base_url_is_config_error(gateway, monkeypatch):
    monkeypatch.delenv("LLM_BASE_URL")
    with pytest.raises(ConfigError) as info:
        call("qwen-plus", USER)
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert "LLM_BASE_URL" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert gateway.requests() == []


def test_config_missing_api_key_is_config_error(gateway, monkeypatch):
    monkeypatch.delenv("LLM_API_KEY")
    with pytest.raises(ConfigError, match="LLM_API_KEY") as info:
        call("qwen-plus", USER)
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert gateway.requests() == []


@pytest.mark.parametrize("bad", ["ftp://files.example/v1", "gateway.local:3000", "not a url"])
def test_config_invalid_base_url_names_value(monkeypatch, bad):
    monkeypatch.setenv("LLM_BASE_URL", bad)
    monkeypatch.setenv("LLM_API_KEY", KEY)
    with pytest.raises(ConfigError) as info:
        call("qwen-plus", USER)
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert bad in str(info.value)


@pytest.mark.parametrize("messages", ["hi", {}, [], None, 42])
def test_config_messages_must_be_non_empty_array(gateway, messages):
    with pytest.raises(ConfigError) as info:
        call("qwen-plus", messages)
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert "messages" in str(info.value)
    assert gateway.requests() == []


@pytest.mark.parametrize("model", ["", "   ", None, 42])
def test_config_model_must_be_non_empty(gateway, model):
    with pytest.raises(ConfigError, match="model") as info:
        call(model, USER)
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert gateway.requests() == []


@pytest.mark.parametrize("stream", ["yes", 1, "true"])
def test_config_stream_must_be_boolean(gateway, stream):
    with pytest.raises(ConfigError, match="stream must be a boolean") as info:
        call("qwen-plus", USER, stream=stream)
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert gateway.requests() == []


def test_config_env_read_at_call_time(gateway, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "/first/v1")
    call("qwen-plus", USER)
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "/second/v1")
    call("qwen-plus", USER)
    assert [r["path"] for r in chat_requests(gateway)] == [
        "/first/v1/chat/completions",
        "/second/v1/chat/completions",
    ]


def test_config_values_are_trimmed(gateway, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "/ \n")
    monkeypatch.setenv("LLM_API_KEY", KEY + "\n")
    reply = call("qwen-plus", USER)
    assert reply["choices"][0]["message"]["content"] == "echo: hi"
    [req] = chat_requests(gateway)
    assert req["headers"]["authorization"] == "Bearer <redacted>"  # the key arrived trimmed
    assert req["path"] == "/v1/chat/completions"


# --- URLs ----------------------------------------------------------------------------------


def test_url_version_base_appends_chat_completions(gateway, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "/v1")
    call("qwen-plus", USER)
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "/api/paas/v4")
    call("glm-4", USER)
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "/compatible-mode/v1/")
    call("qwen-plus", USER)
    assert [r["path"] for r in chat_requests(gateway)] == [
        "/v1/chat/completions",
        "/api/paas/v4/chat/completions",
        "/compatible-mode/v1/chat/completions",
    ]


def test_url_plain_base_appends_v1(gateway, monkeypatch):
    call("qwen-plus", USER)
    monkeypatch.setenv("LLM_BASE_URL", gateway.url + "///")
    call("qwen-plus", USER)
    paths = [r["path"] for r in chat_requests(gateway)]
    assert paths == ["/v1/chat/completions"] * 2
    assert not any("/v1/v1" in p or "//" in p for p in paths)


def test_url_chat_url_override_used_verbatim(gateway, monkeypatch):
    monkeypatch.setenv("LLM_CHAT_URL", gateway.url + "/v1/chat")
    call("qwen-plus", USER)
    [req] = chat_requests(gateway)
    assert req["path"] == "/v1/chat"


# --- error shapes --------------------------------------------------------------------------


def test_error_oneapi_shape(gateway):
    with pytest.raises(AuthenticationError) as info:
        call("mock-err-oneapi:status=401", USER)
    e = info.value
    assert isinstance(e, APIStatusError) and isinstance(e, LLMClientError)
    assert e.code == "LLM_HTTP_ERROR"
    assert e.status == 401
    assert str(e) == "Invalid token" == e.message == e.summary
    assert e.type == "invalid_request_error"
    assert e.error_code == "invalid_api_key"
    assert e.param is None
    assert e.request_id and e.request_id.startswith("req_")
    assert e.body["error"]["message"] == "Invalid token"
    assert e.attempts == 1


def test_error_message_shape(gateway):
    with pytest.raises(claw_llm.BadRequestError) as info:
        call("mock-err-message", USER)
    assert str(info.value) == "Model not found"
    assert info.value.status == 400
    assert info.value.body == {"message": "Model not found"}


def test_error_string_shape(gateway):
    with pytest.raises(APIStatusError) as info:
        call("mock-err-string", USER)
    assert str(info.value) == "Bad gateway config"


def test_error_detail_shape(gateway):
    with pytest.raises(APIStatusError) as info:
        call("mock-err-detail", USER)
    assert str(info.value) == "Not authenticated"


def test_error_fastapi_422_list(gateway):
    with pytest.raises(claw_llm.UnprocessableEntityError) as info:
        call("mock-err-fastapi422", USER)
    assert str(info.value) == "body.messages: field required; body.model: str type expected"
    assert info.value.status == 422


def test_error_html_502_title(gateway):
    with pytest.raises(InternalServerError) as info:
        call("mock-err-html:status=502", USER, max_retries=0)
    e = info.value
    assert str(e) == "502 Bad Gateway"
    assert e.status == 502
    assert isinstance(e.body, str) and "<title>502 Bad Gateway</title>" in e.body


def test_error_text_500(gateway):
    with pytest.raises(InternalServerError) as info:
        call("mock-err-text:status=500", USER, max_retries=0)
    assert str(info.value) == "upstream exploded"
    assert info.value.status == 500


def test_error_empty_body_uses_status(gateway):
    with pytest.raises(InternalServerError) as info:
        call("mock-err-empty:status=503", USER, max_retries=0)
    assert str(info.value) == "HTTP 503"
    assert info.value.status == 503


def test_error_200_with_error_is_api_error(gateway):
    with pytest.raises(APIError) as info:
        call("mock-ok-error", USER)
    e = info.value
    assert e.code == "LLM_API_ERROR"
    assert str(e) == "当前分组上游负载已饱和"
    assert e.status == 200
    assert e.error_code == "overloaded"
    assert not isinstance(e, APIStatusError)


def test_error_200_html_is_bad_response(gateway):
    with pytest.raises(BadResponseError) as info:
        call("mock-ok-html", USER)
    e = info.value
    assert e.code == "LLM_BAD_RESPONSE"
    assert "/v1" in str(e)
    assert e.status == 200
    assert "<html>" in e.body


def test_error_truncated_json_is_bad_response(gateway):
    with pytest.raises(BadResponseError) as info:
        call("mock-ok-truncated", USER)
    assert info.value.code == "LLM_BAD_RESPONSE"


def test_error_connection_refused(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LLM_API_KEY", KEY)
    with pytest.raises(APIConnectionError) as info:
        call("qwen-plus", USER, max_retries=0)
    e = info.value
    assert e.code == "LLM_CONNECTION_ERROR"
    assert isinstance(e, ConnectionError)
    assert str(port) in str(e)


# --- retries -------------------------------------------------------------------------------


def test_retries_429_then_succeeds(gateway):
    reply = call(unique("flaky:fails=2,status=429,retry_after_ms=50"), USER)
    assert reply["choices"][0]["message"]["content"] == "echo: hi"
    assert len(chat_requests(gateway)) == 3


def test_retries_honour_retry_after_seconds(gateway):
    started = time.monotonic()
    call(unique("flaky:fails=1,status=503,retry_after=1"), USER)
    assert time.monotonic() - started >= 1.0
    assert len(chat_requests(gateway)) == 2


def test_retries_exhausted_reports_attempts(gateway):
    with pytest.raises(InternalServerError) as info:
        call(unique("flaky:fails=9,status=503,retry_after_ms=10"), USER, max_retries=2)
    assert info.value.status == 503
    assert info.value.attempts == 3
    assert len(chat_requests(gateway)) == 3


def test_retries_not_on_insufficient_quota(gateway):
    with pytest.raises(RateLimitError) as info:
        call("mock-err-quota", USER)
    assert info.value.type == "insufficient_quota"
    assert len(chat_requests(gateway)) == 1


def test_retries_respect_x_should_retry_false(gateway):
    with pytest.raises(InternalServerError) as info:
        call(unique("flaky:fails=1,status=503,should_retry=false"), USER)
    assert info.value.status == 503
    assert len(chat_requests(gateway)) == 1


def test_retries_not_on_400(gateway):
    with pytest.raises(claw_llm.BadRequestError):
        call("mock-err-message:status=400", USER)
    assert len(chat_requests(gateway)) == 1


def test_retries_never_sleep_past_deadline(gateway):
    started = time.monotonic()
    with pytest.raises(InternalServerError) as info:
        call(unique("flaky:fails=1,status=503,retry_after=5"), USER, timeout_ms=800)
    assert info.value.status == 503
    assert time.monotonic() - started < 1.2


# --- time ----------------------------------------------------------------------------------


def test_timeout_total_deadline_settles(gateway):
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        call("mock-slow:ms=5000", USER, timeout_ms=300)
    elapsed = time.monotonic() - started
    e = info.value
    assert e.code == "ETIMEDOUT" and e.timeout_ms == 300
    assert isinstance(e, TimeoutError)
    assert str(e) == "timeout (300ms)"
    assert elapsed < 0.6, elapsed


def test_timeout_on_never_answered_request(gateway):
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        call("mock-hang", USER, timeout_ms=300)
    assert info.value.timeout_ms == 300
    assert time.monotonic() - started < 1.0


# --- streams -------------------------------------------------------------------------------


def test_stream_yields_chunks_and_final_completion(gateway):
    with call("mock-stream", USER, stream=True) as stream:
        assert isinstance(stream, claw_llm.Stream)
        assert stream.status == 200
        assert stream.request_id and stream.request_id.startswith("req_")
        tokens = [c["choices"][0]["delta"].get("content") for c in stream if c["choices"]]
        final = stream.final_completion()
    assert [t for t in tokens if t] == ["Hello", ",", " world", "!"]
    choice = final["choices"][0]
    assert choice["message"]["content"] == "Hello, world!"
    assert choice["finish_reason"] == "stop"
    assert final["usage"]["total_tokens"] > 0
    assert chat_requests(gateway)[0]["body"]["stream"] is True


@pytest.mark.parametrize(
    "spec",
    ["stream-keepalive"],
)
def test_stream_keepalive_comments_ignored(gateway, spec):
    assert stream_text(call(f"mock-{spec}", USER, stream=True)) == "Hello, world!"


def test_stream_crlf_line_ends(gateway):
    assert stream_text(call("mock-stream-crlf", USER, stream=True)) == "Hello, world!"


def test_stream_cr_line_ends(gateway):
    assert stream_text(call("mock-stream-cr", USER, stream=True)) == "Hello, world!"


def test_stream_one_byte_per_write(gateway):
    assert stream_text(call("mock-stream-bytewise", USER, stream=True)) == "Hello, world!"


def test_stream_split_inside_utf8_char(gateway):
    assert stream_text(call("mock-stream-utf8split", USER, stream=True)) == "你好世界"


def test_stream_leading_bom(gateway):
    assert stream_text(call("mock-stream-bom", USER, stream=True)) == "Hello, world!"


def test_stream_multiline_data(gateway):
    stream = call("mock-stream-multiline", USER, stream=True)
    assert stream_text(stream) == "Hello, world!"
    assert stream.final_completion()["choices"][0]["message"]["content"] == "Hello, world!"


def _read_until_error(stream):
    got = []
    with pytest.raises(StreamError) as info:
        for chunk in stream:
            got.append(chunk)
    return got, info.value


def test_stream_event_error_is_stream_error(gateway):
    got, e = _read_until_error(call("mock-stream-event-error", USER, stream=True))
    assert len(got) == 2
    assert e.code == "LLM_STREAM_ERROR"
    assert str(e) == "upstream overloaded"


def test_stream_error_frame_mid_stream(gateway):
    got, e = _read_until_error(call("mock-stream-error-frame", USER, stream=True))
    assert len(got) == 2
    assert str(e) == "rate limited mid-stream"


def test_stream_truncated_is_stream_error(gateway):
    got, e = _read_until_error(call("mock-stream-truncated", USER, stream=True))
    assert len(got) == 2
    assert "truncated" in str(e)


def test_stream_done_stops_even_if_socket_open(gateway):
    started = time.monotonic()
    stream = call("mock-stream-done-keepopen", USER, stream=True, timeout_ms=10_000)
    assert stream_text(stream) == "Hello, world!"
    assert time.monotonic() - started < 2.0


def _tool_calls(spec):
    stream = call(spec, USER, stream=True)
    for _ in stream:
        pass
    final = stream.final_completion()
    assert final["choices"][0]["finish_reason"] == "tool_calls"
    calls = final["choices"][0]["message"]["tool_calls"]
    assert len(calls) == 2
    for tc in calls:
        assert tc["id"] and tc["function"]["name"]
        assert isinstance(json.loads(tc["function"]["arguments"]), dict)  # whole arguments
    return calls


def test_stream_tool_calls_merge_by_index(gateway):
    _tool_calls("mock-stream-tools")


def test_stream_tool_calls_merge_by_id_without_index(gateway):
    assert [c["function"] for c in _tool_calls("mock-stream-tools-noindex")] == [
        c["function"] for c in _tool_calls("mock-stream-tools")
    ]


def test_stream_reasoning_content_accumulated(gateway):
    stream = call("mock-stream-reasoning", USER, stream=True)
    for _ in stream:
        pass
    message = stream.final_completion()["choices"][0]["message"]
    assert message["reasoning_content"]
    assert message["content"] == "Hello, world!"


def test_stream_idle_timeout_fires_on_stall(gateway):
    stream = call("mock-stream-stall", USER, stream=True, idle_timeout_ms=300)
    got = []
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 2
    assert info.value.timeout_ms == 300
    assert time.monotonic() - started < 2.0


def test_stream_http_error_thrown_before_stream(gateway):
    with pytest.raises(AuthenticationError) as info:
        call("mock-err-oneapi:status=401", USER, stream=True)
    assert info.value.code == "LLM_HTTP_ERROR"


def test_stream_break_early_cancels_request(gateway, own_pool):
    before = gateway.settled_connections()
    with own_pool.call_specific_model("mock-stream-stall", USER, stream=True) as stream:
        for _ in stream:
            break
        assert gateway.open_connections() > before
    assert gateway.wait_connections_at_most(before) <= before


def test_stream_abort(gateway):
    stream = call("mock-stream-stall", USER, stream=True)
    assert next(stream)["choices"]
    timer = threading.Timer(0.3, stream.close)
    timer.start()
    started = time.monotonic()
    with pytest.raises(AbortError) as info:
        for _ in stream:
            pass
    timer.join()
    assert info.value.code == "ABORT_ERR"
    assert time.monotonic() - started < 2.0
    assert list(stream) == []  # after an abort, iteration just ends


# --- embeddings ----------------------------------------------------------------------------


def test_embed_returns_vectors_with_dimensions(gateway):
    reply = claw_llm.embed("text-embedding-v4", "hello world", dimensions=8)
    [item] = reply["data"]
    assert len(item["embedding"]) == 8
    [vec] = claw_llm.embed_vectors("text-embedding-v4", "hello world", dimensions=8)
    assert len(vec) == 8 and all(isinstance(x, float) for x in vec)


def test_embed_list_input(gateway):
    reply = claw_llm.embed("text-embedding-v4", ["alpha beta", "gamma"], dimensions=16)
    assert [d["index"] for d in reply["data"]] == [0, 1]
    vectors = claw_llm.embed_vectors("text-embedding-v4", ["alpha beta", "gamma"], dimensions=16)
    assert len(vectors) == 2
    for vec, item in zip(vectors, reply["data"]):
        assert vec == pytest.approx(item["embedding"], abs=1e-6)


def test_embed_float_encoding_by_default(gateway, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MODEL_ID", "text-embedding-v4")
    monkeypatch.setenv("EMBEDDING_DIMS", "1024")
    claw_llm.embed(None, "hi")
    [req] = [r for r in gateway.requests() if r["path"].endswith("/embeddings")]
    assert req["path"] == "/v1/embeddings"
    assert req["body"]["encoding_format"] == "float"
    assert req["body"]["model"] == "text-embedding-v4"
    assert req["body"]["dimensions"] == 1024


# --- logs ----------------------------------------------------------------------------------


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "claw_llm"]


def test_log_error_line_on_failure(gateway, caplog):
    caplog.set_level(logging.DEBUG, logger="claw_llm")
    with pytest.raises(AuthenticationError):
        call("mock-err-oneapi:status=401", USER)
    assert _lines(caplog) == ["[LLM_Client] Error calling mock-err-oneapi:status=401: Invalid token"]
    assert caplog.records[-1].levelno == logging.ERROR


def test_log_off_silences(gateway, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="claw_llm")
    monkeypatch.setenv("LLM_LOG", "off")
    with pytest.raises(AuthenticationError):
        call("mock-err-oneapi:status=401", USER)
    with pytest.raises(APITimeoutError):
        call("mock-hang", USER, timeout_ms=100)
    assert _lines(caplog) == []


def test_log_debug_line_per_attempt(gateway, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="claw_llm")
    monkeypatch.setenv("LLM_LOG", "debug")
    call(unique("flaky:fails=1,status=503,retry_after_ms=10"), USER)
    attempts = [m for m in _lines(caplog) if m.startswith("[LLM_Client] POST ")]
    assert len(attempts) == 2, _lines(caplog)
    url = gateway.url + "/v1/chat/completions"
    assert url in attempts[0] and "503" in attempts[0] and "ms" in attempts[0]
    assert url in attempts[1] and "200" in attempts[1]


def test_secret_never_in_errors_or_logs(gateway, caplog, monkeypatch):
    secret = "sk-supersecret-0123456789"
    caplog.set_level(logging.DEBUG, logger="claw_llm")
    monkeypatch.setenv("LLM_LOG", "debug")
    monkeypatch.setenv("LLM_API_KEY", secret)
    seen: list[str] = []
    with pytest.raises(AuthenticationError) as info:
        call("mock-err-oneapi:status=401", USER)
    e = info.value
    seen += [str(e), repr(e), json.dumps(e.body), repr(e.__dict__)]
    reply = call("qwen-plus", USER)
    seen.append(json.dumps(reply))  # mock_echo shows the authorization header as the mock saw it
    client = claw_llm.Client(api_key=secret)
    seen += [repr(client), repr(client._native), str(dir(client))]
    with pytest.raises(ConfigError) as bad:
        claw_llm.Client(api_key=secret + "\n\x01")
    seen += [str(bad.value), repr(bad.value)]
    with call("mock-stream", USER, stream=True) as stream:
        seen += [repr(stream), json.dumps(stream.final_completion())]
    seen += _lines(caplog) + [caplog.text]
    for text in seen:
        assert secret not in text


# --- streams alive without progress, defects behind real gateways ---------------------------

PARSER_WORDS = ("invalid length", "expected struct", "Probe", "trailing characters", "EOF while")


def _no_parser_words(message: str) -> None:
    for word in PARSER_WORDS:
        assert word not in message, f"{message!r} shows {word!r}"


def _until_timeout(stream):
    got = []
    with pytest.raises(APITimeoutError) as info:
        for chunk in stream:
            got.append(chunk)
    return got, info.value


def test_stream_pings_without_data_time_out(gateway):
    stream = call("mock-stream-ping-forever", USER, stream=True, idle_timeout_ms=400, timeout_ms=5000)
    started = time.monotonic()
    got, e = _until_timeout(stream)
    assert got == []
    assert e.code == "ETIMEDOUT"
    assert e.timeout_ms == 400
    # Pings arrived every 100 ms all along: only the idle rule can have ended the stream.
    assert time.monotonic() - started >= 0.35


def test_stream_pings_after_tokens_time_out(gateway):
    stream = call("mock-stream-ping-forever:after=2", USER, stream=True, idle_timeout_ms=400, timeout_ms=5000)
    got, e = _until_timeout(stream)
    assert len(got) == 2
    assert e.timeout_ms == 400
    assert stream.final_completion()["choices"][0]["message"]["content"] == "Hello,"


def test_ok_json_not_object_is_bad_response(gateway):
    for shape, what in [("pair", "a JSON array of 2 items"), ("string", "a JSON string"), ("number", "a JSON number")]:
        with pytest.raises(BadResponseError) as info:
            call(f"mock-ok-not-object:shape={shape}", USER)
        e = info.value
        assert e.code == "LLM_BAD_RESPONSE"
        assert e.status == 200
        assert str(e) == f"the gateway answered 200 with {what}, not a chat completion"
        _no_parser_words(str(e))


def test_ok_json_array_of_completions_is_not_a_result(gateway):
    with pytest.raises(BadResponseError) as info:
        call("mock-ok-not-object:shape=triple", USER)
    assert str(info.value) == "the gateway answered 200 with a JSON array of 3 items, not a chat completion"


def test_ok_litellm_fanout_array_is_bad_response(gateway):
    with pytest.raises(BadResponseError) as info:
        call("mock-ok-not-object:shape=fanout", USER)
    assert str(info.value) == "the gateway answered 200 with a JSON array of 4 items, not a chat completion"
    _no_parser_words(str(info.value))


def test_stream_answered_with_json_array_is_bad_response(gateway):
    # Raised by the call itself: never wrapped in a Stream.
    with pytest.raises(BadResponseError) as info:
        call("mock-ok-not-object:shape=triple", USER, stream=True)
    assert str(info.value).endswith("a JSON array of 3 items, not a chat completion")


async def test_stream_answered_with_json_array_is_bad_response_async(gateway):
    with pytest.raises(BadResponseError):
        await claw_llm.acall_specific_model("mock-ok-not-object:shape=triple", USER, stream=True)


def test_embed_json_array_is_bad_response(gateway):
    with pytest.raises(BadResponseError) as info:
        claw_llm.embed("mock-ok-not-object", "hi")
    assert str(info.value) == "the gateway answered 200 with a JSON array of 2 items, not an embeddings response"


def test_ok_truncated_json_is_worded(gateway):
    with pytest.raises(BadResponseError) as info:
        call("mock-ok-truncated", USER)
    message = str(info.value)
    prefix = "the gateway answered 200 with a body that is not a chat completion: it is cut short at line 1 column "
    assert message.startswith(prefix), message
    assert message[len(prefix) :].isdigit()
    _no_parser_words(message)


def test_timeout_after_failed_attempt_keeps_last_error(gateway):
    with pytest.raises(APITimeoutError) as info:
        call(unique("flaky:fails=9,status=500,ms=500,retry_after_ms=50"), USER, timeout_ms=800, max_retries=2)
    e = info.value
    assert e.code == "ETIMEDOUT"
    assert isinstance(e, TimeoutError)
    assert e.timeout_ms == 800
    assert e.attempts == 2
    assert str(e) == (
        "timeout (800ms) after 2 attempts; last: HTTP 500 upstream temporarily unavailable (mock flaky failure 1 of 9)"
    )
    assert e.status == 500
    assert e.request_id.startswith("req_")
    assert e.body["error"]["code"] == "mock_flaky"
    assert e.error_code == "mock_flaky"
    assert e.type == "one_api_error"


def test_stream_error_frame_keeps_fields(gateway):
    _, e = _read_until_error(call("mock-stream-error-frame", USER, stream=True))
    assert e.code == "LLM_STREAM_ERROR"
    assert str(e) == "rate limited mid-stream"
    assert e.body == {"error": {"message": "rate limited mid-stream", "code": "429"}}
    assert e.error_code == "429"
    assert e.request_id.startswith("req_")
    _, framed = _read_until_error(call("mock-stream-event-error", USER, stream=True))
    assert framed.body["error"]["message"] == "upstream overloaded"


def test_stream_closed_before_any_event(gateway):
    for spec in ("mock-stream-empty", "mock-stream-empty:abrupt=1"):
        got, e = _read_until_error(call(spec, USER, stream=True))
        assert got == []
        assert str(e) == "the gateway closed the stream before sending any event (its upstream probably failed)"


def test_not_found_names_url_without_secrets(gateway, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", f"{gateway.url}/v1?api-key=s3cret&api-version=1")
    with pytest.raises(APIStatusError) as info:
        call("mock-err-not-found", USER)
    e = info.value
    assert e.code == "LLM_HTTP_ERROR"
    assert e.status == 404
    assert isinstance(e, claw_llm.NotFoundError)
    assert str(e) == f"Not Found (POST {gateway.url}/v1/chat/completions?api-key=***&api-version=1)"
    assert "s3cret" not in repr(e)


def test_flask_wrapped_error_summary_is_inner_message(gateway):
    with pytest.raises(AuthenticationError) as info:
        call("mock-err-flask", USER)
    e = info.value
    assert str(e) == "Invalid token"
    assert e.body["error"].startswith("API Error: {")


# --- embedding batches, vector size --------------------------------------------------------


def texts(tag: str, n: int) -> list[str]:
    return [f"{tag} item {i}" for i in range(n)]


def embed_requests(gateway, tag: str) -> list[dict]:
    return [
        r
        for r in gateway.requests()
        if isinstance(r["body"], dict)
        and isinstance(r["body"].get("input"), list)
        and str(r["body"]["input"][0]).startswith(tag)
    ]


def test_embed_batches_split_to_the_model_limit(gateway):
    tag = uuid.uuid4().hex
    reply = claw_llm.embed("text-embedding-v4", texts(tag, 200), dimensions=8, timeout_ms=20_000)
    assert [d["index"] for d in reply["data"]] == list(range(200))
    assert reply["usage"] == {"prompt_tokens": 600, "total_tokens": 600}
    assert (reply["model"], reply["object"]) == ("text-embedding-v4", "list")
    reqs = embed_requests(gateway, tag)
    assert len(reqs) == 20
    assert all(len(r["body"]["input"]) == 10 for r in reqs)
    vectors = claw_llm.embed_vectors("text-embedding-v4", texts(tag, 200), dimensions=8)
    for i in (0, 57, 199):
        [one] = claw_llm.embed_vectors("text-embedding-v4", f"{tag} item {i}", dimensions=8)
        assert vectors[i] == one
        assert reply["data"][i]["embedding"] == pytest.approx(one, abs=1e-6)


def test_embed_batches_bounded_concurrency(gateway, monkeypatch):
    monkeypatch.setenv("EMBEDDING_CONCURRENCY", "2")
    key = uuid.uuid4().hex
    model = f"mock-dashscope-embed:ms=100,key={key}"
    reply = claw_llm.embed(model, texts(key, 60), batch_size=10, timeout_ms=20_000)
    assert len(reply["data"]) == 60
    assert len([r for r in gateway.requests() if r["body"]["model"] == model]) == 6
    assert gateway.stats()["in_flight_peak"][key] == 2


def test_embed_batch_failure_names_range_and_batch_size(gateway):
    with pytest.raises(APIStatusError) as info:
        claw_llm.embed(f"mock-dashscope-embed:tag={uuid.uuid4().hex}", texts("x", 25), batch_size=20, max_retries=0)
    e = info.value
    assert e.code == "LLM_HTTP_ERROR"
    assert e.status == 400
    message = str(e)
    assert message.startswith("inputs 0-19 of 25: "), message
    assert "batch size is invalid, it should not be larger than 10" in message
    assert "EMBEDDING_BATCH_SIZE" in message


def test_embed_empty_list_is_config_error(gateway):
    model = f"emb-empty-{uuid.uuid4().hex}"
    with pytest.raises(ConfigError) as info:
        claw_llm.embed(model, [])
    assert info.value.code == "LLM_CLIENT_CONFIG"
    assert not [r for r in gateway.requests() if r["body"] and r["body"].get("model") == model]


def test_embed_dims_mismatch_is_bad_response(gateway):
    with pytest.raises(BadResponseError) as info:
        claw_llm.embed("mock-embed:dims=4", ["a", "b"], dimensions=8)
    assert info.value.code == "LLM_BAD_RESPONSE"
    assert "4 values" in str(info.value) and "8 were expected" in str(info.value)
    with pytest.raises(BadResponseError):
        claw_llm.embed_vectors("mock-embed:dims=4", "a", dimensions=8)


def test_embed_send_dims_off_keeps_dimensions_out(gateway, monkeypatch):
    monkeypatch.setenv("EMBEDDING_DIMS", "8")
    monkeypatch.setenv("EMBEDDING_SEND_DIMS", "0")
    model = f"mock-embed:dims=8,tag={uuid.uuid4().hex}"
    [vec] = claw_llm.embed_vectors(model, "hello")
    assert len(vec) == 8
    [req] = [r for r in gateway.requests() if r["body"]["model"] == model]
    assert "dimensions" not in req["body"]
    client = claw_llm.Client(embedding_dims=16, send_embedding_dims=False)
    with pytest.raises(BadResponseError):
        client.embed(model, "hello")


# --- reasoning split -----------------------------------------------------------------------

THINK = "The user wants a short answer. Let me think it through first."


def stream_parts(stream) -> tuple[list[str], str]:
    pieces: list[str] = []
    reasoning = ""
    for c in stream:
        delta = (c.get("choices") or [{}])[0].get("delta") or {}
        if isinstance(delta.get("content"), str):
            pieces.append(delta["content"])
        if isinstance(delta.get("reasoning_content"), str):
            reasoning += delta["reasoning_content"]
    return pieces, reasoning


def test_reasoning_split_plain(gateway):
    reply = call("mock-minimax", USER, reasoning="split")
    message = reply["choices"][0]["message"]
    assert message["content"] == "echo: hi"
    assert message["reasoning_content"] == f"\n{THINK}\n"
    [req] = chat_requests(gateway)
    assert "reasoning" not in req["body"]


def test_reasoning_split_streamed(gateway, monkeypatch):
    monkeypatch.setenv("LLM_REASONING", "split")
    with call("mock-minimax", USER, stream=True) as stream:
        pieces, reasoning = stream_parts(stream)
        done = stream.final_completion()
    assert all("<" not in p for p in pieces), pieces
    assert "".join(pieces) == "echo: hi"
    assert reasoning == f"\n{THINK}\n"
    assert done["choices"][0]["message"]["content"] == "echo: hi"
    assert done["choices"][0]["message"]["reasoning_content"] == f"\n{THINK}\n"


def test_reasoning_split_one_char_per_chunk(gateway):
    answer = '```json\n{"answer":"echo: hi"}\n```'
    with call(
        "mock-minimax:chunk=1", USER, stream=True, reasoning="split", response_format={"type": "json_object"}
    ) as stream:
        pieces, reasoning = stream_parts(stream)
        done = stream.final_completion()
    assert "".join(pieces) == answer
    assert all(len(p) == 1 for p in pieces), pieces
    assert reasoning == f"\n{THINK}\n"
    assert done["choices"][0]["message"]["content"] == answer


def test_reasoning_raw_by_default_untouched(gateway):
    raw = f"<think>\n{THINK}\n</think>\n\necho: hi"
    message = call("mock-minimax", USER)["choices"][0]["message"]
    assert message["content"] == raw
    assert "reasoning_content" not in message
    with call("mock-minimax", USER, stream=True) as stream:
        pieces, reasoning = stream_parts(stream)
    assert "".join(pieces) == raw
    assert reasoning == ""
# --- models list ---------------------------------------------------------------------------


def test_models_list_returns_gateway_json(gateway):
    free = claw_llm.list_models(timeout_ms=5000)
    assert free["object"] == "list"
    ids = [m["id"] for m in free["data"]]
    assert "qwen-plus" in ids and "text-embedding-v4" in ids
    req = [r for r in gateway.requests() if r["path"] == "/v1/models"][-1]
    assert req["method"] == "GET"
    assert req["headers"]["authorization"] == "Bearer <redacted>"
    assert req["body"] is None
    client = claw_llm.Client()
    assert [m["id"] for m in client.list_models()["data"]] == ids

    async def both():
        return await claw_llm.alist_models(), await client.alist_models()

    a, b = asyncio.run(both())
    assert [m["id"] for m in a["data"]] == ids == [m["id"] for m in b["data"]]


def test_models_404_is_http_error(gateway):
    with pytest.raises(NotFoundError) as info:
        claw_llm.list_models(max_retries=2, headers={"x-mock-scenario": "err-notfound"})
    assert info.value.code == "LLM_HTTP_ERROR"
    assert info.value.status == 404
    assert "Not Found" in str(info.value)
