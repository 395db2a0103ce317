"""claw_llm.Client: explicit configuration beats the environment, snapshotted at creation."""

from __future__ import annotations

import pytest

import claw_llm
from conftest import KEY, USER, chat_requests


def test_client_explicit_values_beat_env(gateway, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/never")
    client = claw_llm.Client(base_url=gateway.url + "/v1", api_key=KEY, model="qwen-plus", headers={"x-team": "b"})
    assert client.chat_url == gateway.url + "/v1/chat/completions"
    assert client.embeddings_url == gateway.url + "/v1/embeddings"
    reply = client.call_specific_model("", USER)
    assert reply["mock_echo"]["body"]["model"] == "qwen-plus"
    [req] = chat_requests(gateway)
    assert req["headers"]["x-team"] == "b"
    assert req["headers"]["authorization"] == "Bearer <redacted>"


def test_client_snapshots_env_when_created(gateway, monkeypatch):
    client = claw_llm.Client()
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9")
    assert client.call_specific_model("qwen-plus", USER)["choices"]
    assert client.base_url == gateway.url


def test_client_openai_env_names_are_fallbacks(gateway, monkeypatch):
    monkeypatch.delenv("LLM_BASE_URL")
    monkeypatch.delenv("LLM_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", gateway.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert claw_llm.Client().call_specific_model("qwen-plus", USER)["choices"]
    assert claw_llm.call_specific_model("qwen-plus", USER)["choices"]


def test_client_options(gateway):
    client = claw_llm.Client(timeout_ms=250, max_retries=0, embedding_model="emb", embedding_dims=8)
    assert (client.timeout_ms, client.max_retries, client.embedding_dims) == (250, 0, 8)
    with pytest.raises(claw_llm.APITimeoutError) as info:
        client.call_specific_model("mock-hang", USER)
    assert info.value.timeout_ms == 250
    [vec] = client.embed_vectors(None, "hello")
    assert len(vec) == 8
    with client.call_specific_model("mock-stream", USER, stream=True) as s:
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in s if c["choices"]) == "Hello, world!"


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"base_url": "ftp://x"}, "ftp://x"),
        ({"timeout_ms": 0}, "timeout"),
        ({"timeout_ms": -1}, "timeout_ms"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"log_level": "loud"}, "log_level"),
        ({"headers": {"bad name": "1"}}, "header"),
    ],
)
def test_client_invalid_options_are_config_errors(gateway, kwargs, fragment):
    with pytest.raises(claw_llm.ConfigError) as info:
        claw_llm.Client(**kwargs)
    assert fragment in str(info.value)


def test_client_repr_hides_key(gateway):
    client = claw_llm.Client(api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(client)
    assert repr(client) == f"claw_llm.Client(base_url={gateway.url!r}, model=None)"


def test_help_is_useful():
    doc = claw_llm.call_specific_model.__doc__
    for word in ("timeout_ms", "max_retries", "stream", "LLM_MODEL_ID", "Example"):
        assert word in doc
    assert claw_llm.Client.__doc__ and claw_llm.Stream.__doc__ and claw_llm.AsyncStream.__doc__
