"""A mem0 plugin on claw_llm: mem0's LLM and embedder calls go through the gateway.

    pip install 'claw-llm[mem0]'
    LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... python examples/python/mem0_plugin.py

Defaults when unset: LLM_MODEL_ID=MiniMax-M2.5, EMBEDDING_MODEL_ID=text-embedding-v4,
EMBEDDING_DIMS=1024. The vector store is an in-memory Qdrant; nothing is kept.

The conversation yields more than 10 memories, which mem0 embeds in one batch: claw_llm sends
it in requests of 10 (DashScope's limit for text-embedding-v4). MiniMax-M2.x answers with a
leading <think> block, which the mem0 LLM moves out of the way before mem0 parses the JSON.
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("LLM_MODEL_ID", "MiniMax-M2.5")
os.environ.setdefault("EMBEDDING_MODEL_ID", "text-embedding-v4")
os.environ.setdefault("EMBEDDING_DIMS", "1024")

from claw_llm import LLMClientError  # noqa: E402
from claw_llm.mem0 import build_memory  # noqa: E402  (turns mem0 telemetry off unless set)
from mem0.exceptions import ValidationError as Mem0ValidationError  # noqa: E402


CONVERSATION = (
    "I live in Hangzhou. I drink green tea every morning. My sister works as a nurse. "
    "I play badminton on Saturdays. My favourite author is Lu Xun. I am allergic to peanuts. "
    "I drive an electric scooter. My daughter learns the violin. I was born in Chengdu. "
    "I collect old postage stamps. My dog is called Doudou. I study Japanese at night."
)


def search(memory, query: str, user_id: str):
    try:  # mem0 >= 2: filters=...; older versions: user_id=...
        hits = memory.search(query, filters={"user_id": user_id})
    except (TypeError, Mem0ValidationError):  # 1.x wants user_id=
        hits = memory.search(query, user_id=user_id)
    return hits["results"] if isinstance(hits, dict) else hits


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        memory = build_memory(history_db_path=os.path.join(tmp, "history.db"))
        try:
            added = memory.add([{"role": "user", "content": CONVERSATION}], user_id="alice")
            for item in added["results"]:
                print(f"{item['event']:>6}  {item['memory']}")
            for hit in search(memory, "What does Alice drink in the morning?", "alice")[:3]:
                print(f"{hit['score']:.3f}  {hit['memory']}")
        except LLMClientError as e:
            print(f"gateway call failed: {e.code}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
