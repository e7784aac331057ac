"""Where territories are solved: one after another, a local process pool, or a Ray cluster.

Each backend is a `map(worker, payloads) -> answers` over plain values (JSON-able dicts), so a
territory's solve is the same function in a pool process, on a Ray worker or in this process. A worker
that dies has its payloads run again (the pool is rebuilt; Ray retries the task itself), at most
`retries` times; an answer comes back once per payload, so no territory is planned twice.

Ray is optional (`pip install -e '.[ray]'`): `RAY_ADDRESS` (or `address=`) joins an existing
cluster, otherwise a local Ray is started with this machine's cores. We write no scheduler of our own.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

Worker = Callable[[dict[str, Any]], dict[str, Any]]


class WorkerLost(RuntimeError):
    """A payload's worker died more often than allowed."""


def serial(worker: Worker, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [worker(p) for p in payloads]


class ProcessBackend:
    """A local pool of `workers` processes (spawned: no solver state is forked)."""

    def __init__(self, workers: int = 2, retries: int = 2) -> None:
        self.workers, self.retries = max(1, workers), retries
        self.restarts = 0

    def __call__(self, worker: Worker, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers: dict[int, dict[str, Any]] = {}
        tries = dict.fromkeys(range(len(payloads)), 0)
        while len(answers) < len(payloads):
            todo = [i for i in range(len(payloads)) if i not in answers]
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn")) as pool:
                running: dict[Future[dict[str, Any]], int] = {
                    pool.submit(worker, payloads[i]): i for i in todo
                }
                broken = False
                while running and not broken:
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        try:
                            answers[i] = future.result()
                        except BrokenProcessPool:
                            broken = True
                            tries[i] += 1
                if broken:
                    # Every unfinished payload of the broken pool runs again in a new one.
                    for future, i in running.items():
                        if future.done() and not future.cancelled() and future.exception() is None:
                            answers[i] = future.result()
                        else:
                            tries[i] += 1
                    self.restarts += 1
            lost = [i for i, n in tries.items() if n > self.retries and i not in answers]
            if lost:
                raise WorkerLost(f"{len(lost)} territory solve(s) lost their worker {self.retries + 1} times")
        return [answers[i] for i in range(len(payloads))]


class RayBackend:
    """Tasks on Ray: an existing cluster (`address` or RAY_ADDRESS) or a local one of `num_cpus`."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, retries: int = 2) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("Ray is not installed: pip install -e '.[ray]'") from None
        self.ray = ray
        self.retries = retries
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False
                )

    def __call__(self, worker: Worker, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A task whose worker process dies is retried by Ray itself (max_retries); its answer is
        # returned once.
        remote = self.ray.remote(max_retries=self.retries)(worker)
        return list(self.ray.get([remote.remote(p) for p in payloads]))


def backend(name: str, parallel: int = 2, address: str | None = None) -> Callable[..., list[dict[str, Any]]]:
    if name == "serial" or (name == "process" and parallel <= 1):
        return serial
    if name == "process":
        return ProcessBackend(parallel)
    if name == "ray":
        return RayBackend(address, num_cpus=parallel)
    raise ValueError(f"unknown backend {name!r} (process, ray, serial)")
