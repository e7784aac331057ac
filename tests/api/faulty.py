"""Stand-ins for the re-plan step, importable by the worker process: one fails, one hangs."""

from __future__ import annotations

import time

from optimizer.replan import ReplanInput, ReplanResult


def explode(data: ReplanInput) -> ReplanResult:
    raise RuntimeError("solver blew up (injected)")


def hang(data: ReplanInput) -> ReplanResult:
    time.sleep(600)
    raise AssertionError("unreachable")
