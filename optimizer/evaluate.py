"""What placing one job on one technician-day (at a time) would do: the board's judgement before a drop.

A dispatcher drags a waiting job, or a planned visit, over a technician's row at a time. The answer
comes from the same insertion scan the search and the slot offers use (`SlotBoard.scan` on the one
timing kernel), run on a board of that technician-day alone: the route as it stands, the job as the
probe. Small boards make the answer cheap (tens of milliseconds) and exact for that route, with
nothing cached between questions, so a plan that changed meanwhile is never judged stale.

Infeasible answers name the rule, one relaxed at a time as the slots do (`SlotBoard._diagnose`),
worded for one technician: skill, excluded, no shift, the customer's window, lunch, the overtime
limit, a full route, a route under way.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models import Horizon, Job, Route
from optimizer.kernel import INF
from optimizer.replan import PoolJob, ReplanInput
from optimizer.slots import NotOfferedReason, SlotBoard, SlotCost, SlotQuery, _overlaps, _Window
from optimizer.slotscan import COST
from optimizer.travel import provider_for

#: A drop at a time means "start then, or within this many minutes after" (the board's snap step).
DEFAULT_TOLERANCE_MINUTES = 15


class EvalReason(StrEnum):
    SKILL = "skill"
    EXCLUDED = "excluded"
    NO_SHIFT = "no_shift"
    WINDOW = "window"
    SHIFT = "shift"
    LUNCH = "lunch"
    OVERTIME_LIMIT = "overtime_limit"
    CAPACITY = "capacity"
    ROUTE_UNDER_WAY = "route_under_way"
    TOO_LONG = "too_long"
    UNPLANNABLE = "unplannable"


class Placing(BaseModel):
    """The question: this job on this technician's day, at `start` (or the best time that day)."""

    model_config = ConfigDict(extra="forbid")

    job: Job
    technician_id: str
    date: date
    start: datetime | None = None
    tolerance_minutes: Annotated[int, Field(ge=0, le=240)] = DEFAULT_TOLERANCE_MINUTES


class Shifted(BaseModel):
    job_id: str
    before: datetime
    after: datetime
    minutes: float = Field(description="after - before; negative when the visit starts earlier")


class Evaluation(BaseModel):
    feasible: bool
    reason: EvalReason | None = None
    detail: str
    start: datetime | None = Field(None, description="where the visit would start")
    end: datetime | None = None
    cost: SlotCost | None = Field(None, description="in `Weights`' unit: added travel, overtime, lateness")
    shifted: list[Shifted] = Field(default_factory=list, description="visits of that route whose start moves")
    route: Route | None = Field(None, description="the technician-day as it would be")


