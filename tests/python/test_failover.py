"""Failover (tests/scenarios.json, failover_*): several endpoints, keys and models, the
breakers, and where each attempt went. Same names as the Rust and Node suites."""

from __future__ import annotations

import json
import time
import uuid

import pytest

import claw_llm
from conftest import KEY, USER, refused, running_gateway


def gw_as(gateway, spec: str) -> str:
    """A base URL on the mock whose every request answers as `spec`."""
    return f"{gateway.url}/__gw/{spec}/v1"


def routed(base: str, fallbacks: list[str], **extra) -> claw_llm.Client:
    return claw_llm.Client(
        base_url=base, api_key=KEY, fallbacks=[{"base_url": u, "api_key": KEY} for u in fallbacks], **extra
    )


def test_failover_key_429_rotates_to_next_key(gateway, monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-one")
    monkeypatch.setenv("LLM_API_KEYS", "sk-two")
    started = time.monotonic()
    r = claw_llm.call_specific_model(
        "qwen-plus", USER, max_retries=2, headers={"x-mock-scenario": "limit-key:bearer=sk-one"}
    )
    assert time.monotonic() - started < 0.45, "no backoff between keys"
    assert r["choices"][0]["message"]["content"] == "echo: hi"
    assert isinstance(r, dict) and isinstance(r, claw_llm.Reply)
    d = r.attempts_detail
    assert [(a["key_index"], a["status"], a["code"]) for a in d] == [(0, 429, "LLM_HTTP_ERROR"), (1, 200, None)]
    assert "sk-" not in json.dumps(d)
    assert "attempts_detail" not in r  # the dict itself is the gateway's JSON


def test_failover_refused_endpoint_moves_to_next(gateway, monkeypatch):
    dead = refused()
    monkeypatch.setenv("LLM_BASE_URL", dead)
    monkeypatch.setenv("LLM_FALLBACK_BASE_URLS", gateway.url)
    r = claw_llm.call_specific_model("qwen-plus", USER, max_retries=0)
    assert r["choices"][0]["message"]["content"] == "echo: hi"
    d = r.attempts_detail
    assert len(d) == 2
    assert d[0]["endpoint"] == f"{dead}/v1/chat/completions"
    assert (d[0]["status"], d[0]["code"]) == (None, "LLM_CONNECTION_ERROR")
    assert d[1]["endpoint"] == f"{gateway.url}/v1/chat/completions"
    assert d[1]["status"] == 200


def test_failover_gateway_killed_mid_run(gateway):
    with running_gateway() as primary:
        client = routed(primary.url, [gateway.url])
        assert len(client.call_specific_model("qwen-plus", USER, max_retries=0).attempts_detail) == 1
    r = client.call_specific_model("qwen-plus", USER, max_retries=0)
    assert [a["code"] for a in r.attempts_detail] == ["LLM_CONNECTION_ERROR", None]
    assert r["choices"][0]["message"]["content"] == "echo: hi"


def test_failover_model_not_found_uses_fallback_model(gateway):
    r = claw_llm.call_specific_model(
        "mock-err-message:status=404", USER, max_retries=0, fallback_models=["mock-ok"]
    )
    assert r["mock_echo"]["body"]["model"] == "mock-ok"
    assert "fallbackModels" not in r["mock_echo"]["body"]
    assert [(a["model"], a["status"]) for a in r.attempts_detail] == [
        ("mock-err-message:status=404", 404),
        ("mock-ok", 200),
    ]


def test_failover_400_ends_at_once(gateway):
    client = routed(gateway.url, [gateway.url], fallback_models=["mock-ok"])
    for model in ("mock-err-oneapi:status=400", "mock-err-fastapi422"):
        with pytest.raises(claw_llm.APIStatusError) as info:
            client.call_specific_model(model, USER, max_retries=2)
        assert info.value.code == "LLM_HTTP_ERROR"
        assert info.value.attempts == 1, model
        assert len(info.value.attempts_detail) == 1, model


def test_failover_open_breaker_is_skipped(gateway):
    dead = refused()
    client = routed(dead, [gateway.url], breaker_failures=2, breaker_cooldown_ms=60_000)
    for _ in range(2):
        assert len(client.call_specific_model("qwen-plus", USER, max_retries=0).attempts_detail) == 2
    mine, fallback = client.breaker_state()
    assert (mine["endpoint"], mine["state"], mine["opens"]) == (dead, "open", 1)
    assert fallback["state"] == "closed"
    r = client.call_specific_model("qwen-plus", USER, max_retries=0)
    assert len(r.attempts_detail) == 1, "the open endpoint is skipped"
    assert r.attempts_detail[0]["endpoint"].startswith(gateway.url)
    # Shared by the process: another client and the free function see it.
    assert routed(dead, [gateway.url]).breaker_state()[0]["state"] == "open"
    assert any(b["endpoint"] == dead and b["state"] == "open" for b in claw_llm.breaker_state())


def test_failover_all_open_tries_the_first_opened(gateway):
    a, b = refused(), refused()
    client = routed(a, [b], breaker_failures=1, breaker_cooldown_ms=60_000)
    with pytest.raises(claw_llm.APIConnectionError) as first:
        client.call_specific_model("qwen-plus", USER, max_retries=0)
    assert len(first.value.attempts_detail) == 2
    assert all(s["state"] == "open" for s in client.breaker_state())
    with pytest.raises(claw_llm.APIConnectionError) as info:
        client.call_specific_model("qwen-plus", USER, max_retries=0)
    assert len(info.value.attempts_detail) == 1, "one request still goes out"
    assert info.value.attempts_detail[0]["endpoint"].startswith(a)


def test_failover_stream_before_first_byte(gateway):
    client = routed(gw_as(gateway, "err-empty:status=503"), [gateway.url])
    with client.call_specific_model("qwen-plus", USER, stream=True, max_retries=0) as s:
        text = "".join((c["choices"][0]["delta"].get("content") or "") for c in s if c.get("choices"))
        assert text == "Hello, world!"
        assert [a["status"] for a in s.attempts_detail] == [503, 200]


def test_failover_stream_not_after_first_byte(gateway):
    tag = uuid.uuid4().hex
    client = routed(gw_as(gateway, "stream-reset:after=2"), [gw_as(gateway, f"ok:tag={tag}")])
    s = client.call_specific_model("qwen-plus", USER, stream=True, max_retries=2)
    got = 0
    with pytest.raises(claw_llm.StreamError):
        for _ in s:
            got += 1
    assert got == 2
    moved = [r for r in gateway.requests() if tag in r["path"]]
    assert moved == [], "the call moved after stream bytes reached the caller"


def test_failover_deadline_held_across_chain(gateway):
    def slow_fail() -> str:
        return gw_as(gateway, f"flaky:fails=1000,ms=300,key={uuid.uuid4().hex}")

    client = routed(slow_fail(), [slow_fail(), slow_fail()])
    started = time.monotonic()
    with pytest.raises(claw_llm.APITimeoutError) as info:
        client.call_specific_model("qwen-plus", USER, timeout_ms=800, max_retries=5)
    assert time.monotonic() - started < 1.5
    assert info.value.status == 503, "the last attempt's status is kept"
    assert len(info.value.attempts_detail) >= 2
    assert info.value.attempts_detail[0]["status"] == 503


def test_failover_options_are_validated_before_any_request():
    for bad in (
        {"fallbacks": "http://h"},
        {"fallbacks": [{"url": "http://h"}]},
        {"api_keys": "sk-a,sk-b"},
        {"fallback_models": [1]},
    ):
        with pytest.raises(claw_llm.ConfigError):
            claw_llm.Client(base_url="http://127.0.0.1:9", api_key="k", **bad)


# --- OpenClaw providers ----------------------------------------------------------------------


@pytest.fixture
def openclaw_env(gateway, monkeypatch):
    from conftest import ROOT

    monkeypatch.setenv("LLM_PROVIDERS", "openclaw")
    monkeypatch.setenv("OPENCLAW_CONFIG_PATH", str(ROOT / "tests" / "fixtures" / "openclaw.json"))
    monkeypatch.setenv("CLAW_TEST_GATEWAY", gateway.url)
    monkeypatch.setenv("CLAW_TEST_ONEAPI_KEY", KEY)
    monkeypatch.setenv("CLAW_TEST_DASHSCOPE_KEY", KEY)
    monkeypatch.setenv("CLAW_TEST_TEAM", "claw")
    return monkeypatch


def test_openclaw_provider_model_resolved_from_config(openclaw_env):
    r = claw_llm.call_specific_model("oneapi/qwen-plus", USER, max_retries=0)
    echo = r["mock_echo"]
    assert echo["body"]["model"] == "qwen-plus", "the model id after the slash"
    assert echo["path"] == "/v1/chat/completions"
    assert echo["headers"]["authorization"] == "Bearer <redacted>", "the SecretRef's key"
    assert echo["headers"]["x-openclaw-team"] == "claw"
    r = claw_llm.call_specific_model("dashscope/qwen-max", USER, max_retries=0)
    assert r["mock_echo"]["path"] == "/compatible-mode/v1/chat/completions"
    assert r["mock_echo"]["body"]["model"] == "qwen-max"
    assert r["mock_echo"]["headers"]["authorization"] == "Bearer <redacted>"
    r = claw_llm.call_specific_model("openrouter/qwen-plus", USER, max_retries=0)
    assert r["mock_echo"]["body"]["model"] == "openrouter/qwen-plus"
    assert "x-openclaw-team" not in r["mock_echo"]["headers"]
    r = claw_llm.Client().call_specific_model("oneapi/qwen-plus", USER, max_retries=0)
    assert r["mock_echo"]["body"]["model"] == "qwen-plus"


def test_openclaw_bad_config_names_file_and_line(openclaw_env, tmp_path):
    bad = tmp_path / "openclaw.json"
    bad.write_text("{\n  models: {\n    providers: { p: { baseUrl: , } },\n  },\n}\n")
    openclaw_env.setenv("OPENCLAW_CONFIG_PATH", str(bad))
    with pytest.raises(claw_llm.ConfigError) as info:
        claw_llm.call_specific_model("oneapi/qwen-plus", USER, max_retries=0)
    assert str(bad) in str(info.value)
    assert "line 3" in str(info.value)
    openclaw_env.delenv("OPENCLAW_CONFIG_PATH")
    from conftest import ROOT

    openclaw_env.setenv("OPENCLAW_CONFIG_PATH", str(ROOT / "tests" / "fixtures" / "openclaw.json"))
    openclaw_env.delenv("CLAW_TEST_TEAM")
    with pytest.raises(claw_llm.ConfigError) as info:
        claw_llm.call_specific_model("oneapi/qwen-plus", USER, max_retries=0)
    assert "CLAW_TEST_TEAM" in str(info.value) and "x-openclaw-team" in str(info.value)
