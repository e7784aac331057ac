"""Dispatcher: technicians and their shifts."""

from __future__ import annotations

from fastapi import APIRouter, status

from api import store
from api.deps import Dispatcher, SessionDep
from api.errors import Conflict, NotFound, Unprocessable
from api.schemas import PROTECTED, TechnicianPublic
from api.tables import TechnicianRow
from models import Shift, Technician

router = APIRouter(prefix="/v1/technicians", tags=["technicians"], responses=PROTECTED)


def _public(row: TechnicianRow) -> TechnicianPublic:
    tech = store.technician_model(row)
    return TechnicianPublic(**tech.model_dump(), active=row.active)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TechnicianPublic)
def create_technician(body: Technician, session: SessionDep, _: Dispatcher) -> TechnicianPublic:
    with session.begin():
        if session.get(TechnicianRow, body.id) is not None:
            raise Conflict(f"technician {body.id!r} exists; use PUT /v1/technicians/{body.id} to change it")
        row = store.put_technician(session, body)
    return _public(row)


@router.put("/{technician_id}", response_model=TechnicianPublic)
def put_technician(
    technician_id: str, body: Technician, session: SessionDep, _: Dispatcher
) -> TechnicianPublic:
    if body.id != technician_id:
        raise Unprocessable(["body", "id"], f"id {body.id!r} differs from the path's {technician_id!r}")
    with session.begin():
        row = store.put_technician(session, body)
    return _public(row)


@router.put("/{technician_id}/shifts", response_model=TechnicianPublic)
def put_shifts(technician_id: str, body: list[Shift], session: SessionDep, _: Dispatcher) -> TechnicianPublic:
    with session.begin():
        row = session.get(TechnicianRow, technician_id)
        if row is None:
            raise NotFound(f"no technician {technician_id!r}")
        current = store.technician_model(row)
        updated = Technician.model_validate(
            {**current.model_dump(), "shifts": [s.model_dump() for s in body]}
        )
        store.replace_shifts(session, row, updated.shifts)
    return _public(row)


@router.get("", response_model=list[TechnicianPublic])
def list_technicians(session: SessionDep, _: Dispatcher) -> list[TechnicianPublic]:
    return [_public(r) for r in store.technicians(session, active_only=False)]


@router.get("/{technician_id}", response_model=TechnicianPublic)
def get_technician(technician_id: str, session: SessionDep, _: Dispatcher) -> TechnicianPublic:
    row = session.get(TechnicianRow, technician_id)
    if row is None:
        raise NotFound(f"no technician {technician_id!r}")
    return _public(row)
