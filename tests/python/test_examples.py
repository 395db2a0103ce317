"""examples/python run as documented, against the mock gateway."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import KEY, ROOT

EXAMPLES = ROOT / "examples" / "python"


def run(script: str, gateway, tmp_path, **env: str) -> str:
    full_env = dict(os.environ, LLM_BASE_URL=gateway.url, LLM_API_KEY=KEY, MEM0_DIR=str(tmp_path), **env)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], env=full_env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_example_quickstart(gateway, tmp_path):
    out = run("quickstart.py", gateway, tmp_path)
    assert "plain: echo: In one sentence" in out
    assert "stream: Hello, world!" in out
    assert "finish_reason=stop" in out


@pytest.mark.skipif(importlib.util.find_spec("mem0") is None, reason="needs the mem0 extra")
def test_example_mem0_plugin(gateway, tmp_path):
    out = run("mem0_plugin.py", gateway, tmp_path, MEM0_TELEMETRY="False")
    assert "ADD  I drink green tea every morning" in out
    first_hit = [line for line in out.splitlines() if line[:1].isdigit()][0]
    assert first_hit.endswith("I drink green tea every morning")


@pytest.mark.skipif(importlib.util.find_spec("mem0") is None, reason="needs the mem0 extra")
def test_example_mem0_plugin_on_dashscope_and_minimax_like_models(gateway, tmp_path):
    # What scripts/demo runs: the MiniMax-like reasoning model, DashScope-like text-embedding-v4.
    out = run("mem0_plugin.py", gateway, tmp_path, MEM0_TELEMETRY="False", LLM_MODEL_ID="mock-minimax")
    added = [line for line in out.splitlines() if line.lstrip().startswith("ADD  ")]
    assert len(added) > 10, out
    first_hit = [line for line in out.splitlines() if line[:1].isdigit()][0]
    assert first_hit.endswith("I drink green tea every morning")
    embeds = [r for r in gateway.requests() if r["path"] == "/v1/embeddings"]
    assert all(len(r["body"]["input"]) <= 10 for r in embeds if isinstance(r["body"]["input"], list))


def test_example_observability(gateway, tmp_path):
    out = run(
        "observability.py",
        gateway,
        tmp_path,
        LLM_MODEL_ID="mock-ok",
        EMBEDDING_MODEL_ID="mock-embed",
        OTEL_EXPORTER_OTLP_ENDPOINT=gateway.url,
    )
    assert "chat: echo: Name a colour." in out
    assert "spent " in out and "on mock-ok" in out
    assert 'claw_llm_calls_total{model="mock-ok"} 1' in out
    # The spans were exported at exit, without a flush in the script.
    spans = gateway._get("/__mock/spans")
    assert any(s["name"] == "chat mock-ok" for s in spans)
