"""Smoke test of an installed claw_llm (scripts/test-package runs it in a fresh venv with the
wheel or the sdist, against the mock gateway in LLM_BASE_URL): sync, asyncio, stream, embed,
errors and the mem0 extra, from the installed package and not from a checkout."""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
from pathlib import Path

import claw_llm

MESSAGES = [{"role": "user", "content": "hi"}]
checks = 0


def check(cond: bool, what: str) -> None:
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        raise SystemExit(1)
    checks += 1


site = Path(sysconfig.get_paths()["purelib"]).resolve()
where = Path(claw_llm.__file__).resolve()
check(site in where.parents, f"claw_llm imported from {where}, not from {site}")
check(claw_llm.__version__ == os.environ["CLAW_VERSION"], f"version {claw_llm.__version__}")

reply = claw_llm.call_specific_model("qwen-plus", MESSAGES)
check(reply["object"] == "chat.completion", f"sync reply {reply!r}")
check(isinstance(reply["choices"][0]["message"]["content"], str), "sync content")

with claw_llm.call_specific_model("qwen-plus", MESSAGES, stream=True) as stream:
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream if c.get("choices"))
    final = stream.final_completion()
check(text == "Hello, world!", f"stream text {text!r}")
check(final["choices"][0]["message"]["content"] == text, "final completion")


async def run_async() -> None:
    areply = await claw_llm.acall_specific_model("qwen-plus", MESSAGES)
    check(areply["object"] == "chat.completion", "async reply")
    astream = await claw_llm.acall_specific_model("qwen-plus", MESSAGES, stream=True)
    parts = []
    async with astream:
        async for chunk in astream:
            for choice in chunk.get("choices", []):
                parts.append(choice["delta"].get("content") or "")
    check("".join(parts) == "Hello, world!", "async stream")
    vectors = await claw_llm.aembed_vectors("text-embedding-v4", ["a", "b"], dimensions=8)
    check(len(vectors) == 2 and len(vectors[0]) == 8, "async embed")


asyncio.run(run_async())

emb = claw_llm.embed("text-embedding-v4", "hello", dimensions=16)
check(len(emb["data"][0]["embedding"]) == 16, "embed dimensions")

try:
    claw_llm.call_specific_model("mock-err-oneapi:status=401", MESSAGES, max_retries=0)
    check(False, "401 did not raise")
except claw_llm.AuthenticationError as e:
    check(e.code == "LLM_HTTP_ERROR" and e.status == 401, f"401 error {e!r}")

try:
    claw_llm.call_specific_model("qwen-plus", [])
    check(False, "empty messages did not raise")
except claw_llm.ConfigError as e:
    check(e.code == "LLM_CLIENT_CONFIG", "config error")

if os.environ.get("CLAW_SMOKE_MEM0") == "1":
    import claw_llm.mem0
    from claw_llm.mem0 import ClawEmbedder, ClawLLM, build_memory

    check(claw_llm.mem0.HAVE_MEM0, "the mem0 extra installed mem0ai")
    check(callable(build_memory) and ClawLLM is not None and ClawEmbedder is not None, "mem0 extra")
    vec = ClawEmbedder().embed("hello")
    check(len(vec) == int(os.environ["EMBEDDING_DIMS"]), "mem0 embedder")

print(f"python smoke: {checks} passed, 0 failed")
