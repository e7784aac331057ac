"""Crews, multi-day installations and linked visits through HTTP (SQLite and PostgreSQL): requested,
planned by a re-plan the validator passed, shown on the board and in each member's route, followed up
after the repair is done, and refused by the appointment slots."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import Clock, Keys, bearer, wait_run
from tests.conftest import DAY, job, tech

MONDAY = date.fromisoformat(DAY)
WEEK = [(MONDAY + timedelta(days=d)).isoformat() for d in range(5)]
LUNCH = {"earliest": "12:00", "latest": "14:00", "minutes": 30}


def _fleet(client: TestClient, h: dict[str, str]) -> None:
    for i in range(3):
        body = tech(
            f"T{i}",
            lat=45.76 + i / 100,
            shifts=[{"date": d, "start": "08:00", "end": "17:00"} for d in WEEK],
            lunch=LUNCH,
        )
        assert client.post("/v1/technicians", json=body, headers=h).status_code == 201


def _visits(client: TestClient, h: dict[str, str], day: str) -> dict[str, list[dict[str, Any]]]:
    board = client.get(f"/v1/days/{day}/board", headers=h)
    assert board.status_code == 200, board.text
    out: dict[str, list[dict[str, Any]]] = {}
    for route in board.json()["routes"]:
        for v in route["visits"]:
            out.setdefault(v["job_id"], []).append({**v, "technician_id": route["technician_id"]})
    return out


def test_a_crew_installation_its_commissioning_and_a_follow_up_are_planned_and_shown(
    client: TestClient, keys: Keys, clock: Clock
) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    requests = [
        job("HP", kind="installation", duration_minutes=480, crew_size=2, max_days=2, contract="premium"),
        job("COM", kind="inspection", lat=45.78, after={"job_id": "HP", "min_days": 1, "max_days": 3}),
        job("REP", kind="repair", lat=45.70, warranty=True),
        job("FU", kind="follow_up", lat=45.71, same_technician_as={"job_id": "REP", "hard": True},
            after={"job_id": "REP", "min_days": 2}),
    ]  # fmt: skip
    for body in requests:
        made = client.post("/v1/requests", json=body, headers=h)
        assert made.status_code == 201, made.text
    run = client.post("/v1/plans", json={"start": DAY, "days": 5}, headers=h).json()["run_id"]
    assert wait_run(client, keys.dispatcher, run)["status"] == "succeeded"

    # Two days of two technicians starting together; the request names the lead and the first day.
    parts: list[dict[str, Any]] = []
    for day in WEEK:
        parts += _visits(client, h, day).get("HP", [])
    assert len(parts) == 4 and sorted({p["part"] for p in parts}) == [1, 2]
    for part in (1, 2):
        crew = [p for p in parts if p["part"] == part]
        assert len({p["start"] for p in crew}) == 1 and {p["role"] for p in crew} == {"lead", "helper"}
    request = client.get("/v1/requests/HP", headers=h).json()
    lead = next(p["technician_id"] for p in parts if p["role"] == "lead" and p["part"] == 1)
    assert request["status"] == "planned" and request["technician_id"] == lead
    assert request["planned_date"] == min(p["start"][:10] for p in parts)
    com = client.get("/v1/requests/COM", headers=h).json()
    assert com["status"] == "planned"
    last = max(date.fromisoformat(p["start"][:10]) for p in parts)
    assert 1 <= (date.fromisoformat(com["planned_date"]) - last).days <= 3
    rep, fu = (client.get(f"/v1/requests/{x}", headers=h).json() for x in ("REP", "FU"))
    assert fu["technician_id"] == rep["technician_id"]
    board = client.get(f"/v1/days/{request['planned_date']}/board", headers=h).json()
    assert board["jobs"]["HP"]["crew_size"] == 2 and board["jobs"]["HP"]["max_days"] == 2

    # Published: each member's own route carries the visit, with its role.
    first = request["planned_date"]
    assert client.post(f"/v1/days/{first}/publish", headers=h).status_code == 200
    for p in (x for x in parts if x["start"][:10] == first):
        route = client.get(
            "/v1/me/route", params={"date": first}, headers=bearer(keys.technician(p["technician_id"]))
        )
        assert route.status_code == 200, route.text
        mine = [v for v in route.json()["stops"] if v["job_id"] == "HP"]
        assert len(mine) == 1 and mine[0]["role"] == p["role"] and mine[0]["part"] == 1


def test_a_follow_up_of_a_repair_done_goes_to_its_technician_days_after(
    client: TestClient, keys: Keys, clock: Clock
) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    assert (
        client.post("/v1/requests", json=job("REP", kind="repair", lat=45.70), headers=h).status_code == 201
    )
    run = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h).json()["run_id"]
    assert wait_run(client, keys.dispatcher, run)["status"] == "succeeded"
    assert client.post(f"/v1/days/{DAY}/publish", headers=h).status_code == 200
    rep = client.get("/v1/requests/REP", headers=h).json()
    th = bearer(keys.technician(rep["technician_id"]))
    assert client.post("/v1/visits/REP/status", json={"status": "completed"}, headers=th).status_code == 200

    follow = job("FU", kind="follow_up", lat=45.81, after={"job_id": "REP", "min_days": 2, "max_days": 3},
                 same_technician_as={"job_id": "REP", "hard": True})  # fmt: skip
    assert client.post("/v1/requests", json=follow, headers=h).status_code == 201
    clock.at += timedelta(days=1)
    tuesday = WEEK[1]
    run = client.post("/v1/plans", json={"start": tuesday, "days": 4}, headers=h).json()["run_id"]
    assert wait_run(client, keys.dispatcher, run)["status"] == "succeeded"
    fu = client.get("/v1/requests/FU", headers=h).json()
    assert fu["status"] == "planned", fu
    assert fu["technician_id"] == rep["technician_id"]
    assert 2 <= (date.fromisoformat(fu["planned_date"]) - MONDAY).days <= 3


def test_slots_are_for_single_visits(client: TestClient, keys: Keys) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    answer = client.post("/v1/appointments/slots", json={"job": job("X", crew_size=2)}, headers=h)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "job", "crew_size"]


def test_a_two_day_job_goes_on_after_its_first_day_is_done(
    client: TestClient, keys: Keys, clock: Clock
) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    body = job("HP", kind="installation", duration_minutes=480, crew_size=2, max_days=2, contract="premium")
    assert client.post("/v1/requests", json=body, headers=h).status_code == 201
    run = client.post("/v1/plans", json={"start": DAY, "days": 2}, headers=h).json()["run_id"]
    assert wait_run(client, keys.dispatcher, run)["status"] == "succeeded"
    monday, tuesday = _visits(client, h, WEEK[0]).get("HP", []), _visits(client, h, WEEK[1]).get("HP", [])
    assert len(monday) == 2 and len(tuesday) == 2, (monday, tuesday)
    for day in WEEK[:2]:
        assert client.post(f"/v1/days/{day}/publish", headers=h).status_code == 200
    lead = bearer(keys.technician(client.get("/v1/requests/HP", headers=h).json()["technician_id"]))
    for status in ("started", "completed"):
        answer = client.post("/v1/visits/HP/status", json={"status": status}, headers=lead)
        assert answer.status_code == 200, answer.text
    assert client.get("/v1/requests/HP", headers=h).json()["status"] == "in_progress"  # day 2 to come

    clock.at += timedelta(days=1)  # Tuesday 06:00: the night's re-plan keeps the second day as published
    run = client.post("/v1/plans", json={"start": WEEK[1], "days": 4}, headers=h).json()["run_id"]
    assert wait_run(client, keys.dispatcher, run)["status"] == "succeeded"
    again = _visits(client, h, WEEK[1]).get("HP", [])
    assert sorted((v["technician_id"], v["start"], v["part"]) for v in again) == sorted(
        (v["technician_id"], v["start"], v["part"]) for v in tuesday
    )
    done = client.post("/v1/visits/HP/status", json={"status": "completed"}, headers=lead)
    assert done.status_code == 200 and done.json()["status"] == "done", done.text
