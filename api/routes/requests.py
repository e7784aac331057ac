"""Dispatcher: service requests, one by one or in bulk, idempotent; cancelling."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, idempotency, lifecycle, store
from api.deps import Dispatcher, ServiceDep, SessionDep
from api.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from api.geocode import geocode
from api.schemas import (
    PROTECTED,
    BulkItem,
    BulkRequestsCreate,
    BulkResult,
    Contact,
    Promise,
    ServiceRequestCreate,
    ServiceRequestPublic,
)
from api.settings import Settings
from api.tables import AssetRow, RequestRow, TechnicianRow
from models import Job, JobStatus, ReasonCode
from models.common import duplicates
from models.expand import with_asset_warranty
from models.maintenance import Asset

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
        reason=row.reason,
        reason_detail=row.reason_detail,
        promise=Promise(start=row.promise_start, end=row.promise_end)
        if row.promise_start is not None and row.promise_end is not None
        else None,
        visit_status=row.visit_status,  # type: ignore[arg-type]
        failure_reason=row.failure_reason,
        failures=row.failures,
        contact=Contact.model_validate(row.contact) if row.contact else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def known_technicians(session: Session, job: Job | ServiceRequestCreate, loc: list[str | int]) -> None:
    """The same rule as a scenario file: a pinned, preferred or excluded technician must exist."""
    named: list[tuple[list[str | int], str]] = []
    if job.pinned is not None:
        named.append(([*loc, "pinned", "technician_id"], job.pinned.technician_id))
    for field in ("preferred_technicians", "excluded_technicians"):
        named += [([*loc, field, i], tid) for i, tid in enumerate(getattr(job, field))]
    if not named:
        return
    ids = {t for _, t in named}
    known = set(session.scalars(select(TechnicianRow.id).where(TechnicianRow.id.in_(ids))))
    for where, tid in named:
        if tid not in known:
            raise Unprocessable(where, f"unknown technician {tid!r}")


def known_links(
    session: Session, job: Job | ServiceRequestCreate, loc: list[str | int], also: Collection[str] = ()
) -> None:
    """A link names an existing request (or one of the same batch), unless it says when and by whom
    the linked job was done (a job from before fieldplan)."""
    for name, link, given in (
        ("after", job.after, job.after.done_on if job.after else None),
        (
            "same_technician_as",
            job.same_technician_as,
            job.same_technician_as.technician_id if job.same_technician_as else None,
        ),
    ):
        if link is None or given is not None or link.job_id in also:
            continue
        if session.get(RequestRow, link.job_id) is None:
            raise Unprocessable(
                [*loc, name, "job_id"],
                f"unknown request {link.job_id!r}; create it first, or say when (done_on) or by whom "
                "(technician_id) it was done",
            )


def to_row(
    session: Session,
    settings: Settings,
    body: ServiceRequestCreate,
    loc: list[str | int],
    today: date,
    batch: Collection[str] = (),
) -> RequestRow:
    known_technicians(session, body, loc)
    known_links(session, body, loc, batch)
    location = body.location or geocode(session, settings, body.address or "", [*loc, "address"])
    data = body.model_dump(exclude={"address", "external_id", "location", "contact"})
    job = Job.model_validate({**data, "location": location.model_dump()})
    if job.asset_id is not None:
        asset = session.get(AssetRow, job.asset_id)
        if asset is None:
            raise Unprocessable([*loc, "asset_id"], f"unknown asset {job.asset_id!r}; POST /v1/assets first")
        # The asset's warranty date decides, whatever flag was typed (on the day it is reported).
        job = with_asset_warranty(job, Asset.model_validate(asset.spec), today)
    return RequestRow(
        id=job.id,
        external_id=body.external_id,
        status=JobStatus.OPEN.value,
        spec=job.model_dump(mode="json", exclude={"appointment"}),
        address=body.address,
        reason=ReasonCode.NOT_PLANNED_YET.value,
        reason_detail="not planned yet",
        promise_start=job.appointment.start if job.appointment else None,
        promise_end=job.appointment.end if job.appointment else None,
        contact=body.contact.model_dump(mode="json", exclude_none=True) if body.contact else None,
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
        row = to_row(session, service.settings, body, ["body"], service.today())
        session.add(row)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(principal),
            action="request.created",
            subject=row.id,
        )
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
            session.add(to_row(session, service.settings, req, ["body", "requests", i], service.today(), ids))
            items.append(BulkItem(id=req.id, outcome="created"))
        created = sum(it.outcome == "created" for it in items)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(principal),
            action="requests.created",
            subject=f"{created} requests",
            ids=[it.id for it in items if it.outcome == "created"][:100],
        )
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
def cancel_request(
    request_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> ServiceRequestPublic:
    """Cancel: the request leaves planning; a technician who had it on a route sees it cancelled."""
    with session.begin():
        row = session.get(RequestRow, request_id)
        if row is None:
            raise NotFound(f"no request {request_id!r}")
        if not lifecycle.can_move(JobStatus(row.status), JobStatus.CANCELLED):
            raise Conflict(f"request {request_id!r} is {row.status}; it cannot be cancelled")
        holder = row.technician_id
        lifecycle.move(row, JobStatus.CANCELLED)
        row.promise_start = row.promise_end = None
        store.touch_route(session, holder)
        audit.record(
            session,
            now=service.now(),
            actor=audit.actor_of(who),
            action="request.cancelled",
            subject=request_id,
        )
    return public(row)


@router.delete("/{request_id}/promise", response_model=ServiceRequestPublic)
def break_promise(
    request_id: str, session: SessionDep, service: ServiceDep, who: Dispatcher
) -> ServiceRequestPublic:
    """Break the promise made to the customer (only a dispatcher can): the next re-plan may move the
    visit to any day and time; the customer is to be told (a notice is recorded)."""
    with session.begin():
        row = session.get(RequestRow, request_id)
        if row is None:
            raise NotFound(f"no request {request_id!r}")
        if row.promise_start is None:
            raise Conflict(f"request {request_id!r} has no promise to break")
        start, end = (
            row.promise_start.astimezone(service.tz),
            (row.promise_end or row.promise_start).astimezone(service.tz),
        )
        was = f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"
        row.promise_start = row.promise_end = None
        store.notify(
            session,
            now=service.now(),
            audience="customer",
            kind="promise_withdrawn",
            subject=request_id,
            message=f"the appointment promised for {was} is withdrawn; a new one will be agreed",
        )
        audit.record(
            session, now=service.now(), actor=audit.actor_of(who), action="promise.broken", subject=request_id
        )
    return public(row)
