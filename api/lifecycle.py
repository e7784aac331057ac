"""A service request's life cycle: the allowed moves, listed once, and the one function that makes them.

What a request says must be so. Its status, technician and day are derived from the plans that
technicians see (`reconcile`), never set by hand in a route: after every re-plan, publication, visit
report and cancellation the same rule runs over every active request:

- in the version technicians see for a day (the published version; for a day never published, its
  plan): `dispatched` (published) or `planned` (not yet), with that technician and day (a published
  placement first: it is what a technician will do);
- a visit under way (`in_progress`) stays as reported; a failed visit stays `failed` until a newer
  version plans the job again (then it is a new visit: its visit status is cleared);
- in no such version for today or later: `open`, with the reason of the newest plan that left it out
  (or NOT_PLANNED_YET);
- `done` and `cancelled` are final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.tables import CurrentPlanRow, PlanVersionRow, RequestRow, RouteRow, VisitRow
from models import JobStatus, ReasonCode

S = JobStatus

#: The moves a request may make. Anything else is a bug, and raises.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.OPEN: frozenset({S.OPEN, S.PLANNED, S.DISPATCHED, S.CANCELLED}),
    S.PLANNED: frozenset({S.OPEN, S.PLANNED, S.DISPATCHED, S.CANCELLED}),
    S.DISPATCHED: frozenset({S.OPEN, S.PLANNED, S.DISPATCHED, S.IN_PROGRESS, S.DONE, S.FAILED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.DONE, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.FAILED, S.OPEN, S.PLANNED, S.DISPATCHED, S.CANCELLED}),
    S.DONE: frozenset(),
    S.CANCELLED: frozenset(),
}


class IllegalMove(RuntimeError):
    """A move the table does not allow: the caller checks first (a 409 for a client), so this is a bug."""


def can_move(current: JobStatus, to: JobStatus) -> bool:
    return to in TRANSITIONS[current]


def move(
    row: RequestRow,
    to: JobStatus,
    *,
    technician_id: str | None = None,
    day: date | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> bool:
    """Apply one move; returns whether anything changed. The only writer of `RequestRow.status`."""
    current = JobStatus(row.status)
    if not can_move(current, to):
        raise IllegalMove(f"request {row.id}: {current.value} -> {to.value} is not an allowed move")
    before = (row.status, row.technician_id, row.planned_date, row.reason, row.reason_detail)
    row.status = to.value
    if to in (S.PLANNED, S.DISPATCHED):
        row.technician_id, row.planned_date, row.reason, row.reason_detail = technician_id, day, None, None
        if current == S.FAILED:
            row.visit_status, row.visit_version_id = None, None  # a new visit
    elif to == S.OPEN:
        row.technician_id, row.planned_date = None, None
        row.reason, row.reason_detail = reason, detail
        row.visit_status, row.visit_version_id = None, None
    return before != (row.status, row.technician_id, row.planned_date, row.reason, row.reason_detail)


def waiting_detail(spec: dict[str, Any]) -> str:
    """Why a request no plan has taken yet waits: a maintenance visit waits for its due date."""
    occ = spec.get("occurrence")
    if occ:
        return (
            f"maintenance visit due {occ['due']} (window {occ['earliest']} to {occ['latest']}): "
            "planned once its due date is inside the planning horizon"
        )
    return "not planned yet"


@dataclass(frozen=True)
class Placement:
    day: date
    technician_id: str
    version_id: int
    published: bool


def shown_versions(session: Session, *, since: date) -> dict[date, tuple[int, bool]]:
    """Per day from `since` on: the version technicians see (or the plan of an unpublished day)."""
    rows = session.scalars(select(CurrentPlanRow).where(CurrentPlanRow.date >= since))
    return {r.date: (r.shown_version_id, r.published_version_id is not None) for r in rows}


def placements(session: Session, shown: dict[date, tuple[int, bool]]) -> dict[str, Placement]:
    """Each job's placement among the versions shown: a published one first (what a technician
    will do), the newest of them; else the newest plan of a day not yet published."""
    out: dict[str, Placement] = {}
    if not shown:
        return out
    for day, (version_id, published) in shown.items():
        query = (
            select(VisitRow.job_id, RouteRow.technician_id, VisitRow.role)
            .join(RouteRow, VisitRow.route_id == RouteRow.id)
            .where(RouteRow.plan_version_id == version_id, RouteRow.date == day)
        )
        for job_id, tech, role in session.execute(query):
            old = out.get(job_id)
            if old is None or (published, version_id) > (old.published, old.version_id):
                out[job_id] = Placement(day, tech, version_id, published)
            elif (published, version_id) == (old.published, old.version_id) and role != "helper":
                # A crew's request names its lead; a multi-day job's its first day (days come in order).
                out[job_id] = Placement(min(day, old.day), tech, version_id, published)
    return out


def days_left(session: Session, row: RequestRow, *, after: date) -> list[date]:
    """Days after `after` on which the plans shown still hold a part of this (multi-day) job."""
    if int(row.spec.get("max_days", 1)) <= 1:
        return []
    shown = shown_versions(session, since=after + timedelta(days=1))
    query = (
        select(RouteRow.date, RouteRow.plan_version_id)
        .join(VisitRow, VisitRow.route_id == RouteRow.id)
        .where(VisitRow.job_id == row.id, RouteRow.date > after)
    )
    return sorted({day for day, version in session.execute(query) if shown.get(day, (None,))[0] == version})


def reasons(session: Session, version_ids: Iterable[int]) -> dict[str, tuple[str, str]]:
    """Why each job was left out, from the newest of these versions that left it out."""
    out: dict[str, tuple[str, str]] = {}
    for version in session.scalars(
        select(PlanVersionRow).where(PlanVersionRow.id.in_(set(version_ids))).order_by(PlanVersionRow.id)
    ):
        for u in version.unassigned:
            out[str(u["job_id"])] = (str(u["reason"]), str(u["detail"]))
    return out


def reconcile(session: Session, *, today: date, only: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Bring every active request (or `only` these) in line with the plans shown; returns the changes."""
    shown = shown_versions(session, since=today)
    placed = placements(session, shown)
    why = reasons(session, (v for v, _ in shown.values()))
    query = select(RequestRow).where(RequestRow.status.notin_([S.DONE.value, S.CANCELLED.value]))
    if only is not None:
        query = query.where(RequestRow.id.in_(list(only)))
    changes: list[dict[str, Any]] = []
    for row in session.scalars(query):
        current = JobStatus(row.status)
        if current == S.IN_PROGRESS:
            continue  # under way: only the technician's report moves it
        where = placed.get(row.id)
        if current == S.FAILED and (where is None or where.version_id <= (row.visit_version_id or 0)):
            continue  # the failed visit stands until a newer plan places the job again
        if where is not None:
            to = S.DISPATCHED if where.published else S.PLANNED
            changed = move(row, to, technician_id=where.technician_id, day=where.day)
        else:
            code, detail = why.get(row.id, (ReasonCode.NOT_PLANNED_YET.value, waiting_detail(row.spec)))
            changed = move(row, S.OPEN, reason=code, detail=detail)
        if changed:
            changes.append({"request": row.id, "status": row.status, "from": current.value})
    return changes
