"""The board's endpoints through HTTP, on SQLite and PostgreSQL: a day in one answer, per-day KPIs
and waiting list, the evaluation before a drop, pins (placed as a proposal on a published day,
kept by the re-plan), the diff, the page's security headers."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.context import Service
from tests.api.conftest import Keys, bearer, plan_day
from tests.conftest import DAY, job, tech


def board(client: TestClient, keys: Keys, **params: str) -> dict[str, Any]:
    answer = client.get(f"/v1/days/{DAY}/board", params=params, headers=bearer(keys.dispatcher))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def evaluate(client: TestClient, keys: Keys, version: int, **body: Any) -> dict[str, Any]:
    answer = client.post(
        f"/v1/plans/{version}/evaluate", json={"date": DAY, **body}, headers=bearer(keys.dispatcher)
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_the_page_loads_without_a_key_and_allows_only_the_service(client: TestClient) -> None:
    page = client.get("/board")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    assert "http" not in csp  # no other host, unless a tile server is configured
    script = client.get("/board/static/board.js")
    assert script.status_code == 200 and "content-security-policy" in script.headers
    assert client.get("/board/static/vendor/leaflet/LICENSE").status_code == 200
    # Every script and style the page loads is the service's own.
    for ref in (
        "/board/static/board.js",
        "/board/static/vendor/leaflet/leaflet.js",
        "/board/static/board.css",
    ):
        assert ref in page.text
    assert "//" not in page.text.replace("http://www.w3.org", "").split("<body>")[0].replace('="/', "")


def test_who_am_i_names_the_role(client: TestClient, loaded: Keys) -> None:
    assert client.get("/v1/me", headers=bearer(loaded.dispatcher)).json() == {
        "role": "dispatcher",
        "technician_id": None,
    }
    assert client.get("/v1/me", headers=bearer(loaded.technician("T1"))).json() == {
        "role": "technician",
        "technician_id": "T1",
    }
    assert client.get("/v1/me").status_code == 401


def test_a_day_in_one_answer(client: TestClient, loaded: Keys) -> None:
    empty = board(client, loaded)
    assert empty["plan_version"] is None and [t["id"] for t in empty["technicians"]] == ["T1", "T2"]
    plan_day(client, loaded)
    day = board(client, loaded)
    assert day["plan_version"] is not None and not day["published"]
    planned = {v["job_id"] for r in day["routes"] for v in r["visits"]}
    waiting = {w["job_id"] for w in day["waiting"]}
    assert planned | waiting == {"R1", "R2", "R3", "R4", "R5", "R6"} and not planned & waiting
    for job_id in planned | waiting:
        assert day["jobs"][job_id]["location"]
    assert day["kpis"]["jobs_planned"] == len(planned)
    # Per-day KPIs and waiting list, the same as the board's.
    kpis = client.get(f"/v1/days/{DAY}/kpis", headers=bearer(loaded.dispatcher)).json()
    assert kpis == day["kpis"]
    left = client.get(f"/v1/days/{DAY}/unassigned", headers=bearer(loaded.dispatcher)).json()
    assert left == day["waiting"]
    # A request made after the plan waits too, as not planned yet.
    new = job("R9", lat=45.765, lon=4.845, duration_minutes=30)
    assert client.post("/v1/requests", json=new, headers=bearer(loaded.dispatcher)).status_code == 201
    later = board(client, loaded)
    assert {"job_id": "R9", "reason": "NOT_PLANNED_YET", "detail": "not planned yet"} in later["waiting"]
    # Dispatchers only.
    assert client.get(f"/v1/days/{DAY}/board", headers=bearer(loaded.technician("T1"))).status_code == 403
    assert client.get(f"/v1/days/{DAY}/kpis", headers=bearer(loaded.booking())).status_code == 403


def test_the_evaluation_before_a_drop(client: TestClient, loaded: Keys) -> None:
    extra = [
        tech("T3", skills={"plumbing": 1}, shifts=[]),
    ]
    for t in extra:
        assert client.post("/v1/technicians", json=t, headers=bearer(loaded.dispatcher)).status_code == 201
    new = job("R9", lat=45.765, lon=4.845, duration_minutes=30, skills={"hvac": 3})
    assert client.post("/v1/requests", json=new, headers=bearer(loaded.dispatcher)).status_code == 201
    plan_day(client, loaded)
    day = board(client, loaded)
    version = day["plan_version"]
    # A qualified technician, best time: feasible, with its price and the visits it shifts.
    best = evaluate(client, loaded, version, job_id="R9", technician_id="T1")
    if best["feasible"]:
        assert best["start"] and best["cost"]["added_travel_minutes"] >= 0
        assert any(v["job_id"] == "R9" for v in best["route"]["visits"])
        for shifted in best["shifted"]:
            assert shifted["minutes"] != 0
    else:
        assert best["reason"] == "capacity"
    # Why not: skill, no shift, a time outside the shift.
    no_skill = evaluate(client, loaded, version, job_id="R9", technician_id="T2")
    assert (no_skill["feasible"], no_skill["reason"]) == (False, "skill") and "hvac>=3" in no_skill["detail"]
    off = evaluate(client, loaded, version, job_id="R2", technician_id="T3")
    assert (off["feasible"], off["reason"]) in {(False, "skill"), (False, "no_shift")}
    night = evaluate(client, loaded, version, job_id="R2", technician_id="T1", start=f"{DAY}T20:00:00+01:00")
    assert not night["feasible"] and night["reason"] in {"shift", "overtime_limit"}
    # Bad questions: 422 naming the field, 404 for a version that does not exist.
    bad = client.post(
        f"/v1/plans/{version}/evaluate",
        json={"job_id": "nope", "technician_id": "T1", "date": DAY},
        headers=bearer(loaded.dispatcher),
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "job_id"]
    gone = client.post(
        "/v1/plans/999/evaluate",
        json={"job_id": "R2", "technician_id": "T1", "date": DAY},
        headers=bearer(loaded.dispatcher),
    )
    assert gone.status_code == 404
    wrong_day = client.post(
        f"/v1/plans/{version}/evaluate",
        json={"job_id": "R2", "technician_id": "T1", "date": "2031-01-01"},
        headers=bearer(loaded.dispatcher),
    )
    assert wrong_day.status_code == 422 and wrong_day.json()["detail"][0]["loc"] == ["body", "date"]


def _feasible_drop(client: TestClient, keys: Keys, version: int, job_id: str) -> tuple[str, dict[str, Any]]:
    for tid in ("T1", "T2"):
        answer = evaluate(client, keys, version, job_id=job_id, technician_id=tid)
        if answer["feasible"]:
            return tid, answer
    raise AssertionError(f"{job_id} fits nowhere")


def test_a_pin_is_placed_as_a_proposal_kept_by_the_replan_and_shown_in_the_diff(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    plan_day(client, loaded)
    first = board(client, loaded)
    publish = client.post(f"/v1/days/{DAY}/publish", headers=bearer(loaded.dispatcher))
    assert publish.status_code == 200
    new = job("R9", lat=45.765, lon=4.845, duration_minutes=30, skills={})
    assert client.post("/v1/requests", json=new, headers=bearer(loaded.dispatcher)).status_code == 201
    tid, answer = _feasible_drop(client, loaded, first["plan_version"], "R9")
    start = answer["start"]
    pinned = client.put(
        "/v1/requests/R9/pin",
        json={"technician_id": tid, "date": DAY, "start": start},
        headers=bearer(loaded.dispatcher),
    )
    assert pinned.status_code == 200, pinned.text
    body = pinned.json()
    assert body["request"]["job"]["pinned"]["technician_id"] == tid
    assert body["evaluation"]["feasible"] and body["plan_version"] > first["plan_version"]
    # On a published day the drop is a proposal: technicians still see the published version.
    shown = board(client, loaded)
    assert shown["plan_version"] == body["plan_version"] and shown["proposal"] == body["plan_version"]
    assert not shown["published"]
    assert shown["kpis"]["churn"] == 0.0  # nothing technicians were told moves: one visit is added
    placed = next(r for r in shown["routes"] if r["technician_id"] == tid)
    visit = next(v for v in placed["visits"] if v["job_id"] == "R9")
    assert visit["start"] == start
    published = board(client, loaded, version="published")
    assert all(v["job_id"] != "R9" for r in published["routes"] for v in r["visits"])
    diff = client.get(f"/v1/days/{DAY}/diff", headers=bearer(loaded.dispatcher)).json()
    assert {"job_id": "R9", "change": "new"}.items() <= next(
        c for c in diff["changes"] if c["job_id"] == "R9"
    ).items()
    assert diff["counts"]["new"] == 1
    # Re-optimise around the pin: the re-plan keeps it with that technician, that day, that start.
    plan_day(client, loaded)
    again = board(client, loaded)
    kept = [
        (r["technician_id"], v["start"]) for r in again["routes"] for v in r["visits"] if v["job_id"] == "R9"
    ]
    assert kept == [(tid, start)]
    # Publish: the technician's route carries it.
    assert client.post(f"/v1/days/{DAY}/publish", headers=bearer(loaded.dispatcher)).status_code == 200
    route = client.get("/v1/me/route", params={"date": DAY}, headers=bearer(loaded.technician(tid)))
    assert any(s["job_id"] == "R9" for s in route.json()["stops"])
    # Unpin: the pin goes, the visit stays until the next re-plan.
    unpinned = client.delete("/v1/requests/R9/pin", headers=bearer(loaded.dispatcher))
    assert unpinned.status_code == 200 and unpinned.json()["request"]["job"]["pinned"] is None
    assert client.delete("/v1/requests/R9/pin", headers=bearer(loaded.dispatcher)).status_code == 409
    audit = client.get("/v1/audit", headers=bearer(loaded.dispatcher)).json()
    actions = [a["action"] for a in audit if a["subject"] == "R9"]
    assert "request.pinned" in actions and "request.unpinned" in actions


def test_a_drop_that_cannot_be_kept_is_refused_and_nothing_is_stored(
    client: TestClient, loaded: Keys
) -> None:
    plan_day(client, loaded)
    before = board(client, loaded)
    refused = client.put(
        "/v1/requests/R1/pin",
        json={"technician_id": "T2", "date": DAY},  # R1 needs hvac 3; T2 has 2
        headers=bearer(loaded.dispatcher),
    )
    assert refused.status_code == 409 and "hvac>=3" in refused.json()["detail"]
    after = board(client, loaded)
    assert after["plan_version"] == before["plan_version"]
    request = client.get("/v1/requests/R1", headers=bearer(loaded.dispatcher)).json()
    assert request["job"]["pinned"] is None
    bad = client.put(
        "/v1/requests/R2/pin",
        json={"technician_id": "T1", "date": DAY, "start": "2031-01-01T10:00:00+01:00"},
        headers=bearer(loaded.dispatcher),
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "start"]
    other = client.put(
        "/v1/requests/R2/pin",
        json={"technician_id": "T1", "date": DAY},
        headers=bearer(loaded.technician("T1")),
    )
    assert other.status_code == 403


def test_a_planned_visit_dragged_to_another_technician_leaves_its_route(
    client: TestClient, loaded: Keys
) -> None:
    plan_day(client, loaded)
    day = board(client, loaded)
    by_tech = {r["technician_id"]: [v["job_id"] for v in r["visits"]] for r in day["routes"]}
    # A job both can do (no hvac level above 2), planned on one of them.
    movable = [j for t, js in by_tech.items() for j in js if day["jobs"][j]["skills"].get("hvac", 0) <= 2
               and not day["jobs"][j]["skills"].get("electrical")]  # fmt: skip
    assert movable
    job_id = movable[0]
    source = next(t for t, js in by_tech.items() if job_id in js)
    target = "T2" if source == "T1" else "T1"
    answer = evaluate(client, loaded, day["plan_version"], job_id=job_id, technician_id=target)
    if not answer["feasible"]:
        assert answer["reason"] in {"capacity", "shift", "overtime_limit", "lunch"}
        return
    pinned = client.put(
        f"/v1/requests/{job_id}/pin",
        json={"technician_id": target, "date": DAY},
        headers=bearer(loaded.dispatcher),
    )
    assert pinned.status_code == 200, pinned.text
    after = board(client, loaded)
    where = [r["technician_id"] for r in after["routes"] for v in r["visits"] if v["job_id"] == job_id]
    assert where == [target]


def test_a_replan_above_the_threshold_is_solved_in_territories(db_url: str, clock: Any) -> None:
    """FIELDPLAN_TERRITORY_THRESHOLD: the service's re-plan splits (here at 3 jobs, 2 per territory),
    inside its worker process, and stores a validator-clean plan naming the territories."""
    from api.app import create_app
    from tests.api.conftest import Keys, settings_for

    service = Service.open(settings_for(db_url, territory_threshold=3, territory_jobs=2), clock=clock)
    try:
        with TestClient(create_app(service)) as client:
            keys = Keys(service)
            d = bearer(keys.dispatcher)
            for t in [tech("T1"), tech("T2", lat=45.70, lon=4.90)]:
                assert client.post("/v1/technicians", json=t, headers=d).status_code == 201
            for j in [job(f"R{i}", lat=45.70 + 0.02 * i, lon=4.84 + 0.01 * i, skills={}) for i in range(6)]:
                assert client.post("/v1/requests", json=j, headers=bearer(keys.dispatcher)).status_code == 201
            plan_day(client, keys)
            version = board(client, keys)["plan_version"]
            stored = client.get(f"/v1/plans/{version}", headers=bearer(keys.dispatcher)).json()
            assert any(p.startswith("territory T") for p in stored["solver"]["search_phases"])
            planned = [v["job_id"] for r in stored["routes"] for v in r["visits"]]
            assert len(planned) == len(set(planned)) and planned
    finally:
        service.close()
