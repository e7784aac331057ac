"""The service tells the truth: statuses, plans and the clock agree after every change.

Each test would have failed on the service before issue "The service tells the truth"; every one
runs through HTTP on SQLite and on PostgreSQL (the `client` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from api import replan_job
from api.context import Service
from tests.api.conftest import Clock, Keys, bearer, plan_day, wait_run
from tests.conftest import DAY

PARIS = ZoneInfo("Europe/Paris")


def at(hhmm: str, day: str = DAY) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=PARIS)


def statuses_agree(client: TestClient, keys: Keys, day: str = DAY) -> dict[str, dict[str, Any]]:
    """Invariant 1: every request's status, technician and day agree with the plan technicians see."""
    h = bearer(keys.dispatcher)
    shown = client.get("/v1/plans/current", params={"date": day}, headers=h).json()
    placed = {v["job_id"]: r["technician_id"] for r in shown["routes"] for v in r["visits"]}
    requests = {r["id"]: r for r in client.get("/v1/requests", params={"limit": 1000}, headers=h).json()}
    for rid, req in requests.items():
        if req["status"] in ("done", "cancelled", "in_progress", "failed"):
            continue
        if rid in placed:
            expected = "dispatched" if shown["published"] else "planned"
            assert (req["status"], req["technician_id"], req["planned_date"]) == (
                expected,
                placed[rid],
                day,
            ), req
        else:
            assert req["status"] == "open" and req["reason"], req
    return requests


def publish(client: TestClient, keys: Keys, day: str = DAY) -> dict[str, Any]:
    answer = client.post(f"/v1/days/{day}/publish", headers=bearer(keys.dispatcher))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_daytime_replan_moves_nothing_unstarted_before_now(
    client: TestClient, loaded: Keys, clock: Clock
) -> None:
    """Published at 06:00; at 13:24 one visit is under way and the day is re-planned from now."""
    plan_day(client, loaded)
    publish(client, loaded)
    h = bearer(loaded.dispatcher)
    first = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    route = first["routes"][0]
    started = route["visits"][0]
    tkey = loaded.technician(route["technician_id"])
    assert (
        client.post(
            f"/v1/visits/{started['job_id']}/status", json={"status": "started"}, headers=bearer(tkey)
        ).status_code
        == 200
    )
    clock.at = at("13:24").astimezone(UTC)
    plan_day(client, loaded)
    proposal = client.get("/v1/plans/proposed", params={"date": DAY}, headers=h).json()
    publish(client, loaded)
    now = at("13:24")
    for r in proposal["routes"]:
        for v in r["visits"]:
            if v["job_id"] == started["job_id"]:
                assert v["start"] == started["start"]  # under way: its times stand
            else:
                assert datetime.fromisoformat(v["start"]) >= now, v
    statuses_agree(client, loaded)


def test_a_request_the_new_plan_leaves_out_is_open_with_its_reason(
    client: TestClient, loaded: Keys, clock: Clock
) -> None:
    """A window closed by the afternoon re-plan: open with WINDOW_PASSED, never still dispatched."""
    h = bearer(loaded.dispatcher)
    early = {
        "id": "EARLY",
        "kind": "repair",
        "location": {"lat": 45.76, "lon": 4.85},
        "duration_minutes": 30,
        "skills": {"hvac": 2},
        "windows": [{"start": f"{DAY}T08:00", "end": f"{DAY}T09:00"}],
    }
    assert client.post("/v1/requests", json=early, headers=h).status_code == 201
    plan_day(client, loaded)
    publish(client, loaded)
    assert client.get("/v1/requests/EARLY", headers=h).json()["status"] == "dispatched"
    # Nobody started it; the customer's promise could not be kept: open, with the reason.
    clock.at = at("13:24").astimezone(UTC)
    plan_day(client, loaded)
    publish(client, loaded)
    req = client.get("/v1/requests/EARLY", headers=h).json()
    assert req["status"] == "open" and req["reason"] in ("WINDOW_PASSED", "PROMISE_BROKEN"), req
    assert req["technician_id"] is None and req["planned_date"] is None
    statuses_agree(client, loaded)


