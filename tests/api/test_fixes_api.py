"""Fixes for jobs left out, through the service: every re-plan stores them with its unassigned jobs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Keys, bearer, plan_day
from tests.conftest import DAY, job


def test_a_replan_stores_verified_fixes_for_what_it_leaves_out(client: TestClient, loaded: Keys) -> None:
    h = bearer(loaded.dispatcher)
    late = job(
        "LATE", duration_minutes=150, priority=5, windows=[{"start": f"{DAY}T16:00", "end": f"{DAY}T16:30"}]
    )
    assert client.post("/v1/requests", json=late, headers=h).status_code == 201
    plan_day(client, loaded)
    rows = client.get("/v1/plans/current/unassigned", params={"date": DAY}, headers=h).json()
    row = next(u for u in rows if u["job_id"] == "LATE")
    assert row["reason"] == "NO_SHIFT_IN_WINDOW"
    verified = [f for f in row["fixes"] if f["verified"]]
    assert verified and verified[0]["kind"] == "longer_shift" and verified[0]["minutes"] >= 120
    one = client.get("/v1/plans/current/unassigned/LATE", params={"date": DAY}, headers=h)
    assert one.status_code == 200 and one.json() == row
    assert client.get("/v1/plans/current/unassigned/NOPE", params={"date": DAY}, headers=h).status_code == 404
    tech = bearer(loaded.technician("T1"))
    assert (
        client.get("/v1/plans/current/unassigned/LATE", params={"date": DAY}, headers=tech).status_code == 403
    )
