"""`Idempotency-Key`: a repeated POST returns the first answer, never a second resource."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.errors import Unprocessable
from api.tables import IdempotencyRow


def body_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, *, key: str | None, scope: str, digest: str) -> JSONResponse | None:
    if key is None:
        return None
    row = session.get(IdempotencyRow, (key, scope))
    if row is None:
        return None
    if row.body_hash != digest:
        raise Unprocessable(
            ["header", "Idempotency-Key"], "this Idempotency-Key was used before with a different body"
        )
    return JSONResponse(
        status_code=row.status_code, content=row.response, headers={"Idempotent-Replay": "true"}
    )


def remember(
    session: Session, *, key: str | None, scope: str, digest: str, status_code: int, content: Any
) -> None:
    if key is not None:
        session.add(
            IdempotencyRow(key=key, scope=scope, body_hash=digest, status_code=status_code, response=content)
        )
