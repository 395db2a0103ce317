"""asyncio: the awaitable calls, async streams, cancellation (cancelling a task cancels the
HTTP request) and logs, against the mock gateway."""

from __future__ import annotations

import asyncio
import os
import logging
import time

import pytest

import claw_llm
from conftest import USER, chat_requests

acall = claw_llm.acall_specific_model


async def test_async_call_returns_json(gateway):
    reply = await acall("qwen-plus", USER, temperature=0.1)
    assert reply["choices"][0]["message"]["content"] == "echo: hi"
    assert reply["x_provider_extra"] == {"kept": True}
    [req] = chat_requests(gateway)
    assert req["body"]["temperature"] == 0.1


async def test_async_calls_run_concurrently(gateway):
    started = time.monotonic()
    replies = await asyncio.gather(*(acall("mock-slow:ms=400", [{"role": "user", "content": str(i)}]) for i in range(50)))
    assert [r["choices"][0]["message"]["content"] for r in replies] == [f"echo: {i}" for i in range(50)]
    assert time.monotonic() - started < 2.0


async def test_async_errors_are_the_same_exceptions(gateway):
    with pytest.raises(claw_llm.AuthenticationError) as info:
        await acall("mock-err-oneapi:status=401", USER)
    assert str(info.value) == "Invalid token"
    with pytest.raises(claw_llm.ConfigError):
        await acall("qwen-plus", [])
    with pytest.raises(claw_llm.APITimeoutError):
        await acall("mock-hang", USER, timeout_ms=200)


async def test_async_stream_iterates_and_accumulates(gateway):
    stream = await acall("mock-stream", USER, stream=True)
    assert isinstance(stream, claw_llm.AsyncStream)
    async with stream:
        tokens = [c["choices"][0]["delta"].get("content") async for c in stream if c["choices"]]
    assert [t for t in tokens if t] == ["Hello", ",", " world", "!"]
    assert stream.final_completion()["choices"][0]["message"]["content"] == "Hello, world!"
    assert stream.request_id.startswith("req_") and stream.status == 200


async def test_async_stream_error_mid_stream(gateway):
    stream = await acall("mock-stream-event-error", USER, stream=True)
    got = []
    with pytest.raises(claw_llm.StreamError, match="upstream overloaded"):
        async for chunk in stream:
            got.append(chunk)
    assert len(got) == 2


async def test_async_stream_http_error_raised_by_the_await(gateway):
    with pytest.raises(claw_llm.AuthenticationError):
        await acall("mock-err-oneapi:status=401", USER, stream=True)


async def test_async_stream_aclose_cancels_request(gateway, own_pool):
    before = gateway.settled_connections()
    stream = await own_pool.acall_specific_model("mock-stream-stall", USER, stream=True)
    async for _ in stream:
        break
    await stream.aclose()
    assert gateway.wait_connections_at_most(before) <= before
    assert [c async for c in stream] == []


async def test_async_task_cancel_cancels_http_request(gateway, own_pool):
    before = gateway.settled_connections()
    task = asyncio.create_task(own_pool.acall_specific_model("mock-hang", USER, timeout_ms=30_000))
    deadline = time.monotonic() + 3
    while gateway.open_connections() <= before and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert gateway.open_connections() > before, "the request never reached the gateway"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gateway.wait_connections_at_most(before) <= before


async def test_async_wait_for_timeout_cancels_http_request(gateway, own_pool):
    before = gateway.settled_connections()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(own_pool.acall_specific_model("mock-hang", USER, timeout_ms=30_000), 0.3)
    assert gateway.wait_connections_at_most(before) <= before


async def test_async_cancelling_stream_consumer_cancels_request(gateway, own_pool):
    before = gateway.settled_connections()
    stream = await own_pool.acall_specific_model("mock-stream-stall", USER, stream=True, timeout_ms=30_000)
    got = []

    async def consume():
        async for chunk in stream:
            got.append(chunk)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(got) == 2
    assert gateway.wait_connections_at_most(before) <= before


async def test_async_embed(gateway):
    reply = await claw_llm.aembed("text-embedding-v4", ["a b", "c"], dimensions=8)
    assert len(reply["data"]) == 2
    vectors = await claw_llm.aembed_vectors("text-embedding-v4", "a b", dimensions=8)
    assert len(vectors) == 1 and len(vectors[0]) == 8


async def test_async_failure_is_logged(gateway, caplog):
    caplog.set_level(logging.DEBUG, logger="claw_llm")
    with pytest.raises(claw_llm.AuthenticationError):
        await acall("mock-err-oneapi:status=401", USER)
    assert [r.getMessage() for r in caplog.records if r.name == "claw_llm"] == [
        "[LLM_Client] Error calling mock-err-oneapi:status=401: Invalid token"
    ]


async def test_async_client_methods(gateway):
    client = claw_llm.Client(model="qwen-plus", embedding_model="text-embedding-v4")
    reply = await client.acall_specific_model(None, USER)
    assert reply["mock_echo"]["body"]["model"] == "qwen-plus"
    assert len((await client.aembed_vectors(None, "x", dimensions=4))[0]) == 4


def test_async_works_across_event_loops(gateway):
    for _ in range(3):
        reply = asyncio.run(acall("qwen-plus", USER))
        assert reply["choices"][0]["message"]["content"] == "echo: hi"


def test_async_notifier_without_file_descriptors_is_connection_error(tmp_path):
    """With no file descriptor left (EMFILE), the first async call of a loop fails with
    LLM_CONNECTION_ERROR, an LLMClientError, never a bare OSError. Run in a child process,
    whose descriptor limit is lowered and then used up."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import asyncio, os, resource
        import claw_llm
        loop = asyncio.new_event_loop()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            loop.run_until_complete(claw_llm.acall_specific_model("m", [{"role": "user", "content": "hi"}]))
        except claw_llm.LLMClientError as e:
            print("CODE", e.code, type(e).__name__, isinstance(e, ConnectionError))
            print("MESSAGE", e)
        except BaseException as e:
            print("OTHER", type(e).__name__, e)
        """
    )
    env = {**os.environ, "LLM_BASE_URL": "http://127.0.0.1:9", "LLM_API_KEY": "sk-test", "LLM_LOG": "off"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert "CODE LLM_CONNECTION_ERROR APIConnectionError True" in out.stdout, out.stdout + out.stderr
    assert "asyncio" in out.stdout