def test_a_failed_visit_planned_again_is_a_new_visit(client: TestClient, loaded: Keys) -> None:
    plan_day(client, loaded)
    publish(client, loaded)
    h = bearer(loaded.dispatcher)
    route = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()["routes"][0]
    job = route["visits"][0]["job_id"]
    tkey = bearer(loaded.technician(route["technician_id"]))
    failed = client.post(
        f"/v1/visits/{job}/status", json={"status": "failed", "reason": "not at home"}, headers=tkey
    )
    assert failed.json()["status"] == "failed" and failed.json()["visit_status"] == "failed"
    plan_day(client, loaded)
    publish(client, loaded)
    req = client.get(f"/v1/requests/{job}", headers=h).json()
    assert req["status"] in ("dispatched", "open"), req
    assert req["visit_status"] is None  # never "dispatched" with visit_status "failed"
    statuses_agree(client, loaded)


def test_a_promise_follows_the_customer_not_the_technician(client: TestClient, loaded: Keys) -> None:
    """T2's shift is removed: its published visits go to T1 inside their promised windows, or back
    to the pool with a notice, never left 'dispatched' to T2."""
    h = bearer(loaded.dispatcher)
    plan_day(client, loaded)
    publish(client, loaded)
    before = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    t2 = [v["job_id"] for r in before["routes"] if r["technician_id"] == "T2" for v in r["visits"]]
    assert t2, "the fixture gives T2 work"
    promises = {j: client.get(f"/v1/requests/{j}", headers=h).json()["promise"] for j in t2}
    assert all(promises.values())
    assert client.delete(f"/v1/technicians/T2/shifts/{DAY}", headers=h).status_code == 200
    plan_day(client, loaded)
    publish(client, loaded)
    after = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    assert all(r["technician_id"] != "T2" for r in after["routes"])
    visits = {v["job_id"]: v for r in after["routes"] for v in r["visits"]}
    notices = {n["subject"] for n in client.get("/v1/notices", headers=h).json()}
    for jid in t2:
        req = client.get(f"/v1/requests/{jid}", headers=h).json()
        assert req["technician_id"] != "T2"
        if jid in visits:
            window = promises[jid]
            assert window["start"] <= visits[jid]["start"] <= window["end"]
        else:
            assert req["status"] == "open" and req["reason"] == "PROMISE_BROKEN" and jid in notices
    statuses_agree(client, loaded)


def test_a_replan_of_a_published_day_is_a_proposal_until_published(client: TestClient, loaded: Keys) -> None:
    h = bearer(loaded.dispatcher)
    first = plan_day(client, loaded)
    assert client.get("/v1/plans/proposed", params={"date": DAY}, headers=h).status_code == 404
    publish(client, loaded)
    route = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()["routes"][0]
    tkey = bearer(loaded.technician(route["technician_id"]))
    seen = client.get("/v1/me/route", params={"date": DAY}, headers=tkey).json()
    assert seen["plan_version"] == first["plan_version_id"]
    new = {
        "id": "LATE-CALL",
        "kind": "repair",
        "location": {"lat": 45.73, "lon": 4.86},
        "duration_minutes": 20,
    }
    assert client.post("/v1/requests", json=new, headers=h).status_code == 201
    second = plan_day(client, loaded)
    current = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()
    proposed = client.get("/v1/plans/proposed", params={"date": DAY}, headers=h).json()
    assert (
        current["plan_version"] == first["plan_version_id"]
        and current["proposal"] == second["plan_version_id"]
    )
    assert proposed["plan_version"] == second["plan_version_id"] and not proposed["published"]
    assert (
        client.get("/v1/me/route", params={"date": DAY}, headers=tkey).json()["plan_version"]
        == first["plan_version_id"]
    )
    assert (
        client.get("/v1/requests/LATE-CALL", headers=h).json()["status"] == "open"
    )  # not what technicians see yet
    statuses_agree(client, loaded)
    publish(client, loaded)
    assert (
        client.get("/v1/me/route", params={"date": DAY}, headers=tkey).json()["plan_version"]
        == second["plan_version_id"]
    )
    statuses_agree(client, loaded)


