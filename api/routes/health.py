"""Liveness for operators: is the database there, and how did the last nightly re-plan go."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ServiceDep
from api.scheduler import REPORTED_TRIGGERS
from api.schemas import Health, LastRun
from api.tables import RunRow

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(service: ServiceDep) -> JSONResponse:
    last = None
    try:
        with service.sessions() as session:
            session.execute(text("SELECT 1"))
            row = session.scalar(
                select(RunRow)
                .where(RunRow.trigger.in_(REPORTED_TRIGGERS))
                .order_by(RunRow.id.desc())
                .limit(1)
            )
            if row is not None:
                last = LastRun(
                    id=row.id,
                    trigger=row.trigger,
                    status=row.status,
                    finished_at=row.finished_at,
                    error=row.error,
                )
    except SQLAlchemyError:
        body = Health(status="degraded", database="unreachable", last_nightly=None)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    ok = last is None or last.status in ("succeeded", "running", "queued")
    body = Health(status="ok" if ok else "degraded", database="ok", last_nightly=last)
    return JSONResponse(body.model_dump(mode="json"), status_code=200)
