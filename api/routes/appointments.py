"""Appointments: offer a customer graded arrival windows, hold one, book it, move or cancel it.

Dispatchers and the `booking` role (a call-centre agent's key) may use these; nothing else is open
to a booking key. A booked window is a promise: every later re-plan keeps the visit inside it (only
a dispatcher breaks one, `DELETE /v1/requests/{id}/promise`, with a notice).
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, status
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, booking, idempotency, lifecycle, roads, store
from api.context import Service
from api.deps import ServiceDep, SessionDep, require
from api.errors import Conflict, NotFound, Unprocessable
from api.geocode import geocode
from api.routes.requests import known_technicians
from api.schemas import (
    PROTECTED,
    AppointmentCancelled,
    BookingCreate,
    BookingPublic,
    HoldCreate,
    HoldPublic,
    SlotOffer,
    SlotsAnswer,
    SlotsRequest,
)
from api.security import Principal, Role
from api.tables import CurrentPlanRow, HoldRow, RequestRow, TechnicianRow
from models import Horizon, Job, JobStatus, ReasonCode, Route
from optimizer.slots import Placement, SlotQuery, SlotUnavailable, without_visit

router = APIRouter(prefix="/v1/appointments", tags=["appointments"], responses=PROTECTED)
Booker = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.ADMIN, Role.BOOKING))]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=255, description="repeat a booking safely: same key, same answer"
    ),
]
#: Requests in these states have no appointment to give: the visit is under way or over.
SETTLED = (JobStatus.IN_PROGRESS, JobStatus.DONE, JobStatus.CANCELLED)


def _request(session: Session, request_id: str) -> RequestRow:
    row = session.get(RequestRow, request_id)
    if row is None:
        raise NotFound(f"no request {request_id!r}")
    if JobStatus(row.status) in SETTLED:
        raise Conflict(f"request {request_id!r} is {row.status}; it takes no appointment")
    return row


@router.post("/slots", response_model=SlotsAnswer)
def slots(body: SlotsRequest, session: SessionDep, service: ServiceDep, _: Booker) -> SlotsAnswer:
    """The best arrival windows for a new job or an open request, graded, priced and explained;
    and the earliest windows not offered, with why. Each slot's `slot_token` holds or books it."""
    now = service.now()
    with session.begin():
        request_id: str | None = None
        address: str | None = None
        contact: dict[str, Any] | None = None
        if body.request_id is not None:
            row = _request(session, body.request_id)
            job = Job.model_validate(row.spec)  # without its current promise: the question is a new one
            request_id = row.id
        else:
            assert body.job is not None
            given = body.job
            if given.id is not None and session.get(RequestRow, given.id) is not None:
                raise Conflict(f"request {given.id!r} exists; ask with `request_id`")
            known_technicians(session, given, ["body", "job"])
            address = given.address
            contact = given.contact.model_dump(mode="json", exclude_none=True) if given.contact else None
            location = given.location or geocode(
                session, service.settings, given.address or "", ["body", "job", "address"]
            )
            data = given.model_dump(exclude={"address", "external_id", "location", "id", "contact"})
            job = Job.model_validate(
                {
                    **data,
                    "id": given.id or f"A-{secrets.token_hex(5).upper()}",
                    "location": location.model_dump(),
                }
            )
        for name in ("crew_size", "max_days"):
            if getattr(job, name) > 1:
                where: list[str | int] = (
                    ["body", "job", name] if body.job is not None else ["body", "request_id"]
                )
                raise Unprocessable(
                    where,
                    "slots are offered for single visits; a crew or a job over several days is planned by "
                    "the dispatcher (POST /v1/requests, then a re-plan)",
                )
        horizon = booking.horizon_for(service, body.days)
        holds = booking.active_holds(session, now, but=[job.id])
        board = booking.board(
            session, service, horizon=horizon, now=now, exclude=request_id, holds=holds, place=job.location
        )
        query = SlotQuery(
            job=job,
            window_minutes=body.window_minutes,
            earliest=body.earliest,
            latest=body.latest,
            max_slots=body.max_slots,
            preferences=body.preferences,
        )
        with board.lock:
            board.ask(query, now)
            answer = board.answer()
        expires = now + timedelta(minutes=service.settings.slot_token_minutes)
        spec = job.model_dump(mode="json", exclude={"appointment"})
        offers = [
            SlotOffer(
                **slot.model_dump(),
                slot_token=booking.sign(
                    session,
                    booking.SlotPayload(
                        job=spec,
                        address=address,
                        contact=contact,
                        request_id=request_id,
                        start=slot.start,
                        end=slot.end,
                        technician_id=slot.technician_id,
                        expires_at=expires,
                    ),
                ),
            )
            for slot in answer.slots
        ]
    return SlotsAnswer(
        job_id=job.id, request_id=request_id, slots=offers, not_offered=answer.not_offered, expires_at=expires
    )


