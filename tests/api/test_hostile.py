"""Hostile input, each row with the answer it must get: never a 5xx, never a half-stored bulk."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.context import Service
from api.tables import RequestRow
from tests.api.conftest import Keys, bearer
from tests.conftest import DAY, job

NAN_BODY = json.dumps(job("H1")).replace('"lat": 45.77', '"lat": NaN')
INF_BODY = json.dumps(job("H1")).replace('"lon": 4.85', '"lon": Infinity')


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (NAN_BODY, 422, "lat"),  # NaN coordinates
        (INF_BODY, 422, "lon"),  # infinite coordinates
        ({**job("H1"), "location": {"lat": 45, "lon": 181}}, 422, "lon"),  # off the map
        (
            {**job("H1"), "windows": [{"start": f"{DAY}T12:00", "end": f"{DAY}T09:00"}]},
            422,
            "window",
        ),  # backwards
        ({**job("H1"), "duration_minutes": 0}, 422, "duration_minutes"),  # no work
        ({**job("H1"), "duration_minutes": 10_000}, 422, "duration_minutes"),  # a week of work
        ({**job("H1"), "kind": "alchemy"}, 422, "kind"),  # unknown kind
        ({**job("H1"), "skills": {"hvac ": 2}}, 422, "skill"),  # malformed skill name
        ({**job("H1"), "skills": {"underwater_welding": 2}}, 201, ""),  # well-formed, nobody has it: accepted
        ({**job("H1"), "id": "J1'; DROP TABLE service_requests;--"}, 422, "id"),  # SQL in an id
        ({**job("H1"), "id": "J1\x00\x07"}, 422, "id"),  # control characters in an id
        (
            {**job("H1"), "notes": "Robert'); DROP TABLE technicians;--"},
            201,
            "",
        ),  # SQL in free text: stored as text
        ([job("H1")], 422, "body"),  # a list where an object belongs
        ("{", 400, "JSON"),  # truncated JSON: not JSON at all, a malformed request
    ],
)
def test_hostile_request_bodies(
    client: TestClient, loaded: Keys, service: Service, body: Any, code: int, needle: str
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    answer = client.post(
        "/v1/requests",
        content=content,
        headers={**bearer(loaded.dispatcher), "content-type": "application/json"},
    )
    assert answer.status_code == code, answer.text[:300]
    if code == 422:
        assert needle in answer.text.lower()
    with service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RequestRow)) == 6 + (code == 201)
        assert session.get(RequestRow, "R1") is not None  # nothing dropped


def test_an_unknown_skill_is_accepted_then_unassigned_with_a_reason(client: TestClient, loaded: Keys) -> None:
    from tests.api.conftest import plan_day

    h = bearer(loaded.dispatcher)
    assert (
        client.post(
            "/v1/requests", json={**job("W1"), "skills": {"underwater_welding": 2}}, headers=h
        ).status_code
        == 201
    )
    run = plan_day(client, loaded)
    plan = client.get(f"/v1/plans/{run['plan_version_id']}", headers=h).json()
    reasons = {u["job_id"]: u["reason"] for u in plan["unassigned"]}
    assert reasons["W1"] == "NO_QUALIFIED_TECHNICIAN"


def test_raw_bodies(client: TestClient, loaded: Keys, service: Service) -> None:
    h = {**bearer(loaded.dispatcher), "content-type": "application/json"}
    # not UTF-8
    latin = json.dumps({**job("U1"), "notes": "NOTE"}).encode().replace(b"NOTE", b"caf\xe9 \xff")
    answer = client.post("/v1/requests", content=latin, headers=h)
    assert answer.status_code in (400, 422), answer.text
    # deeply nested JSON
    deep = '{"requests": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = client.post("/v1/requests/bulk", content=deep, headers=h)
    assert answer.status_code in (400, 413, 422), answer.text[:200]
    # 10 MB body: over the documented limit
    big = json.dumps({**job("B1"), "notes": "x" * 100}).encode() + b" " * (10 * 1024 * 1024)
    answer = client.post("/v1/requests", content=big, headers=h)
    assert answer.status_code == 413 and "8388608" in answer.text
    with service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RequestRow)) == 6


def test_bulk_limits(client: TestClient, loaded: Keys, service: Service) -> None:
    h = bearer(loaded.dispatcher)
    small = {k: v for k, v in job("x").items() if k not in ("skills",)}
    many = {"requests": [{**small, "id": f"K{i:05d}"} for i in range(10_000)]}
    answer = client.post("/v1/requests/bulk", json=many, headers=h)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["created"] == 10_000
    over = {"requests": [{**small, "id": f"M{i:05d}"} for i in range(10_001)]}
    answer = client.post("/v1/requests/bulk", json=over, headers=h)
    assert answer.status_code == 413 and "10000" in answer.text
    dup = {"requests": [{**small, "id": "D1"}, {**small, "id": "D2"}, {**small, "id": "D1"}]}
    assert client.post("/v1/requests/bulk", json=dup, headers=h).status_code == 422
    with service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RequestRow)) == 6 + 10_000
