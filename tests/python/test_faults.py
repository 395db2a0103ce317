"""Hostile gateways through Python: the fault cases of core/tests/faults.rs, each pinned to the
exact exception class and ``code`` and to a bounded wall time (the call settles within its
deadline + 100 ms), sync and asyncio. Cases that push large bodies also check that this
process's resident memory stays far below the body size. See the README's "Under faults"
table and tests/MOCK_GATEWAY.md."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time

import pytest

import claw_llm
from conftest import KEY, USER, Gateway, running_gateway

MIB = 1024 * 1024
#: What "settles within its deadline" allows on top of the deadline (seconds).
SLACK = 0.100

MODES = ["sync", "async"]


def unique(prefix: str) -> str:
    unique.n += 1  # type: ignore[attr-defined]
    return f"{prefix}py{unique.n}x{time.monotonic_ns()}"  # type: ignore[attr-defined]


unique.n = 0  # type: ignore[attr-defined]


@pytest.fixture
def client(gateway):
    """A client of the shared gateway, logs off (every case here fails on purpose)."""

    def make(**extra):
        return claw_llm.Client(base_url=gateway.url, api_key=KEY, log_level="off", **extra)

    return make


def requests_for(gw: Gateway, model: str) -> list[dict]:
    return [r for r in gw.requests() if isinstance(r.get("body"), dict) and r["body"].get("model") == model]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def within(deadline_ms: float, fn):
    """Runs ``fn()`` and asserts it settled within ``deadline_ms`` + 100 ms;
    returns (value or None, exception or None, seconds taken)."""
    t0 = time.monotonic()
    value = error = None
    try:
        value = fn()
    except claw_llm.LLMClientError as e:
        error = e
    took = time.monotonic() - t0
    assert took < deadline_ms / 1000 + SLACK, f"took {took * 1000:.0f} ms, deadline {deadline_ms} ms"
    return value, error, took


def call(mode: str, target, model: str, **options):
    """One chat call, sync or through asyncio (a fresh loop per call)."""
    if mode == "sync":
        return target.call_specific_model(model, USER, **options)

    async def go():
        return await target.acall_specific_model(model, USER, **options)

    return asyncio.run(go())


def call_err(mode, target, model, timeout_ms, max_retries, cls, code, **extra):
    """A chat call that must fail with ``cls``/``code`` within its deadline + 100 ms."""
    value, err, took = within(
        timeout_ms, lambda: call(mode, target, model, timeout_ms=timeout_ms, max_retries=max_retries, **extra)
    )
    assert value is None, "the call must fail"
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert err.code == code
    return err, took


def drain_until_error(mode: str, target, model: str, **options):
    """Opens a stream and reads it to its error; returns (chunks before it, the error)."""

    def check(chunks, e):
        assert isinstance(e, claw_llm.LLMClientError), repr(e)
        return chunks, e

    if mode == "sync":
        s = target.call_specific_model(model, USER, stream=True, **options)
        chunks = 0
        try:
            with s:
                for _ in s:
                    chunks += 1
                    assert chunks < 100_000, "the stream never failed"
        except claw_llm.LLMClientError as e:
            return check(chunks, e)
        raise AssertionError(f"the stream ended without an error after {chunks} chunks")

    async def go():
        s = await target.acall_specific_model(model, USER, stream=True, **options)
        chunks = 0
        try:
            async with s:
                async for _ in s:
                    chunks += 1
                    assert chunks < 100_000, "the stream never failed"
        except claw_llm.LLMClientError as e:
            return check(chunks, e)
        raise AssertionError(f"the stream ended without an error after {chunks} chunks")

    return asyncio.run(go())


def mentions(err: Exception, *words: str) -> None:
    for w in words:
        assert w in str(err), f"{str(err)!r} does not mention {w!r}"


# ---------------------------------------------------------------- memory probe


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_growth_kib(fn):
    """The peak resident memory growth (KiB) of this process while ``fn()`` runs: sampled
    every millisecond from /proc/self/status by a thread (the call releases the GIL), and
    from VmHWM, reset first, where the kernel allows it. Returns (fn's value, growth)."""
    gc.collect()
    base = status_kib("VmRSS")
    assert base > 0, "VmRSS is not readable from /proc/self/status"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    stop = threading.Event()
    peak = [base]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], status_kib("VmRSS"))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = fn()
    finally:
        stop.set()
        sampler.join()
    top = max(peak[0], status_kib("VmRSS"))
    if hwm_reset:
        top = max(top, status_kib("VmHWM"))
    growth = max(0, top - base)
    print(f"peak RSS growth {growth} KiB (base {base} KiB)")
    return out, growth


