"""Dispatcher: travel times of one's own (a matrix by place) that replace computed ones."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from api import audit
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.errors import NotFound
from api.schemas import PROTECTED
from api.tables import TravelMatrixRow
from models import TravelMatrix

router = APIRouter(prefix="/v1/travel", tags=["travel"], responses=PROTECTED)


class MatrixStored(BaseModel):
    places: int
    source: str


@router.put("/matrix", response_model=MatrixStored)
def put_matrix(body: TravelMatrix, session: SessionDep, service: ServiceDep, who: Dispatcher) -> MatrixStored:
    """Upload travel times between places (minutes, optionally km; one-way allowed). From the next
    re-plan or slot question on they replace the computed times (great-circle or road) for every
    pair of places they cover; other pairs keep the computed times."""
    with session.begin():
        row = session.get(TravelMatrixRow, "current")
        spec = body.model_dump(mode="json")
        if row is None:
            session.add(TravelMatrixRow(name="current", spec=spec, updated_at=service.now()))
        else:
            row.spec, row.updated_at = spec, service.now()
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="travel.matrix.put",
            subject="travel matrix",
            places=len(body.locations),
        )
    return MatrixStored(places=len(body.locations), source=body.source)


@router.get("/matrix", response_model=TravelMatrix)
def get_matrix(session: SessionDep, _: Dispatcher) -> TravelMatrix:
    row = session.get(TravelMatrixRow, "current")
    if row is None:
        raise NotFound("no travel matrix uploaded; PUT one to /v1/travel/matrix")
    return TravelMatrix.model_validate(row.spec)


@router.delete("/matrix", status_code=status.HTTP_204_NO_CONTENT)
def delete_matrix(session: SessionDep, service: ServiceDep, who: Dispatcher) -> Response:
    with session.begin():
        row = session.get(TravelMatrixRow, "current")
        if row is None:
            raise NotFound("no travel matrix uploaded")
        session.delete(row)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="travel.matrix.deleted",
            subject="travel matrix",
        )
    return Response(status_code=204)
