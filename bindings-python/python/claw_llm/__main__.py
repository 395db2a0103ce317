"""``python -m claw_llm doctor [--model M] [--embedding-model M] [--timeout-ms N] [--json]``:
checks the gateway configured by the environment (the core's doctor, as ``claw-llm doctor``)."""

from __future__ import annotations

import os
import sys

from . import _native


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "doctor":
        print("usage: python -m claw_llm doctor [--model M] [--embedding-model M] [--timeout-ms N] [--json]")
        return 2
    out = _native.doctor(args[1:], dict(os.environ))
    sys.stdout.write(out["output"])
    sys.stdout.flush()
    return int(out["code"])


if __name__ == "__main__":
    sys.exit(main())
