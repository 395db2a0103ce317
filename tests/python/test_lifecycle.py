"""The edges of a process's life: interpreter exit with requests in flight, fork() with a
stream or an async call open, and subinterpreters. Each case runs in a child Python process
and checks its exit status and its stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import claw_llm
from conftest import KEY

# Every script gets the mock's address and a helper that fails the process loudly.
PRELUDE = """
import asyncio, os, sys, threading, time
import claw_llm
M = [{"role": "user", "content": "hi"}]
"""


def run_script(gateway, body: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, LLM_BASE_URL=gateway.url, LLM_API_KEY=KEY, LLM_LOG="off")
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


# A daemon thread waiting inside claw_llm when the main thread ends the interpreter: the
# waiting thread must not re-enter the finalizing interpreter (CPython would end it with
# pthread_exit, whose unwind aborts the process through the Rust frames on its stack).
DAEMON_WORK = {
    "call": 'claw_llm.call_specific_model("mock-slow:ms=3000", M)',
    "embed": 'claw_llm.embed("mock-slow:ms=3000", "hi")',
    "stream": 'list(claw_llm.call_specific_model("mock-stream-stall", M, stream=True))',
}


@pytest.mark.parametrize("work", sorted(DAEMON_WORK))
def test_exit_with_a_daemon_thread_waiting_keeps_the_exit_status(gateway, work):
    out = run_script(
        gateway,
        f"""
        threading.Thread(target=lambda: {DAEMON_WORK[work]}, daemon=True).start()
        time.sleep(0.5)
        sys.exit(3)
        """,
    )
    assert (out.returncode, out.stderr) == (3, ""), out.stderr


def test_exit_with_many_daemon_threads_waiting_keeps_the_exit_status(gateway):
    # Threads in every phase of a wait (asleep, on their way back to the GIL) when exit starts.
    out = run_script(
        gateway,
        """
        def work(i):
            while True:
                try:
                    claw_llm.call_specific_model(f"mock-slow:ms={i % 7 * 10}", M)
                except claw_llm.LLMClientError:
                    pass
        for i in range(16):
            threading.Thread(target=work, args=(i,), daemon=True).start()
        time.sleep(0.5)
        """,
    )
    assert (out.returncode, out.stderr) == (0, ""), out.stderr


def test_exit_cancels_the_requests_in_flight(gateway):
    gateway.settled_connections()
    env = dict(os.environ, LLM_BASE_URL=gateway.url, LLM_API_KEY=KEY, LLM_LOG="off")
    script = f"""
import atexit, json, threading, time, urllib.request
def connections():
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
    with opener.open("{gateway.url}/__mock/stats", timeout=5) as r:
        return json.load(r)["open_connections"]
def closed_after_claw_llm_hook():
    # Registered before claw_llm is imported, so it runs after claw_llm's exit hook.
    deadline = time.monotonic() + 1.0
    while connections() > base and time.monotonic() < deadline:
        time.sleep(0.02)
    print("closed" if connections() <= base else "open", flush=True)
atexit.register(closed_after_claw_llm_hook)
import claw_llm
base = connections()
threading.Thread(target=lambda: claw_llm.call_specific_model(
    "mock-hang", [{{"role": "user", "content": "hi"}}]), daemon=True).start()
deadline = time.monotonic() + 5
while connections() <= base and time.monotonic() < deadline:
    time.sleep(0.02)
