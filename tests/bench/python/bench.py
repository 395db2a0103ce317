"""Python side of tests/bench/run: one client per process, the same phases as the Rust and Node
harnesses, one JSON line on stdout.

    python bench.py <client> <base_url …/v1> <stream_base_url …/v1>

clients: claw-sync (sequential calls; 64 threads for the concurrent phase), claw-async (asyncio,
64 tasks), openai-sync, openai-async, httpx-sync, httpx-async.

Phases (every loop bounded by a count and by time): seq, conc (BENCH_CONC_CALLS calls,
BENCH_INFLIGHT in flight, RSS after BENCH_MARK and at the end, calls/s and CPU measured from the
mark), stream (1000-chunk streams, every chunk parsed), embed; each timed phase lasts
BENCH_SECONDS.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import resource
import sys
import threading
import time

MODEL = "bench-model"
EMBED_MODEL = "bench-embed"
API_KEY = "sk-bench"
CHUNKS = 1000
DIMS = 1024
PHASE_CAP = 90.0

SECONDS = float(os.environ.get("BENCH_SECONDS", 3))
TOTAL = int(os.environ.get("BENCH_CONC_CALLS", 10_000))
INFLIGHT = int(os.environ.get("BENCH_INFLIGHT", 64))
MARK = int(os.environ.get("BENCH_MARK", 1_000))


def messages() -> list[dict]:
    return [{"role": "user", "content": "Say hi"}]


def cpu_us() -> float:
    """User + system CPU of the process (all threads), µs."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1e6


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS: now, VmHWM: peak)."""
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


# ------------------------------------------------------------------------------ peers
# Each peer: chat() -> len(content), embed() -> len(vector), stream() -> chunks (each parsed).


class ClawSync:
    def __init__(self, base: str, stream_base: str) -> None:
        import claw_llm

        self.c = claw_llm.Client(base_url=base, api_key=API_KEY)
        self.s = claw_llm.Client(base_url=stream_base, api_key=API_KEY)

    def chat(self) -> int:
        r = self.c.call_specific_model(MODEL, messages(), temperature=0)
        return len(r["choices"][0]["message"]["content"])

    def embed(self) -> int:
        return len(self.c.embed(EMBED_MODEL, "hello world")["data"][0]["embedding"])

    def stream(self) -> int:
        n = 0
        for chunk in self.s.call_specific_model(MODEL, messages(), stream=True):
            n += chunk is not None
        return n


class ClawAsync(ClawSync):
    async def chat(self) -> int:
        r = await self.c.acall_specific_model(MODEL, messages(), temperature=0)
        return len(r["choices"][0]["message"]["content"])

    async def embed(self) -> int:
        return len((await self.c.aembed(EMBED_MODEL, "hello world"))["data"][0]["embedding"])

    async def stream(self) -> int:
        n = 0
        async for chunk in await self.s.acall_specific_model(MODEL, messages(), stream=True):
            n += chunk is not None
        return n


class OpenAISync:
    def __init__(self, base: str, stream_base: str) -> None:
        import openai

        self.c = openai.OpenAI(base_url=base, api_key=API_KEY)
        self.s = openai.OpenAI(base_url=stream_base, api_key=API_KEY)

    def chat(self) -> int:
        r = self.c.chat.completions.create(model=MODEL, messages=messages(), temperature=0)
        return len(r.choices[0].message.content)

    def embed(self) -> int:
        r = self.c.embeddings.create(model=EMBED_MODEL, input="hello world", encoding_format="float")
        return len(r.data[0].embedding)

    def stream(self) -> int:
        n = 0
        for chunk in self.s.chat.completions.create(model=MODEL, messages=messages(), stream=True):
            n += chunk is not None
        return n


class OpenAIAsync:
    def __init__(self, base: str, stream_base: str) -> None:
        import openai

        self.c = openai.AsyncOpenAI(base_url=base, api_key=API_KEY)
        self.s = openai.AsyncOpenAI(base_url=stream_base, api_key=API_KEY)

    async def chat(self) -> int:
        r = await self.c.chat.completions.create(model=MODEL, messages=messages(), temperature=0)
        return len(r.choices[0].message.content)

    async def embed(self) -> int:
        r = await self.c.embeddings.create(model=EMBED_MODEL, input="hello world", encoding_format="float")
        return len(r.data[0].embedding)

    async def stream(self) -> int:
        n = 0
        async for chunk in await self.s.chat.completions.create(model=MODEL, messages=messages(), stream=True):
            n += chunk is not None
        return n


HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def _sse_chunks(lines) -> int:
    n = 0
    for line in lines:
        if line.startswith("data:"):
            data = line[5:].strip()
            if data == "[DONE]":
                break
            n += json.loads(data) is not None
    return n


class HttpxSync:
    """Raw httpx: POST the JSON, check the status, parse the body (the floor for Python)."""

    def __init__(self, base: str, stream_base: str) -> None:
        import httpx

        limits = httpx.Limits(max_connections=INFLIGHT + 8, max_keepalive_connections=INFLIGHT + 8)
        self.h = httpx.Client(limits=limits, headers=HEADERS, timeout=60)
        self.base, self.stream_base = base, stream_base

    def _post(self, path: str, body: dict) -> dict:
        r = self.h.post(self.base + path, json=body)
        r.raise_for_status()
        return r.json()

    def chat(self) -> int:
        r = self._post("/chat/completions", {"model": MODEL, "messages": messages(), "temperature": 0})
        return len(r["choices"][0]["message"]["content"])

    def embed(self) -> int:
        body = {"model": EMBED_MODEL, "input": "hello world", "encoding_format": "float"}
        return len(self._post("/embeddings", body)["data"][0]["embedding"])

    def stream(self) -> int:
        body = {"model": MODEL, "messages": messages(), "stream": True}
        with self.h.stream("POST", self.stream_base + "/chat/completions", json=body) as r:
            r.raise_for_status()
            return _sse_chunks(r.iter_lines())


class HttpxAsync:
    def __init__(self, base: str, stream_base: str) -> None:
        import httpx

        limits = httpx.Limits(max_connections=INFLIGHT + 8, max_keepalive_connections=INFLIGHT + 8)
        self.h = httpx.AsyncClient(limits=limits, headers=HEADERS, timeout=60)
        self.base, self.stream_base = base, stream_base

    async def _post(self, path: str, body: dict) -> dict:
        r = await self.h.post(self.base + path, json=body)
        r.raise_for_status()
        return r.json()

    async def chat(self) -> int:
        r = await self._post("/chat/completions", {"model": MODEL, "messages": messages(), "temperature": 0})
        return len(r["choices"][0]["message"]["content"])

    async def embed(self) -> int:
        body = {"model": EMBED_MODEL, "input": "hello world", "encoding_format": "float"}
        return len((await self._post("/embeddings", body))["data"][0]["embedding"])

    async def stream(self) -> int:
        body = {"model": MODEL, "messages": messages(), "stream": True}
        async with self.h.stream("POST", self.stream_base + "/chat/completions", json=body) as r:
            r.raise_for_status()
            n = 0
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    n += json.loads(data) is not None
            return n


PEERS = {
    "claw-sync": ClawSync,
    "claw-async": ClawAsync,
    "openai-sync": OpenAISync,
    "openai-async": OpenAIAsync,
    "httpx-sync": HttpxSync,
    "httpx-async": HttpxAsync,
}


# ------------------------------------------------------------------------------ phases


class Counter:
    """Calls issued/completed across the 64 workers, and the mark (time, CPU, RSS)."""

    def __init__(self) -> None:
        self.issued = itertools.count()
        self.done = 0
        self.lock = threading.Lock()
        self.mark: tuple[float, float, int] | None = None
        self.started = time.perf_counter()

    def take(self) -> bool:
        return next(self.issued) < TOTAL and time.perf_counter() - self.started < PHASE_CAP

    def finished(self) -> None:
        with self.lock:
            self.done += 1
            if self.done == MARK:
                self.mark = (time.perf_counter(), cpu_us(), status_kb("VmRSS"))


def conc_result(ctr: Counter) -> dict:
    end, end_cpu, rss_end = time.perf_counter(), cpu_us(), status_kb("VmRSS")
    if ctr.mark is None:
        raise RuntimeError("the concurrent phase never reached the mark")
    at, cpu, rss = ctr.mark
    measured = ctr.done - MARK
    return {
        "conc_cps": measured / (end - at),
        "conc_cpu_us": (end_cpu - cpu) / measured,
        "conc_calls": ctr.done,
        "rss_mark_kb": rss,
        "rss_end_kb": rss_end,
    }


def timed_sync(warm: int, op) -> tuple[float, float, float]:
    for _ in range(warm):
        op()
    t0, c0 = time.perf_counter(), cpu_us()
    runs = units = 0
    limit = min(SECONDS, PHASE_CAP)
    while time.perf_counter() - t0 < limit and runs < 10_000_000:
        units += op()
        runs += 1
    dt = time.perf_counter() - t0
    return runs / dt, (cpu_us() - c0) / runs, units / dt


async def timed_async(warm: int, op) -> tuple[float, float, float]:
    for _ in range(warm):
        await op()
    t0, c0 = time.perf_counter(), cpu_us()
    runs = units = 0
    limit = min(SECONDS, PHASE_CAP)
    while time.perf_counter() - t0 < limit and runs < 10_000_000:
        units += await op()
        runs += 1
    dt = time.perf_counter() - t0
    return runs / dt, (cpu_us() - c0) / runs, units / dt


def check(chat: int, embed: int, stream: int) -> None:
    """The answers once, so a broken route cannot pass as a fast one."""
    if chat == 0:
        raise RuntimeError("empty chat answer")
    if embed != DIMS:
        raise RuntimeError("embedding of the wrong size")
    if stream != CHUNKS:
        raise RuntimeError("stream with the wrong number of chunks")


def finish(out: dict, seq, stream, embed) -> dict:
    out.update(
        seq_cps=seq[0],
        seq_cpu_us=seq[1],
        streams_ps=stream[0],
        stream_cps=stream[2],
        embed_ps=embed[0],
        embed_cpu_us=embed[1],
        peak_rss_kb=status_kb("VmHWM"),
    )
    return out


def run_sync(peer) -> dict:
    check(peer.chat(), peer.embed(), peer.stream())
    seq = timed_sync(100, peer.chat)
    ctr = Counter()

    def worker() -> None:
        while ctr.take():
            peer.chat()
            ctr.finished()

    threads = [threading.Thread(target=worker) for _ in range(INFLIGHT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = conc_result(ctr)
    return finish(out, seq, timed_sync(2, peer.stream), timed_sync(20, peer.embed))


async def run_async(peer) -> dict:
    check(await peer.chat(), await peer.embed(), await peer.stream())
    seq = await timed_async(100, peer.chat)
    ctr = Counter()

    async def worker() -> None:
        while ctr.take():
            await peer.chat()
            ctr.finished()

    await asyncio.gather(*(worker() for _ in range(INFLIGHT)))
    out = conc_result(ctr)
    stream = await timed_async(2, peer.stream)
    embed = await timed_async(20, peer.embed)
    return finish(out, seq, stream, embed)


def main() -> int:
    name, base, stream_base = sys.argv[1:4]
    try:
        peer = PEERS[name](base, stream_base)
        if name.endswith("-async"):
            out = asyncio.run(run_async(peer))
        else:
            out = run_sync(peer)
    except Exception as e:  # report, do not hang the run
        print(json.dumps({"lang": "python", "client": name, "error": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    out.update(lang="python", client=name)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
