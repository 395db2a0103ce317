"""Embeddings of 1,000 texts, the way each client's user would send them, one JSON line out.

    python embed_batch.py <base_url …/v1>

- claw-batched: one `claw_llm.embed_vectors` call of 1,000 texts; the core splits it into
  requests of 10 (DashScope's `text-embedding-v4` limit), 4 in flight (`EMBEDDING_CONCURRENCY`);
- claw-single: 1,000 calls of one text each;
- openai-loop100: openai-python, the user's own loop of 10 calls of 100 texts (the SDK does not
  split batches).
The upstream is the benchmark's nginx: `…/b10/v1/embeddings` answers 10 vectors,
`…/b100/v1/embeddings` 100, `…/v1/embeddings` one. Each variant runs for BENCH_SECONDS (at
least once); the figure is texts per second.
"""

from __future__ import annotations

import json
import os
import sys
import time

TEXTS = [f"text number {i} about memories" for i in range(1000)]
SECONDS = float(os.environ.get("BENCH_SECONDS", 3))


def rate(op) -> float:
    op()  # warm-up (connections, first parse)
    t0 = time.perf_counter()
    runs = 0
    while runs == 0 or (time.perf_counter() - t0 < SECONDS and runs < 1000):
        n = op()
        if n != len(TEXTS):
            raise RuntimeError(f"{n} vectors for {len(TEXTS)} texts")
        runs += 1
    return runs * len(TEXTS) / (time.perf_counter() - t0)


def main() -> int:
    base = sys.argv[1]
    root = base.rsplit("/v1", 1)[0]
    import claw_llm
    import openai

    b10 = claw_llm.Client(base_url=f"{root}/b10/v1", api_key="sk-bench", max_retries=0)
    one = claw_llm.Client(base_url=base, api_key="sk-bench", max_retries=0)
    oa = openai.OpenAI(base_url=f"{root}/b100/v1", api_key="sk-bench", max_retries=0)

    def claw_batched() -> int:
        return len(b10.embed_vectors("bench-embed", TEXTS, batch_size=10))

    def claw_single() -> int:
        return sum(len(one.embed_vectors("bench-embed", t)) for t in TEXTS)

    def openai_loop100() -> int:
        n = 0
        for i in range(0, len(TEXTS), 100):
            r = oa.embeddings.create(model="bench-embed", input=TEXTS[i : i + 100], encoding_format="float")
            n += len(r.data)
        return n

    out = {"lang": "python", "client": "embed-batch"}
    for name, op in [("claw_batched", claw_batched), ("claw_single", claw_single), ("openai_loop100", openai_loop100)]:
        out[f"{name}_tps"] = rate(op)
    out["batched_vs_openai_loop100"] = out["claw_batched_tps"] / out["openai_loop100_tps"]
    out["batched_vs_single"] = out["claw_batched_tps"] / out["claw_single_tps"]
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