def _placed(
    session: Session, service: Service, payload: booking.SlotPayload, *, but: list[str], exclude: str | None
) -> tuple[Job, Placement]:
    """The slot against the plan as it is now (inside the plan-write lock): 409 when gone."""
    job = Job.model_validate(payload.job)
    day = payload.start.astimezone(service.tz).date()
    holds = booking.active_holds(session, service.now(), but=[job.id, *but])
    board = booking.board(
        session,
        service,
        horizon=Horizon(start=day, days=1),
        now=service.now(),
        exclude=exclude,
        holds=holds,
        place=job.location,
    )
    with board.lock:
        board.ask(SlotQuery(job=job), service.now())
        try:
            return job, board.place(payload.start, payload.end, payload.technician_id)
        except SlotUnavailable as gone:
            when = booking.local_window(payload.start, payload.end, service.tz)
            raise Conflict(
                f"the slot {when} can no longer be kept: {gone.detail}", code=gone.reason.value
            ) from None


def _booked(
    request_id: str, payload: booking.SlotPayload, placement: Placement, version: int
) -> BookingPublic:
    return BookingPublic(
        request_id=request_id,
        job_id=request_id,
        start=payload.start,
        end=payload.end,
        date=placement.route.date,
        plan_version=version,
        planned_technician_id=placement.route.technician_id,
        pushed_out=placement.pushed_out,
    )


