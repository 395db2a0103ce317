"""The binding's promises about threads, signals, fork and panics (STYLE.md): sync calls
release the GIL, Ctrl-C cancels a call or a stream promptly, a forked child can call, and a
Rust panic surfaces as LLMClientError."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import claw_llm
from claw_llm import _native
from conftest import KEY, USER

call = claw_llm.call_specific_model


def test_gil_released_threads_run_calls_in_parallel(gateway):
    results: list[str] = []

    def worker():
        reply = call("mock-slow:ms=500", USER)
        results.append(reply["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    # The main thread keeps running Python while the calls wait.
    spins = 0
    while any(t.is_alive() for t in threads):
        spins += 1
        time.sleep(0.001)
    elapsed = time.monotonic() - started
    for t in threads:
        t.join()
    assert results == ["echo: hi"] * 8
    assert elapsed < 1.3, f"8 x 500 ms calls took {elapsed:.2f}s: the GIL is not released"
    assert spins > 50


def test_gil_released_during_stream_reads(gateway):
    stream = call("mock-stream-stall", USER, stream=True, idle_timeout_ms=600)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        with pytest.raises(claw_llm.APITimeoutError):
            for _ in stream:
                pass
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 20


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_ctrl_c_interrupts_sync_call_and_cancels_request(gateway, own_pool):
    before = gateway.settled_connections()
    timer = _interrupt_after(0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        own_pool.call_specific_model("mock-hang", USER, timeout_ms=30_000)
    elapsed = time.monotonic() - started
    timer.join()
    assert elapsed < 1.0, elapsed
    assert gateway.wait_connections_at_most(before) <= before  # the request was cancelled


def test_ctrl_c_interrupts_sync_stream(gateway, own_pool):
    before = gateway.settled_connections()
    stream = own_pool.call_specific_model("mock-stream-stall", USER, stream=True, timeout_ms=30_000)
    timer = _interrupt_after(0.3)
    started = time.monotonic()
    got = []
    with pytest.raises(KeyboardInterrupt):
        for chunk in stream:
            got.append(chunk)
    timer.join()
    assert len(got) == 2
    assert time.monotonic() - started < 1.0
    assert gateway.wait_connections_at_most(before) <= before
    with pytest.raises(claw_llm.AbortError):
        next(stream)  # the stream was aborted
    assert list(stream) == []


def test_sigint_interrupts_a_call_in_a_subprocess(gateway, tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time, claw_llm
            print("ready", flush=True)
            started = time.monotonic()
            try:
                claw_llm.call_specific_model("mock-hang", [{"role": "user", "content": "hi"}],
                                             timeout_ms=30000)
                print("returned", flush=True)
            except KeyboardInterrupt:
                print(f"interrupted {time.monotonic() - started:.3f}", flush=True)
            """
        )
    )
    env = dict(os.environ, LLM_BASE_URL=gateway.url, LLM_API_KEY=KEY)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # the request is on the wire
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.startswith("interrupted"), (out, err)
    assert float(out.split()[1]) < 2.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_can_call(gateway):
    assert call("qwen-plus", USER)["choices"]  # the parent's runtime and pool are in use
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(r)
            reply = call("qwen-plus", [{"role": "user", "content": "from child"}])
            stream = call("mock-stream", USER, stream=True)
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"])
            os.write(w, f"{reply['choices'][0]['message']['content']}|{text}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        out = f.read()
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == "echo: from child|Hello, world!"
    assert call("qwen-plus", USER)["choices"]  # the parent still works


def test_panic_on_calling_thread_raises_llm_client_error():
    with pytest.raises(claw_llm.LLMClientError) as info:
        _native._force_panic_for_tests("call")
    assert info.value.code == _native.PANIC_CODE == "LLM_INTERNAL_ERROR"
    assert "forced panic" in str(info.value)


def test_panic_in_runtime_task_raises_llm_client_error():
    with pytest.raises(claw_llm.LLMClientError) as info:
        _native._force_panic_for_tests("task")
    assert info.value.code == "LLM_INTERNAL_ERROR"
    assert call.__module__ == "claw_llm"  # the module is still usable afterwards


async def test_panic_in_async_task_raises_llm_client_error():
    with pytest.raises(claw_llm.LLMClientError) as info:
        await claw_llm._submit(lambda n: _native._force_panic_for_tests("task", n))
    assert info.value.code == "LLM_INTERNAL_ERROR"
