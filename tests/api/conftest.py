"""The service under test, over SQLite and over the PostgreSQL server, through real HTTP calls.

Every test that takes `service` runs twice: on a fresh SQLite file and in a fresh PostgreSQL schema
(127.0.0.1:5432, database `test`). Without the server the PostgreSQL half is skipped with a reason,
unless FIELDPLAN_REQUIRE_POSTGRES=1 (CI), where its absence is a failure.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.context import Service
from api.security import Role, create_key
from api.settings import Settings
from tests.conftest import DAY, job, tech

PG_BASE = os.environ.get("FIELDPLAN_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN_KEY = "test-admin-key-0123456789abcdef"


class Clock:
    """A clock the test moves by hand (catch-up, 'today')."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@lru_cache(maxsize=1)
def _postgres_reason() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_BASE.replace("+psycopg", ""), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {PG_BASE.split('@')[-1]} not reachable ({type(exc).__name__})"
    return None


def require_postgres(what: str) -> None:
    """Skip `what` without a PostgreSQL server (a laptop); fail under FIELDPLAN_REQUIRE_POSTGRES=1 (CI)."""
    reason = _postgres_reason()
    if reason is None:
        return
    if os.environ.get("FIELDPLAN_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason}, and FIELDPLAN_REQUIRE_POSTGRES=1")
    pytest.skip(f"{reason}: {what} skipped")


@contextmanager
def _postgres_schema() -> Iterator[str]:
    """A fresh schema per test, dropped afterwards; the URL puts it first on the search path."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = PG_BASE.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fieldplan.db'}"
        return
    require_postgres("the PostgreSQL half of the API suite")
    with _postgres_schema() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """For tests that only mean something on PostgreSQL (several processes, a network path)."""
    require_postgres("this PostgreSQL-only test")
    with _postgres_schema() as url:
        yield url


def settings_for(url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "admin_key": ADMIN_KEY,
        "scheduler": False,
        "solve_seconds": 1.0,
        "timezone": "Europe/Paris",
        "geocoder_min_delay_seconds": 0.0,
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def clock() -> Clock:
    """06:00 on the test Monday, before any shift starts."""
    return Clock(
        datetime.fromisoformat(f"{DAY}T06:00").replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    )


@pytest.fixture
def service(db_url: str, clock: Clock) -> Iterator[Service]:
    svc = Service.open(settings_for(db_url), clock=clock)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


class Keys:
    def __init__(self, service: Service) -> None:
        with service.sessions.begin() as session:
            _, self.dispatcher = create_key(session, role=Role.DISPATCHER)
        self.admin = ADMIN_KEY
        self._service = service
        self._tech: dict[str, str] = {}

    def booking(self) -> str:
        """A call-centre agent's key (the `booking` role)."""
        if "booking" not in self._tech:
            with self._service.sessions.begin() as session:
                _, self._tech["booking"] = create_key(session, role=Role.BOOKING)
        return self._tech["booking"]

    def technician(self, tid: str) -> str:
        if tid not in self._tech:
            with self._service.sessions.begin() as session:
                _, self._tech[tid] = create_key(session, role=Role.TECHNICIAN, technician_id=tid)
        return self._tech[tid]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(client: TestClient, service: Service) -> Keys:
    return Keys(service)


def wait_run(client: TestClient, key: str, run_id: int, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/v1/runs/{run_id}", headers=bearer(key)).json()
        if run["status"] not in ("queued", "running"):
            return run  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")


FLEET = [
    tech("T1", skills={"hvac": 4, "electrical": 2}),
    tech("T2", lat=45.70, lon=4.90, skills={"hvac": 2}),
]
JOBS = [
    job("R1", kind="repair", warranty=True, skills={"hvac": 3}),
    job("R2", lat=45.71, lon=4.89),
    job("R3", lat=45.75, lon=4.80, duration_minutes=90),
    job("R4", lat=45.72, lon=4.86, preferred_technicians=["T2"]),
    job("R5", lat=45.78, lon=4.83, skills={"electrical": 2}, kind="installation"),
    job("R6", lat=45.69, lon=4.92),
]


@pytest.fixture
def loaded(client: TestClient, keys: Keys) -> Keys:
    """Two technicians working the test Monday and six open requests, through the API."""
    for t in FLEET:
        assert client.post("/v1/technicians", json=t, headers=bearer(keys.dispatcher)).status_code == 201
    for j in JOBS:
        assert client.post("/v1/requests", json=j, headers=bearer(keys.dispatcher)).status_code == 201
    return keys


def plan_day(client: TestClient, keys: Keys, **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/plans", json={"start": DAY, "days": 1, **body}, headers=bearer(keys.dispatcher))
    assert answer.status_code == 202, answer.text
    run = wait_run(client, keys.dispatcher, answer.json()["run_id"])
    assert run["status"] == "succeeded", run
    return run
