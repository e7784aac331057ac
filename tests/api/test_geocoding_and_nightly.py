"""Addresses through geopy's real Nominatim client against a loopback server; the nightly catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api import scheduler
from api.app import create_app
from api.context import Service
from api.tables import RunRow
from tests.api.conftest import Clock, Keys, bearer, settings_for
from tests.api.fakes import FakeNominatim
from tests.conftest import job

KNOWN = {"12 rue de la république, 69002 lyon": (45.7640, 4.8357)}


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    fake = FakeNominatim(lambda q: KNOWN.get(" ".join(q.split()).casefold()))
    try:
        yield fake
    finally:
        fake.close()


def _client_with(service: Service, **settings: object) -> TestClient:
    svc = Service(
        settings=service.settings.model_copy(update=settings),
        engine=service.engine,
        sessions=service.sessions,
        clock=service.clock,
        holder=service.holder,
    )
    return TestClient(create_app(svc))


def test_an_address_is_geocoded_once_and_cached(
    service: Service, nominatim: FakeNominatim, loaded: Keys
) -> None:
    with _client_with(service, geocoder_domain=nominatim.domain, geocoder_scheme="http") as client:
        h = bearer(loaded.dispatcher)
        body = {k: v for k, v in job("G1").items() if k != "location"}
        made = client.post(
            "/v1/requests", json={**body, "address": "12 Rue de la République, 69002 Lyon"}, headers=h
        )
        assert made.status_code == 201, made.text
        assert made.json()["job"]["location"] == {"lat": 45.764, "lon": 4.8357}
        again = client.post(
            "/v1/requests",
            json={**body, "id": "G2", "address": "12  rue de la RÉPUBLIQUE, 69002 Lyon"},
            headers=h,
        )
        assert again.status_code == 201
        assert len(nominatim.hits) == 1  # the second, differently written address came from the cache

        missing = client.post(
            "/v1/requests", json={**body, "id": "G3", "address": "1 Nowhere Lane"}, headers=h
        )
        assert missing.status_code == 422
        detail = missing.json()["detail"][0]
        assert detail["loc"] == ["body", "address"] and "1 Nowhere Lane" in detail["msg"]


def test_no_geocoder_answering_is_503_with_retry_after_and_one_log_line(
    service: Service, loaded: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with _client_with(service, geocoder_domain="127.0.0.1:9", geocoder_scheme="http") as client:
        body = {k: v for k, v in job("G4").items() if k != "location"}
        caplog.clear()
        answer = client.post(
            "/v1/requests",
            json={**body, "address": "5 Place Bellecour, Lyon"},
            headers=bearer(loaded.dispatcher),
        )
        assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
        assert answer.json()["code"] == "geocoder_unavailable"
        logged = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
        assert len(logged) == 1 and not logged[0].exc_info, [r.getMessage() for r in logged]
        assert client.get("/v1/requests/G4", headers=bearer(loaded.dispatcher)).status_code == 404


def _nightly_runs(service: Service) -> list[RunRow]:
    with service.sessions() as session:
        return list(
            session.query(RunRow).filter(RunRow.trigger.in_(scheduler.NIGHTLY_TRIGGERS)).order_by(RunRow.id)
        )


def test_a_missed_night_is_caught_up_once_at_startup(service: Service, clock: Clock, loaded: Keys) -> None:
    # The last nightly run was three nights ago; the service was down since. It is now 06:00.
    with service.sessions.begin() as session:
        session.add(
            RunRow(
                trigger="nightly",
                status="succeeded",
                requested_at=clock.at - timedelta(days=3),
                horizon_start=(clock.at - timedelta(days=3)).date(),
                horizon_days=1,
                phase="done",
                progress=1.0,
            )
        )
    assert scheduler.missed_night(service)
    run_id = scheduler.on_startup(service, wait=True)
    runs = _nightly_runs(service)
    assert [r.trigger for r in runs] == ["nightly", "catch-up"] and runs[-1].id == run_id
    assert runs[-1].status == "succeeded"
    # A second start the same morning, and one the next afternoon before 02:00 passes again: no run.
    assert scheduler.on_startup(service, wait=True) is None
    clock.at += timedelta(hours=10)
    assert scheduler.on_startup(service, wait=True) is None
    clock.at += timedelta(hours=12)  # past the next 02:00
    assert scheduler.missed_night(service)
    assert len(_nightly_runs(service)) == 2


def test_a_fresh_database_has_no_night_to_catch_up(service: Service) -> None:
    assert not scheduler.missed_night(service)


def test_runs_of_a_dead_process_are_abandoned_and_re_planned_once(
    service: Service, clock: Clock, loaded: Keys
) -> None:
    from api import locks

    with service.sessions.begin() as session:
        session.add(
            RunRow(
                trigger="nightly",
                status="running",
                requested_at=clock.at - timedelta(minutes=30),
                horizon_start=clock.at.date(),
                horizon_days=1,
                holder="dead-host:1",
            )
        )
        locks.acquire(session, "replan", "dead-host:1", now=clock.at - timedelta(minutes=30), stale_after=1)
    run_id = scheduler.on_startup(service, wait=True)
    runs = _nightly_runs(service)
    assert runs[0].status == "abandoned" and "previous plan kept" in (runs[0].error or "")
    assert runs[-1].id == run_id and runs[-1].status == "succeeded"
    assert scheduler.on_startup(service, wait=True) is None


def test_the_scheduler_registers_one_nightly_job_that_survives_a_missed_night(service: Service) -> None:
    sched = scheduler.start(service)
    try:
        jobs = sched.get_jobs()
        assert [j.id for j in jobs] == [scheduler.JOB_ID]
        assert jobs[0].misfire_grace_time >= 3600 and jobs[0].coalesce
        nxt = jobs[0].next_run_time.astimezone(service.tz)
        assert (nxt.hour, nxt.minute) == (2, 0)
    finally:
        sched.shutdown(wait=False)


def test_the_service_refuses_to_start_without_an_admin_key(db_url: str) -> None:
    from api.app import InsecureConfiguration

    with pytest.raises(InsecureConfiguration, match="FIELDPLAN_ADMIN_KEY"):
        create_app(settings=settings_for(db_url, admin_key=None))
