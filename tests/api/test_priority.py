"""Background work yields the CPU to request handling: technicians' pulls go first on a small machine.

The load benchmark measures the latency; these check that the priorities are what it relies on.
"""

from __future__ import annotations

import functools
import os
import sys
import threading

import pytest

from api import replan_job
from api.context import Service
from api.db import warm_pool

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")


def _nice(who: int = 0) -> int:
    return os.getpriority(os.PRIO_PROCESS, who)


def test_a_re_plan_thread_runs_below_the_request_threads() -> None:
    before = _nice()
    seen: dict[str, int] = {}

    def run() -> None:
        replan_job.background_priority(thread_only=True)
        seen["thread"] = _nice(threading.get_native_id())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen["thread"] == min(19, before + replan_job.BACKGROUND_NICE)
    assert _nice() == before, "the thread's priority is its own, not the process's"


def test_the_solver_worker_runs_below_the_service() -> None:
    try:
        worker = replan_job.in_worker(
            functools.partial(os.getpriority, os.PRIO_PROCESS), 0, timeout=300, pool="priority-test"
        )
    finally:
        replan_job.shutdown_pool(name="priority-test")
    assert worker == min(19, _nice() + replan_job.BACKGROUND_NICE)


def test_the_pool_is_open_before_the_first_request(service: Service) -> None:
    warm_pool(service.engine, 3)
    if service.engine.dialect.name == "sqlite":
        return  # a file: nothing to open ahead
    assert service.engine.pool.checkedin() >= 3  # type: ignore[attr-defined]
