"""What a mem0 plugin's calls did: tokens spent per model (from the call events), retries, and
the statistics in Prometheus' text format; with an OpenTelemetry collector, spans too.

    LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... python examples/python/observability.py

Set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318) and every call is also a span sent
to that collector (chat and embeddings, GenAI attributes), flushed at exit.
"""

from __future__ import annotations

import os
from collections import Counter

import claw_llm

spent: Counter[str] = Counter()


@claw_llm.add_event_listener
def count_tokens(event: claw_llm.Event) -> None:
    if event["type"] == "call" and event["usage"]:
        spent[event["model"] or "?"] += event["usage"]["total_tokens"]
    if event["type"] == "attempt" and event["retry_delay_ms"] is not None:
        print(f"retrying {event['model']} in {event['retry_delay_ms']} ms after {event['code']}")


def main() -> None:
    chat = os.environ.get("LLM_MODEL_ID", "qwen-plus")
    embed = os.environ.get("EMBEDDING_MODEL_ID", "text-embedding-v4")
    reply = claw_llm.call_specific_model(chat, [{"role": "user", "content": "Name a colour."}])
    print("chat:", reply["choices"][0]["message"]["content"])
    vectors = claw_llm.embed_vectors(embed, ["green tea", "black coffee"])
    print("embeddings:", len(vectors), "vectors")
    claw_llm.flush_events()
    for model, tokens in sorted(spent.items()):
        print(f"spent {tokens} tokens on {model}")
    calls = [line for line in claw_llm.metrics_text().splitlines() if line.startswith("claw_llm_calls_total")]
    print("\n".join(calls))


if __name__ == "__main__":
    main()
