"""Proxies (the same names as core/tests/proxy.rs): NO_PROXY=* bypasses IP-literal base URLs, and
a proxy that cannot be reached is named as the proxy. Proxy variables are read from the process
environment when a client's pool is built, so each case uses a Client."""

from __future__ import annotations

import socket

import pytest

import claw_llm
from conftest import KEY, USER

VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def proxy_env(monkeypatch):
    def set_vars(**env: str) -> None:
        for k in VARS:
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    return set_vars


def test_no_proxy_star_bypasses_ip_literal_base_urls(gateway, proxy_env):
    dead = f"http://127.0.0.1:{closed_port()}"
    proxy_env(HTTP_PROXY=dead, http_proxy=dead, NO_PROXY="*")
    c = claw_llm.Client(base_url=gateway.url, api_key=KEY, log_level="off")
    v = c.call_specific_model("mock-ok", USER, timeout_ms=5000, max_retries=0)
    assert v["mock_echo"]["path"] == "/v1/chat/completions"


def test_unreachable_proxy_is_named(proxy_env):
    dead = f"http://127.0.0.1:{closed_port()}"
    proxy_env(HTTP_PROXY=dead, http_proxy=dead)
    c = claw_llm.Client(base_url="http://claw-proxy-test.invalid:3000", api_key=KEY, log_level="off")
    with pytest.raises(claw_llm.LLMClientError) as ei:
        c.call_specific_model("mock-ok", USER, timeout_ms=5000, max_retries=0)
    assert ei.value.code == "LLM_CONNECTION_ERROR"
    assert f"proxy {dead} refused the connection" in str(ei.value)
