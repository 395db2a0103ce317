"""Core log lines into the ``claw_llm`` logger (docs/behaviour.md#logs-and-secrets).

The native module queues the core's lines and hands them here when a call settles, on the
calling thread (no Rust thread ever takes the GIL). ``LLM_LOG`` is applied by the core; this
side only makes sure that ``LLM_LOG=debug`` is visible without any logging setup.
"""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("claw_llm")
_debug_ready = False


def _show_debug() -> None:
    global _debug_ready
    _debug_ready = True
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def _emit(lines: list[tuple[int, str]]) -> None:
    for levelno, line in lines:
        if levelno <= logging.DEBUG and not _debug_ready:
            _show_debug()
        logger.log(levelno, line)