def test_memory_probe_sees_a_large_allocation():
    def alloc():
        big = bytearray(b"\x01") * (48 * MIB)
        time.sleep(0.02)
        return len(big)

    n, growth = peak_growth_kib(alloc)
    assert n == 48 * MIB
    assert growth > 40 * 1024, f"the probe saw only {growth} KiB"


# ---------------------------------------------------------------- connection faults


@pytest.mark.parametrize("mode", MODES)
def test_refused_connection_is_connection_error_within_deadline(mode):
    c = claw_llm.Client(base_url=f"http://127.0.0.1:{closed_port()}", api_key=KEY, log_level="off")
    # Retries are allowed, but no backoff sleep may pass the deadline.
    err, _ = call_err(mode, c, "m", 1500, 2, claw_llm.APIConnectionError, "LLM_CONNECTION_ERROR")
    assert isinstance(err, ConnectionError)
    assert err.attempts >= 1
    mentions(err, "connection failed")


@pytest.mark.parametrize("mode", MODES)
def test_reset_before_head_is_connection_error(mode, client, gateway):
    err, _ = call_err(
        mode, client(), unique("mock-reset-head:tag="), 2000, 0, claw_llm.APIConnectionError, "LLM_CONNECTION_ERROR"
    )
    assert err.attempts == 1
    model = unique("mock-reset-head:tag=")
    err, _ = call_err(mode, client(), model, 6000, 2, claw_llm.APIConnectionError, "LLM_CONNECTION_ERROR")
    assert err.attempts == 3
    assert len(requests_for(gateway, model)) == 3


@pytest.mark.parametrize("mode", MODES)
def test_reset_mid_body_is_connection_error_without_retry(mode, client, gateway):
    model = unique("mock-reset-body:tag=")
    err, _ = call_err(mode, client(), model, 2000, 2, claw_llm.APIConnectionError, "LLM_CONNECTION_ERROR")
    mentions(err, "while reading the response")
    assert len(requests_for(gateway, model)) == 1, "body bytes arrived: no retry"


@pytest.mark.parametrize("mode", MODES)
def test_reset_mid_stream_is_stream_error_without_retry(mode, client, gateway):
    model = unique("mock-stream-reset:after=2,tag=")
    (chunks, err), _, _ = within(
        2000, lambda: drain_until_error(mode, client(), model, timeout_ms=2000, max_retries=2)
    )
    assert chunks == 2
    assert type(err) is claw_llm.StreamError and err.code == "LLM_STREAM_ERROR"
    mentions(err, "connection lost mid-stream")
    assert len(requests_for(gateway, model)) == 1, "stream bytes were handed out: no retry"


@pytest.mark.parametrize("mode", MODES)
def test_never_answered_request_times_out_at_deadline(mode, client):
    err, took = call_err(mode, client(), unique("mock-hang:tag="), 500, 2, claw_llm.APITimeoutError, "ETIMEDOUT")
    assert isinstance(err, TimeoutError)
    assert err.timeout_ms == 500
    assert took >= 0.49, f"settled early: {took}"


@pytest.mark.parametrize("mode", MODES)
def test_never_answered_request_free_function_times_out_at_deadline(mode, gateway, monkeypatch):
    monkeypatch.setenv("LLM_LOG", "off")
    err, took = call_err(mode, claw_llm, unique("mock-hang:tag="), 500, 2, claw_llm.APITimeoutError, "ETIMEDOUT")
    assert err.timeout_ms == 500
    assert took >= 0.49, f"settled early: {took}"


@pytest.mark.parametrize("mode", MODES)
def test_body_trickling_one_byte_per_second_times_out_at_deadline(mode, client):
    err, took = call_err(
        mode, client(), unique("mock-trickle:bps=1,tag="), 700, 2, claw_llm.APITimeoutError, "ETIMEDOUT"
    )
    assert err.timeout_ms == 700
    assert took >= 0.69, f"settled early: {took}"


def test_stalled_body_times_out_at_deadline(client):
    call_err("sync", client(), unique("mock-stall-body:tag="), 500, 2, claw_llm.APITimeoutError, "ETIMEDOUT")


@pytest.mark.parametrize("mode", MODES)
def test_stream_head_wait_is_bounded_by_deadline(mode, client):
    err, _ = call_err(
        mode,
        client(),
        unique("mock-slow:ms=5000,tag="),
        400,
        2,
        claw_llm.APITimeoutError,
        "ETIMEDOUT",
        stream=True,
    )
    assert err.timeout_ms == 400


