"""`Idempotency-Key`: a repeated POST returns the first answer, never a second resource."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import Conflict, Unprocessable
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


def answer_once(
    session: Session,
    *,
    key: str | None,
    scope: str,
    digest: str,
    status_code: int,
    make: Callable[[], Any],
    conflict: str,
) -> JSONResponse:
    """One transaction: replay a stored answer, or run `make` and store what it returns.

    `make` returns the JSON content of a new answer, or a JSONResponse that is returned as it is and
    not remembered (e.g. an existing resource found by `external_id`). A concurrent twin that wins the
    race makes the insert fail; the second attempt then replays the twin's answer.
    """
    for attempt in range(2):
        try:
            with session.begin():
                replayed = replay(session, key=key, scope=scope, digest=digest)
                if replayed is not None:
                    return replayed
                content = make()
                if isinstance(content, JSONResponse):
                    return content
                session.flush()
                remember(
                    session, key=key, scope=scope, digest=digest, status_code=status_code, content=content
                )
            return JSONResponse(content, status_code=status_code)
        except IntegrityError:
            session.rollback()
            if attempt == 1:
                raise Conflict(conflict) from None
    raise AssertionError("unreachable")


def remember(
    session: Session, *, key: str | None, scope: str, digest: str, status_code: int, content: Any
) -> None:
    if key is not None:
        session.add(
            IdempotencyRow(key=key, scope=scope, body_hash=digest, status_code=status_code, response=content)
        )
