"""The typings a user sees: `mypy --strict` on examples/python/typed.py, which pins that
call_specific_model(..., stream=True) is a Stream (AsyncStream for acall_specific_model) and
every other call a dict (skipped when mypy is not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="needs mypy")
def test_typed_example_passes_mypy_strict():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(ROOT / "examples" / "python" / "typed.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