def evaluate(base: ReplanInput, q: Placing) -> Evaluation:
    """`base` holds the plan as the board shows it (`previous`: at least that technician-day's
    route; `pool`: the jobs on it), the clock and the travel model."""
    tech = next((t for t in base.technicians if t.id == q.technician_id), None)
    if tech is None:
        return _no(EvalReason.UNPLANNABLE, f"no technician {q.technician_id!r}")
    job = q.job.model_copy(update={"pinned": None})
    missing = [
        f"{name}>={level} (has {tech.skills.get(name, 0)})"
        for name, level in job.skills.items()
        if tech.skills.get(name, 0) < level
    ]
    if missing:
        return _no(EvalReason.SKILL, f"{tech.id} lacks {', '.join(missing)}")
    if tech.id in job.excluded_technicians:
        return _no(EvalReason.EXCLUDED, f"the customer excluded {tech.id}")
    if not any(s.date == q.date for s in tech.shifts):
        return _no(EvalReason.NO_SHIFT, f"{tech.id} has no shift on {q.date}")
    before = next((r for r in base.previous if (r.technician_id, r.date) == (tech.id, q.date)), None)
    on_route = {v.job_id for v in before.visits} if before else set()
    one_day = base.model_copy(
        update={
            "horizon": Horizon(start=q.date, days=1),
            "technicians": [tech.model_copy(update={"shifts": [s for s in tech.shifts if s.date == q.date]})],
            "pool": [e for e in base.pool if e.job.id in on_route and e.job.id != job.id]
            + [PoolJob(job=job)],
            "previous": [before] if before else [],
        }
    )
    board = SlotBoard(one_day, exclude=job.id)
    board.ask(SlotQuery(job=job), one_day.not_before)
    if board.j is None:
        assert board.rejected is not None
        reason = _REJECTED.get(board.rejected[0].value, EvalReason.UNPLANNABLE)
        if (
            reason == EvalReason.WINDOW
            and not job.windows
            and job.release is None
            and job.appointment is None
        ):
            return _no(EvalReason.SHIFT, _too_far(one_day, job, q))
        return _no(reason, board.rejected[1])
    j, p = board.j, board.problem
    vehicles = [x for x in board.qualified if p.vehicles[x].date == q.date]
    if not vehicles:
        return _no(EvalReason.WINDOW, f"the job cannot be done within {tech.id}'s shift on {q.date}: its "
                   "windows, release or length do not fit it")  # fmt: skip
    v = vehicles[0]
    if v in board.frozen:
        return _no(
            EvalReason.ROUTE_UNDER_WAY,
            f"{tech.id}'s route of {q.date} is under way: re-optimise the day instead "
            f"(POST /v1/days/{q.date}/reoptimise)",
        )
    if q.start is not None:
        lo = p.ticks(q.start)
        hi = lo + round(q.tolerance_minutes * 60 / p.tick_seconds)
    else:
        lo = p.ticks(board.scenario.at(q.date, time(0)))
        hi = p.ticks(board.scenario.at(q.date + timedelta(days=1), time(0)))
    if not _overlaps(p.domains[j], lo, hi):
        return _no(EvalReason.WINDOW, _outside(board, j, q))
    window = np.array([(lo, hi)], dtype=np.int64)
    row = board.scan(j, np.array([v], dtype=np.int64), window)[0, 0]
    if row[COST] >= INF:
        why = board._diagnose(j, _Window(q.date, lo, hi))
        reason = _NOT_OFFERED.get(why.reason, EvalReason.UNPLANNABLE)
        hint = (
            ";" + why.detail.partition(";")[2] if reason == EvalReason.CAPACITY and ";" in why.detail else ""
        )
        return _no(reason, _DETAIL.get(reason, why.detail).format(tech=tech.id, day=q.date) + hint)
    cost = board._breakdown(j, v, row, _Window(q.date, lo, hi))
    route = board.thaw.route(board.placed_route(j, v, row, lo, hi))  # a crew's visits by their jobs' ids
    visit = next(x for x in route.visits if x.job_id == job.id)
    was = {x.job_id: x.start for x in before.visits} if before else {}
    shifted = [
        Shifted(
            job_id=x.job_id,
            before=was[x.job_id],
            after=x.start,
            minutes=round((x.start - was[x.job_id]).total_seconds() / 60, 1),
        )
        for x in route.visits
        if x.job_id in was and abs(x.start - was[x.job_id]) >= timedelta(minutes=1)
    ]
    pushed = f"; {', '.join(cost.pushed_out)} would give way" if cost.pushed_out else ""
    return Evaluation(
        feasible=True,
        detail=f"starts {visit.start:%H:%M}, +{cost.added_travel_minutes:g} min travel, "
        f"{cost.overtime_minutes:g} min overtime, {len(shifted)} visit(s) shift{pushed}",
        start=visit.start,
        end=visit.end,
        cost=cost,
        shifted=shifted,
        route=route,
    )


def _too_far(base: ReplanInput, job: Job, q: Placing) -> str:
    """Nothing but the drive and the shift stand in the way: say how far it is."""
    tech = base.technicians[0]
    shift = tech.shifts[0]
    provider = provider_for(base.travel)
    home = np.array([[tech.start_point.lat, tech.start_point.lon]], dtype=np.float64)
    site = np.array([[job.location.lat, job.location.lon]], dtype=np.float64)
    _, there = provider.between(home, site)
    return (
        f"{tech.id}'s shift on {q.date} ({shift.start:%H:%M}-{shift.end:%H:%M}, "
        f"{tech.max_overtime_minutes} min overtime) cannot hold the drive "
        f"({float(there[0, 0]):.0f} min from the start) and "
        f"{job.duration_minutes:g} min on site"
    )


def _no(reason: EvalReason, detail: str) -> Evaluation:
    return Evaluation(feasible=False, reason=reason, detail=detail)


def _outside(board: SlotBoard, j: int, q: Placing) -> str:
    p = board.problem
    spans = ", ".join(
        f"{p.moment(a):%H:%M}-{p.moment(b):%H:%M}"
        for a, b in p.domains[j]
        if p.moment(a).date() <= q.date <= p.moment(b).date()
    )
    when = f"{q.start:%H:%M}" if q.start is not None else str(q.date)
    return f"the visit cannot start at {when}: it may start {spans or 'on other days only'}"


_REJECTED = {
    "NO_QUALIFIED_TECHNICIAN": EvalReason.SKILL,
    "ALL_EXCLUDED": EvalReason.EXCLUDED,
    "TOO_LONG": EvalReason.TOO_LONG,
    "NO_SHIFT_IN_WINDOW": EvalReason.WINDOW,
    "DEMAND_EXCEEDS_VAN": EvalReason.CAPACITY,
}
_NOT_OFFERED = {
    NotOfferedReason.LUNCH: EvalReason.LUNCH,
    NotOfferedReason.OVERTIME_LIMIT: EvalReason.OVERTIME_LIMIT,
    NotOfferedReason.NO_SHIFT: EvalReason.SHIFT,
    NotOfferedReason.CAPACITY: EvalReason.CAPACITY,
    NotOfferedReason.ROUTE_UNDER_WAY: EvalReason.ROUTE_UNDER_WAY,
}
_DETAIL = {
    EvalReason.SHIFT: "{tech}'s shift on {day} does not cover the visit then",
    EvalReason.CAPACITY: "{tech}'s route of {day} has no room then (the visits around it cannot move enough)",
}
