"""Admin: API keys (created, listed without secrets, revoked)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from api.deps import Admin, SessionDep
from api.errors import NotFound, Unprocessable
from api.schemas import PROTECTED, KeyCreate, KeyCreated, KeyPublic, RowId
from api.security import create_key, revoke
from api.tables import ApiKeyRow, TechnicianRow

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=PROTECTED)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def new_key(body: KeyCreate, session: SessionDep, _: Admin) -> KeyCreated:
    with session.begin():
        if body.technician_id is not None and session.get(TechnicianRow, body.technician_id) is None:
            raise Unprocessable(["body", "technician_id"], f"no technician {body.technician_id!r}")
        row, key = create_key(session, role=body.role, technician_id=body.technician_id, label=body.label)
        public = KeyPublic.model_validate(row, from_attributes=True)
    return KeyCreated(**public.model_dump(), key=key)


@router.get("", response_model=list[KeyPublic])
def list_keys(session: SessionDep, _: Admin) -> list[KeyPublic]:
    rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
    return [KeyPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: RowId, session: SessionDep, _: Admin) -> Response:
    with session.begin():
        if not revoke(session, key_id):
            raise NotFound(f"no active key {key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
