"""The API key never shows through Python (core/tests/secrets.rs): a child interpreter with
``LLM_LOG=debug`` and a distinctive key runs every chat, stream and embeddings scenario family
of the mock gateway (ok, error shapes, flaky, timeouts, resets, redirects, size caps, stream
error frames), sync and asyncio, through the free functions and a ``Client``, and prints
everything a caller can print: ``str(err)``, ``repr(err)``, the traceback, ``err.body``,
``vars(err)``, ``repr(stream)``, ``repr(client)``. Its whole stdout and stderr (where the
``claw_llm`` logger writes at debug level) must not contain the key, nor a piece of it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, Gateway, gateway_binary

SECRET = "sk-claw-S3CRET-7f3a9c1e5b2d"
#: Pieces of the key that must not show either (a truncated or split key is still a leak).
FRAGMENTS = ("S3CRET", "7f3a9c1e5b2d", "claw-S3CR")


def start(expect_key: str) -> Gateway:
    proc = subprocess.Popen(
        [str(gateway_binary()), "--port", "0", "--expect-key", expect_key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return Gateway(proc, url)


def stop(gw: Gateway) -> None:
    if gw.proc.stdin:
        gw.proc.stdin.close()
    try:
        gw.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        gw.proc.kill()
        gw.proc.wait()


@pytest.fixture
def secret_gateways():
    """Two gateways expecting SECRET, so `auth` passes only if the key really was sent."""
    a = start(SECRET)
    try:
        b = start(SECRET)
        try:
            yield a, b
        finally:
            stop(b)
    finally:
        stop(a)


CHILD = textwrap.dedent(
    r'''
    import asyncio, json, os, traceback
    import claw_llm

    GW, OTHER_PORT, DEAD_PORT = os.environ["GW"], os.environ["OTHER_PORT"], os.environ["DEAD_PORT"]
    SECRET = os.environ["LLM_API_KEY"]
    USER = [{"role": "user", "content": "hi"}]
    O = dict(timeout_ms=1500, idle_timeout_ms=1500)

    def show_err(label, e):
        parts = [f"{label}: {e.code}", str(e), repr(e), json.dumps(e.body, default=repr), repr(vars(e)),
                 "".join(traceback.format_exception(e))]
        return " | ".join(parts) + "\n"

    def show(label, fn):
        try:
            fn()
            return f"{label}: ok\n"
        except claw_llm.LLMClientError as e:
            return show_err(label, e)

    async def ashow(label, coro):
        try:
            await coro
            return f"{label}: ok\n"
        except claw_llm.LLMClientError as e:
            return show_err(label, e)

    def chat(t, m, retries):
        return show(m, lambda: t.call_specific_model(m, USER, max_retries=retries, **O))

    def embed(t, m):
        return show("embed " + m, lambda: t.embed(m, ["a b", "c"], max_retries=1, timeout_ms=1500))

    def stream(t, m):
        try:
            s = t.call_specific_model(m, USER, stream=True, max_retries=1, **O)
        except claw_llm.LLMClientError as e:
            return show_err("stream " + m, e)
        out = ""
        try:
            with s:
                for _ in s:
                    pass
                out += f"stream {m}: ok {json.dumps(s.final_completion())}\n"
        except claw_llm.LLMClientError as e:
            out += show_err("stream " + m, e)
        return out + f"stream {m}: {s!r}\n"

    async def astream(t, m):
        try:
            s = await t.acall_specific_model(m, USER, stream=True, max_retries=1, **O)
        except claw_llm.LLMClientError as e:
            return show_err("astream " + m, e)
        out = ""
        try:
            async with s:
                async for _ in s:
                    pass
            out += f"astream {m}: ok\n"
        except claw_llm.LLMClientError as e:
            out += show_err("astream " + m, e)
        return out + f"astream {m}: {s!r}\n"

    CHAT = [
        "mock-ok", "mock-auth", "mock-err-oneapi:status=401", "mock-err-message", "mock-err-string",
        "mock-err-detail", "mock-err-fastapi422", "mock-err-html", "mock-err-text", "mock-err-empty",
        "mock-err-quota", "mock-ok-error", "mock-ok-html", "mock-ok-truncated", "mock-ok-invalid-utf8",
        "mock-flaky:fails=1,status=429,retry_after_ms=10,key=secrets-a",
        "mock-flaky:fails=5,status=503,retry_after_ms=10,key=secrets-b",
        "mock-slow:ms=100", "mock-slow:ms=5000", "mock-hang", "mock-trickle:bps=20", "mock-stall-body",
        "mock-reset-head", "mock-reset-body", "mock-redirect:hops=2", "mock-redirect:status=303,hops=1",
        "mock-redirect:hops=11", "mock-ok-gzip-bomb:bytes=1048576,corrupt=1", "mock-no-such-scenario",
        f"mock-redirect:to=http://localhost:{OTHER_PORT}/v1/chat/completions,hops=1",
        f"mock-redirect:to={GW}/v1/chat/completions",
    ]
    STREAM = [
        "mock-stream", "mock-stream-keepalive", "mock-stream-crlf", "mock-stream-cr", "mock-stream-bytewise",
        "mock-stream-bom", "mock-stream-utf8split", "mock-stream-multiline", "mock-stream-event-error",
        "mock-stream-error-frame", "mock-stream-truncated", "mock-stream-truncated:abrupt=1",
        "mock-stream-done-keepopen", "mock-stream-tools", "mock-stream-tools-noindex", "mock-stream-reasoning",
        "mock-stream-large:bytes=65536", "mock-stream-stall:after=1", "mock-stream-reset:after=1",
        "mock-stream-malformed", "mock-stream-invalid-utf8", "mock-ok", "mock-err-oneapi:status=401",
        "mock-flaky:fails=1,status=503,retry_after_ms=10,key=secrets-c", "mock-slow:ms=5000",
    ]
    EMBED = [
        "text-embedding-v4", "mock-embed", "mock-auth", "mock-err-oneapi:status=401",
        "mock-flaky:fails=1,status=503,retry_after_ms=10,key=secrets-d", "mock-slow:ms=5000", "mock-ok-truncated",
    ]

    async def run_async(client):
        # The same families through asyncio, all at once.
        jobs = [ashow("achat " + m, (client if i % 2 else claw_llm).acall_specific_model(m, USER, max_retries=2, **O))
                for i, m in enumerate(CHAT)]
        jobs += [astream(client if i % 2 else claw_llm, m) for i, m in enumerate(STREAM)]
        jobs += [ashow("aembed " + m, (client if i % 2 else claw_llm).aembed(m, "a b", max_retries=1, timeout_ms=1500))
                 for i, m in enumerate(EMBED)]
        return "".join(await asyncio.gather(*jobs))

    def main():
        from concurrent.futures import ThreadPoolExecutor

        # The free functions read LLM_BASE_URL / LLM_API_KEY / LLM_LOG=debug from os.environ.
        client = claw_llm.Client()
        capped = claw_llm.Client(max_response_bytes=64 * 1024)
        jobs = []
        with ThreadPoolExecutor(32) as pool:
            for i, m in enumerate(CHAT):
                jobs.append(pool.submit(chat, client if i % 2 else claw_llm, m, 2))
            for i, m in enumerate(STREAM):
                jobs.append(pool.submit(stream, client if i % 2 else claw_llm, m))
            for i, m in enumerate(EMBED):
                jobs.append(pool.submit(embed, client if i % 2 else claw_llm, m))
            jobs.append(pool.submit(lambda: chat(capped, "mock-ok-huge:bytes=1048576,chunked=1", 0)
                                    + chat(capped, "mock-ok-gzip-bomb:bytes=1048576", 0)
                                    + stream(capped, "mock-stream-endless-line")
                                    + stream(capped, "mock-stream-big-event:bytes=131072")))
            out = asyncio.run(run_async(client))
            out += "".join(j.result() for j in jobs)
        # A refused connection, and keys the client itself rejects before sending.
        dead = claw_llm.Client(base_url=f"http://127.0.0.1:{DEAD_PORT}", api_key=SECRET)
        out += chat(dead, "m", 1)
        out += chat(claw_llm.Client(base_url="http://127.0.0.1:9", api_key=SECRET + "\u00e9"), "m", 0)
        out += show("control character in key", lambda: claw_llm.Client(base_url="http://127.0.0.1:9", api_key=SECRET + "\x07"))
        out += show("trailing newline then junk", lambda: claw_llm.Client(base_url="http://127.0.0.1:9", api_key=SECRET + "\n\x01"))
        out += f"clients: {client!r} {capped!r} {dead!r} {client._native!r} {dir(client)}\n"
        print(out, end="")
        print("CHILD DONE")

    main()
    '''
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_api_key_never_appears_in_logs_errors_or_reprs(secret_gateways):
    gw, other = secret_gateways
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OPENAI_", "EMBEDDING_"))}
    env.update(
        LLM_BASE_URL=gw.url,
        LLM_API_KEY=SECRET,
        LLM_LOG="debug",
        GW=gw.url,
        OTHER_PORT=other.url.rsplit(":", 1)[1],
        DEAD_PORT=str(closed_port()),
        NO_PROXY="127.0.0.1,localhost",
        PYTHONIOENCODING="utf-8",
    )
    r = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    out, err = r.stdout, r.stderr
    assert r.returncode == 0, f"the child failed:\n{out}\n{err}"
    assert out.endswith("CHILD DONE\n"), out[-2000:]
    for code in (
        "LLM_CLIENT_CONFIG",
        "ETIMEDOUT",
        "LLM_HTTP_ERROR",
        "LLM_API_ERROR",
        "LLM_BAD_RESPONSE",
        "LLM_CONNECTION_ERROR",
        "LLM_STREAM_ERROR",
    ):
        assert f": {code}" in out, f"no {code} case ran:\n{out}"
    # The key really went out: the gateway expecting it let `auth` through.
    for label in ("mock-auth", "achat mock-auth", "embed mock-auth", "aembed mock-auth"):
        assert f"\n{label}: ok\n" in out, f"{label} did not pass:\n{out}"
    # Debug logging was on, through the claw_llm logger (stderr).
    assert "[LLM_Client] POST " in err and "[LLM_Client] retrying in " in err, err
    assert "[LLM_Client] Error calling " in err, err
    for what, text in (("stdout (errors, reprs, tracebacks, streams, clients)", out), ("stderr (log lines)", err)):
        for needle in (SECRET, *FRAGMENTS):
            assert needle not in text, f"{what} contains {needle!r}:\n{text}"
