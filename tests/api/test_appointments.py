"""Appointment booking through HTTP, on SQLite and PostgreSQL: slots, holds, bookings that keep."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import replan_job
from tests.api import faulty
from tests.api.conftest import Clock, Keys, bearer, plan_day, wait_run
from tests.conftest import DAY, job, tech


@pytest.fixture
def agent(keys: Keys) -> str:
    """A call-centre agent's key: the `booking` role."""
    return keys.booking()


def ask(client: TestClient, key: str, **body: Any) -> dict[str, Any]:
    answer = client.post("/v1/appointments/slots", json=body, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def new_job(jid: str | None = None, **extra: Any) -> dict[str, Any]:
    body = job(jid or "X", kind="repair", **extra)
    if jid is None:
        del body["id"]
    return body


def visits(client: TestClient, keys: Keys, day: str = DAY) -> dict[str, dict[str, Any]]:
    plan = client.get(f"/v1/plans/current?date={day}", headers=bearer(keys.dispatcher)).json()
    return {
        v["job_id"]: {**v, "technician_id": r["technician_id"]} for r in plan["routes"] for v in r["visits"]
    }


def test_slots_are_graded_explained_booked_and_kept_by_the_nightly_replan(
    client: TestClient, loaded: Keys, agent: str
) -> None:
    plan_day(client, loaded)
    answer = ask(client, agent, job=new_job(), window_minutes=120, max_slots=5)
    slots = answer["slots"]
    assert slots and answer["job_id"].startswith("A-")
    assert [s["cost"]["total"] for s in slots] == sorted(s["cost"]["total"] for s in slots)
    assert slots[0]["grade"] == 100 and all(0 <= s["grade"] <= 100 and s["robustness"] >= 1 for s in slots)
    first = slots[0]
    assert set(first["cost"]) >= {
        "added_travel_minutes",
        "overtime_minutes",
        "sla_late_minutes",
        "pushed_out",
    }
    assert datetime.fromisoformat(first["end"]) - datetime.fromisoformat(first["start"]) == timedelta(hours=2)
    assert all(n["reason"] and n["detail"] for n in answer["not_offered"])

    booked = client.post(
        "/v1/appointments",
        json={"slot_token": first["slot_token"]},
        headers=bearer(agent) | {"Idempotency-Key": "b-1"},
    )
    assert booked.status_code == 201, booked.text
    body = booked.json()
    again = client.post(
        "/v1/appointments",
        json={"slot_token": first["slot_token"]},
        headers=bearer(agent) | {"Idempotency-Key": "b-1"},
    )
    assert (
        again.status_code == 201 and again.json() == body and again.headers.get("Idempotent-Replay") == "true"
    )
    twice = client.post("/v1/appointments", json={"slot_token": first["slot_token"]}, headers=bearer(agent))
    assert twice.status_code == 409

    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    seen = visits(client, loaded)[body["job_id"]]
    assert start <= datetime.fromisoformat(seen["start"]) <= end
    request = client.get(f"/v1/requests/{body['request_id']}", headers=bearer(loaded.dispatcher)).json()
    assert request["status"] == "planned" and request["planned_date"] == DAY
    assert datetime.fromisoformat(request["promise"]["start"]) == start

    run = client.post("/v1/plans/nightly", headers=bearer(loaded.dispatcher)).json()
    assert wait_run(client, loaded.dispatcher, run["run_id"])["status"] == "succeeded"
    kept = visits(client, loaded)[body["job_id"]]
    assert start <= datetime.fromisoformat(kept["start"]) <= end


def test_the_booking_role_asks_and_books_nothing_else(client: TestClient, loaded: Keys, agent: str) -> None:
    for method, path in (
        ("get", "/v1/requests"),
        ("post", "/v1/plans"),
        ("get", f"/v1/plans/current?date={DAY}"),
    ):
        assert (
            getattr(client, method)(
                path, headers=bearer(agent), **({"json": {}} if method == "post" else {})
            ).status_code
            == 403
        )
    technician = loaded.technician("T1")
    assert (
        client.post("/v1/appointments/slots", json={"job": new_job()}, headers=bearer(technician)).status_code
        == 403
    )


def test_bad_input_is_named(client: TestClient, loaded: Keys, agent: str) -> None:
    both = client.post(
        "/v1/appointments/slots", json={"job": new_job(), "request_id": "R1"}, headers=bearer(agent)
    )
    assert both.status_code == 422 and "not both" in both.text
    forged = client.post(
        "/v1/appointments", json={"slot_token": "eyJqb2IiOnt9fQ.forged"}, headers=bearer(agent)
    )
    assert forged.status_code == 422 and "slot_token" in forged.text
    unknown = client.post("/v1/appointments/slots", json={"request_id": "NOPE"}, headers=bearer(agent))
    assert unknown.status_code == 404
    stranger = new_job(excluded_technicians=["NOBODY"])
    named = client.post("/v1/appointments/slots", json={"job": stranger}, headers=bearer(agent))
    assert named.status_code == 422 and "excluded_technicians" in named.text and "NOBODY" in named.text


def short_day(client: TestClient, keys: Keys) -> None:
    """One technician with two hours free: room for one 90-minute visit, no more."""
    t = tech("S1", shifts=[{"date": DAY, "start": "08:00", "end": "10:00"}])
    assert client.post("/v1/technicians", json=t, headers=bearer(keys.dispatcher)).status_code == 201
    plan_day(client, keys)


def test_a_held_slot_is_offered_to_nobody_else_until_it_expires(
    client: TestClient, keys: Keys, agent: str, clock: Clock
) -> None:
    short_day(client, keys)
    first = ask(client, agent, job=new_job("C1", duration_minutes=90), window_minutes=60)["slots"][0]
    held = client.post(
        "/v1/appointments/holds", json={"slot_token": first["slot_token"]}, headers=bearer(agent)
    )
    assert held.status_code == 201, held.text
    other = ask(client, agent, job=new_job("C2", duration_minutes=60), window_minutes=60)
    assert other["slots"] == []
    assert "held" in {n["reason"] for n in other["not_offered"]}
    # After 09:00 a 60-minute visit would end past the shift: said so, not "held".
    assert {n["reason"] for n in other["not_offered"]} <= {"held", "overtime_limit"}
    # The hold is booked by its token; nothing else can take it meanwhile.
    booked = client.post(
        "/v1/appointments", json={"hold_token": held.json()["hold_token"]}, headers=bearer(agent)
    )
    assert booked.status_code == 201, booked.text
    # A hold that ran out cannot be booked.
    third = ask(client, agent, job=new_job("C3", duration_minutes=10), window_minutes=120)
    if third["slots"]:
        late = client.post(
            "/v1/appointments/holds",
            json={"slot_token": third["slots"][0]["slot_token"]},
            headers=bearer(agent),
        )
        clock.at += timedelta(minutes=30)
        gone = client.post(
            "/v1/appointments", json={"hold_token": late.json()["hold_token"]}, headers=bearer(agent)
        )
        assert gone.status_code == 409 and "expired" in gone.text


def test_two_agents_selling_the_last_capacity_get_one_booking_and_one_409(
    client: TestClient, keys: Keys, agent: str
) -> None:
    short_day(client, keys)
    a = ask(client, agent, job=new_job("CA", duration_minutes=90), window_minutes=60)["slots"][0]
    b = ask(client, agent, job=new_job("CB", duration_minutes=90, lat=45.765), window_minutes=60)["slots"][0]
    answers: list[Any] = []
    gate = threading.Barrier(2)

    def book(token: str) -> None:
        gate.wait()
        answers.append(client.post("/v1/appointments", json={"slot_token": token}, headers=bearer(agent)))

    threads = [threading.Thread(target=book, args=(s["slot_token"],)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    loser = next(r for r in answers if r.status_code == 409)
    assert "can no longer be kept" in loser.text
    planned = visits(client, keys)
    winner = next(r for r in answers if r.status_code == 201).json()["job_id"]
    assert winner in planned and ({"CA", "CB"} - {winner}).isdisjoint(planned)
    other = ({"CA", "CB"} - {winner}).pop()
    assert (
        client.get(f"/v1/requests/{other}", headers=bearer(keys.dispatcher)).status_code == 404
    )  # nothing half-written


def test_moving_and_cancelling_an_appointment_free_its_capacity(
    client: TestClient, keys: Keys, agent: str
) -> None:
    short_day(client, keys)
    first = ask(client, agent, job=new_job("M1", duration_minutes=30), window_minutes=30, max_slots=3)[
        "slots"
    ]
    booked = client.post(
        "/v1/appointments", json={"slot_token": first[0]["slot_token"]}, headers=bearer(agent)
    )
    assert booked.status_code == 201, booked.text
    # Another window for the same request, then the move.
    moves = ask(client, agent, request_id="M1", window_minutes=30, max_slots=5)["slots"]
    target = next(s for s in moves if s["start"] != first[0]["start"])
    moved = client.patch(
        "/v1/appointments/M1", json={"slot_token": target["slot_token"]}, headers=bearer(agent)
    )
    assert moved.status_code == 200, moved.text
    seen = visits(client, keys)["M1"]
    assert (
        datetime.fromisoformat(target["start"])
        <= datetime.fromisoformat(seen["start"])
        <= datetime.fromisoformat(target["end"])
    )
    request = client.get("/v1/requests/M1", headers=bearer(keys.dispatcher)).json()
    assert datetime.fromisoformat(request["promise"]["start"]) == datetime.fromisoformat(
        moved.json()["start"]
    )
    # Someone else's token cannot move it.
    foreign = ask(client, agent, job=new_job("M2", duration_minutes=30), window_minutes=60)["slots"][0]
    wrong = client.patch(
        "/v1/appointments/M1", json={"slot_token": foreign["slot_token"]}, headers=bearer(agent)
    )
    assert wrong.status_code == 409
    # Cancelled: out of the plan, back in the pool, the capacity offered again.
    full = ask(client, agent, job=new_job("M3", duration_minutes=110), window_minutes=60)
    assert full["slots"] == []
    gone = client.delete("/v1/appointments/M1", headers=bearer(agent))
    assert gone.status_code == 200 and gone.json()["status"] == "open"
    assert "M1" not in visits(client, keys)
    assert ask(client, agent, job=new_job("M3", duration_minutes=110), window_minutes=60)["slots"]
    assert client.delete("/v1/appointments/M1", headers=bearer(agent)).status_code == 409


def test_a_booking_made_while_a_replan_runs_is_in_the_plan_it_stores(
    client: TestClient, loaded: Keys, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_day(client, loaded)
    slot = ask(client, agent, job=new_job("DURING"), window_minutes=120)["slots"][0]
    monkeypatch.setattr(replan_job, "SOLVER", faulty.slow)
    replan_job.shutdown_pool()
    run = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=bearer(loaded.dispatcher)).json()
    time.sleep(1.0)
    booked = client.post("/v1/appointments", json={"slot_token": slot["slot_token"]}, headers=bearer(agent))
    assert booked.status_code == 201, booked.text
    assert wait_run(client, loaded.dispatcher, run["run_id"])["status"] == "succeeded"
    seen = visits(client, loaded)["DURING"]
    assert (
        datetime.fromisoformat(slot["start"])
        <= datetime.fromisoformat(seen["start"])
        <= datetime.fromisoformat(slot["end"])
    )
    replan_job.shutdown_pool()


def test_a_booking_on_a_published_day_is_published_at_once_and_sets_a_pending_proposal_aside(
    client: TestClient, loaded: Keys, agent: str
) -> None:
    d = bearer(loaded.dispatcher)
    plan_day(client, loaded)
    assert client.post(f"/v1/days/{DAY}/publish", headers=d).status_code == 200
    plan_day(client, loaded)  # a daytime re-plan of a published day: a proposal
    assert client.get("/v1/plans/proposed", params={"date": DAY}, headers=d).status_code == 200
    slot = ask(client, agent, job=new_job("PUB"), window_minutes=120)["slots"][0]
    booked = client.post("/v1/appointments", json={"slot_token": slot["slot_token"]}, headers=bearer(agent))
    assert booked.status_code == 201, booked.text
    current = client.get("/v1/plans/current", params={"date": DAY}, headers=d).json()
    assert current["published"] and current["plan_version"] == booked.json()["plan_version"]
    assert "PUB" in {v["job_id"] for r in current["routes"] for v in r["visits"]}
    assert client.get("/v1/plans/proposed", params={"date": DAY}, headers=d).status_code == 404
    assert client.get("/v1/requests/PUB", headers=d).json()["status"] == "dispatched"
    kinds = {n["kind"] for n in client.get("/v1/notices", headers=d).json()}
    assert "proposal_replaced" in kinds
    # The technician who goes sees it on their route (a new published version: a new ETag).
    tkey = bearer(loaded.technician(booked.json()["planned_technician_id"]))
    stops = client.get("/v1/me/route", params={"date": DAY}, headers=tkey).json()["stops"]
    assert "PUB" in [s["job_id"] for s in stops]
