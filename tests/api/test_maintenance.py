"""Maintenance through HTTP (SQLite and PostgreSQL): assets, contracts, occurrences planned inside
their windows, floating re-dating, cancellation, availability templates, compliance, forecast."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from api.context import Service
from api.tables import OccurrenceRow, RequestRow
from tests.api.conftest import Clock, Keys, bearer, wait_run
from tests.conftest import DAY, job, tech

MONDAY = date.fromisoformat(DAY)
WEEK = [{"day": d, "start": "08:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]
TEMPLATE = {"weekly": WEEK, "holidays": "FR"}


def _asset(aid: str, lat: float = 45.77, lon: float = 4.85, **extra: Any) -> dict[str, Any]:
    return {"id": aid, "customer_id": f"C-{aid}", "location": {"lat": lat, "lon": lon}, **extra}


def _contract(cid: str, aid: str, **extra: Any) -> dict[str, Any]:
    body = {
        "id": cid,
        "asset_ids": [aid],
        "kind": "maintenance",
        "skills": {"hvac": 2},
        "duration_minutes": 60,
        "rrule": "FREQ=WEEKLY",
        "start": DAY,
        "window": {"before_days": 2, "after_days": 2},
        "mode": "fixed",
        "contract": "standard",
    }
    return body | extra


def _fleet(client: TestClient, h: dict[str, str]) -> None:
    for t in (tech("T1", shifts=[]), tech("T2", lat=45.70, lon=4.90, shifts=[])):
        assert client.post("/v1/technicians", json=t, headers=h).status_code == 201
        put = client.put(f"/v1/technicians/{t['id']}/availability", json=TEMPLATE, headers=h)
        assert put.status_code == 200, put.text


def _occurrences(client: TestClient, h: dict[str, str], cid: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/contracts/{cid}/occurrences", headers=h)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_contracts_generate_occurrences_the_night_plans_inside_their_windows(
    client: TestClient, keys: Keys
) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    shifts = client.get("/v1/technicians/T1", headers=h).json()["shifts"]
    assert len(shifts) == 8 * 5 - 2  # eight weeks of Mondays to Fridays, less Christmas and New Year
    assert {"2026-12-25", "2027-01-01"}.isdisjoint(s["date"] for s in shifts)

    assert client.post("/v1/assets", json=_asset("A1"), headers=h).status_code == 201
    assert client.post("/v1/assets", json=_asset("A1"), headers=h).status_code == 409
    assert client.post("/v1/assets", json=_asset("A2", lat=45.72, lon=4.88), headers=h).status_code == 201

    bad = client.post("/v1/contracts", json=_contract("K0", "A1", rrule="FREQ=WEEKLY;BYDAY=XX"), headers=h)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "rrule"], bad.text
    unknown = client.post("/v1/contracts", json=_contract("K0", "A9"), headers=h)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "asset_ids", 0]

    made = client.post("/v1/contracts", json=_contract("K1", "A1"), headers=h)
    assert made.status_code == 201, made.text
    created = made.json()["generated"]["created"]
    assert created[0] == f"K1:{DAY}" and len(created) == 9  # weekly, eight weeks ahead (+ the 9th's window)
    monthly = _contract("K2", "A2", rrule="FREQ=MONTHLY;BYMONTHDAY=-1", start="2026-11-30")
    assert client.post("/v1/contracts", json=monthly, headers=h).status_code == 201
    again = client.post("/v1/maintenance/generate", headers=h).json()
    assert again == {"created": [], "withdrawn": [], "updated": []}  # idempotent

    # The night plans the occurrences whose due date is in view, each inside its window.
    run = client.post("/v1/plans/nightly", headers=h)
    assert run.status_code == 202
    assert wait_run(client, keys.dispatcher, run.json()["run_id"])["status"] == "succeeded"
    occ = {o["key"]: o for o in _occurrences(client, h, "K1")}
    first = occ[f"K1:{DAY}"]
    assert first["status"] in ("planned", "dispatched"), first
    assert first["earliest"] <= first["planned_date"] <= first["latest"]
    later = occ["K1:2027-01-25"]
    assert later["status"] == "open"  # due weeks ahead: waits until its due date is in view
    waiting = client.get("/v1/requests/K1:2027-01-25", headers=h).json()
    assert waiting["reason"] == "NOT_PLANNED_YET" and "due 2027-01-25" in waiting["reason_detail"]
    request = client.get(f"/v1/requests/K1:{DAY}", headers=h).json()
    assert request["job"]["occurrence"]["due"] == DAY and request["job"]["windows"]

    # A changed contract moves its future, unplanned occurrences; planned ones stay.
    changed = client.put(
        "/v1/contracts/K1", json=_contract("K1", "A1", rrule="FREQ=WEEKLY;INTERVAL=2"), headers=h
    )
    assert changed.status_code == 200, changed.text
    gen = changed.json()["generated"]
    assert "K1:2026-12-14" in gen["withdrawn"] and f"K1:{DAY}" not in gen["withdrawn"]
    assert client.get("/v1/requests/K1:2026-12-14", headers=h).json()["status"] == "cancelled"

    # Cancelled: its future visits not yet started are withdrawn.
    cancelled = client.delete("/v1/contracts/K1", headers=h)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    statuses = {o["key"]: o["status"] for o in _occurrences(client, h, "K1")}
    assert statuses[f"K1:{DAY}"] == "withdrawn" and statuses["K1:2026-12-21"] == "withdrawn"
    assert client.put("/v1/contracts/K1", json=_contract("K1", "A1"), headers=h).status_code == 409


def test_a_floating_contract_counts_from_the_visit_done(
    client: TestClient, keys: Keys, service: Service
) -> None:
    """Due Friday 4 Dec, done Monday 7 Dec: the next visit is due a week after Monday, not Friday."""
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    client.post("/v1/assets", json=_asset("A1"), headers=h)
    body = _contract(
        "F1", "A1", start="2026-12-04", mode="floating", window={"before_days": 0, "after_days": 3}
    )
    assert client.post("/v1/contracts", json=body, headers=h).status_code == 201
    run = client.post("/v1/plans", json={"start": DAY, "days": 1}, headers=h).json()["run_id"]
    assert wait_run(client, keys.dispatcher, run)["status"] == "succeeded"
    assert client.post(f"/v1/days/{DAY}/publish", headers=h).status_code == 200
    req = client.get("/v1/requests/F1:2026-12-04", headers=h).json()
    assert req["status"] == "dispatched", req
    th = bearer(keys.technician(req["technician_id"]))
    done = client.post("/v1/visits/F1:2026-12-04/status", json={"status": "completed"}, headers=th)
    assert done.status_code == 200, done.text
    occ = {o["key"]: o for o in _occurrences(client, h, "F1")}
    assert occ["F1:2026-12-04"]["status"] == "done" and occ["F1:2026-12-04"]["done_on"] == DAY
    assert occ["F1:2026-12-11"]["status"] == "withdrawn"
    assert occ["F1:2026-12-14"]["status"] == "open"
    assert client.get("/v1/contracts/F1", headers=h).json()["last_done_on"] == DAY


def test_templates_exceptions_and_typed_shifts(client: TestClient, keys: Keys) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)

    def shifts() -> dict[str, tuple[str, str]]:
        got = client.get("/v1/technicians/T1", headers=h).json()["shifts"]
        return {s["date"]: (s["start"], s["end"]) for s in got}

    tue, wed, thu, sat = (MONDAY + timedelta(days=d) for d in (1, 2, 3, 5))
    absent = {"date": tue.isoformat(), "kind": "absence", "note": "training"}
    assert client.post("/v1/technicians/T1/exceptions", json=absent, headers=h).status_code == 201
    assert client.post("/v1/technicians/T1/exceptions", json=absent, headers=h).status_code == 409
    extra = {"date": sat.isoformat(), "kind": "shift", "start": "09:00", "end": "13:00"}
    assert client.post("/v1/technicians/T1/exceptions", json=extra, headers=h).status_code == 201
    bad = client.post("/v1/technicians/T1/exceptions", json={"date": DAY, "kind": "shift"}, headers=h)
    assert bad.status_code == 422
    got = shifts()
    assert tue.isoformat() not in got and got[sat.isoformat()] == ("09:00", "13:00")
    # A typed shift replaces the template's on its day; deleting a template day records an absence.
    typed = {"date": wed.isoformat(), "start": "10:00", "end": "18:00"}
    assert client.post("/v1/technicians/T1/shifts", json=typed, headers=h).status_code == 201
    assert shifts()[wed.isoformat()] == ("10:00", "18:00")
    assert client.delete(f"/v1/technicians/T1/shifts/{thu.isoformat()}", headers=h).status_code == 200
    av = client.get("/v1/technicians/T1", headers=h).json()["availability"]
    assert {"date": thu.isoformat(), "kind": "absence"}.items() <= next(
        e for e in av["exceptions"] if e["date"] == thu.isoformat()
    ).items()
    assert thu.isoformat() not in shifts()
    # Removing the exception brings the template's day back.
    assert client.delete(f"/v1/technicians/T1/exceptions/{tue.isoformat()}", headers=h).status_code == 200
    assert shifts()[tue.isoformat()] == ("08:00", "17:00")
    # A GET sent back as a PUT keeps the template's days the template's: a new template moves them.
    body = client.get("/v1/technicians/T1", headers=h).json()
    body = {k: v for k, v in body.items() if k not in ("active", "replan_run_id")}
    assert client.put("/v1/technicians/T1", json=body, headers=h).status_code == 200
    later = [{**w, "start": "07:00"} for w in WEEK]
    assert client.put("/v1/technicians/T1/availability", json={"weekly": later}, headers=h).status_code == 200
    assert shifts()[tue.isoformat()] == ("07:00", "17:00")
    assert shifts()[wed.isoformat()] == ("10:00", "18:00")  # the typed one stays
    bad_region = client.put(
        "/v1/technicians/T1/availability", json={"weekly": WEEK, "holidays": "XX"}, headers=h
    )
    assert bad_region.status_code == 422 and bad_region.json()["detail"][0]["loc"][:2] == ["body", "holidays"]


def test_a_repair_naming_an_asset_takes_its_warranty(client: TestClient, keys: Keys) -> None:
    h = bearer(keys.dispatcher)
    client.post("/v1/assets", json=_asset("A1", warranty_until="2027-01-31"), headers=h)
    client.post("/v1/assets", json=_asset("A2", warranty_until="2026-01-31"), headers=h)
    under = client.post("/v1/requests", json=job("R1", kind="repair", asset_id="A1"), headers=h).json()
    assert under["job"]["warranty"] is True
    typed = client.post(
        "/v1/requests", json=job("R2", kind="repair", asset_id="A2", warranty=True), headers=h
    )
    assert typed.json()["job"]["warranty"] is False  # the asset wins over the typed flag
    unknown = client.post("/v1/requests", json=job("R3", asset_id="A9"), headers=h)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "asset_id"]


def test_compliance_on_a_hand_checked_book(
    client: TestClient, keys: Keys, service: Service, clock: Clock
) -> None:
    """Six occurrences of one contract, today 7 Dec: done on the due date, a day early, two days late
    (all inside their windows), done outside its window, one whose window closed unvisited, and one
    open whose window closes in three days (at risk). Settled: 5; in window: 3 -> 0.6."""
    h = bearer(keys.dispatcher)
    client.post("/v1/assets", json=_asset("A1"), headers=h)
    assert (
        client.post("/v1/contracts", json=_contract("K1", "A1", start="2027-06-01"), headers=h).status_code
        == 201
    )
    book = [
        # key suffix, due, window, status, done_on
        ("a", "2026-11-02", 2, "done", "2026-11-02"),
        ("b", "2026-11-09", 2, "done", "2026-11-08"),
        ("c", "2026-11-16", 2, "done", "2026-11-18"),
        ("d", "2026-11-23", 2, "done", "2026-11-27"),
        ("e", "2026-11-30", 2, "open", None),
        ("f", "2026-12-08", 2, "open", None),
    ]
    with service.sessions.begin() as session:
        for suffix, due, w, status, done in book:
            d = date.fromisoformat(due)
            key = f"K1:{suffix}"
            session.add(
                OccurrenceRow(
                    key=key,
                    contract_id="K1",
                    asset_id="A1",
                    nominal=d,
                    earliest=d - timedelta(days=w),
                    due=d,
                    latest=d + timedelta(days=w),
                    status="generated",
                    done_on=date.fromisoformat(done) if done else None,
                )
            )
            session.add(RequestRow(id=key, status=status, spec=job(key), reason="NOT_PLANNED_YET"))
    report = client.get("/v1/maintenance/compliance", headers=h).json()
    assert report["settled"] == 5 and report["done_in_window"] == 3
    assert report["done_outside_window"] == 1 and report["missed"] == 1
    assert report["in_window_share"] == 0.6
    assert report["days_off_due"] == {"-1": 1, "0": 1, "2": 1, "4": 1}
    assert report["median_days_off_due"] == 1.0
    assert [r["key"] for r in report["at_risk"]] == ["K1:f"]
    assert report["at_risk"][0]["days_left"] == 3


def test_forecast_projects_beyond_the_generation_horizon(client: TestClient, keys: Keys) -> None:
    h = bearer(keys.dispatcher)
    _fleet(client, h)
    client.post("/v1/assets", json=_asset("A1"), headers=h)
    client.post("/v1/contracts", json=_contract("K1", "A1", duration_minutes=90), headers=h)
    data = client.get("/v1/maintenance/forecast?weeks=12", headers=h).json()
    weeks = data["weeks"]
    assert len(weeks) == 12 and weeks[0]["week"] == DAY
    assert all(w["demand_hours"]["hvac"] == 1.5 for w in weeks)  # weekly, generated then projected
    assert [w["projected"] for w in weeks] == [False] * 8 + [True] * 4
    # Two hvac technicians, 45 hours each; Christmas week (21 Dec) has the 25th off.
    assert weeks[0]["capacity_hours"]["hvac"] == 90.0
    assert weeks[2]["capacity_hours"]["hvac"] == 72.0
    png = client.get("/v1/maintenance/forecast?weeks=12&format=png", headers=h)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 5000
    assert client.get("/v1/maintenance/forecast?weeks=0", headers=h).status_code == 422
