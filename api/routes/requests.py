"""Dispatcher: service requests, one by one or in bulk, idempotent; cancelling."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import idempotency
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from api.geocode import geocode
from api.schemas import (
    PROTECTED,
    BulkItem,
    BulkRequestsCreate,
    BulkResult,
    ServiceRequestCreate,
    ServiceRequestPublic,
)
from api.settings import Settings
from api.tables import RequestRow
from models import Job, JobStatus
from models.common import duplicates

router = APIRouter(prefix="/v1/requests", tags=["service requests"], responses=PROTECTED)
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=255, description="repeat a POST safely: same key, same answer"
    ),
]


def public(row: RequestRow) -> ServiceRequestPublic:
    return ServiceRequestPublic(
        id=row.id,
        external_id=row.external_id,
        status=JobStatus(row.status),
        job=Job.model_validate(row.spec),
        address=row.address,
        technician_id=row.technician_id,
        planned_date=row.planned_date,
        visit_status=row.visit_status,  # type: ignore[arg-type]
        failure_reason=row.failure_reason,
        failures=row.failures,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _to_row(
    session: Session, settings: Settings, body: ServiceRequestCreate, loc: list[str | int]
) -> RequestRow:
    location = body.location or geocode(session, settings, body.address or "", [*loc, "address"])
    data = body.model_dump(exclude={"address", "external_id", "location"})
    job = Job.model_validate({**data, "location": location.model_dump()})
    return RequestRow(
        id=job.id,
        external_id=body.external_id,
        status=JobStatus.OPEN.value,
        spec=job.model_dump(mode="json"),
        address=body.address,
    )


def _existing(session: Session, body: ServiceRequestCreate) -> RequestRow | None:
    if body.external_id is not None:
        row = session.scalar(select(RequestRow).where(RequestRow.external_id == body.external_id))
        if row is not None:
            return row
    return None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ServiceRequestPublic,
    responses={200: {"description": "repeat of an earlier POST (same `external_id`)"}},
)
def create_request(
    body: ServiceRequestCreate,
    session: SessionDep,
    service: ServiceDep,
    principal: Dispatcher,
    idempotency_key: IdemKey = None,
) -> Any:
    scope = f"POST /v1/requests key {principal.key_id}"
    digest = idempotency.body_hash(body.model_dump(mode="json"))

    def make() -> Any:
        existing = _existing(session, body)
        if existing is not None:
            return JSONResponse(jsonable_encoder(public(existing)), status_code=200)
        if session.get(RequestRow, body.id) is not None:
            # A twin with the same key may have committed between the replay check and now.
            replayed = idempotency.replay(session, key=idempotency_key, scope=scope, digest=digest)
            if replayed is not None:
                return replayed
            raise Conflict(f"request {body.id!r} exists; give a new id or repeat with its external_id")
        row = _to_row(session, service.settings, body, ["body"])
        session.add(row)
        session.flush()
        return jsonable_encoder(public(row))

    return idempotency.answer_once(
        session,
        key=idempotency_key,
        scope=scope,
        digest=digest,
        status_code=201,
        make=make,
        conflict=f"request {body.id!r} was created concurrently",
    )


@router.post("/bulk", response_model=BulkResult, status_code=status.HTTP_200_OK)
def create_requests_bulk(
    body: BulkRequestsCreate,
    session: SessionDep,
    service: ServiceDep,
    principal: Dispatcher,
    idempotency_key: IdemKey = None,
) -> Any:
    """All or nothing: every request is valid (and geocoded) or none is stored."""
    limit = service.settings.max_bulk_requests
    if len(body.requests) > limit:
        raise PayloadTooLarge(f"{len(body.requests)} requests in one call; the limit is {limit}")
    ids = [r.id for r in body.requests]
    if dup := duplicates(ids):
        raise Unprocessable(
            ["body", "requests"], f"duplicate id(s) in one bulk request: {', '.join(dup[:10])}"
        )
    scope = f"POST /v1/requests/bulk key {principal.key_id}"
    digest = idempotency.body_hash(body.model_dump(mode="json"))

    def make() -> Any:
        known = set(session.scalars(select(RequestRow.id).where(RequestRow.id.in_(ids))))
        externals = {r.external_id for r in body.requests if r.external_id}
        known_ext = set(
            session.scalars(select(RequestRow.external_id).where(RequestRow.external_id.in_(externals)))
        )
        items: list[BulkItem] = []
        for i, req in enumerate(body.requests):
            if req.external_id in known_ext:
                items.append(BulkItem(id=req.id, outcome="existing"))
                continue
            if req.id in known:
                raise Conflict(f"requests[{i}]: request {req.id!r} exists; give a new id or an external_id")
            session.add(_to_row(session, service.settings, req, ["body", "requests", i]))
            items.append(BulkItem(id=req.id, outcome="created"))
        created = sum(it.outcome == "created" for it in items)
        return jsonable_encoder(BulkResult(created=created, existing=len(items) - created, items=items))

    return idempotency.answer_once(
        session,
        key=idempotency_key,
        scope=scope,
        digest=digest,
        status_code=200,
        make=make,
        conflict="some of these requests were created concurrently; repeat the call",
    )


@router.get("", response_model=list[ServiceRequestPublic])
def list_requests(
    session: SessionDep,
    _: Dispatcher,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> list[ServiceRequestPublic]:
    query = select(RequestRow).order_by(RequestRow.created_at, RequestRow.id).limit(limit).offset(offset)
    if status_ is not None:
        query = query.where(RequestRow.status == status_.value)
    return [public(r) for r in session.scalars(query)]


@router.get("/{request_id}", response_model=ServiceRequestPublic)
def get_request(request_id: str, session: SessionDep, _: Dispatcher) -> ServiceRequestPublic:
    row = session.get(RequestRow, request_id)
    if row is None:
        raise NotFound(f"no request {request_id!r}")
    return public(row)


@router.post("/{request_id}/cancel", response_model=ServiceRequestPublic)
def cancel_request(request_id: str, session: SessionDep, _: Dispatcher) -> ServiceRequestPublic:
    with session.begin():
        row = session.get(RequestRow, request_id)
        if row is None:
            raise NotFound(f"no request {request_id!r}")
        if row.status == JobStatus.DONE:
            raise Conflict(f"request {request_id!r} is done; it cannot be cancelled")
        row.status = JobStatus.CANCELLED.value
    return public(row)
