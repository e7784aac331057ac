"""Dispatcher: technicians and their shifts; deactivating a technician."""

from __future__ import annotations

from contextlib import suppress
from datetime import date

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from api import audit, store
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.errors import Conflict, NotFound, ReplanInProgress, Unprocessable
from api.replan_job import nightly_horizon, start_run
from api.schemas import PROTECTED, TechnicianPatch, TechnicianPublic
from api.tables import TechnicianRow
from models import Shift, Technician

router = APIRouter(prefix="/v1/technicians", tags=["technicians"], responses=PROTECTED)


def _public(row: TechnicianRow, replan_run_id: int | None = None) -> TechnicianPublic:
    tech = store.technician_model(row)
    return TechnicianPublic(**tech.model_dump(), active=row.active, replan_run_id=replan_run_id)


def _row(session: Session, technician_id: str) -> TechnicianRow:
    row = session.get(TechnicianRow, technician_id)
    if row is None:
        raise NotFound(f"no technician {technician_id!r}")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TechnicianPublic)
def create_technician(
    body: Technician, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    with session.begin():
        if session.get(TechnicianRow, body.id) is not None:
            raise Conflict(f"technician {body.id!r} exists; use PUT /v1/technicians/{body.id} to change it")
        row = store.put_technician(session, body)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="technician.created",
            subject=body.id,
        )
    return _public(row)


@router.put("/{technician_id}", response_model=TechnicianPublic)
def put_technician(
    technician_id: str, body: Technician, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Replace a technician's details and shifts (`active` is unchanged: PATCH changes it)."""
    if body.id != technician_id:
        raise Unprocessable(["body", "id"], f"id {body.id!r} differs from the path's {technician_id!r}")
    with session.begin():
        row = store.put_technician(session, body)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="technician.replaced",
            subject=body.id,
        )
    return _public(row)


@router.patch("/{technician_id}", response_model=TechnicianPublic)
def patch_technician(
    technician_id: str, body: TechnicianPatch, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Deactivate (or reactivate) a technician. While inactive their keys stop working and a re-plan
    starts at once: their visits not yet started go back to planning (a proposal, for published days)."""
    with session.begin():
        row = _row(session, technician_id)
        changed = row.active != body.active
        row.active = body.active
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="technician.activated" if body.active else "technician.deactivated",
            subject=technician_id,
        )
    run_id = None
    if changed:
        # When a re-plan is running already, it notices the change and rebases on it.
        with suppress(ReplanInProgress):
            run_id = start_run(service, trigger="technician-change", horizon=nightly_horizon(service))
    return _public(row, run_id)


@router.post("/{technician_id}/shifts", response_model=TechnicianPublic, status_code=status.HTTP_201_CREATED)
def add_shift(
    technician_id: str, body: Shift, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Add one shift (409 when that day already has one)."""
    with session.begin():
        row = _row(session, technician_id)
        current = store.technician_model(row)
        if any(s.date == body.date for s in current.shifts):
            raise Conflict(f"{technician_id} already has a shift on {body.date}; DELETE it first")
        store.replace_shifts(session, row, sorted([*current.shifts, body], key=lambda s: s.date))
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="shift.added",
            subject=technician_id,
            date=body.date.isoformat(),
        )
    return _public(row)


@router.delete("/{technician_id}/shifts/{day}", response_model=TechnicianPublic)
def remove_shift(
    technician_id: str, day: date, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Remove one shift; the next re-plan gives that day's visits to others (or back to the pool)."""
    with session.begin():
        row = _row(session, technician_id)
        current = store.technician_model(row)
        if not any(s.date == day for s in current.shifts):
            raise NotFound(f"{technician_id} has no shift on {day}")
        store.replace_shifts(session, row, [s for s in current.shifts if s.date != day])
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="shift.removed",
            subject=technician_id,
            date=day.isoformat(),
        )
    return _public(row)


@router.put("/{technician_id}/shifts", response_model=TechnicianPublic)
def put_shifts(
    technician_id: str, body: list[Shift], session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Replace all of a technician's shifts."""
    with session.begin():
        row = _row(session, technician_id)
        current = store.technician_model(row)
        updated = Technician.model_validate(
            {**current.model_dump(), "shifts": [s.model_dump() for s in body]}
        )
        store.replace_shifts(session, row, updated.shifts)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="shifts.replaced",
            subject=technician_id,
        )
    return _public(row)


@router.get("", response_model=list[TechnicianPublic])
def list_technicians(session: SessionDep, _: Dispatcher) -> list[TechnicianPublic]:
    return [_public(r) for r in store.technicians(session, active_only=False)]


@router.get("/{technician_id}", response_model=TechnicianPublic)
def get_technician(technician_id: str, session: SessionDep, _: Dispatcher) -> TechnicianPublic:
    return _public(_row(session, technician_id))
