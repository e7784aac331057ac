"""Running a re-plan for the service: lock, load, solve in a worker process, store, record.

The step in the middle is `optimizer.replan.replan`, the same pure function the benchmarks' simulated
week calls. It runs in a separate process because OR-Tools holds the GIL while it searches: in a thread
it would stall every HTTP request for the whole solve.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from api import audit, booking, locks, roads, store
from api.context import Service
from api.errors import ReplanInProgress
from api.tables import RunRow, ShiftRow, TechnicianRow, utcnow
from models import Horizon
from optimizer import SolveOptions
from optimizer.replan import ReplanInput, ReplanResult, replan, working_days_horizon
from optimizer.search import warm_up
from optimizer.solve import DEGRADED
from optimizer.territories import TerritoryOptions

log = logging.getLogger("fieldplan.replan")
LOCK = "replan"
#: The pure re-plan step the worker runs; tests swap it for one that fails or hangs.
SOLVER: Callable[[ReplanInput], ReplanResult] = replan
#: Worker processes by use: the re-plans', and the in-day re-optimisations' (which must not queue
#: behind a 20-second re-plan).
_pools: dict[str, ProcessPoolExecutor] = {}
_pool_guard = threading.Lock()


def _start_worker(parent: int) -> None:
    """In a new worker: watch the parent, lower its priority, and load the search's compiled code
    before the first run."""
    _watch_parent(parent)
    background_priority()
    warm_up()


#: How much less CPU priority background work gets than request handling (a nice increment).
BACKGROUND_NICE = 10


def background_priority(*, thread_only: bool = False) -> None:
    """Let request handling go first: a solve or a plan being written yields the CPU to technicians'
    pulls (on a small machine a re-plan otherwise shows as a second of latency on every phone).
    `thread_only` lowers the calling thread (a re-plan run in a web worker), else the process (a
    solver worker, `fieldplan scheduler`). Never raised back: the thread or process is background
    work for the rest of its life. Linux only, where a thread has its own priority."""
    if not hasattr(os, "setpriority"):
        return
    who = threading.get_native_id() if thread_only else 0
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, who, os.getpriority(os.PRIO_PROCESS, who) + BACKGROUND_NICE)


def _watch_parent(parent: int) -> None:
    """In the worker: exit when the service process is gone (even SIGKILLed), never linger orphaned."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_pool(name: str = "replan") -> ProcessPoolExecutor:
    with _pool_guard:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        return pool


def shutdown_pool(*, kill: bool = False, name: str | None = None) -> None:
    """Drop the worker pools (or the one named; a new one starts on the next run); `kill` for a
    broken or hung worker."""
    with _pool_guard:
        for key in [name] if name is not None else list(_pools):
            pool = _pools.pop(key, None)
            if pool is None:
                continue
            if kill:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()
            pool.shutdown(wait=False, cancel_futures=True)


def in_worker(fn: Callable[[Any], Any], data: Any, *, timeout: float, pool: str) -> Any:
    """Run `fn(data)` in a worker process (OR-Tools and the compiled search hold the GIL): the web
    process keeps serving. A worker that dies or overruns is killed; the next call starts another."""
    future = _worker_pool(pool).submit(fn, data)
    try:
        return future.result(timeout=timeout)
    except BrokenProcessPool:
        shutdown_pool(kill=True, name=pool)
        raise
    except TimeoutError:
        shutdown_pool(kill=True, name=pool)
        raise RuntimeError(f"the solver did not return within {timeout:.0f} s") from None


def nightly_horizon(service: Service) -> Horizon:
    return working_horizon(service, service.today(), service.settings.horizon_working_days)


def working_horizon(service: Service, start: date, count: int) -> Horizon:
    """From `start` over the next `count` days somebody works (a shift, typed or from a template)."""
    with service.sessions() as session:
        works = set(
            session.scalars(
                select(ShiftRow.date)
                .join(TechnicianRow, TechnicianRow.id == ShiftRow.technician_id)
                .where(
                    TechnicianRow.active, ShiftRow.date >= start, ShiftRow.date < start + timedelta(days=31)
                )
                .distinct()
            )
        )
    return working_days_horizon(start, count, works or None)