@router.post("/holds", status_code=status.HTTP_201_CREATED, response_model=HoldPublic)
def hold(body: HoldCreate, session: SessionDep, service: ServiceDep, who: Booker) -> HoldPublic:
    """Hold the chosen slot while the customer decides: its capacity is offered to nobody else until
    `expires_at`. A new hold for the same job replaces the previous one."""
    now = service.now()
    with session.begin():
        booking.lock_plan(session, now)
        payload = booking.verify(session, body.slot_token, now, ["body", "slot_token"])
        job_id = str(payload.job["id"])
        mine = [h.token for h in booking.active_holds(session, now) if h.job_id == job_id]
        _placed(session, service, payload, but=mine, exclude=payload.request_id)
        for token in mine:
            row = session.get(HoldRow, token)
            if row is not None:
                row.expires_at = now  # superseded: only the chosen slot is held
        row = HoldRow(
            token=booking.new_hold_token(),
            job_id=job_id,
            request_id=payload.request_id,
            spec=payload.job,
            address=payload.address,
            contact=payload.contact,
            start=payload.start,
            end=payload.end,
            technician_id=payload.technician_id,
            created_at=now,
            expires_at=now + timedelta(minutes=service.settings.hold_minutes),
            created_by=audit.actor_of(who),
        )
        session.add(row)
        audit.record(session, now=now, actor=audit.actor_of(who), action="slot.held", subject=job_id)
    return HoldPublic(hold_token=row.token, expires_at=row.expires_at, start=row.start, end=row.end)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingPublic,
    responses={409: {"description": "the slot can no longer be kept, the hold expired, or it is taken"}},
)
def book(
    body: BookingCreate,
    session: SessionDep,
    service: ServiceDep,
    who: Booker,
    idempotency_key: IdemKey = None,
) -> Any:
    """Book a slot (or a held slot): the request gets the window as a confirmed appointment and is
    placed in the current plan at once (a new plan version of that day)."""
    scope = f"POST /v1/appointments key {who.key_id}"
    digest = idempotency.body_hash(body.model_dump(mode="json"))

    def make() -> Any:
        now = service.now()
        booking.lock_plan(session, now)
        replayed = idempotency.replay(session, key=idempotency_key, scope=scope, digest=digest)
        if replayed is not None:  # a twin with this key booked while this call waited for the lock
            return replayed
        held: HoldRow | None = None
        if body.hold_token is not None:
            held = session.get(HoldRow, body.hold_token)
            if held is None:
                raise Conflict("no such hold; hold a slot first, or book its slot_token")
            if held.consumed_at is not None:
                raise Conflict("this hold was booked already")
            if held.expires_at <= now:
                raise Conflict(f"the hold expired at {held.expires_at.astimezone(service.tz):%H:%M:%S}")
            payload = booking.SlotPayload(
                job=held.spec,
                address=held.address,
                contact=held.contact,
                request_id=held.request_id,
                start=held.start,
                end=held.end,
                technician_id=held.technician_id,
                expires_at=held.expires_at,
            )
        else:
            assert body.slot_token is not None
            payload = booking.verify(session, body.slot_token, now, ["body", "slot_token"])
        job_id = str(payload.job["id"])
        row = session.get(RequestRow, payload.request_id or job_id)
        if payload.request_id is not None:
            row = _request(session, payload.request_id)
            if row.promise_start is not None:
                raise Conflict(
                    f"request {row.id!r} has an appointment already; move it: PATCH /v1/appointments/{row.id}"
                )
        elif row is not None:
            raise Conflict(f"request {job_id!r} exists: this slot was booked already")
        job, placement = _placed(
            session, service, payload, but=[held.token] if held else [], exclude=payload.request_id
        )
        if row is None:
            row = RequestRow(
                id=job.id,
                status=JobStatus.OPEN.value,
                spec=job.model_dump(mode="json", exclude={"appointment"}),
                address=payload.address,
                contact=payload.contact,
                reason=ReasonCode.NOT_PLANNED_YET.value,
                reason_detail="booked",
            )
            session.add(row)
        booking.promise(row, payload.start, payload.end)
        session.flush()
        version = booking.write_routes(
            session,
            service,
            changes={(placement.route.technician_id, placement.route.date): placement.route},
            left_out={
                x: (ReasonCode.CAPACITY, f"gave way to the appointment booked for {job.id}")
                for x in placement.pushed_out
            },
            trigger="booking",
        )
        if held is not None:
            held.consumed_at = now
        audit.record(
            session,
            now=now,
            actor=audit.actor_of(who),
            action="appointment.booked",
            subject=job.id,
            window=booking.local_window(payload.start, payload.end, service.tz),
            plan_version=version.id,
            pushed_out=placement.pushed_out,
        )
        return jsonable_encoder(_booked(row.id, payload, placement, version.id))

    return idempotency.answer_once(
        session,
        key=idempotency_key,
        scope=scope,
        digest=digest,
        status_code=201,
        make=make,
        conflict="this slot was booked concurrently",
    )


def _visit_removed(
    session: Session, service: Service, row: RequestRow
) -> dict[tuple[str, date], Route | None]:
    """The routes technicians see from today on that hold this request's visit, with it taken out."""
    out: dict[tuple[str, date], Route | None] = {}
    pointers = session.scalars(
        select(CurrentPlanRow).where(CurrentPlanRow.date >= service.today()).order_by(CurrentPlanRow.date)
    )
    for pointer in pointers:
        for route_row in store.routes_of(session, version_id=pointer.shown_version_id, day=pointer.date):
            if not any(v.job_id == row.id for v in route_row.visits):
                continue
            route = store.route_model(route_row, service.tz)
            ids = [v.job_id for v in route.visits]
            points = {
                r.id: store.job_model(r).location
                for r in session.scalars(select(RequestRow).where(RequestRow.id.in_(ids)))
            }
            tech_row = session.get(TechnicianRow, route.technician_id)
            assert tech_row is not None
            tech = store.technician_model(tech_row)
            # Measured with the travel times the service plans with (road times when configured).
            places = roads.places([tech], [], list(points.values()))
            travel, _ = roads.for_service(service.settings, places, roads.uploaded(session))
            out[(route.technician_id, route.date)] = without_visit(route, row.id, tech, points, travel)
    return out


