"""Resource checks through Python (core/tests/resources.rs): 1,000 streams abandoned midway
(``break`` out of the loop, with or without ``close()``) and 10,000 calls in a row leave this
process's open file descriptors (/proc/self/fd) and resident memory (VmRSS, after
``gc.collect()``) flat, and the gateway sees every abandoned connection closed. 32 calls in
flight keep it quick.

Descriptors are counted in two parts: TCP connections to the gateway (found through
/proc/self/net/tcp) and everything else. Everything else must stay flat (±2).
Connections may grow up to the number of calls in flight, no further: a stream that was read
to its end by the read-ahead before the loop broke (or a call that completed) hands its
connection back to the pool, and how many the pool holds depends on timing. A leaked
connection (e.g. an abandoned ``stream-stall`` that was never closed) would push it far past
that bound.

The baseline is taken after a first 1,000 of the same work: before that, RSS climbs once
(allocator arenas of the runtime's threads, Python's own caches) and then stays flat, which
is warm-up, not a leak."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import claw_llm
from conftest import KEY

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")

#: Absolute slack on top of the 10 % allowed growth of RSS (allocator and runtime noise).
RSS_SLACK_KIB = 4 * 1024
#: Descriptors that may come and go on their own (runtime, pool churn).
FD_SLACK = 2
IN_FLIGHT = 32


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settled_rss() -> int:
    time.sleep(0.1)
    gc.collect()
    return rss_kib()


def tcp_ends() -> dict[str, tuple[str, str, str]]:
    """socket inode -> (local address, remote address, state) of every TCP socket (IPv4 and
    IPv6, hex as in /proc/net/tcp)."""
    ends = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    f = line.split()
                    ends[f[9]] = (f[1], f[2], f[3])
        except OSError:
            pass
    return ends


def our_fds() -> dict[str, str]:
    """fd -> what it is (``readlink``)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


def to_gateway(gateway, ends: tuple[str, str, str] | None) -> bool:
    return ends is not None and ends[1].endswith(f":{int(gateway.url.rsplit(':', 1)[1]):04X}")


def fd_split(gateway) -> tuple[int, int]:
    """(open descriptors other than connections to the gateway, connections to the gateway),
    both counted in this process (the gateway's own count lags: a connection it trickles or
    stalls on is only seen closed at its next write)."""
    gc.collect()  # closed event loops and their notifiers
    fds, ends = our_fds(), tcp_ends()
    conns = sum(1 for t in fds.values() if t.startswith("socket:[") and to_gateway(gateway, ends.get(t[8:-1])))
    return len(fds) - conns, conns


def settled_fds(gateway, limit: float) -> tuple[int, int]:
    """Waits (bounded) for the descriptors other than gateway connections to come down to
    ``limit`` (dropped connections close asynchronously); the last ``fd_split``."""
    other, conns = fd_split(gateway)
    for _ in range(100):
        if other <= limit:
            break
        time.sleep(0.02)
        other, conns = fd_split(gateway)
    return other, conns


def describe_fds(gateway) -> str:
    """Every open descriptor, sockets with their TCP ends (for a failure message)."""
    fds, ends = our_fds(), tcp_ends()
    lines = []
    for fd in sorted(fds, key=int):
        target = fds[fd]
        e = ends.get(target[8:-1]) if target.startswith("socket:[") else None
        where = f" {e[0]} -> {e[1]} state {e[2]}" if e else ""
        lines.append(f"  {fd}: {target}{where}{' (gateway)' if to_gateway(gateway, e) else ''}")
    return "\n".join(lines)


def assert_flat(gateway, what, rss_then, rss_now, fds_then, fds_now, listing_then):
    (other_then, conns_then), (other_now, conns_now) = fds_then, fds_now
    print(
        f"{what}: RSS {rss_then} → {rss_now} KiB, other fds {other_then} → {other_now}, "
        f"gateway connections {conns_then} → {conns_now}"
    )
    assert rss_now <= rss_then + rss_then // 10 + RSS_SLACK_KIB, f"{what}: RSS grew {rss_then} → {rss_now} KiB"
    assert other_now <= other_then + FD_SLACK, (
        f"{what}: fds grew {other_then} → {other_now}\nthen:\n{listing_then}\nnow:\n{describe_fds(gateway)}"
    )
    assert conns_now <= conns_then + 2 * IN_FLIGHT + FD_SLACK, (
        f"{what}: gateway connections grew {conns_then} → {conns_now}, more than the calls in flight"
    )