assert connections() > base
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=20
    )
    assert (out.returncode, out.stderr, out.stdout) == (0, "", "closed\n"), out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_refuses_a_stream_opened_by_its_parent(gateway):
    out = run_script(
        gateway,
        """
        stream = claw_llm.call_specific_model("mock-stream-stall", M, stream=True)
        next(stream)
        pid = os.fork()
        if pid == 0:
            code = 0
            def read_past_buffered():
                # Chunks the parent already took into Python are handed out; then it refuses.
                for _ in range(10):
                    next(stream)
            for what, use in (("next", read_past_buffered),
                              ("final_completion", stream.final_completion)):
                started = time.monotonic()
                try:
                    use()
                    print(what, "returned", file=sys.stderr)
                    code = 1
                except claw_llm.ConfigError as e:
                    if e.code != "LLM_CLIENT_CONFIG" or "before fork()" not in str(e):
                        print(what, "raised", repr(e), file=sys.stderr)
                        code = 1
                if time.monotonic() - started > 1:
                    print(what, "waited", file=sys.stderr)
                    code = 1
            stream.close()
            del stream
            # A client and the free functions still work in the child.
            client = claw_llm.Client()
            assert client.call_specific_model("qwen-plus", M)["choices"]
            assert claw_llm.call_specific_model("qwen-plus", M)["choices"]
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        stream.close()
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
    )
    assert (out.returncode, out.stderr) == (0, ""), out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_fails_an_async_call_its_parent_started(gateway):
    out = run_script(
        gateway,
        """
        async def main():
            task = asyncio.ensure_future(claw_llm.acall_specific_model("mock-hang", M))
            await asyncio.sleep(0.3)
            pid = os.fork()
            if pid == 0:
                started = time.monotonic()
                try:
                    await task  # (asyncio itself resets the running loop in a child)
                    print("returned", file=sys.stderr)
                    os._exit(1)
                except claw_llm.ConfigError as e:
                    ok = "before fork()" in str(e) and time.monotonic() - started < 1
                    if not ok:
                        print(repr(e), file=sys.stderr)
                    os._exit(0 if ok else 1)
                except BaseException as e:
                    print(repr(e), file=sys.stderr)
                    os._exit(1)
            _, status = os.waitpid(pid, 0)
            task.cancel()
            return os.waitstatus_to_exitcode(status)
        sys.exit(asyncio.run(main()))
        """,
    )
    assert (out.returncode, out.stderr) == (0, ""), out.stderr


def _pythons() -> list[str]:
    """This Python, plus 3.12 and 3.13 when installed (the native module is abi3)."""
    found = [sys.executable]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for minor in ("3.12", "3.13"):
        candidates = [shutil.which(f"python{minor}")]
        candidates += [str(p) for p in sorted(pyenv.glob(f"{minor}.*/bin/python{minor}"))]
        for exe in filter(None, candidates):
            if subprocess.run([exe, "-c", "pass"], capture_output=True).returncode == 0:
                found.append(exe)
                break
    return found


SUBINTERPRETER = """
import sys
try:
    import _interpreters as subs
except ImportError:
    import _xxsubinterpreters as subs
sub = subs.create()
try:
    failed = subs.run_string(sub, "import claw_llm")  # 3.13: the exception's snapshot
except Exception as e:  # 3.11, 3.12: RunFailedError carrying the exception's text
    failed = e
try:
    subs.destroy(sub)
except Exception:
    pass
print("sub:", failed if failed is not None else "imported")
import claw_llm
reply = claw_llm.call_specific_model("qwen-plus", [{"role": "user", "content": "hi"}])
print("main:", reply["choices"][0]["message"]["content"])
"""


@pytest.mark.parametrize("python", _pythons(), ids=lambda p: Path(p).name)
def test_subinterpreter_import_fails_cleanly_and_main_keeps_working(gateway, python):
    package = str(Path(claw_llm.__file__).resolve().parents[1])
    env = dict(
        os.environ, LLM_BASE_URL=gateway.url, LLM_API_KEY=KEY, LLM_LOG="off", PYTHONPATH=package
    )
    out = subprocess.run(
        [python, "-c", SUBINTERPRETER], capture_output=True, text=True, env=env, timeout=30
    )
    assert (out.returncode, out.stderr) == (0, ""), out.stdout
    sub_line, main_line = out.stdout.splitlines()
    assert "claw_llm does not support subinterpreters" in sub_line
    assert main_line == "main: echo: hi"
