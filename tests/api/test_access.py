"""Who may call what: every endpoint × (no key, wrong key, technician, dispatcher, admin)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.context import Service
from api.tables import ApiKeyRow
from tests.api.conftest import FLEET, Keys, bearer
from tests.conftest import DAY, job

D, A, T, B = "dispatcher", "admin", "technician", "booking"
# (method, path, body, roles allowed)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/v1/technicians", None, {D, A}),
    ("POST", "/v1/technicians", dict(FLEET[0], id="T9"), {D, A}),
    ("GET", "/v1/technicians/T1", None, {D, A}),
    ("PUT", "/v1/technicians/T1", FLEET[0], {D, A}),
    ("PUT", "/v1/technicians/T1/shifts", [{"date": DAY, "start": "08:00", "end": "17:00"}], {D, A}),
    ("GET", "/v1/requests", None, {D, A}),
    ("POST", "/v1/requests", job("Q1"), {D, A}),
    ("POST", "/v1/requests/bulk", {"requests": [job("Q2")]}, {D, A}),
    ("GET", "/v1/requests/Q1", None, {D, A}),
    ("POST", "/v1/requests/Q1/cancel", None, {D, A}),
    ("GET", "/v1/runs", None, {D, A}),
    ("GET", "/v1/runs/1", None, {D, A}),
    ("GET", f"/v1/plans/current?date={DAY}", None, {D, A}),
    ("GET", f"/v1/plans/current/kpis?date={DAY}", None, {D, A}),
    ("GET", f"/v1/plans/current/unassigned?date={DAY}", None, {D, A}),
    ("GET", "/v1/plans/1", None, {D, A}),
    ("POST", f"/v1/days/{DAY}/publish", None, {D, A}),
    ("GET", f"/v1/me/route?date={DAY}", None, {T}),
    ("GET", f"/v1/me/route.ics?date={DAY}", None, {T}),
    ("GET", f"/v1/me/route.geojson?date={DAY}", None, {T}),
    ("POST", "/v1/visits/R1/status", {"status": "en_route"}, {T}),
    ("POST", "/v1/appointments/slots", {"job": {k: v for k, v in job("Q3").items() if k != "id"}}, {D, A, B}),
    ("POST", "/v1/appointments/holds", {"slot_token": "not-a-token-at-all"}, {D, A, B}),
    ("POST", "/v1/appointments", {"slot_token": "not-a-token-at-all"}, {D, A, B}),
    ("PATCH", "/v1/appointments/R2", {"slot_token": "not-a-token-at-all"}, {D, A, B}),
    ("DELETE", "/v1/appointments/R2", None, {D, A, B}),
    ("GET", "/v1/me", None, {T, D, A, B}),
    ("GET", f"/v1/days/{DAY}/board", None, {D, A}),
    ("GET", f"/v1/days/{DAY}/kpis", None, {D, A}),
    ("GET", f"/v1/days/{DAY}/unassigned", None, {D, A}),
    ("GET", f"/v1/days/{DAY}/diff", None, {D, A}),
    ("POST", "/v1/plans/1/evaluate", {"job_id": "R1", "technician_id": "T1", "date": DAY}, {D, A}),
    ("PUT", "/v1/requests/R3/pin", {"technician_id": "T1", "date": DAY}, {D, A}),
    ("DELETE", "/v1/requests/R3/pin", None, {D, A}),
    ("POST", "/v1/assets", {"id": "AS1", "location": {"lat": 45.7, "lon": 4.8}}, {D, A}),
    ("PUT", "/v1/assets/AS1", {"id": "AS1", "location": {"lat": 45.7, "lon": 4.8}}, {D, A}),
    ("GET", "/v1/assets", None, {D, A}),
    ("GET", "/v1/assets/AS1", None, {D, A}),
    (
        "POST",
        "/v1/contracts",
        {"id": "KC1", "asset_ids": ["AS1"], "duration_minutes": 60, "rrule": "FREQ=YEARLY", "start": DAY},
        {D, A},
    ),
    (
        "PUT",
        "/v1/contracts/KC1",
        {"id": "KC1", "asset_ids": ["AS1"], "duration_minutes": 60, "rrule": "FREQ=YEARLY", "start": DAY},
        {D, A},
    ),
    ("GET", "/v1/contracts", None, {D, A}),
    ("GET", "/v1/contracts/KC1", None, {D, A}),
    ("GET", "/v1/contracts/KC1/occurrences", None, {D, A}),
    ("DELETE", "/v1/contracts/KC1", None, {D, A}),
    ("POST", "/v1/maintenance/generate", None, {D, A}),
    ("GET", "/v1/maintenance/compliance", None, {D, A}),
    ("GET", "/v1/maintenance/forecast?weeks=2", None, {D, A}),
    (
        "PUT",
        "/v1/technicians/T1/availability",
        {"weekly": [{"day": "mon", "start": "08:00", "end": "17:00"}]},
        {D, A},
    ),
    ("POST", "/v1/technicians/T1/exceptions", {"date": DAY, "kind": "absence"}, {D, A}),
    ("DELETE", f"/v1/technicians/T1/exceptions/{DAY}", None, {D, A}),
    ("DELETE", "/v1/technicians/T1/availability", None, {D, A}),
    ("GET", "/v1/keys", None, {A}),
    ("POST", "/v1/keys", {"role": "dispatcher"}, {A}),
    ("DELETE", "/v1/keys/999", None, {A}),
]
CALLERS = ["none", "wrong", T, D, A, B]


def _headers(keys: Keys, caller: str) -> dict[str, str]:
    return {
        "none": {},
        "wrong": bearer("fp_" + "x" * 43),
        T: bearer(keys.technician("T1")),
        D: bearer(keys.dispatcher),
        A: bearer(keys.admin),
        B: bearer(keys.booking()),
    }[caller]


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix(client: TestClient, loaded: Keys, caller: str) -> None:
    """401 without a valid key, 403 outside the role, and never a 5xx for an allowed caller."""
    # the keys endpoints also run for the POST /v1/plans endpoint, which starts a run: see test_service
    for method, path, body, allowed in ENDPOINTS:
        answer = client.request(method, path, json=body, headers=_headers(loaded, caller))
        if caller in ("none", "wrong"):
            expected: Any = 401
            assert answer.headers.get("www-authenticate") == "Bearer", path
        elif caller in allowed:
            expected = "allowed"
        else:
            expected = 403
        got = (
            answer.status_code
            if expected != "allowed"
            else (
                "allowed"
                if answer.status_code < 500 and answer.status_code not in (401, 403)
                else answer.status_code
            )
        )
        assert got == expected, f"{caller} {method} {path}: {answer.status_code} {answer.text[:200]}"


def test_plans_endpoint_roles(client: TestClient, loaded: Keys) -> None:
    body = {"start": DAY, "days": 1}
    assert client.post("/v1/plans", json=body).status_code == 401
    assert client.post("/v1/plans", json=body, headers=bearer(loaded.technician("T1"))).status_code == 403
    assert client.post("/v1/plans/nightly", headers=bearer(loaded.technician("T1"))).status_code == 403


def test_keys_are_stored_hashed_shown_once_and_revoked_at_once(
    client: TestClient, loaded: Keys, service: Service
) -> None:
    admin = bearer(loaded.admin)
    made = client.post("/v1/keys", json={"role": "technician", "technician_id": "T2"}, headers=admin)
    assert made.status_code == 201
    key = made.json()["key"]
    assert client.get("/v1/me/route", params={"date": DAY}, headers=bearer(key)).status_code in (200, 404)
    listed = client.get("/v1/keys", headers=admin).json()
    assert all("key" not in k for k in listed) and key not in str(listed)
    with service.sessions() as session:
        stored = [(r.key_hash, r.prefix) for r in session.query(ApiKeyRow)]
    assert all(key != h and key not in h for h, _ in stored)
    assert client.delete(f"/v1/keys/{made.json()['id']}", headers=admin).status_code == 204
    gone = client.get("/v1/me/route", params={"date": DAY}, headers=bearer(key))
    assert gone.status_code == 401 and key not in gone.text
    assert client.post("/v1/keys", json={"role": "technician"}, headers=admin).status_code == 422
    assert (
        client.post("/v1/keys", json={"role": "technician", "technician_id": "T7"}, headers=admin).status_code
        == 422
    )


def test_health_needs_no_key(client: TestClient) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200 and answer.json()["database"] == "ok"


def test_no_key_or_secret_in_logs_or_error_bodies(
    client: TestClient, loaded: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    wrong = "fp_" + "s3cr3t" * 7
    bodies = []
    for key in (wrong, loaded.dispatcher, loaded.technician("T1"), loaded.admin):
        for method, path, body, _ in ENDPOINTS:
            bodies.append(client.request(method, path, json=body, headers=bearer(key)).text)
    made = client.post("/v1/keys", json={"role": "dispatcher"}, headers=bearer(loaded.admin)).json()["key"]
    secrets_ = [wrong, loaded.dispatcher, loaded.technician("T1"), loaded.admin]
    text = caplog.text + "".join(bodies)
    for secret in secrets_:
        assert secret not in text
    assert made not in caplog.text