def test_abandoned_streams_leave_fds_and_rss_flat(gateway):
    client = claw_llm.Client(base_url=gateway.url, api_key=KEY, log_level="off")

    def abandon(i: int) -> None:
        # Half the streams would go on (20 tokens), half stall after 3 tokens with the socket
        # open: only cancelling on close (or on dropping the stream) ends those.
        model = "mock-stream:tokens=20" if i % 2 else "mock-stream-stall:after=3"
        stream = client.call_specific_model(
            model, [{"role": "user", "content": f"s{i}"}], stream=True, timeout_ms=10_000, max_retries=0
        )
        seen = 0
        if i % 4 < 2:
            with stream:  # close() on the way out
                for chunk in stream:
                    assert chunk["object"] == "chat.completion.chunk"
                    seen += 1
                    if seen == 2:
                        break
        else:
            for chunk in stream:  # no close(): dropping the last reference cancels
                seen += 1
                if seen == 2:
                    break
            del stream
        assert seen == 2

    async def abandon_async(i: int) -> None:
        model = "mock-stream:tokens=20" if i % 2 else "mock-stream-stall:after=3"
        stream = await client.acall_specific_model(
            model, [{"role": "user", "content": f"a{i}"}], stream=True, timeout_ms=10_000, max_retries=0
        )
        seen = 0
        async with stream:  # aclose() on the way out
            async for _ in stream:
                seen += 1
                if seen == 2:
                    break
        assert seen == 2

    async def run_async(start: int, stop: int) -> None:
        it = iter(range(start, stop))

        async def worker():
            for i in it:
                await abandon_async(i)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

    def run(start: int, stop: int) -> None:
        # Three in four sync (threads), one in four asyncio.
        n = stop - start
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            done = pool.map(abandon, range(start, start + n * 3 // 4))
            asyncio.run(run_async(start + n * 3 // 4, stop))
            list(done)

    t0 = time.monotonic()
    run(0, 1000)
    fds_then = settled_fds(gateway, float("inf"))
    rss_then = settled_rss()
    listing_then = describe_fds(gateway)
    assert rss_then > 0, "VmRSS is not readable"
    run(1000, 2000)
    fds_now = settled_fds(gateway, fds_then[0])
    rss_now = settled_rss()
    print(f"2,000 streams in {time.monotonic() - t0:.1f} s")
    assert_flat(gateway, "1,000 abandoned streams", rss_then, rss_now, fds_then, fds_now, listing_then)
    # The gateway sees the abandoned connections closed: it holds no more than this process does
    # (+1: the stats request itself; its count may lag, hence the wait).
    seen = gateway.wait_connections_at_most(fds_now[1] + 1, timeout=5.0)
    assert seen <= fds_now[1] + 1, f"the gateway still holds {seen} connections, this process {fds_now[1]}"


def test_ten_thousand_calls_leave_fds_and_rss_flat(gateway):
    # Logs off: every tenth call fails on purpose (the error path must not leak either).
    client = claw_llm.Client(base_url=gateway.url, api_key=KEY, log_level="off")

    def check(i: int, result) -> None:
        if i % 10 == 9:
            assert isinstance(result, claw_llm.AuthenticationError), repr(result)
            assert result.code == "LLM_HTTP_ERROR" and result.status == 401
        else:
            assert not isinstance(result, BaseException), repr(result)
            assert result["choices"][0]["message"]["content"] == f"echo: call {i}"

    def model(i: int) -> str:
        return "mock-err-oneapi" if i % 10 == 9 else "mock-ok"

    def sync_call(i: int) -> None:
        try:
            r = client.call_specific_model(
                model(i), [{"role": "user", "content": f"call {i}"}], timeout_ms=10_000, max_retries=0
            )
        except claw_llm.LLMClientError as e:
            r = e
        check(i, r)

    async def async_calls(start: int, stop: int) -> None:
        it = iter(range(start, stop))

        async def worker():
            for i in it:
                try:
                    r = await client.acall_specific_model(
                        model(i), [{"role": "user", "content": f"call {i}"}], timeout_ms=10_000, max_retries=0
                    )
                except claw_llm.LLMClientError as e:
                    r = e
                check(i, r)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))

    def run(start: int, stop: int) -> None:
        # Half sync (threads), half asyncio, at the same time.
        mid = (start + stop) // 2
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            done = pool.map(sync_call, range(start, mid))
            asyncio.run(async_calls(mid, stop))
            list(done)

    t0 = time.monotonic()
    run(0, 1000)
    fds_then = settled_fds(gateway, float("inf"))
    rss_then = settled_rss()
    listing_then = describe_fds(gateway)
    assert rss_then > 0, "VmRSS is not readable"
    run(1000, 10_000)
    fds_now = settled_fds(gateway, fds_then[0])
    rss_now = settled_rss()
    print(f"10,000 calls in {time.monotonic() - t0:.1f} s")
    assert_flat(gateway, "10,000 calls", rss_then, rss_now, fds_then, fds_now, listing_then)
