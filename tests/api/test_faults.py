"""Faults with real processes: SIGKILL mid-write, missed nights, two schedulers, the database away.

Each keeps the promise the service makes: the previous plan stays current, nothing half-written is
visible, every run is recorded with its outcome, and exactly one re-plan happens where one is due.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from api import replan_job
from api.context import Service
from api.tables import CurrentPlanRow, PlanVersionRow, RouteRow, RunRow, utcnow
from models import Horizon
from tests.api.conftest import ADMIN_KEY, FLEET, JOBS, Keys, bearer, plan_day, settings_for, wait_run
from tests.api.proc import ServiceProcess, free_port
from tests.conftest import DAY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _seed_first_plan(service: Service) -> int:
    """Technicians, requests and a first plan for the test day, written in-process."""
    from api import store
    from api.tables import RequestRow
    from models import Job, Technician

    with service.sessions.begin() as session:
        for t in FLEET:
            store.put_technician(session, Technician.model_validate(t))
        for j in JOBS:
            job = Job.model_validate(j)
            session.add(RequestRow(id=job.id, status="open", spec=job.model_dump(mode="json")))
    run_id = replan_job.start_run(
        service,
        trigger="seed",
        horizon=Horizon(start=date.fromisoformat(DAY), days=1),
        wait=True,
        from_now=False,
    )
    with service.sessions() as session:
        run = session.get(RunRow, run_id)
        assert run is not None and run.status == "succeeded", run and run.error
        return int(run.plan_version_id or 0)


def _runs(service: Service) -> list[RunRow]:
    with service.sessions() as session:
        return list(session.scalars(sql_select(RunRow).order_by(RunRow.id)))


def _wait_idle(service: Service, timeout: float = 60) -> list[RunRow]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs(service)
        if runs and all(r.status not in ("queued", "running") for r in runs):
            return runs
        time.sleep(0.3)
    raise AssertionError(f"runs still busy: {[(r.id, r.status) for r in _runs(service)]}")


def _old_nightly(service: Service) -> None:
    with service.sessions.begin() as session:
        then = utcnow() - timedelta(days=3)
        session.add(
            RunRow(
                trigger="nightly",
                status="succeeded",
                requested_at=then,
                horizon_start=then.date(),
                horizon_days=1,
                phase="done",
                progress=1.0,
            )
        )


@pytest.fixture
def store_service(db_url: str) -> Iterator[Service]:
    svc = Service.open(settings_for(db_url))
    yield svc
    svc.close()


@pytest.fixture
def pg_service(pg_url: str) -> Iterator[Service]:
    svc = Service.open(settings_for(pg_url))
    yield svc
    svc.close()


def test_sigkill_while_writing_a_plan_keeps_the_previous_plan_and_recovers_once(
    store_service: Service, db_url: str, tmp_path: Path
) -> None:
    first = _seed_first_plan(store_service)
    a = ServiceProcess(db_url, tmp_path / "a.log", FIELDPLAN_TEST_PAUSE_AT="after_visits:60").start()
    try:
        run_id = httpx.post(a.url + "/v1/plans", json={"start": DAY, "days": 1}, headers=ADMIN).json()[
            "run_id"
        ]
        deadline = time.monotonic() + 60
        while httpx.get(f"{a.url}/v1/runs/{run_id}", headers=ADMIN).json()["phase"] != "storing":
            assert time.monotonic() < deadline, "the run never reached its write"
            time.sleep(0.1)
        time.sleep(1.0)  # inside the transaction: version, routes and visits written, not committed
        a.kill()
    finally:
        a.stop()
    with store_service.sessions() as session:
        assert session.get(CurrentPlanRow, date.fromisoformat(DAY)).plan_version_id == first  # type: ignore[union-attr]
        assert session.scalar(sql_select(func.count()).select_from(PlanVersionRow)) == 1
        assert (
            session.scalar(
                sql_select(func.count()).select_from(RouteRow).where(RouteRow.plan_version_id != first)
            )
            == 0
        )
        assert session.get(RunRow, run_id).status == "running"  # type: ignore[union-attr]  # as the dead left it

    time.sleep(2.5)  # the dead holder's lock goes stale
    b = ServiceProcess(db_url, tmp_path / "b.log", FIELDPLAN_SCHEDULER="true").start()
    try:
        runs = _wait_idle(store_service)
        killed = next(r for r in runs if r.id == run_id)
        assert killed.status == "abandoned" and killed.plan_version_id is None
        recovery = [r for r in runs if r.trigger == "catch-up"]
        assert len(recovery) == 1 and recovery[0].status == "succeeded"
        day = httpx.get(b.url + "/v1/plans/current", params={"date": DAY}, headers=ADMIN).json()
        # The catch-up plans today and the next days somebody works: the fleet's only shift is on
        # DAY, so its horizon reaches DAY (the killed run's version never shows).
        caught = recovery[0]
        covers = 0 <= (date.fromisoformat(DAY) - caught.horizon_start).days < caught.horizon_days
        assert day["plan_version"] == (caught.plan_version_id if covers else first)
    finally:
        b.stop()
    # a second restart finds nothing to recover and no night to catch up
    c = ServiceProcess(db_url, tmp_path / "c.log", FIELDPLAN_SCHEDULER="true").start()
    try:
        time.sleep(2)
        assert len([r for r in _wait_idle(store_service) if r.trigger == "catch-up"]) == 1
    finally:
        c.stop()


def test_down_across_the_nightly_time_catches_up_exactly_once(
    store_service: Service, db_url: str, tmp_path: Path
) -> None:
    _seed_first_plan(store_service)
    _old_nightly(store_service)  # the last nightly run was three nights ago
    for name in ("first", "second"):
        proc = ServiceProcess(db_url, tmp_path / f"{name}.log", FIELDPLAN_SCHEDULER="true").start()
        try:
            time.sleep(1.5)
            runs = _wait_idle(store_service)
        finally:
            proc.stop()
        catch_ups = [r for r in runs if r.trigger == "catch-up"]
        assert len(catch_ups) == 1 and catch_ups[0].status == "succeeded", name


@pytest.mark.postgres
def test_two_processes_with_schedulers_re_plan_once(pg_service: Service, pg_url: str, tmp_path: Path) -> None:
    """Several service processes share one PostgreSQL database (SQLite is one machine's file)."""
    store_service, db_url = pg_service, pg_url
    _seed_first_plan(store_service)
    _old_nightly(store_service)
    procs = [
        ServiceProcess(
            db_url, tmp_path / f"p{i}.log", FIELDPLAN_SCHEDULER="true", FIELDPLAN_SOLVE_SECONDS="2"
        )
        for i in range(2)
    ]
    threads = [threading.Thread(target=p.start) for p in procs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.5)
        runs = _wait_idle(store_service)
    finally:
        for p in procs:
            p.stop()
    assert len([r for r in runs if r.trigger == "catch-up"]) == 1
    logs = "".join(p.log.read_text() for p in procs)
    assert logs.count("catch-up re-plan: run") == 1


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut and restore, on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        self._stop.clear()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(50)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._stop.set()
        self._listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        self._socks.clear()
        if self._thread:
            self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.2)
                if not ready:
                    continue
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.mark.postgres
def test_database_away_gives_503_and_the_service_recovers_by_itself(pg_url: str, tmp_path: Path) -> None:
    """The outage is made by cutting the TCP path to the PostgreSQL server."""
    db_url = pg_url
    proxy = Proxy(("127.0.0.1", 5432))
    proxy.up()
    proxied = db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    svc = ServiceProcess(proxied, tmp_path / "svc.log").start()
    try:
        from tests.conftest import job, tech

        assert httpx.post(svc.url + "/v1/technicians", json=tech("T1"), headers=ADMIN).status_code == 201
        assert httpx.post(svc.url + "/v1/requests", json=job("OK1"), headers=ADMIN).status_code == 201
        proxy.down()
        down = httpx.get(svc.url + "/v1/requests", headers=ADMIN, timeout=30)
        assert down.status_code == 503 and down.json()["code"] == "database_unavailable"
        assert "Retry-After" in down.headers and "5432" not in down.text and "postgres" not in down.text
        lost = httpx.post(svc.url + "/v1/requests", json=job("LATE1"), headers=ADMIN, timeout=30)
        assert lost.status_code == 503  # not accepted, so the client knows to retry
        assert httpx.get(svc.url + "/health", timeout=30).status_code == 503
        proxy.up()
        deadline = time.monotonic() + 30
        while True:
            answer = httpx.get(svc.url + "/v1/requests", headers=ADMIN, timeout=30)
            if answer.status_code == 200:
                break
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)
        assert [r["id"] for r in answer.json()] == ["OK1"]  # the accepted one is there
        assert httpx.post(svc.url + "/v1/requests", json=job("LATE1"), headers=ADMIN).status_code == 201
        assert httpx.get(svc.url + "/health").json()["database"] == "ok"
    finally:
        svc.stop()
        proxy.down()


def test_a_failing_or_hanging_solver_fails_the_run_and_keeps_the_plan(
    client: object, loaded: Keys, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from tests.api import faulty

    assert isinstance(client, TestClient)
    first = plan_day(client, loaded)
    h = bearer(loaded.dispatcher)
    monkeypatch.setattr(replan_job, "SOLVER", faulty.explode)
    run = wait_run(
        client,
        loaded.dispatcher,
        client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h).json()["run_id"],
    )
    assert run["status"] == "failed" and "blew up" in run["error"]
    monkeypatch.setattr(replan_job, "SOLVER", faulty.hang)
    monkeypatch.setitem(service.settings.__dict__, "solve_timeout_seconds", 3.0)
    run = wait_run(
        client,
        loaded.dispatcher,
        client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h).json()["run_id"],
    )
    assert run["status"] == "failed" and "did not return" in run["error"]
    assert (
        client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()["plan_version"]
        == first["plan_version_id"]
    )
    monkeypatch.undo()
    assert plan_day(client, loaded)["status"] == "succeeded"  # the worker pool was replaced