@pytest.mark.parametrize("mode", MODES)
def test_stream_idle_timeout_bounds_a_trickling_stream(mode, client):
    # One byte per second: every gap is longer than the idle timeout, the whole call is not.
    # The head arrives at once, so the measured time (head + idle wait) is bounded by 300 ms.
    model = unique("mock-trickle:bps=1,tag=")
    (chunks, err), _, _ = within(
        300,
        lambda: drain_until_error(mode, client(), model, timeout_ms=10_000, idle_timeout_ms=300, max_retries=0),
    )
    assert chunks == 0
    assert type(err) is claw_llm.APITimeoutError and err.code == "ETIMEDOUT"
    assert err.timeout_ms == 300


# ---------------------------------------------------------------- bad 2xx bodies


@pytest.mark.parametrize("mode", MODES)
def test_truncated_json_is_bad_response(mode, client):
    err, _ = call_err(
        mode, client(), unique("mock-ok-truncated:tag="), 2000, 2, claw_llm.BadResponseError, "LLM_BAD_RESPONSE"
    )
    assert err.status == 200
    assert err.attempts == 1, "a bad 2xx body is not retried"


@pytest.mark.parametrize("mode", MODES)
def test_invalid_utf8_in_json_is_bad_response(mode, client):
    err, _ = call_err(
        mode, client(), unique("mock-ok-invalid-utf8:tag="), 2000, 2, claw_llm.BadResponseError, "LLM_BAD_RESPONSE"
    )
    mentions(err, "not valid UTF-8")
    assert err.status == 200
    assert isinstance(err.body, str) and err.body.startswith("{"), repr(err.body)


@pytest.mark.parametrize("mode", MODES)
def test_invalid_utf8_in_sse_is_stream_error(mode, client):
    model = unique("mock-stream-invalid-utf8:tag=")
    (chunks, err), _, _ = within(2000, lambda: drain_until_error(mode, client(), model, timeout_ms=2000, max_retries=0))
    assert chunks == 1, "the token before the bad event is delivered"
    assert type(err) is claw_llm.StreamError and err.code == "LLM_STREAM_ERROR"
    mentions(err, "UTF-8")


def test_corrupt_gzip_body_is_bad_response(client):
    err, _ = call_err(
        "sync",
        client(),
        unique("mock-ok-gzip-bomb:corrupt=1,tag="),
        2000,
        2,
        claw_llm.BadResponseError,
        "LLM_BAD_RESPONSE",
    )
    mentions(err, "could not be decoded")
    assert err.attempts == 1


# ---------------------------------------------------------------- size cap


@pytest.mark.parametrize("mode", MODES)
def test_size_cap_env_knob_is_honoured_by_free_functions(mode, gateway, monkeypatch):
    monkeypatch.setenv("LLM_LOG", "off")
    monkeypatch.setenv("LLM_MAX_RESPONSE_BYTES", str(MIB))
    err, _ = call_err(
        mode,
        claw_llm,
        unique("mock-ok-huge:bytes=1048577,chunked=1,tag="),
        5000,
        0,
        claw_llm.BadResponseError,
        "LLM_BAD_RESPONSE",
    )
    mentions(err, "size cap of 1048576 bytes", "LLM_MAX_RESPONSE_BYTES")
    ok = call(mode, claw_llm, unique("mock-ok-huge:bytes=1048576,chunked=1,tag="), timeout_ms=5000, max_retries=0)
    assert len(ok["choices"][0]["message"]["content"]) > 1_000_000, "exactly the cap is allowed"


def test_default_size_cap_is_64_mib(client):
    err, _ = call_err(
        "sync",
        client(),
        unique(f"mock-ok-huge:bytes={64 * MIB + 1},tag="),
        5000,
        0,
        claw_llm.BadResponseError,
        "LLM_BAD_RESPONSE",
    )
    mentions(err, "size cap of 67108864 bytes")


def test_huge_body_with_length_is_refused_from_the_head(client):
    c = client(max_response_bytes=8 * MIB)
    model = unique(f"mock-ok-huge:bytes={256 * MIB},tag=")
    (err, took), growth = peak_growth_kib(
        lambda: call_err("sync", c, model, 5000, 2, claw_llm.BadResponseError, "LLM_BAD_RESPONSE")
    )
    mentions(err, "size cap")
    assert err.attempts == 1
    assert took < 1.0, f"took {took}"
    assert growth < 32 * 1024, f"RSS grew {growth} KiB for a 256 MiB body"


@pytest.mark.parametrize("mode", MODES)
def test_huge_chunked_body_is_refused_at_the_cap_with_bounded_memory(mode, client, gateway):
    c = client(max_response_bytes=8 * MIB)
    model = unique(f"mock-ok-huge:bytes={256 * MIB},chunked=1,tag=")
    (err, _), growth = peak_growth_kib(
        lambda: call_err(mode, c, model, 10_000, 2, claw_llm.BadResponseError, "LLM_BAD_RESPONSE")
    )
    mentions(err, "size cap of 8388608 bytes")
    assert len(requests_for(gateway, model)) == 1, "not retried"
    assert growth < 64 * 1024, f"RSS grew {growth} KiB for a 256 MiB body"


