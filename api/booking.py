"""Appointment booking for the service: slot tokens, holds, and a booking written into the plan.

The optimizer prices slots (`optimizer.slots`); this module gives it the plan as technicians see it
and keeps what an agent was told true:

- **Slot tokens** name one offered slot (the job, the window, the candidate technician) and are
  signed with a secret every process shares through the database, so a slot can be held or booked
  by any worker without the service remembering every offer.
- **Holds** are rows: a held window is planned like a booking in every later slot query (its
  capacity is not offered to others) until it expires or is booked. Only the chosen slot is held.
- **Bookings** take the plan-write lock (a row lock on PostgreSQL, the write lock on SQLite) as
  their first statement, re-check the slot against the plan as it is then, and write the booked
  route as a new plan version of its day in the same transaction: two agents selling the last gap
  of a day get one 201 and one 409, and a re-plan that runs meanwhile re-reads the booking
  (`replan_job` takes the same lock before it stores).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import roads, store
from api.context import Service
from api.errors import Conflict, Unprocessable
from api.tables import CurrentPlanRow, HoldRow, LockRow, PlanVersionRow, RequestRow, SecretRow
from models import (
    GeoPoint,
    Horizon,
    Job,
    Kpis,
    Plan,
    ReasonCode,
    Route,
    Scenario,
    SolverStats,
    Technician,
    Unassigned,
    Window,
    point_key,
)
from optimizer import SolveOptions
from optimizer.kpis import compute_kpis
from optimizer.replan import ReplanInput
from optimizer.slots import Hold, SlotBoard

PLAN_WRITE = "plan-write"
#: A board's clock moves in steps of this many minutes (jobs are clipped to it); exact "now" is
#: applied to each question, so no window before the real clock is ever offered.
CLOCK_STEP_MINUTES = 5
#: Boards kept per process (one per distinct plan state and horizon asked about; a 2,000-visit
#: week's board holds about 100 MB of matrices).
BOARDS_KEPT = 2


def lock_plan(session: Session, now: datetime) -> None:
    """Serialise writers of plan versions: the first statement of a booking or a stored re-plan."""
    done = session.execute(update(LockRow).where(LockRow.name == PLAN_WRITE).values(heartbeat_at=now))
    if done.rowcount == 0:  # type: ignore[attr-defined]
        session.add(LockRow(name=PLAN_WRITE, heartbeat_at=now))
        session.flush()


# --- slot tokens ---------------------------------------------------------------------------------


class SlotPayload(BaseModel):
    """What a slot token names: plain values, signed."""

    model_config = ConfigDict(extra="forbid")

    job: dict[str, Any]
    address: str | None = None
    contact: dict[str, Any] | None = None
    request_id: str | None
    start: datetime
    end: datetime
    technician_id: str | None
    expires_at: datetime


_secrets: dict[int, bytes] = {}


def _key(session: Session) -> bytes:
    bind = id(session.get_bind())
    if bind not in _secrets:
        row = session.get(SecretRow, "slot_tokens")
        if row is None:  # a database created before migration 0004 ran its insert
            row = SecretRow(name="slot_tokens", value=secrets.token_hex(32))
            session.add(row)
            session.flush()
        _secrets[bind] = bytes.fromhex(row.value)
    return _secrets[bind]


def sign(session: Session, payload: SlotPayload) -> str:
    body = base64.urlsafe_b64encode(payload.model_dump_json().encode()).rstrip(b"=")
    mac = hmac.new(_key(session), body, hashlib.sha256).digest()
    return body.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(session: Session, token: str, now: datetime, loc: list[str | int]) -> SlotPayload:
    """The payload of a token this deployment signed; 422 when it is not one, 409 when it expired."""
    body, _, mac = token.partition(".")
    try:
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        expected = hmac.new(_key(session), body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(given, expected):
            raise ValueError("bad signature")
        payload = SlotPayload.model_validate_json(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, ValidationError):
        raise Unprocessable(loc, "not a slot token of this service (ask for slots again)") from None
    if payload.expires_at <= now:
        raise Conflict("the slot offer has expired; ask for slots again")
    return payload


# --- the plan as a slot question sees it ----------------------------------------------------------


def horizon_for(service: Service, days: int | None) -> Horizon:
    from api.replan_job import working_horizon

    return working_horizon(service, service.today(), days or service.settings.horizon_working_days)


def board_clock(now: datetime) -> datetime:
    return now - timedelta(
        minutes=now.minute % CLOCK_STEP_MINUTES, seconds=now.second, microseconds=now.microsecond
    )


def load_base(
    session: Session, service: Service, horizon: Horizon, clock: datetime, extra: Sequence[GeoPoint] = ()
) -> ReplanInput:
    """Technicians, active requests and the routes technicians see: what a re-plan would read; on
    road times, the matrix covers `extra` places too (the asked job's)."""
    days = horizon.dates()
    requests = store.active_requests(session)
    techs = [store.technician_model(t) for t in store.technicians(session)]
    pool = store.pool_jobs(session, requests)
    travel, _ = roads.for_service(
        service.settings, roads.places(techs, [p.job for p in pool], extra), roads.uploaded(session)
    )
    return ReplanInput(
        name="appointment slots",
        timezone=service.settings.timezone,
        horizon=horizon,
        technicians=techs,
        pool=pool,
        previous=store.shown_routes(session, days, service.tz),
        not_before=clock,
        travel=travel,
        options=SolveOptions(),
    )


def active_holds(session: Session, now: datetime, *, but: Iterable[str] = ()) -> list[HoldRow]:
    skip = set(but)
    rows = session.scalars(
        select(HoldRow)
        .where(HoldRow.expires_at > now, HoldRow.consumed_at.is_(None))
        .order_by(HoldRow.created_at, HoldRow.token)
    )
    return [r for r in rows if r.job_id not in skip and r.token not in skip]


def as_holds(rows: list[HoldRow]) -> list[Hold]:
    out = []
    for r in rows:
        job = Job.model_validate(r.spec).model_copy(update={"appointment": Window(start=r.start, end=r.end)})
        out.append(Hold(job=job, technician_id=r.technician_id))
    return out


def state_key(
    session: Session, horizon: Horizon, holds: list[HoldRow], clock: datetime, exclude: str | None
) -> str:
    """Equal keys, equal boards: the requests, technicians, shifts, the plan pointers, the holds."""
    digest = hashlib.sha256(store.fingerprint(session).encode())
    for row in session.execute(
        select(CurrentPlanRow.date, CurrentPlanRow.plan_version_id, CurrentPlanRow.published_version_id)
        .where(CurrentPlanRow.date.in_(horizon.dates()))
        .order_by(CurrentPlanRow.date)
    ):
        digest.update(repr(tuple(row)).encode())
    digest.update(repr((horizon, [h.token for h in holds], clock.isoformat(), exclude)).encode())
    return digest.hexdigest()


def board(
    session: Session,
    service: Service,
    *,
    horizon: Horizon,
    now: datetime,
    exclude: str | None,
    holds: list[HoldRow],
    place: GeoPoint | None = None,
) -> SlotBoard:
    """The board for the plan as it stands: from the process's cache when nothing changed. On road
    times the asked job's `place` must be in the matrix, so it is part of the board (and its key)."""
    clock = board_clock(now)
    uploaded = roads.uploaded_at(session)  # the matrix itself is read only when a board is built
    on_matrix = service.settings.travel_metric != "great_circle" or uploaded is not None
    extra = [place] if place is not None and on_matrix else []
    key = state_key(session, horizon, holds, clock, exclude) + repr(([point_key(p) for p in extra], uploaded))
    with service.boards_guard:
        found = service.boards.get(key)
    if isinstance(found, SlotBoard):
        return found
    made = SlotBoard(load_base(session, service, horizon, clock, extra), as_holds(holds), exclude=exclude)
    with service.boards_guard:
        while len(service.boards) >= BOARDS_KEPT:
            service.boards.pop(next(iter(service.boards)))
        service.boards[key] = made
    return made


def planned_ids(session: Session, service: Service, horizon: Horizon) -> set[str]:
    return {v.job_id for r in store.shown_routes(session, horizon.dates(), service.tz) for v in r.visits}


# --- writing a booking into the plan --------------------------------------------------------------


#: How a notice names what wrote a new version of a published day.
WHAT = {"booking": "a booking", "in-day": "an in-day re-optimisation"}


def write_routes(
    session: Session,
    service: Service,
    *,
    changes: dict[tuple[str, date], Route | None],
    left_out: dict[str, tuple[ReasonCode, str]],
    trigger: str,
    status: str = "BOOKING",
    newest: bool = False,
    publish: bool = True,
) -> PlanVersionRow:
    """A new version for the days these route changes touch: the routes technicians see there (or,
    `newest`, the days' newest versions: a dispatcher's edit of a proposal), with the changed ones
    replaced, published at once where the day was published (the booking is a promise made now)
    unless not to `publish` (then it is the day's proposal). Runs in the caller's transaction, after
    `lock_plan`."""
    tz = service.tz
    days = sorted({d for _, d in changes})
    pointers = store.current_pointers(session, days)
    routes: list[Route] = []
    unassigned: dict[str, Unassigned] = {}
    for day in days:
        pointer = pointers.get(day)
        if pointer is None:
            continue
        base_id = pointer.plan_version_id if newest else pointer.shown_version_id
        shown = session.get(PlanVersionRow, base_id)
        assert shown is not None
        for u in shown.unassigned:
            unassigned.setdefault(str(u["job_id"]), Unassigned.model_validate(u))
        for row in store.routes_of(session, version_id=base_id, day=day):
            if (row.technician_id, day) not in changes:
                routes.append(store.route_model(row, tz))
        if pointer.proposed_version_id is not None and not newest:
            store.notify(
                session,
                now=service.now(),
                audience="dispatcher",
                kind="proposal_replaced",
                subject=str(day),
                message=f"{WHAT.get(trigger, trigger)} changed the published plan of {day}; its pending "
                f"proposal (version {pointer.proposed_version_id}) was set aside: request a new plan "
                "to re-propose",
            )
    routes += [r for r in changes.values() if r is not None and r.visits]
    routes.sort(key=lambda r: (r.date, r.technician_id))
    placed = {v.job_id for r in routes for v in r.visits}
    left = [u for k, u in unassigned.items() if k not in placed and k not in left_out]
    left += [Unassigned(job_id=k, reason=reason, detail=detail) for k, (reason, detail) in left_out.items()]
    first, last = days[0], days[-1]
    plan = Plan(
        scenario=trigger,
        timezone=service.settings.timezone,
        horizon_start=first,
        horizon_days=(last - first).days + 1,
        routes=routes,
        unassigned=left,
        kpis=day_kpis(session, routes, left, days, service.settings.timezone),
        solver=SolverStats(status=status, wall_seconds=0.0, seed=0, time_limit_seconds=0.0),
    )
    publish_days = [
        d for d in days if publish and d in pointers and pointers[d].published_version_id is not None
    ]
    return store.store_plan(
        session,
        plan=plan,
        days=days,
        trigger=trigger,
        run_id=None,
        today=service.today(),
        now=service.now(),
        publish_days=publish_days,
    )


def day_kpis(
    session: Session,
    routes: list[Route],
    left: list[Unassigned],
    days: list[date],
    timezone: str,
    *,
    loaded: dict[str, RequestRow] | None = None,
    technicians: list[Technician] | None = None,
) -> Kpis:
    """These days' KPIs, from the requests as stored (windows dropped: only counts, travel,
    priority, lateness and utilisation are read); requests and technicians the caller already
    read are not read again."""
    ids = {v.job_id for r in routes for v in r.visits} | {u.job_id for u in left}
    if loaded is not None and ids <= loaded.keys():
        rows = [loaded[i] for i in sorted(ids)]
    else:
        rows = list(session.scalars(select(RequestRow).where(RequestRow.id.in_(ids)))) if ids else []
    if technicians is None:
        technicians = [store.technician_model(r) for r in store.technicians(session, active_only=False)]
    techs = {t.id: t for t in technicians}
    jobs = [
        Job.model_validate(r.spec).model_copy(
            update={
                "windows": [],
                "appointment": None,
                "pinned": None,
                "release": None,
                "preferred_technicians": [x for x in r.spec.get("preferred_technicians", []) if x in techs],
                "excluded_technicians": [],
            }
        )
        for r in rows
    ]
    known = {j.id for j in jobs}
    scenario = Scenario(
        name="kpis",
        timezone=timezone,  # a `due` without an offset is local time, as everywhere
        horizon=Horizon(start=days[0], days=(days[-1] - days[0]).days + 1),
        technicians=[
            t.model_copy(update={"shifts": [s for s in t.shifts if s.date in set(days)]})
            for t in techs.values()
        ],
        jobs=jobs,
    )
    kept = [r.model_copy(update={"visits": [v for v in r.visits if v.job_id in known]}) for r in routes]
    return compute_kpis(scenario, kept, [u for u in left if u.job_id in known], None)


def promise(row: RequestRow, start: datetime | None, end: datetime | None) -> None:
    row.promise_start, row.promise_end = start, end


def local_window(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    a, b = start.astimezone(tz), end.astimezone(tz)
    return f"{a:%Y-%m-%d %H:%M}-{b:%H:%M}"


def new_hold_token() -> str:
    return "h_" + secrets.token_urlsafe(24)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