def start_run(
    service: Service, *, trigger: str, horizon: Horizon, wait: bool = False, from_now: bool = True
) -> int:
    """Take the lock, record the run and execute it (in a thread unless `wait`). Returns the run id.

    Raises ReplanInProgress when another re-plan holds the lock, in this process or another.
    """
    holder = f"{service.holder}:{time.monotonic_ns()}"
    with service.sessions.begin() as session:
        if not locks.acquire(
            session, LOCK, holder, now=service.now(), stale_after=service.settings.lock_stale_seconds
        ):
            running = session.scalar(
                select(RunRow.id).where(RunRow.status.in_(["queued", "running"])).order_by(RunRow.id.desc())
            )
            raise ReplanInProgress("a re-plan is already running", run_id=running)
        run = RunRow(
            trigger=trigger,
            status="queued",
            horizon_start=horizon.start,
            horizon_days=horizon.days,
            holder=holder,
            requested_at=service.now(),
            from_now=from_now,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    if wait:
        execute_run(service, run_id, holder)
    else:
        threading.Thread(
            target=execute_run,
            args=(service, run_id, holder),
            kwargs={"background": True},
            name=f"replan-{run_id}",
            daemon=True,
        ).start()
    return run_id


def execute_run(service: Service, run_id: int, holder: str, *, background: bool = False) -> None:
    if background:
        background_priority(thread_only=True)
    stop = threading.Event()
    began = time.monotonic()
    limit = service.settings.solve_seconds

    def beat() -> None:
        while not stop.wait(2.0):
            try:
                with service.sessions.begin() as s:
                    locks.heartbeat(s, LOCK, holder, now=service.now())
                    run = s.get(RunRow, run_id)
                    if run is not None and run.phase == "solving":
                        run.progress = round(min(0.99, (time.monotonic() - began) / (limit + 1.0)), 3)
            except Exception:  # a missed heartbeat is retried; the run itself reports its failure
                log.warning("heartbeat of run %s failed", run_id)

    heart = threading.Thread(target=beat, name=f"replan-{run_id}-heartbeat", daemon=True)
    heart.start()
    try:
        _set(service, run_id, status="running", phase="loading", started_at=service.now())
        data, days, seen = load_input(service, run_id)
        _set(service, run_id, phase="solving")
        began = time.monotonic()
        result = _solve(service, data, limit)
        rebases = 0
        version_id = None
        while version_id is None:
            # Writes made while the solver ran (requests, bookings, pins, cancellations, reports,
            # shifts) are never lost: the plan is rebased on them, the same way a warm start is made.
            while rebases < REBASES:
                fresh, _, now_seen = load_input(service, run_id)
                if now_seen == seen:
                    break
                rebases += 1
                _set(service, run_id, phase="rebasing")
                seen = now_seen
                quick = fresh.options.model_copy(update={"local_search": False})
                result = _solve(
                    service,
                    fresh.model_copy(update={"previous": result.plan.routes, "options": quick}),
                    limit,
                )
            violations = result.violations()
            if violations:
                listed = "; ".join(str(v) for v in violations[:20])
                raise PlanRejected(f"the plan failed the validator ({len(violations)} violations): {listed}")
            _set(service, run_id, phase="storing", progress=0.99)
            version_id = _store(service, run_id, result, days, seen if rebases < REBASES else None)
        log.info("re-plan run %s stored plan version %s", run_id, version_id)
        if result.plan.solver.status == DEGRADED:
            failed = "; ".join(p for p in result.plan.solver.search_phases if "failed" in p)
            log.warning(
                "re-plan run %s: a search phase failed, the best plan before it was kept: %s", run_id, failed
            )
    except Exception as exc:
        log.error("re-plan run %s failed: %s", run_id, exc)
        log.debug("%s", traceback.format_exc())
        try:
            _set(
                service, run_id, status="failed", phase="failed", finished_at=service.now(), error=_short(exc)
            )
        except Exception:
            log.exception("could not record the failure of run %s", run_id)
    finally:
        stop.set()
        try:
            with service.sessions.begin() as session:
                locks.release(session, LOCK, holder)
        except Exception:
            log.exception(
                "could not release the re-plan lock; it expires after %s s",
                service.settings.lock_stale_seconds,
            )


def _store(
    service: Service, run_id: int, result: ReplanResult, days: list[date], seen: str | None
) -> int | None:
    """Store the run's plan, unless something it read was written meanwhile (`seen` differs): then
    None, and the caller rebases. Takes the plan-write lock first, as a booking does, so a booking
    is either read by this plan or waits until it is stored (and then is placed into it)."""
    try:
        with service.sessions.begin() as session, _paused(service.settings.test_pause_at):
            booking.lock_plan(session, service.now())
            if seen is not None and store.fingerprint(session) != seen:
                raise _WrittenMeanwhile
            run = session.get(RunRow, run_id)
            assert run is not None
            nightly = run.trigger in PUBLISHING_TRIGGERS
            version = store.store_plan(
                session,
                plan=result.plan,
                days=days,
                trigger=run.trigger,
                run_id=run_id,
                today=service.today(),
                now=service.now(),
                publish_days=days[: service.settings.nightly_publishes_days] if nightly else (),
            )
            run.status, run.phase, run.progress = "succeeded", "done", 1.0
            run.finished_at = service.now()
            run.plan_version_id = version.id
            run.summary = {
                "solver_status": result.plan.solver.status,
                "planned": result.plan.kpis.jobs_planned,
                "unassigned": len(result.plan.unassigned),
                "promised": len(result.promised),
                "deferred": len(result.deferred),
                "churn": result.plan.kpis.churn,
            }
            audit.record(
                session,
                now=service.now(),
                actor=f"run {run_id}",
                action="plan.stored",
                subject=f"plan version {version.id}",
                trigger=run.trigger,
            )
            return version.id
    except _WrittenMeanwhile:
        return None


class _WrittenMeanwhile(Exception):
    """Rolls back a store whose inputs changed after they were read."""


def _solve(service: Service, data: ReplanInput, limit: float) -> ReplanResult:
    timeout = service.settings.solve_timeout_seconds or limit * 3 + 120
    return in_worker(SOLVER, data, timeout=timeout, pool="replan")  # type: ignore[no-any-return]


#: Runs that are the nightly re-plan (scheduled, caught up, or asked for now): they publish the
#: first `nightly_publishes_days` days of their horizon themselves.
PUBLISHING_TRIGGERS = ("nightly", "catch-up", "nightly-manual")


class PlanRejected(RuntimeError):
    """The independent validator found a violation: the plan is never made current."""


# Rebases at most this many times while writes keep arriving; the last one is stored as it is
# (a write after it shows as a request not planned yet, never as a lost one).
REBASES = 3


def load_input(service: Service, run_id: int) -> tuple[ReplanInput, list[date], str]:
    """What a run plans, read from the database, and a fingerprint of it to notice later writes."""
    with service.sessions() as session:
        run = session.get(RunRow, run_id)
        assert run is not None
        horizon = Horizon(start=run.horizon_start, days=run.horizon_days)
        from_now = run.from_now
        days = horizon.dates()
        previous = store.shown_routes(session, days, service.tz)
        requests = store.active_requests(session)
        pool = store.pool_jobs(session, requests)
        techs = [store.technician_model(t) for t in store.technicians(session)]
        seen = store.fingerprint(session)
        given = roads.uploaded(session)
    travel, _ = roads.for_service(service.settings, roads.places(techs, [p.job for p in pool]), given)
    data = ReplanInput(
        name=f"re-plan run {run_id}",
        timezone=service.settings.timezone,
        horizon=horizon,
        technicians=techs,
        pool=pool,
        previous=previous,
        travel=travel,
        not_before=service.now() if from_now else None,
        options=SolveOptions(time_limit_seconds=service.settings.solve_seconds, seed=run_id),
        explain=service.settings.explain_fixes,
        territories=TerritoryOptions(
            threshold=service.settings.territory_threshold,
            jobs_per_territory=service.settings.territory_jobs,
            backend=service.settings.territory_backend,
            parallel=service.settings.territory_parallel,
            address=service.settings.ray_address,
        ),
    )
    return data, days, seen


@contextmanager
def _paused(spec: str | None) -> Iterator[None]:
    """Fault injection for the crash tests: sleep at a named point of the plan write."""
    if not spec:
        yield
        return
    point, _, seconds = spec.partition(":")
    previous = store.fault_point

    def pause(name: str) -> None:
        previous(name)
        if name == point:
            log.warning("test pause at %s for %s s", point, seconds)
            time.sleep(float(seconds or 30))

    store.fault_point = pause
    try:
        yield
    finally:
        store.fault_point = previous


def _set(service: Service, run_id: int, **values: object) -> None:
    with service.sessions.begin() as session:
        run = session.get(RunRow, run_id)
        if run is not None:
            for key, value in values.items():
                setattr(run, key, value)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 2000 else text[:2000] + "…"


def recover_abandoned(service: Service) -> int:
    """Runs left 'queued' or 'running' by a dead process become 'abandoned' (and its lock is freed)."""
    with service.sessions.begin() as session:
        lock = locks.state(session, LOCK)
        stale_before = service.now().timestamp() - service.settings.lock_stale_seconds
        live_holder = None
        if lock is not None and lock.holder and lock.heartbeat_at is not None:
            if lock.heartbeat_at.timestamp() >= stale_before and not lock.holder.startswith(service.holder):
                live_holder = lock.holder
            elif lock.heartbeat_at.timestamp() < stale_before:
                locks.release(session, LOCK, lock.holder)
        count = 0
        for run in session.scalars(select(RunRow).where(RunRow.status.in_(["queued", "running"]))):
            if run.holder == live_holder:
                continue
            run.status, run.phase, run.finished_at = "abandoned", "abandoned", utcnow()
            run.error = "the process running it stopped before it finished (previous plan kept)"
            count += 1
        return count
