"""Fixtures shared by the claw_llm tests: the mock gateway (tests/MOCK_GATEWAY.md) and a
clean environment pointing at it. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from claw_llm import _native

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test"
# Every variable the core's configuration reads (claw_llm::ENV_NAMES).
CONFIG_VARS = tuple(_native.ENV_NAMES)
USER = [{"role": "user", "content": "hi"}]

# The mock's control routes are on loopback: never through a proxy.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def gateway_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe = target / "debug" / ("claw-mock-gateway" + (".exe" if sys.platform == "win32" else ""))
    if not exe.exists():
        subprocess.run(["cargo", "build", "-p", "claw-mock-gateway"], cwd=ROOT, check=True)
    return exe


class Gateway:
    """A running claw-mock-gateway and its control routes."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url

    def _get(self, path: str, method: str = "GET"):
        req = urllib.request.Request(self.url + path, method=method)
        with _direct.open(req, timeout=10) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def requests(self) -> list[dict]:
        """Every request received since the last clear (except /__mock/*)."""
        return self._get("/__mock/requests")

    def clear(self) -> None:
        self._get("/__mock/requests", "DELETE")

    def stats(self) -> dict:
        return self._get("/__mock/stats")

    def open_connections(self) -> int:
        return self.stats()["open_connections"]

    def settled_connections(self, timeout: float = 3.0) -> int:
        """The open connection count once it stopped changing (pools dropped by earlier tests
        close their connections asynchronously)."""
        deadline = time.monotonic() + timeout
        last = self.open_connections()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.open_connections()
            if now == last:
                return now
            last = now
        return last

    def wait_connections_at_most(self, n: int, timeout: float = 3.0) -> int:
        """Polls /__mock/stats until at most `n` connections are open; returns the last count."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.open_connections()
            if now <= n or time.monotonic() > deadline:
                return now
            time.sleep(0.02)


def refused() -> str:
    """A base URL whose port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_gateway(expect_key: str = KEY) -> Iterator[Gateway]:
    """A mock gateway of its own for the block, expecting ``expect_key``; it exits with the
    block (on stdin EOF, killed after 10 s)."""
    proc = subprocess.Popen(
        [str(gateway_binary()), "--port", "0", "--expect-key", expect_key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"unexpected first line from the mock: {url!r}"
        yield Gateway(proc, url)
    finally:
        if proc.stdin:
            proc.stdin.close()  # the mock exits on stdin EOF
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def gateway():
    with running_gateway() as gw:
        yield gw


@pytest.fixture(autouse=True)
def llm_env(monkeypatch, request):
    """Every test starts with no claw-llm/OpenAI variables, then (unless it uses no gateway)
    LLM_BASE_URL / LLM_API_KEY pointing at the mock, and an empty request log."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    if "gateway" in request.fixturenames:
        gw = request.getfixturevalue("gateway")
        monkeypatch.setenv("LLM_BASE_URL", gw.url)
        monkeypatch.setenv("LLM_API_KEY", KEY)
        gw.clear()
    yield


@pytest.fixture
def own_pool(gateway):
    """A Client with a connection pool of its own (the free functions share one pool, whose
    idle connections would be reused): a request of it always opens a new connection, so a
    test can watch that connection close in /__mock/stats."""
    import claw_llm

    client = claw_llm.Client(base_url=gateway.url, api_key=KEY)
    gateway.settled_connections()
    return client


def chat_requests(gw: Gateway) -> list[dict]:
    return [r for r in gw.requests() if r["path"].endswith(("/chat/completions", "/chat"))]
