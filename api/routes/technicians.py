"""Dispatcher: technicians and their shifts; deactivating a technician."""

from __future__ import annotations

from contextlib import suppress
from datetime import date

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from api import audit, maintenance, store
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.errors import Conflict, NotFound, ReplanInProgress, Unprocessable
from api.replan_job import nightly_horizon, start_run
from api.schemas import PROTECTED, TechnicianPatch, TechnicianPublic
from api.tables import ShiftRow, TechnicianRow
from models import Shift, Technician
from models.availability import Availability, ShiftException

router = APIRouter(prefix="/v1/technicians", tags=["technicians"], responses=PROTECTED)


def _public(row: TechnicianRow, replan_run_id: int | None = None) -> TechnicianPublic:
    tech = store.technician_model(row, with_availability=True)
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
        _derive(session, service, row)
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
        _derive(session, service, row)
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
    """Add one shift (409 when that day already has a typed one; a shift derived from the template is
    replaced, and a dated exception of the template on that day wins over both)."""
    with session.begin():
        row = _row(session, technician_id)
        existing = next((s for s in row.shifts if s.date == body.date), None)
        if existing is not None and existing.source == "typed":
            raise Conflict(f"{technician_id} already has a shift on {body.date}; DELETE it first")
        if existing is not None:
            row.shifts.remove(existing)
            session.flush()
        row.shifts.append(
            ShiftRow(date=body.date, start=f"{body.start:%H:%M}", end=f"{body.end:%H:%M}", source="typed")
        )
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
    """Remove one shift; the next re-plan gives that day's visits to others (or back to the pool).
    A day the availability template gives becomes an absence exception, so it stays removed."""
    with session.begin():
        row = _row(session, technician_id)
        current = store.technician_model(row, with_availability=True)
        existing = next((s for s in row.shifts if s.date == day), None)
        if existing is None:
            raise NotFound(f"{technician_id} has no shift on {day}")
        row.shifts.remove(existing)
        av = current.availability
        if av is not None and av.shift_on(day) is not None:
            absent = ShiftException(date=day, kind="absence", note="shift removed")
            kept = [e for e in av.exceptions if e.date != day]
            _set_availability(row, current, av.model_copy(update={"exceptions": [*kept, absent]}))
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
        current = store.technician_model(row, with_availability=True)
        updated = Technician.model_validate(
            {**current.model_dump(), "shifts": [s.model_dump() for s in body]}
        )
        store.replace_shifts(session, row, updated.shifts)
        _derive(session, service, row)
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


def _set_availability(row: TechnicianRow, current: Technician, availability: Availability | None) -> None:
    row.spec = current.model_copy(update={"availability": availability}).model_dump(
        mode="json", exclude={"shifts"}
    )


def _derive(session: Session, service: ServiceDep, row: TechnicianRow) -> None:
    """The coming weeks' shifts from the technician's template (nothing without one). A shift sent
    that is just what the template gives that day stays the template's (a GET sent back as a PUT
    must not freeze the template's days against its later changes)."""
    av = store.technician_model(row, with_availability=True).availability
    if av is not None:
        for shift in row.shifts:
            given = av.shift_on(shift.date)
            if given is not None and (f"{given[0]:%H:%M}", f"{given[1]:%H:%M}") == (shift.start, shift.end):
                shift.source = "template"
    session.flush()
    maintenance.derive_shifts(row, today=service.today(), weeks=service.settings.maintenance_weeks)


def _availability_changed(
    session: Session, service: ServiceDep, row: TechnicianRow, who: Dispatcher, action: str, **detail: object
) -> None:
    _derive(session, service, row)
    audit.record(
        session, now=service.now(), actor=audit.actor_of(who), action=action, subject=row.id, **detail
    )


@router.put("/{technician_id}/availability", response_model=TechnicianPublic)
def put_availability(
    technician_id: str, body: Availability, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Set the weekly shift template (with its exceptions and holiday region): the shifts of the next
    `maintenance_weeks` weeks are derived from it at once, and every night further on."""
    with session.begin():
        row = _row(session, technician_id)
        _set_availability(row, store.technician_model(row, with_availability=True), body)
        _availability_changed(session, service, row, who, "availability.replaced")
    return _public(row)


@router.delete("/{technician_id}/availability", response_model=TechnicianPublic)
def remove_availability(
    technician_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """Drop the template: shifts derived from it from today on go, typed shifts stay."""
    with session.begin():
        row = _row(session, technician_id)
        _set_availability(row, store.technician_model(row, with_availability=True), None)
        for shift in [s for s in row.shifts if s.source == "template" and s.date >= service.today()]:
            row.shifts.remove(shift)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="availability.removed",
            subject=technician_id,
        )
    return _public(row)


@router.post(
    "/{technician_id}/exceptions", response_model=TechnicianPublic, status_code=status.HTTP_201_CREATED
)
def add_exception(
    technician_id: str, body: ShiftException, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    """An absence, a holiday, or a changed or extra shift on one date (409 if that date has one)."""
    with session.begin():
        row = _row(session, technician_id)
        current = store.technician_model(row, with_availability=True)
        if current.availability is None:
            raise Conflict(f"{technician_id} has no availability template; PUT one first")
        if any(e.date == body.date for e in current.availability.exceptions):
            raise Conflict(f"{technician_id} already has an exception on {body.date}; DELETE it first")
        av = current.availability.model_copy(update={"exceptions": [*current.availability.exceptions, body]})
        _set_availability(row, current, Availability.model_validate(av.model_dump()))
        _availability_changed(session, service, row, who, "exception.added", date=body.date.isoformat())
    return _public(row)


@router.delete("/{technician_id}/exceptions/{day}", response_model=TechnicianPublic)
def remove_exception(
    technician_id: str, day: date, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> TechnicianPublic:
    with session.begin():
        row = _row(session, technician_id)
        current = store.technician_model(row, with_availability=True)
        av = current.availability
        if av is None or not any(e.date == day for e in av.exceptions):
            raise NotFound(f"{technician_id} has no exception on {day}")
        kept = [e for e in av.exceptions if e.date != day]
        _set_availability(row, current, av.model_copy(update={"exceptions": kept}))
        _availability_changed(session, service, row, who, "exception.removed", date=day.isoformat())
    return _public(row)