@pytest.mark.parametrize("mode", MODES)
def test_gzip_bomb_is_refused_at_the_cap_with_bounded_memory(mode, client):
    c = client(max_response_bytes=8 * MIB)
    model = unique(f"mock-ok-gzip-bomb:bytes={256 * MIB},tag=")
    (err, _), growth = peak_growth_kib(
        lambda: call_err(mode, c, model, 10_000, 2, claw_llm.BadResponseError, "LLM_BAD_RESPONSE")
    )
    mentions(err, "size cap of 8388608 bytes")
    assert growth < 64 * 1024, f"RSS grew {growth} KiB for a 256 MiB bomb"


def test_gzip_body_within_the_cap_is_inflated(client):
    c = client(max_response_bytes=8 * MIB)
    r = c.call_specific_model(unique(f"mock-ok-gzip-bomb:bytes={MIB},tag="), USER, timeout_ms=5000)
    assert r["choices"] == []


# ---------------------------------------------------------------- redirects


@pytest.fixture
def other_gateway():
    """A second mock instance, for cross-host redirects."""
    with running_gateway() as gw:
        yield gw


@pytest.mark.parametrize("mode", MODES)
def test_cross_host_redirect_drops_authorization(mode, client, gateway, other_gateway):
    port = other_gateway.url.rsplit(":", 1)[1]
    # 127.0.0.1 → localhost: another host (and port) for the client.
    model = unique(f"mock-redirect:to=http://localhost:{port}/v1/chat/completions,hops=1,tag=")
    value, err, _ = within(5000, lambda: call(mode, client(), model, timeout_ms=5000, max_retries=0))
    assert err is None, f"the redirect is followed: {err!r}"
    assert value["mock_echo"]["query"] == "hop=1"
    first = requests_for(gateway, model)
    assert len(first) == 1
    assert first[0]["headers"]["authorization"] == "Bearer <redacted>"
    second = other_gateway.requests()
    assert len(second) == 1, second
    assert "authorization" not in second[0]["headers"], (
        f"the key followed a cross-host redirect: {second[0]['headers']}"
    )
    assert second[0]["method"] == "POST"


@pytest.mark.parametrize("mode", MODES)
def test_redirect_loop_is_connection_error_and_settles_fast(mode, client, gateway):
    model = unique(f"mock-redirect:to={gateway.url}/v1/chat/completions,tag=")
    err, took = call_err(mode, client(), model, 5000, 2, claw_llm.APIConnectionError, "LLM_CONNECTION_ERROR")
    mentions(err, "redirect")
    assert took < 1.0, f"took {took}"
    # Cut by the hop limit (the first request and 10 redirects), not retried.
    assert len(requests_for(gateway, model)) == 11


# ---------------------------------------------------------------- large stream events
# (the endless line first: its memory probe must not start on the big event's freed pages)


@pytest.mark.parametrize("mode", MODES)
def test_stream_endless_line_is_refused_at_the_cap_with_bounded_memory(mode, client):
    c = client(max_response_bytes=MIB)
    model = unique("mock-stream-endless-line:tag=")
    ((chunks, err), _, _), growth = peak_growth_kib(
        lambda: within(5000, lambda: drain_until_error(mode, c, model, timeout_ms=5000, max_retries=0))
    )
    assert chunks == 0
    assert type(err) is claw_llm.StreamError and err.code == "LLM_STREAM_ERROR"
    mentions(err, "exceeds 1048576 bytes")
    assert growth < 32 * 1024, f"RSS grew {growth} KiB for a 1 MiB cap"


@pytest.mark.parametrize("mode", MODES)
def test_stream_event_larger_than_8mib_is_accepted(mode, client):
    size = 9 * MIB
    model = unique(f"mock-stream-big-event:bytes={size},tag=")

    def read_all():
        total = 0
        if mode == "sync":
            with client().call_specific_model(model, USER, stream=True, timeout_ms=20_000, max_retries=0) as s:
                for chunk in s:
                    total += len((chunk["choices"] and chunk["choices"][0]["delta"].get("content")) or "")
            return total

        async def go():
            n = 0
            s = await client().acall_specific_model(model, USER, stream=True, timeout_ms=20_000, max_retries=0)
            async with s:
                async for chunk in s:
                    n += len((chunk["choices"] and chunk["choices"][0]["delta"].get("content")) or "")
            return n

        return asyncio.run(go())

    total, err, _ = within(20_000, read_all)
    assert err is None, repr(err)
    assert total == size
