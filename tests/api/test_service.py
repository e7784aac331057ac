"""The dispatch service end to end through HTTP, on SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import func, select

from api import store
from api.context import Service
from api.tables import PlanVersionRow, RequestRow, RouteRow, VisitRow
from models import Plan, Scenario
from optimizer import validate_plan
from tests.api.conftest import FLEET, JOBS, Keys, bearer, plan_day, wait_run
from tests.conftest import DAY, job, scenario_dict


def scenario_of(client: TestClient, keys: Keys, days: int = 1) -> Scenario:
    """The scenario the service planned, rebuilt from what the API says it stores."""
    h = bearer(keys.dispatcher)
    techs = [
        {k: v for k, v in t.items() if k not in ("active", "replan_run_id")}
        for t in client.get("/v1/technicians", headers=h).json()
    ]
    reqs = client.get("/v1/requests", params={"limit": 1000}, headers=h).json()
    jobs = [r["job"] for r in reqs if r["status"] not in ("done", "cancelled")]
    return Scenario.model_validate(scenario_dict(techs, jobs, days=days))


def test_a_plan_requested_by_a_dispatcher_is_stored_and_passes_the_validator(
    client: TestClient, loaded: Keys
) -> None:
    run = plan_day(client, loaded)
    assert run["progress"] == 1.0 and run["summary"]["planned"] + run["summary"]["unassigned"] == 6
    h = bearer(loaded.dispatcher)
    day = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    assert day["plan_version"] == run["plan_version_id"]
    planned = {v["job_id"] for r in day["routes"] for v in r["visits"]}
    assert planned | {u["job_id"] for u in day["unassigned"]} == {j["id"] for j in JOBS}
    plan = Plan.model_validate(client.get(f"/v1/plans/{run['plan_version_id']}", headers=h).json())
    assert validate_plan(scenario_of(client, loaded), plan) == []
    statuses = {r["id"]: r["status"] for r in client.get("/v1/requests", headers=h).json()}
    assert all(statuses[j] == "planned" for j in planned)
    assert client.get("/v1/plans/current/kpis", params={"date": DAY}, headers=h).json()[
        "jobs_planned"
    ] == len(planned)
    assert client.get("/v1/plans/current/unassigned", params={"date": DAY}, headers=h).status_code == 200


def publish(client: TestClient, keys: Keys) -> None:
    assert client.post(f"/v1/days/{DAY}/publish", headers=bearer(keys.dispatcher)).status_code == 200


def test_a_technician_sees_only_their_own_route_in_json_ics_and_geojson(
    client: TestClient, loaded: Keys
) -> None:
    plan_day(client, loaded)
    h = bearer(loaded.dispatcher)
    th = bearer(loaded.technician("T1"))
    assert client.get("/v1/me/route", params={"date": DAY}, headers=th).status_code == 404  # not published
    publish(client, loaded)
    day = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    mine = {r["technician_id"]: [v["job_id"] for v in r["visits"]] for r in day["routes"]}
    for tid in ("T1", "T2"):
        th = bearer(loaded.technician(tid))
        route = client.get("/v1/me/route", params={"date": DAY}, headers=th).json()
        assert route["technician_id"] == tid
        assert [s["job_id"] for s in route["stops"]] == mine.get(tid, [])
        for stop in route["stops"]:
            assert stop["maps_url"].startswith("https://www.openstreetmap.org/")
            assert stop["start"] <= stop["end"]

        ics = client.get("/v1/me/route.ics", params={"date": DAY}, headers=th)
        assert ics.headers["content-type"].startswith("text/calendar")
        events = [
            e for e in Calendar.from_ical(ics.content).walk("VEVENT") if str(e["uid"]).startswith("visit-")
        ]
        assert [str(e["uid"]).removeprefix("visit-").split("@")[0] for e in events] == mine.get(tid, [])
        for e, stop in zip(events, route["stops"], strict=True):
            assert e.decoded("dtstart").isoformat() == stop["start"]

        geo = client.get("/v1/me/route.geojson", params={"date": DAY}, headers=th)
        assert geo.headers["content-type"] == "application/geo+json"
        fc = json.loads(geo.content)
        kinds = [f["geometry"]["type"] for f in fc["features"]]
        n = len(route["stops"])
        assert kinds.count("Point") == n + 2 and kinds.count("LineString") == n + 1
        stops = [f for f in fc["features"] if f["properties"].get("role") == "stop"]
        assert [f["properties"]["job_id"] for f in stops] == mine.get(tid, [])
        lon, lat = stops[0]["geometry"]["coordinates"] if stops else (0, 0)
        if stops:
            assert (lat, lon) == (route["stops"][0]["location"]["lat"], route["stops"][0]["location"]["lon"])


def test_a_technician_cannot_touch_another_technicians_visit(client: TestClient, loaded: Keys) -> None:
    plan_day(client, loaded)
    publish(client, loaded)
    day = client.get("/v1/plans/current", params={"date": DAY}, headers=bearer(loaded.dispatcher)).json()
    theirs = next(r for r in day["routes"] if r["technician_id"] == "T2" and r["visits"])
    job_id = theirs["visits"][0]["job_id"]
    t1 = bearer(loaded.technician("T1"))
    answer = client.post(f"/v1/visits/{job_id}/status", json={"status": "completed"}, headers=t1)
    assert answer.status_code == 404  # the same answer as for a job that does not exist
    assert client.post("/v1/visits/NOPE/status", json={"status": "completed"}, headers=t1).status_code == 404
    # query parameters cannot widen the scope
    route = client.get("/v1/me/route", params={"date": DAY, "technician_id": "T2"}, headers=t1).json()
    assert route["technician_id"] == "T1" and job_id not in [s["job_id"] for s in route["stops"]]
    status = client.get(f"/v1/requests/{job_id}", headers=bearer(loaded.dispatcher)).json()["status"]
    assert status == "dispatched"


def test_a_failed_visit_returns_raised_and_the_nightly_job_plans_it_again(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    plan_day(client, loaded)
    publish(client, loaded)
    h = bearer(loaded.dispatcher)
    day = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    route = next(r for r in day["routes"] if r["visits"])
    tid, failed = route["technician_id"], route["visits"][0]["job_id"]
    before = client.get(f"/v1/requests/{failed}", headers=h).json()
    th = bearer(loaded.technician(tid))
    assert (
        client.post(f"/v1/visits/{failed}/status", json={"status": "failed"}, headers=th).status_code == 422
    )
    answer = client.post(
        f"/v1/visits/{failed}/status", json={"status": "failed", "reason": "customer not at home"}, headers=th
    )
    assert answer.status_code == 200, answer.text
    after = answer.json()
    assert after["status"] == "failed" and after["failures"] == 1
    assert after["job"]["priority"] == max(1, _priority(before["job"]) - 1)
    done = route["visits"][1]["job_id"] if len(route["visits"]) > 1 else None
    if done:
        assert (
            client.post(f"/v1/visits/{done}/status", json={"status": "completed"}, headers=th).json()[
                "status"
            ]
            == "done"
        )

    nightly = client.post("/v1/plans/nightly", headers=h)
    assert nightly.status_code == 202
    run = wait_run(client, loaded.dispatcher, nightly.json()["run_id"])
    assert run["status"] == "succeeded", run
    again = client.get(f"/v1/requests/{failed}", headers=h).json()
    assert (
        again["status"] == "dispatched" and again["visit_status"] is None
    )  # the nightly run publishes today
    plan = client.get(f"/v1/plans/{run['plan_version_id']}", headers=h).json()
    planned = {v["job_id"] for r in plan["routes"] for v in r["visits"]}
    assert failed in planned
    if done:
        assert done not in planned  # a completed job leaves the pool
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["last_nightly"]["id"] == run["id"]


def _priority(job_dict: dict[str, Any]) -> int:
    from models import Job

    return Job.model_validate(job_dict).effective_priority


def test_published_visits_keep_their_promises_when_new_requests_arrive(
    client: TestClient, loaded: Keys
) -> None:
    first = plan_day(client, loaded)
    h = bearer(loaded.dispatcher)
    published = client.post(f"/v1/days/{DAY}/publish", headers=h).json()
    assert published["plan_version"] == first["plan_version_id"] and published["dispatched"] > 0
    day = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    promised = {v["job_id"] for r in day["routes"] for v in r["visits"]}
    requests = {r["id"]: r for r in client.get("/v1/requests", headers=h).json()}
    assert {requests[j]["status"] for j in promised} == {"dispatched"}
    assert all(requests[j]["promise"] for j in promised)
    for i in range(3):
        new = job(f"N{i}", lat=45.74 + i / 100, lon=4.86, duration_minutes=20, kind="inspection")
        assert client.post("/v1/requests", json=new, headers=h).status_code == 201
    second = plan_day(client, loaded)
    assert second["summary"]["promised"] == len(promised)
    shown = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    assert (
        shown["plan_version"] == first["plan_version_id"] and shown["proposal"] == second["plan_version_id"]
    )
    proposal = client.get("/v1/plans/proposed", params={"date": DAY}, headers=h).json()
    visits = {v["job_id"]: v for r in proposal["routes"] for v in r["visits"]}
    for jid in promised:
        window = requests[jid]["promise"]
        assert window["start"] <= visits[jid]["start"] <= window["end"], f"promise broken for {jid}"
    assert any(f"N{i}" in visits for i in range(3)) or len(proposal["unassigned"]) >= 1
    assert proposal["kpis"]["churn"] is not None


def test_idempotent_posts_never_duplicate(client: TestClient, loaded: Keys) -> None:
    h = bearer(loaded.dispatcher)
    body = job("I1")
    first = client.post("/v1/requests", json=body, headers={**h, "Idempotency-Key": "k-1"})
    again = client.post("/v1/requests", json=body, headers={**h, "Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    other = client.post("/v1/requests", json=job("I2"), headers={**h, "Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert client.post("/v1/requests", json=body, headers=h).status_code == 409  # same id, no key

    ext = job("E1", external_id="crm-77")
    assert client.post("/v1/requests", json=ext, headers=h).status_code == 201
    repeat = client.post("/v1/requests", json=ext, headers=h)
    assert repeat.status_code == 200 and repeat.json()["id"] == "E1"
    ids = [r["id"] for r in client.get("/v1/requests", params={"limit": 1000}, headers=h).json()]
    assert ids.count("I1") == 1 and ids.count("E1") == 1 and "I2" not in ids


def test_bulk_import_of_1000_requests_is_all_or_nothing_and_idempotent(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    h = bearer(loaded.dispatcher)
    bulk = {
        "requests": [
            job(f"B{i:04d}", lat=45.7 + (i % 50) / 500, lon=4.8 + (i // 50) / 500) for i in range(1000)
        ]
    }
    answer = client.post("/v1/requests/bulk", json=bulk, headers={**h, "Idempotency-Key": "bulk-1"})
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["created"] == 1000
    replay = client.post("/v1/requests/bulk", json=bulk, headers={**h, "Idempotency-Key": "bulk-1"})
    assert replay.json() == answer.json() and replay.headers.get("Idempotent-Replay") == "true"
    bad = {"requests": [job("C1"), job("C2", duration_minutes=-5)]}
    rejected = client.post("/v1/requests/bulk", json=bad, headers=h)
    assert rejected.status_code == 422
    assert rejected.json()["detail"][0]["loc"] == ["body", "requests", 1, "duration_minutes"]
    dup = client.post("/v1/requests/bulk", json={"requests": [job("D1"), job("D1")]}, headers=h)
    assert dup.status_code == 422 and "D1" in dup.text
    with service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RequestRow)) == 1000 + len(JOBS)
        assert session.get(RequestRow, "C1") is None and session.get(RequestRow, "D1") is None


def test_a_crash_while_writing_a_plan_leaves_the_previous_plan_current_and_no_orphans(
    client: TestClient, loaded: Keys, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = plan_day(client, loaded)
    with service.sessions() as session:
        counts = [
            session.scalar(select(func.count()).select_from(t)) for t in (PlanVersionRow, RouteRow, VisitRow)
        ]

    def crash(point: str) -> None:
        if point == "after_pointers":
            raise RuntimeError("injected crash after the pointers moved")

    monkeypatch.setattr(store, "fault_point", crash)
    h = bearer(loaded.dispatcher)
    answer = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h)
    run = wait_run(client, loaded.dispatcher, answer.json()["run_id"])
    assert run["status"] == "failed" and "injected crash" in run["error"] and run["plan_version_id"] is None
    day = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    assert day["plan_version"] == first["plan_version_id"]
    with service.sessions() as session:
        assert [
            session.scalar(select(func.count()).select_from(t)) for t in (PlanVersionRow, RouteRow, VisitRow)
        ] == counts
    monkeypatch.undo()
    assert plan_day(client, loaded)["status"] == "succeeded"  # the lock was released


def test_a_second_replan_while_one_runs_gets_409(client: TestClient, loaded: Keys, service: Service) -> None:
    service.settings.__dict__["solve_seconds"] = 3.0  # long enough to overlap
    h = bearer(loaded.dispatcher)
    first = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h)
    second = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h)
    nightly = client.post("/v1/plans/nightly", headers=h)
    assert first.status_code == 202
    assert second.status_code == 409 and second.json()["run_id"] == first.json()["run_id"]
    assert nightly.status_code == 409
    assert wait_run(client, loaded.dispatcher, first.json()["run_id"])["status"] == "succeeded"
    assert client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h).status_code == 202


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**job("X1"), "location": {"lat": 91, "lon": 4.8}}, ["body", "location", "lat"]),  # off the globe
        ({**job("X1"), "duration_minutes": 0}, ["body", "duration_minutes"]),  # no work
        ({**job("X1"), "kind": "teleport"}, ["body", "kind"]),  # unknown kind
        ({**job("X1"), "skills": {"HVAC!": 2}}, ["body", "skills", "HVAC!", "[key]"]),  # malformed skill
        ({**job("X1"), "id": "a b"}, ["body", "id"]),  # space in an id
        ({k: v for k, v in job("X1").items() if k != "location"}, ["body"]),  # neither location nor address
        ({**job("X1"), "colour": "red"}, ["body", "colour"]),  # unknown field
    ],
)
def test_bad_request_bodies_get_422_naming_the_field(
    client: TestClient, loaded: Keys, body: dict[str, Any], loc: list[Any]
) -> None:
    answer = client.post("/v1/requests", json=body, headers=bearer(loaded.dispatcher))
    assert answer.status_code == 422, answer.text
    assert any(d["loc"][: len(loc)] == loc for d in answer.json()["detail"]), answer.json()


def test_technicians_and_shifts_can_be_changed(client: TestClient, loaded: Keys) -> None:
    h = bearer(loaded.dispatcher)
    t1 = dict(FLEET[0], name="Renamed")
    assert client.put("/v1/technicians/T1", json=t1, headers=h).json()["name"] == "Renamed"
    assert client.put("/v1/technicians/T2", json=t1, headers=h).status_code == 422  # id mismatch
    shifts = [
        {"date": DAY, "start": "09:00", "end": "12:00"},
        {"date": "2026-12-08", "start": "08:00", "end": "16:00"},
    ]
    got = client.put("/v1/technicians/T1/shifts", json=shifts, headers=h).json()
    assert [(s["date"], s["start"]) for s in got["shifts"]] == [(DAY, "09:00"), ("2026-12-08", "08:00")]
    bad = [{"date": DAY, "start": "12:00", "end": "09:00"}]
    assert client.put("/v1/technicians/T1/shifts", json=bad, headers=h).status_code == 422
    assert client.post("/v1/technicians", json=FLEET[0], headers=h).status_code == 409
    assert client.get("/v1/technicians/T9", headers=h).status_code == 404
    cancelled = client.post("/v1/requests/R6/cancel", headers=h).json()
    assert cancelled["status"] == "cancelled"
    run = plan_day(client, loaded)
    plan = client.get(f"/v1/plans/{run['plan_version_id']}", headers=h).json()
    assert "R6" not in {v["job_id"] for r in plan["routes"] for v in r["visits"]}
    assert "R6" not in {u["job_id"] for u in plan["unassigned"]}
