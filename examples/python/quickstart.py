"""claw_llm quickstart: one plain call, then a streamed one printed token by token.

    LLM_BASE_URL=http://127.0.0.1:3000 LLM_API_KEY=sk-... python examples/python/quickstart.py

LLM_MODEL_ID picks the model (default here: qwen-plus).
"""

from __future__ import annotations

import os
import sys

import claw_llm


def main() -> int:
    model = os.environ.get("LLM_MODEL_ID", "qwen-plus")
    messages = [{"role": "user", "content": "In one sentence: why do gateways retry on 429?"}]

    try:
        reply = claw_llm.call_specific_model(model, messages, temperature=0.2, timeout_ms=30_000)
    except claw_llm.LLMClientError as e:
        print(f"call failed: {e.code}: {e}", file=sys.stderr)
        return 1
    print("plain:", reply["choices"][0]["message"]["content"])

    print("stream: ", end="", flush=True)
    try:
        with claw_llm.call_specific_model(model, messages, stream=True, timeout_ms=30_000) as stream:
            for chunk in stream:
                for choice in chunk.get("choices", []):
                    print(choice["delta"].get("content") or "", end="", flush=True)
            final = stream.final_completion()
    except claw_llm.LLMClientError as e:
        print(f"\nstream failed: {e.code}: {e}", file=sys.stderr)
        return 1
    print(f"\n(finish_reason={final['choices'][0]['finish_reason']}, usage={final.get('usage')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
