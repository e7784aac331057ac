"""Schemathesis against the app's own OpenAPI schema: every operation, a bounded number of examples.

No 5xx, responses as documented, bad data rejected with 4xx, and protected operations refuse
missing and wrong keys (schemathesis' own auth checks). SQLite only: this is about the HTTP surface.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.context import Service
from api.security import Role, create_key
from tests.api.conftest import FLEET, JOBS, settings_for

_dir = Path(tempfile.mkdtemp(prefix="fieldplan-schemathesis-"))
_service = Service.open(settings_for(f"sqlite:///{_dir / 'fuzz.db'}", solve_seconds=0.5))
with _service.sessions.begin() as _s:
    _, ADMIN = create_key(_s, role=Role.ADMIN)
    _, TECH = create_key(_s, role=Role.TECHNICIAN, technician_id="T1")
app = create_app(_service)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


def _seed() -> None:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        h = {"Authorization": f"Bearer {ADMIN}"}
        for t in FLEET:
            client.post("/v1/technicians", json=t, headers=h)
        for j in JOBS:
            client.post("/v1/requests", json=j, headers=h)


_seed()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case: schemathesis.Case) -> None:
    key = TECH if case.path.startswith(("/v1/me", "/v1/visits")) else ADMIN
    headers = {"Authorization": f"Bearer {key}"} if case.path != "/health" else {}
    case.call_and_validate(headers=headers)
