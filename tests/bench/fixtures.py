"""Writes the benchmark upstream's fixed answers (static files nginx serves) under a www root.

The file names are the request paths, so nginx needs no rewrite: `root` + `$uri`.
    python3 fixtures.py OUT/www
"""

import json
import random
import sys
from pathlib import Path

CHUNKS = 1000  # chunks in the streamed answer (the [DONE] sentinel not counted)
DIMS = 1024  # floats in the embedding


def chat_completion() -> bytes:
    body = {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi! This is the fixed answer of the claw-llm benchmark upstream.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def stream() -> bytes:
    out = []
    for i in range(CHUNKS):
        if i == 0:
            delta = {"role": "assistant", "content": ""}
        elif i == CHUNKS - 1:
            delta = {}
        else:
            delta = {"content": f" tok{i:04d}"}
        chunk = {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "bench-model",
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": "stop" if i == CHUNKS - 1 else None,
                }
            ],
        }
        out.append("data: " + json.dumps(chunk, separators=(",", ":")) + "\n\n")
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def embedding(n: int = 1) -> bytes:
    """An embeddings answer with `n` vectors (the batch routes answer 10 or 100 at once)."""
    rng = random.Random(1024)
    vec = [rng.gauss(0.0, 0.03) for _ in range(DIMS)]
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vec} for i in range(n)],
        "model": "bench-embed",
        "usage": {"prompt_tokens": 2 * n, "total_tokens": 2 * n},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def main() -> None:
    root = Path(sys.argv[1])
    files = {
        "v1/chat/completions": chat_completion(),
        "stream/v1/chat/completions": stream(),
        "v1/embeddings": embedding(),
        # Batches of 10 (DashScope's text-embedding-v4 limit) and of 100 (a user's own loop).
        "b10/v1/embeddings": embedding(10),
        "b100/v1/embeddings": embedding(100),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


if __name__ == "__main__":
    main()
