"""The day as it happens through HTTP, on SQLite and PostgreSQL: events, re-optimisation, notices."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api import outbox
from api.app import create_app
from api.context import Service
from tests.api.conftest import Clock, Keys, bearer, plan_day, settings_for
from tests.conftest import DAY, job, tech

TZ = ZoneInfo("Europe/Paris")
FLEET = [
    tech("T1", skills={"hvac": 3}),
    tech("T2", lat=45.70, lon=4.90, skills={"hvac": 3}),
    tech("T3", lat=45.74, lon=4.86, skills={"hvac": 3}),
]
JOBS = [
    job(f"R{i}", lat=45.69 + (i % 5) / 60, lon=4.80 + (i // 5) / 25, duration_minutes=50, skills={"hvac": 1})
    for i in range(12)
]


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{clock}").replace(tzinfo=TZ)


@pytest.fixture
def day(client: TestClient, keys: Keys, clock: Clock) -> Keys:
    """Three technicians, twelve requests, the day planned and published at 06:00."""
    for t in FLEET:
        assert client.post("/v1/technicians", json=t, headers=bearer(keys.dispatcher)).status_code == 201
    for j in JOBS:
        body = {**j, "contact": {"name": f"Customer {j['id']}", "phone": "+33 4 00 00 00 00"}}
        assert client.post("/v1/requests", json=body, headers=bearer(keys.dispatcher)).status_code == 201
    plan_day(client, keys)
    published = client.post(f"/v1/days/{DAY}/publish", headers=bearer(keys.dispatcher))
    assert published.status_code == 200, published.text
    return keys


def route(client: TestClient, keys: Keys, tid: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/me/route?date={DAY}", headers=bearer(keys.technician(tid)))
    assert answer.status_code == 200, answer.text
    return answer.json()["stops"]  # type: ignore[no-any-return]


def report(client: TestClient, keys: Keys, tid: str, job_id: str, status: str, **extra: Any) -> None:
    answer = client.post(
        f"/v1/visits/{job_id}/status", json={"status": status, **extra}, headers=bearer(keys.technician(tid))
    )
    assert answer.status_code == 200, answer.text


def follow_plan(client: TestClient, keys: Keys, clock: Clock, until: datetime) -> None:
    """Every technician reports what the plan says they did by `until` (the clock moves along)."""
    events: list[tuple[datetime, str, str, str]] = []
    for t in FLEET:
        for stop in route(client, keys, t["id"]):
            start, end = datetime.fromisoformat(stop["start"]), datetime.fromisoformat(stop["end"])
            events.append((start, t["id"], stop["job_id"], "started"))
            events.append((end, t["id"], stop["job_id"], "completed"))
    for when, tid, job_id, status in sorted(events):
        if when > until:
            break
        clock.at = when
        report(client, keys, tid, job_id, status)
    clock.at = until


def requests_of(client: TestClient, keys: Keys) -> dict[str, dict[str, Any]]:
    rows = client.get("/v1/requests?limit=500", headers=bearer(keys.dispatcher)).json()
    return {r["id"]: r for r in rows}


def current(client: TestClient, keys: Keys) -> dict[str, Any]:
    answer = client.get(f"/v1/plans/current?date={DAY}", headers=bearer(keys.dispatcher))
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def test_an_ill_technician_and_an_emergency_are_replanned_and_everyone_is_told(
    client: TestClient, day: Keys, clock: Clock
) -> None:
    keys = day
    follow_plan(client, keys, clock, at("10:00"))
    ill = max(FLEET, key=lambda t: len(route(client, keys, t["id"])))["id"]
    before = {s["job_id"]: s for s in route(client, keys, ill)}
    ev = client.post(
        f"/v1/days/{DAY}/events",
        json={"type": "technician_unavailable", "technician_id": ill, "from": at("10:00").isoformat()},
        headers=bearer(keys.dispatcher),
    )
    assert ev.status_code == 201, ev.text
    assert ev.json()["created_by"] and ev.json()["type"] == "technician_unavailable"
    em = client.post(
        f"/v1/days/{DAY}/events",
        json={
            "type": "emergency",
            "request": {
                **job("EM1", lat=45.72, lon=4.85, duration_minutes=45, skills={"hvac": 2}),
                "contact": {"name": "Hospital", "email": "facilities@example.org"},
            },
        },
        headers=bearer(keys.dispatcher),
    )
    assert em.status_code == 201, em.text
    assert em.json()["job_id"] == "EM1"
    request = client.get("/v1/requests/EM1", headers=bearer(keys.dispatcher)).json()
    assert request["job"]["emergency"] is True and request["job"]["priority"] == 1
    assert datetime.fromisoformat(request["job"]["due"]) == at("14:00")  # the default SLA: 4 hours

    answer = client.post(f"/v1/days/{DAY}/reoptimise", json={}, headers=bearer(keys.dispatcher))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    plan = current(client, keys)
    assert plan["plan_version"] == body["plan_version"] and plan["published"]
    where = {v["job_id"]: (r["technician_id"], v) for r in plan["routes"] for v in r["visits"]}
    # The emergency is reached in time by someone who is not ill.
    assert where["EM1"][0] != ill
    assert datetime.fromisoformat(where["EM1"][1]["end"]) <= at("14:00")
    # Nothing of the ill technician's after 10:00; what they had done stays on their route.
    for job_id, (tid, visit) in where.items():
        if tid == ill:
            assert datetime.fromisoformat(visit["start"]) < at("10:00"), job_id
    done = [j for j, s in before.items() if datetime.fromisoformat(s["end"]) <= at("10:00")]
    assert all(where[j][0] == ill for j in done)
    # The diff and the notices say it; the changed technicians' routes show it.
    changed = {d["technician_id"] for d in body["diff"]}
    assert ill in changed and where["EM1"][0] in changed
    told = {(n["audience"], n["kind"], n["technician_id"] or n["job_id"]) for n in body["notices"]}
    assert ("technician", "route_changed", where["EM1"][0]) in told
    assert ("customer", "visit_added", "EM1") in told
    assert "EM1" in [s["job_id"] for s in route(client, keys, where["EM1"][0])]
    notices = client.get("/v1/notices?audience=customer", headers=bearer(keys.dispatcher)).json()
    em_notice = next(n for n in notices if n["job_id"] == "EM1")
    assert em_notice["recipient"] == {"name": "Hospital", "email": "facilities@example.org"}
    assert em_notice["delivery"] == "pending" and em_notice["plan_version_id"] == body["plan_version"]
    # Statuses agree with the plan: placed -> dispatched there; returned -> open with the reason.
    reqs = requests_of(client, keys)
    for job_id, (tid, _) in where.items():
        assert reqs[job_id]["technician_id"] == tid
        assert reqs[job_id]["status"] in ("dispatched", "in_progress", "done"), (job_id, reqs[job_id])
    for u in body["returned"]:
        assert reqs[u["job_id"]]["status"] == "open"
        assert reqs[u["job_id"]]["reason"] == u["reason"]
        assert reqs[u["job_id"]]["job"]["priority"] is not None, body[
            "returned"
        ]  # raised for the nightly re-plan
    # The budget: two changes the re-optimisation chose per technician, one more to keep a promise;
    # only the technician who takes the emergency may be asked for more (when nobody else reaches it).
    for d in body["diff"]:
        if d["technician_id"] not in (ill, where["EM1"][0]):
            assert d["chosen"] <= 2 + 1, d


def test_without_reports_the_plan_is_taken_as_kept_and_nothing_moves(
    client: TestClient, day: Keys, clock: Clock
) -> None:
    """At 11:00 nobody has reported anything: the service takes the published plan as kept up to now
    (no report is not "still at home"), so a re-optimisation with nothing new changes nothing."""
    keys = day
    clock.at = at("11:00")
    before = current(client, keys)
    answer = client.post(f"/v1/days/{DAY}/reoptimise", headers=bearer(keys.dispatcher))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["diff"] == [] and body["returned"] == [] and body["notices"] == []
    after = current(client, keys)
    starts = {v["job_id"]: v["start"] for r in before["routes"] for v in r["visits"]}
    now_starts = {v["job_id"]: v["start"] for r in after["routes"] for v in r["visits"]}
    assert now_starts.keys() == starts.keys()
    for job_id, start in now_starts.items():  # the rest of a day is planned in whole minutes
        moved = datetime.fromisoformat(start) - datetime.fromisoformat(starts[job_id])
        assert abs(moved.total_seconds()) <= 60, (job_id, moved)
    under_way = [j for js in body["frozen"].values() for j in js]
    assert under_way and all(starts[j] <= at("11:00").isoformat() for j in under_way)


def test_a_started_visit_that_overruns_keeps_its_place_and_pushes_the_rest(
    client: TestClient, day: Keys, clock: Clock
) -> None:
    keys = day
    follow_plan(client, keys, clock, at("09:00"))
    tid, stop = next(
        (t["id"], s)
        for t in FLEET
        for s in route(client, keys, t["id"])
        if datetime.fromisoformat(s["start"]) >= at("09:00") and s["status"] == "dispatched"
    )
    clock.at = datetime.fromisoformat(stop["start"])
    report(client, keys, tid, stop["job_id"], "started")
    clock.at += timedelta(minutes=20)
    late = clock.at + timedelta(hours=2)
    overrun = client.post(
        f"/v1/days/{DAY}/events",
        json={"type": "visit_overrun", "job_id": stop["job_id"], "expected_end": late.isoformat()},
        headers=bearer(keys.dispatcher),
    )
    assert overrun.status_code == 201, overrun.text
    answer = client.post(f"/v1/days/{DAY}/reoptimise", headers=bearer(keys.dispatcher))
    assert answer.status_code == 200, answer.text
    assert stop["job_id"] in answer.json()["frozen"][tid]
    mine = route(client, keys, tid)
    k = [s["job_id"] for s in mine].index(stop["job_id"])
    assert datetime.fromisoformat(mine[k]["start"]) == datetime.fromisoformat(stop["start"])
    assert datetime.fromisoformat(mine[k]["end"]) == late
    assert all(datetime.fromisoformat(s["start"]) >= late for s in mine[k + 1 :])


def test_events_are_checked_and_only_dispatchers_may_change_the_day(
    client: TestClient, day: Keys, clock: Clock
) -> None:
    keys = day
    clock.at = at("10:00")
    d = bearer(keys.dispatcher)
    bad = [
        (
            {"type": "technician_unavailable", "technician_id": "NOBODY", "from": at("10:00").isoformat()},
            "technician_id",
        ),
        (
            {"type": "technician_unavailable", "technician_id": "T1", "from": "2026-12-09T10:00:00+01:00"},
            "from",
        ),
        ({"type": "technician_delay", "technician_id": "T1", "minutes": -5}, "minutes"),
        ({"type": "visit_overrun", "job_id": "NOPE", "expected_end": at("12:00").isoformat()}, "job_id"),
        ({"type": "lunch_too_long"}, "type"),
    ]
    for body, field in bad:
        answer = client.post(f"/v1/days/{DAY}/events", json=body, headers=d)
        assert answer.status_code == 422, (body, answer.text)
        assert field in json.dumps(answer.json()), answer.text
    tomorrow = client.post("/v1/days/2026-12-08/reoptimise", headers=d)
    assert tomorrow.status_code == 422 and "day" in tomorrow.text
    tech_key = bearer(keys.technician("T1"))
    assert client.post(f"/v1/days/{DAY}/reoptimise", headers=tech_key).status_code == 403
    ev = {"type": "technician_delay", "technician_id": "T1", "minutes": 30}
    assert client.post(f"/v1/days/{DAY}/events", json=ev, headers=tech_key).status_code == 403
    assert client.post(f"/v1/days/{DAY}/events", json=ev, headers=bearer(keys.booking())).status_code == 403
    assert client.post(f"/v1/days/{DAY}/events", json=ev, headers=d).status_code == 201
    listed = client.get(f"/v1/days/{DAY}/events", headers=d).json()
    assert [e["type"] for e in listed] == ["technician_delay"]
    # A technician reports a position; not one from the future.
    pos = client.post("/v1/me/position", json={"lat": 45.7, "lon": 4.8}, headers=tech_key)
    assert pos.status_code == 201 and pos.json()["technician_id"] == "T1"
    future = {"lat": 45.7, "lon": 4.8, "at": at("11:00").isoformat()}
    answer = client.post("/v1/me/position", json=future, headers=tech_key)
    assert answer.status_code == 422 and "at" in answer.text
    assert client.post("/v1/me/position", json={"lat": 45.7, "lon": 4.8}, headers=d).status_code == 403


def test_a_delay_moves_the_rest_of_the_day(client: TestClient, day: Keys, clock: Clock) -> None:
    keys = day
    follow_plan(client, keys, clock, at("10:00"))
    tid = max(FLEET, key=lambda t: sum(s["status"] == "dispatched" for s in route(client, keys, t["id"])))[
        "id"
    ]
    assert [s for s in route(client, keys, tid) if s["status"] == "dispatched"]
    d = bearer(keys.dispatcher)
    ev = {"type": "technician_delay", "technician_id": tid, "minutes": 90}
    assert client.post(f"/v1/days/{DAY}/events", json=ev, headers=d).status_code == 201
    answer = client.post(
        f"/v1/days/{DAY}/reoptimise", json={"max_changed_visits_per_technician": 10}, headers=d
    )
    assert answer.status_code == 200, answer.text
    mine = [s for s in route(client, keys, tid) if s["status"] == "dispatched"]
    assert all(datetime.fromisoformat(s["start"]) >= at("11:30") for s in mine)


def test_a_reported_position_is_where_the_rest_of_the_day_starts(
    client: TestClient, day: Keys, clock: Clock
) -> None:
    """Before the shift, T2 reports being 30 km north of home: the day starts there, later."""
    keys = day
    first = route(client, keys, "T2")[0]
    clock.at = at("07:50")
    far = {"lat": 46.0, "lon": 4.90}
    assert client.post("/v1/me/position", json=far, headers=bearer(keys.technician("T2"))).status_code == 201
    d = bearer(keys.dispatcher)
    answer = client.post(
        f"/v1/days/{DAY}/reoptimise", json={"max_changed_visits_per_technician": 20}, headers=d
    )
    assert answer.status_code == 200, answer.text
    stops = route(client, keys, "T2")
    if stops:  # the first visit (or its replacement) is reached from there: about 45 minutes
        assert datetime.fromisoformat(stops[0]["start"]) >= at("08:30")
        assert datetime.fromisoformat(stops[0]["start"]) > datetime.fromisoformat(first["start"])


@pytest.mark.parametrize("broken", ["overlapping_day", "explode_day"])
def test_a_plan_that_fails_the_validator_or_a_solver_that_dies_stores_nothing(
    client: TestClient, day: Keys, clock: Clock, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    from api import intraday
    from tests.api import faulty

    keys = day
    clock.at = at("10:00")
    before = current(client, keys)
    statuses = {k: (r["status"], r["technician_id"]) for k, r in requests_of(client, keys).items()}
    monkeypatch.setattr(intraday, "SOLVER", getattr(faulty, broken))
    d = bearer(keys.dispatcher)
    ev = {"type": "technician_delay", "technician_id": "T1", "minutes": 60}
    assert client.post(f"/v1/days/{DAY}/events", json=ev, headers=d).status_code == 201
    answer = client.post(f"/v1/days/{DAY}/reoptimise", headers=d)
    assert answer.status_code == 503, answer.text
    assert "unchanged" in answer.json()["detail"]
    assert current(client, keys)["plan_version"] == before["plan_version"]
    assert {k: (r["status"], r["technician_id"]) for k, r in requests_of(client, keys).items()} == statuses
    assert client.get("/v1/notices?audience=technician", headers=d).json() == []


# --- notices reach someone -------------------------------------------------------------------------


class Receiver:
    """A webhook that refuses its first call (HTTP 500) and records the rest."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls += 1
                if outer.calls == 1:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_notices_are_delivered_signed_once_each_and_retried(
    db_url: str, clock: Clock, receiver: Receiver
) -> None:
    settings = settings_for(
        db_url, webhook_urls=[receiver.url], webhook_secret="s3cret", webhook_retry_seconds=5
    )
    service = Service.open(settings, clock=clock)
    try:
        with TestClient(create_app(service)) as client:
            keys = Keys(service)
            d = bearer(keys.dispatcher)
            for t in FLEET:
                client.post("/v1/technicians", json=t, headers=d)
            for j in JOBS[:6]:
                client.post("/v1/requests", json={**j, "contact": {"phone": "+33 4 11 22 33 44"}}, headers=d)
            plan_day(client, keys)
            client.post(f"/v1/days/{DAY}/publish", headers=d)
            clock.at = at("07:30")  # before anyone has left: the ill technician's whole day moves
            day_plan = client.get(f"/v1/plans/current?date={DAY}", headers=d).json()
            ill = max(day_plan["routes"], key=lambda r: len(r["visits"]))["technician_id"]
            ev = {"type": "technician_unavailable", "technician_id": ill, "from": at("07:30").isoformat()}
            client.post(f"/v1/days/{DAY}/events", json=ev, headers=d)
            answer = client.post(f"/v1/days/{DAY}/reoptimise", headers=d)
            assert answer.status_code == 200, answer.text
            ids = [n["id"] for n in answer.json()["notices"]]
            assert ids
            # The app's own delivery thread may already be at work: wait for it, then drive passes.
            for _ in range(40):
                outbox.deliver_due(service)
                listed = client.get("/v1/notices?limit=1000", headers=d).json()
                if all(n["delivery"] == "delivered" for n in listed):
                    break
                clock.at += timedelta(seconds=11)
            listed = client.get("/v1/notices?limit=1000", headers=d).json()
            assert all(n["delivery"] == "delivered" for n in listed), listed
            first = min(listed, key=lambda n: n["id"])
            assert first["attempts"] >= 1
            assert any(n["attempts"] == 2 and n["last_error"] is None for n in listed)  # the refused one
            got_ids = [int(h["X-Fieldplan-Notice-Id"]) for h, _ in receiver.got]
            assert sorted(got_ids) == sorted(n["id"] for n in listed)  # each once
            for headers, body in receiver.got:
                expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
                assert headers["X-Fieldplan-Signature"] == expected
            customer = [json.loads(b) for _, b in receiver.got if json.loads(b)["audience"] == "customer"]
            assert customer and all(
                c["recipient"] == {"phone": "+33 4 11 22 33 44"} for c in customer if c["job_id"] != "EM1"
            )
            # Nothing is sent twice.
            clock.at += timedelta(hours=1)
            before = receiver.calls
            assert outbox.deliver_due(service) == 0
            assert receiver.calls == before
    finally:
        service.close()
