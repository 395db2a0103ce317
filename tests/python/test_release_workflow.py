"""The release workflow (.github/workflows/release.yml) cannot run here: actionlint checks it,
and its build steps must be the commands scripts/package runs (skipped when actionlint is not
installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def actionlint() -> str | None:
    here = Path(sys.executable).parent / ("actionlint.exe" if os.name == "nt" else "actionlint")
    return str(here) if here.exists() else shutil.which("actionlint")


@pytest.mark.skipif(actionlint() is None, reason="needs actionlint (tests/python/requirements.txt)")
def test_release_workflow_passes_actionlint():
    proc = subprocess.run(
        [actionlint(), "-no-color", str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_release_workflow_builds_with_scripts_package():
    text = WORKFLOW.read_text(encoding="utf-8")
    runs = re.findall(r"bash scripts/package (\w+)", text)
    assert set(runs) == {"node", "wheel", "sdist", "crate"}, runs
    package = (ROOT / "scripts" / "package").read_text(encoding="utf-8")
    for sub in set(runs):
        assert re.search(rf"^  {sub}\)", package, re.M), f"scripts/package has no `{sub}` step"
    targets = set(re.findall(r"target: ([\w-]+),", text))
    assert targets == {
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    }
