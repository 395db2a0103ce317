"""Type-checked by tests/python/test_typing.py (`mypy --strict examples/python/typed.py`): the
public typings of claw_llm, used the way a typed mem0 plugin or script would. Runs too:

    LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... python examples/python/typed.py

The ``# type: ignore[...]`` lines are there on purpose: with ``--strict`` (which warns about
unused ignores) they fail the check as soon as a return type turns into ``Any``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import claw_llm

if TYPE_CHECKING:
    from typing_extensions import assert_type
else:

    def assert_type(value: object, _type: object) -> object:
        return value


MESSAGES = [{"role": "user", "content": "Say hi."}]


def ask(model: str) -> str | None:
    reply = claw_llm.call_specific_model(model, MESSAGES, temperature=0.2, timeout_ms=10_000)
    assert_type(reply, dict[str, Any])
    not_a_stream: claw_llm.Stream = claw_llm.call_specific_model(model, MESSAGES)  # type: ignore[assignment]
    del not_a_stream
    content: str | None = reply["choices"][0]["message"]["content"]
    return content


def stream_text(model: str) -> str:
    parts: list[str] = []
    with claw_llm.call_specific_model(model, MESSAGES, stream=True) as stream:
        assert_type(stream, claw_llm.Stream)
        for chunk in stream:
            for choice in chunk.get("choices", []):
                parts.append(choice["delta"].get("content") or "")
        final = stream.final_completion()
    assert_type(final, dict[str, Any])
    return "".join(parts)


def maybe_stream(model: str, stream: bool) -> dict[str, Any] | claw_llm.Stream:
    return claw_llm.call_specific_model(model, MESSAGES, stream=stream)


async def ask_async(model: str) -> str:
    reply = await claw_llm.acall_specific_model(model, MESSAGES)
    assert_type(reply, dict[str, Any])
    client = claw_llm.Client(timeout_ms=10_000, max_retries=1)
    stream = await client.acall_specific_model(model, MESSAGES, stream=True)
    assert_type(stream, claw_llm.AsyncStream)
    parts: list[str] = []
    async with stream:
        async for chunk in stream:
            for choice in chunk.get("choices", []):
                parts.append(choice["delta"].get("content") or "")
    plain = client.call_specific_model(model, MESSAGES, stream=False)
    assert_type(plain, dict[str, Any])
    vectors = await claw_llm.aembed_vectors(None, ["a", "b"])
    assert_type(vectors, list[list[float]])
    return "".join(parts)


def observe(model: str) -> int:
    """Events, stats and Prometheus text, typed: an event is a ``claw_llm.Event`` dict."""
    totals: list[int] = []

    @claw_llm.add_event_listener
    def on_call(event: claw_llm.Event) -> None:
        if event["type"] == "call" and event["usage"] is not None:
            totals.append(event["usage"]["total_tokens"])

    claw_llm.call_specific_model(model, MESSAGES, on_event=lambda e: print(e["attempt"], e["ms"]))
    claw_llm.flush_events(timeout=5.0)
    claw_llm.remove_event_listener(on_call)
    stats = claw_llm.stats()
    assert_type(stats, claw_llm.Stats)
    p95: float = stats["models"][model]["latency_ms"]["p95"]
    print("p95 ms:", p95, "metrics bytes:", len(claw_llm.metrics_text()))
    return sum(totals)


def main() -> int:
    try:
        print("plain:", ask("qwen-plus"))
        print("stream:", stream_text("qwen-plus"))
        print("async:", asyncio.run(ask_async("qwen-plus")))
        print("tokens:", observe("qwen-plus"))
    except claw_llm.LLMClientError as e:
        print(f"failed: {e.code}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