def test_a_plan_that_fails_the_validator_is_never_made_current(
    client: TestClient, loaded: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api import faulty

    h = bearer(loaded.dispatcher)
    first = plan_day(client, loaded)
    monkeypatch.setattr(replan_job, "SOLVER", faulty.overlapping)
    answer = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h)
    run = wait_run(client, loaded.dispatcher, answer.json()["run_id"])
    assert run["status"] == "failed" and "validator" in run["error"] and "TRAVEL" in run["error"], run
    assert (
        client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()["plan_version"]
        == first["plan_version_id"]
    )


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"start": "2026-12-06"}, ["body", "start"]),  # yesterday is over
        ({"start": DAY, "from_now": False}, ["body", "from_now"]),  # today has begun
    ],
)
def test_the_past_is_not_replanned(
    client: TestClient, loaded: Keys, clock: Clock, body: dict[str, Any], where: list[str]
) -> None:
    clock.at = at("09:00").astimezone(UTC)
    answer = client.post("/v1/plans", json=body, headers=bearer(loaded.dispatcher))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == where, answer.text


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("pinned", {"technician_id": "NOBODY", "date": DAY}, ["body", "pinned", "technician_id"]),
        ("preferred_technicians", ["T1", "NOBODY"], ["body", "preferred_technicians", 1]),
        ("excluded_technicians", ["NOBODY"], ["body", "excluded_technicians", 0]),
    ],
)
def test_the_api_rejects_unknown_technicians_as_the_cli_does(
    client: TestClient, loaded: Keys, field: str, value: Any, loc: list[Any]
) -> None:
    body = {
        "id": "X1",
        "kind": "repair",
        "location": {"lat": 45.7, "lon": 4.8},
        "duration_minutes": 30,
        field: value,
    }
    answer = client.post("/v1/requests", json=body, headers=bearer(loaded.dispatcher))
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == loc, answer.text