@router.patch("/{request_id}", response_model=BookingPublic)
def move(
    request_id: str, body: HoldCreate, session: SessionDep, service: ServiceDep, who: Booker
) -> BookingPublic:
    """Move an appointment to another offered slot (ask for slots with `request_id` first): the old
    window is released and its capacity offered again."""
    now = service.now()
    with session.begin():
        booking.lock_plan(session, now)
        payload = booking.verify(session, body.slot_token, now, ["body", "slot_token"])
        if payload.request_id != request_id:
            raise Conflict(
                f"this slot was offered for {payload.request_id or 'a new request'}, not {request_id!r}"
            )
        row = _request(session, request_id)
        if row.promise_start is None or row.promise_end is None:
            raise Conflict(
                f"request {request_id!r} has no appointment to move; book one with POST /v1/appointments"
            )
        was = booking.local_window(row.promise_start, row.promise_end, service.tz)
        changes = _visit_removed(session, service, row)
        job, placement = _placed(session, service, payload, but=[], exclude=request_id)
        changes[(placement.route.technician_id, placement.route.date)] = placement.route
        booking.promise(row, payload.start, payload.end)
        session.flush()
        version = booking.write_routes(
            session,
            service,
            changes=changes,
            left_out={
                x: (ReasonCode.CAPACITY, f"gave way to the appointment moved for {job.id}")
                for x in placement.pushed_out
            },
            trigger="booking",
        )
        now_window = booking.local_window(payload.start, payload.end, service.tz)
        store.notify(
            session,
            now=now,
            audience="customer",
            kind="appointment_moved",
            subject=request_id,
            message=f"the appointment {was} is moved to {now_window}",
        )
        audit.record(
            session,
            now=now,
            actor=audit.actor_of(who),
            action="appointment.moved",
            subject=request_id,
            was=was,
            to=now_window,
        )
    return _booked(row.id, payload, placement, version.id)


@router.delete("/{request_id}", response_model=AppointmentCancelled)
def cancel(request_id: str, session: SessionDep, service: ServiceDep, who: Booker) -> AppointmentCancelled:
    """Cancel the appointment (not the request): the visit leaves the plan, its capacity is offered
    again, and the request goes back to the pool for the next re-plan."""
    now = service.now()
    with session.begin():
        booking.lock_plan(session, now)
        row = _request(session, request_id)
        if row.promise_start is None or row.promise_end is None:
            raise Conflict(f"request {request_id!r} has no appointment to cancel")
        was = booking.local_window(row.promise_start, row.promise_end, service.tz)
        booking.promise(row, None, None)
        changes = _visit_removed(session, service, row)
        version = None
        if changes:
            version = booking.write_routes(
                session,
                service,
                changes=changes,
                left_out={
                    row.id: (
                        ReasonCode.NOT_PLANNED_YET,
                        f"the appointment {was} was cancelled; back in the pool",
                    )
                },
                trigger="booking",
            )
        else:
            lifecycle.reconcile(session, today=service.today(), only=[row.id])
        store.touch_route(session, row.technician_id)
        store.notify(
            session,
            now=now,
            audience="customer",
            kind="appointment_cancelled",
            subject=request_id,
            message=f"the appointment {was} is cancelled; a new one will be agreed",
        )
        audit.record(
            session,
            now=now,
            actor=audit.actor_of(who),
            action="appointment.cancelled",
            subject=request_id,
            was=was,
        )
    return AppointmentCancelled(
        request_id=row.id, status=JobStatus(row.status), plan_version=version.id if version else None
    )
