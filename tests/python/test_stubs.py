"""The hand-written stubs (claw_llm/__init__.pyi, _native.pyi) match the runtime (mypy's
stubtest; skipped when mypy is not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="needs mypy")
def test_stubs_match_runtime():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "claw_llm",
            "--mypy-config-file",
            str(ROOT / "pyproject.toml"),
            "--allowlist",
            str(ROOT / "bindings-python" / "stubtest-allowlist.txt"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