def test_a_body_that_is_not_json_is_400_and_a_chunked_giant_is_413(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    h = {**bearer(loaded.dispatcher), "content-type": "application/json"}
    assert client.post("/v1/requests", content=b"{not json", headers=h).status_code == 400

    def chunks() -> Any:
        for _ in range(service.settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    assert client.post("/v1/requests", content=chunks(), headers=h).status_code == 413


def test_calendar_events_keep_their_uid_and_raise_their_sequence(
    client: TestClient, loaded: Keys, clock: Clock
) -> None:
    h = bearer(loaded.dispatcher)
    for tid in ("T1", "T2"):
        t = client.get(f"/v1/technicians/{tid}", headers=h).json()
        t = {k: v for k, v in t.items() if k not in ("active", "replan_run_id")}
        t["lunch"] = {"earliest": "12:00", "latest": "14:00", "minutes": 30}
        assert client.put(f"/v1/technicians/{tid}", json=t, headers=h).status_code == 200
    plan_day(client, loaded)
    publish(client, loaded)
    route = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()["routes"][0]
    tid = route["technician_id"]
    feed = client.post(f"/v1/technicians/{tid}/calendar-feed", headers=h).json()
    assert "fp_" not in feed["url"]  # never an API key in a URL
    clock.at = at("06:30").astimezone(UTC)
    first = Calendar.from_ical(client.get(feed["url"]).content)
    assert first.walk("VTIMEZONE") and first.walk("VTIMEZONE")[0]["TZID"] == "Europe/Paris"
    events = {str(e["UID"]): e for e in first.walk("VEVENT")}
    assert any(uid.startswith("break-") for uid in events)  # lunch is an event of its own
    visit = next(e for uid, e in events.items() if uid.startswith("visit-"))
    assert visit.decoded("DTSTAMP") == at("06:30").astimezone(UTC)
    # Pin the visit to the other end of the day: a re-plan moves it, the event is updated in place.
    job_id = str(visit["UID"]).removeprefix("visit-").removesuffix("@fieldplan")
    client.delete(f"/v1/requests/{job_id}/promise", headers=h)
    for _ in range(3):
        plan_day(client, loaded)
        publish(client, loaded)
    again = {str(e["UID"]): e for e in Calendar.from_ical(client.get(feed["url"]).content).walk("VEVENT")}
    assert set(again) == set(events) or job_id not in str(set(again))
    moved = again.get(str(visit["UID"]))
    if moved is not None and moved.decoded("DTSTART") != visit.decoded("DTSTART"):
        assert int(moved["SEQUENCE"]) > int(visit["SEQUENCE"])
    elif moved is not None:
        assert int(moved["SEQUENCE"]) == int(visit["SEQUENCE"])
    assert client.delete(f"/v1/technicians/{tid}/calendar-feed", headers=h).status_code == 204
    assert client.get(feed["url"]).status_code == 404


def test_deactivating_a_technician_stops_their_keys_and_replans(client: TestClient, loaded: Keys) -> None:
    h = bearer(loaded.dispatcher)
    plan_day(client, loaded)
    publish(client, loaded)
    tkey = bearer(loaded.technician("T2"))
    assert client.get("/v1/me/route", params={"date": DAY}, headers=tkey).status_code == 200
    answer = client.patch("/v1/technicians/T2", json={"active": False}, headers=h).json()
    assert answer["active"] is False and answer["replan_run_id"]
    assert client.get("/v1/me/route", params={"date": DAY}, headers=tkey).status_code == 401
    wait_run(client, loaded.dispatcher, answer["replan_run_id"])
    proposal = client.get("/v1/plans/proposed", params={"date": DAY}, headers=h).json()
    assert all(r["technician_id"] != "T2" for r in proposal["routes"])
    t2 = client.get("/v1/technicians/T2", headers=h).json()
    assert (
        client.put(
            "/v1/technicians/T2",
            json={k: v for k, v in t2.items() if k not in ("active", "replan_run_id")},
            headers=h,
        ).json()["active"]
        is False
    )
    assert client.patch("/v1/technicians/T2", json={"active": True}, headers=h).json()["active"] is True
    assert client.get("/v1/me/route", params={"date": DAY}, headers=tkey).status_code == 200
    shift = {"date": "2026-12-08", "start": "08:00", "end": "12:00"}
    assert client.post("/v1/technicians/T2/shifts", json=shift, headers=h).status_code == 201
    assert client.post("/v1/technicians/T2/shifts", json=shift, headers=h).status_code == 409
    actions = [a["action"] for a in client.get("/v1/audit", params={"subject": "T2"}, headers=h).json()]
    assert {"technician.deactivated", "technician.activated", "shift.added"} <= set(actions)


def test_a_route_pull_answers_304_until_something_changes(client: TestClient, loaded: Keys) -> None:
    h = bearer(loaded.dispatcher)
    plan_day(client, loaded)
    publish(client, loaded)
    route = client.get("/v1/plans/current", params={"date": DAY}, headers=h).json()["routes"][0]
    tkey = bearer(loaded.technician(route["technician_id"]))
    first = client.get("/v1/me/route", params={"date": DAY}, headers=tkey)
    etag = first.headers["etag"]
    assert (
        client.get("/v1/me/route", params={"date": DAY}, headers={**tkey, "If-None-Match": etag}).status_code
        == 304
    )
    job = route["visits"][0]["job_id"]
    client.post(f"/v1/visits/{job}/status", json={"status": "en_route"}, headers=tkey)
    again = client.get("/v1/me/route", params={"date": DAY}, headers={**tkey, "If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] != etag
    assert next(s for s in again.json()["stops"] if s["job_id"] == job)["status"] == "in_progress"


def two_published_routes(
    client: TestClient, keys: Keys
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """The day planned and published with a route for each technician, and each one's key header."""
    plan_day(client, keys)
    publish(client, keys)
    routes = client.get("/v1/plans/current", params={"date": DAY}, headers=bearer(keys.dispatcher)).json()
    assert len(routes["routes"]) == 2, "both technicians have visits"
    mine, theirs = (bearer(keys.technician(r["technician_id"])) for r in routes["routes"])
    return routes["routes"], mine, theirs


def test_a_route_changes_its_etag_only_for_its_own_technician(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    """Another technician's report leaves my ETag as it is; the body rendered at publication is the
    body built on demand."""
    from api.routebody import my_route
    from api.tables import RouteBodyRow

    routes, mine, theirs = two_published_routes(client, loaded)
    first = client.get("/v1/me/route", params={"date": DAY}, headers=mine)
    with service.sessions() as session:
        stored = session.get(
            RouteBodyRow,
            (first.json()["plan_version"], datetime.fromisoformat(DAY).date(), routes[0]["technician_id"]),
        )
        assert stored is not None
        built = my_route(session, service.tz, routes[0]["technician_id"], datetime.fromisoformat(DAY).date())
        assert stored.body == built.model_dump_json(by_alias=True) == first.text
    other_job = routes[1]["visits"][0]["job_id"]
    assert (
        client.post(f"/v1/visits/{other_job}/status", json={"status": "en_route"}, headers=theirs).status_code
        == 200
    )
    same = client.get(
        "/v1/me/route", params={"date": DAY}, headers={**mine, "If-None-Match": first.headers["etag"]}
    )
    assert same.status_code == 304
    own_job = routes[0]["visits"][0]["job_id"]
    assert (
        client.post(f"/v1/visits/{own_job}/status", json={"status": "en_route"}, headers=mine).status_code
        == 200
    )
    changed = client.get(
        "/v1/me/route", params={"date": DAY}, headers={**mine, "If-None-Match": first.headers["etag"]}
    )
    assert changed.status_code == 200 and changed.json()["revision"] == first.json()["revision"] + 1


def test_a_route_pull_is_one_statement_once_its_day_is_read(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    """Every phone pulls every few seconds: a pull makes one statement (my key, my revision and the
    day's published version together), and the first pull of a published day in a worker reads all
    its routes' bodies in one more, so the next technician's first pull needs none."""
    from sqlalchemy import event

    h = bearer(loaded.dispatcher)
    routes, mine, theirs = two_published_routes(client, loaded)
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_keys" in statement or "route_bodies" in statement:
            seen.append("key" if "api_keys" in statement else "bodies")

    event.listen(service.engine, "before_cursor_execute", note)
    try:
        first = client.get("/v1/me/route", params={"date": DAY}, headers=mine)
        assert first.status_code == 200 and seen == ["key", "bodies"]
        seen.clear()
        other = client.get("/v1/me/route", params={"date": DAY}, headers=theirs)
        assert other.status_code == 200 and seen == ["key"]
        assert other.json()["technician_id"] == routes[1]["technician_id"]
        seen.clear()
        again = client.get(
            "/v1/me/route", params={"date": DAY}, headers={**mine, "If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304 and seen == ["key"]
    finally:
        event.remove(service.engine, "before_cursor_execute", note)
    assert client.get("/v1/me/route", params={"date": DAY}).status_code == 401
    assert client.get("/v1/me/route", params={"date": DAY}, headers=bearer("fp_nope")).status_code == 401
    assert client.get("/v1/me/route", params={"date": DAY}, headers=h).status_code == 403
    assert client.get("/v1/me/route", params={"date": "2027-01-04"}, headers=mine).status_code == 404


def test_docs_work_without_a_network(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "static-offline-docs/swagger-ui-bundle.js" in page
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert "redoc.standalone.js" in client.get("/redoc").text
