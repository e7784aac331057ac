"""The day as it happens: re-plan the rest of one day from what the technicians did and reported.

Pure, like `replan`: plain values in (the day's routes as technicians were told, the jobs, what each
technician has done, is doing and reported, the day's events, the clock), a plan for the rest of the
day plus a diff and the notices out. The service calls it on `POST /v1/days/{day}/reoptimise`, the
simulated disrupted day (`benchmarks/simulate.py --intraday`) calls the same function per event.

Per technician a freeze point: what is done, the visit under way (its reported start and, after an
overrun, its expected end) and the visit the technician is driving to never move; the rest of the day
is planned from the moment and place the technician is free again. That rest is an ordinary one-day
scenario (each technician's shift starts at the freeze point, at the place they will be), so the
kernel, the cost model and the validator apply unchanged, and a confirmed window stays hard.

Policies (the simulation compares them; the service runs `budget`):
- `none`: the routes as they stand, re-timed; what no longer fits goes back to the pool.
- `emergency_only`: the same, and each emergency inserted where it is reached soonest, whatever moves.
- `full`: the rest of the day re-planned by the search, warm-started from the routes as they stand.
- `budget`: emergencies first (inserted, or in place of one lower-priority visit), then the visits
  that lost their technician, then open work, each only where the technician's changed visits stay
  within `max_changed_visits_per_technician` (a visit added, taken away, or whose start moves more
  than `max_eta_shift_minutes` against the routes as they stand). What fits nowhere goes back to the
  pool as DAY_DISRUPTED and comes back in the nightly re-plan with its priority raised.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models import (
    Break,
    GeoPoint,
    Horizon,
    Job,
    Lunch,
    Plan,
    ReasonCode,
    Route,
    Scenario,
    Shift,
    SolverStats,
    Technician,
    TravelSettings,
    Unassigned,
    Visit,
    Window,
)
from optimizer.assemble import assemble, raw_routes
from optimizer.explain import listed
from optimizer.groups import freeze_jobs, is_group_job
from optimizer.kernel import (
    F0,
    INF,
    Routes,
    Timing,
    empty_routes,
    first_start,
    insertion,
    replacement,
    route_starts,
    set_route,
)
from optimizer.kpis import compute_kpis
from optimizer.options import SolveOptions
from optimizer.problem import Problem, build_problem
from optimizer.replan import PoolJob, ReplanInput, prepare
from optimizer.solve import solve
from optimizer.travel import provider_for
from optimizer.validate import Violation, validate_plan


class CurrentState(StrEnum):
    EN_ROUTE = "en_route"
    STARTED = "started"


class CurrentVisit(BaseModel):
    """The visit a technician is driving to or working on: it stays, whatever else changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    state: CurrentState
    since: datetime = Field(description="when the technician reported it (left for it, or started)")
    expected_end: datetime | None = Field(
        None, description="an overrun: when the visit is now expected to end"
    )


class Execution(BaseModel):
    """One technician's day so far, as reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    technician_id: str
    done: list[str] = Field(default_factory=list, description="visits completed or failed today, in order")
    current: CurrentVisit | None = None
    position: GeoPoint | None = None
    position_at: datetime | None = None
    unavailable_from: datetime | None = None
    unavailable_until: datetime | None = Field(None, description="none: the rest of the day")
    delay_minutes: float = Field(0.0, ge=0, le=1440, description="late on everything from now on")


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_changed_visits_per_technician: int = Field(2, ge=0, le=1000)
    max_eta_shift_minutes: float = Field(30.0, ge=0, le=1440)


Policy = Literal["budget", "full", "emergency_only", "none"]


class IntradayInput(BaseModel):
    """Everything the re-optimisation reads, as plain values (a worker process can take it unchanged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "in-day re-plan"
    timezone: str
    day: date
    now: datetime
    travel: TravelSettings = Field(default_factory=TravelSettings)
    technicians: list[Technician]
    jobs: list[Job] = Field(description="every job named below, and the day's routes' jobs")
    routes: list[Route] = Field(description="the day's routes as technicians were told them")
    execution: list[Execution] = Field(default_factory=list)
    emergencies: list[str] = Field(default_factory=list, description="placed first, soonest first")
    pool: list[str] = Field(
        default_factory=list, description="open jobs that may be added where there is room"
    )
    budget: Budget = Field(default_factory=Budget)
    policy: Policy = "budget"
    options: SolveOptions = Field(
        default_factory=lambda: SolveOptions(time_limit_seconds=3.0, iterations=300)
    )


class TechnicianDiff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    technician_id: str
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    reordered: list[str] = Field(default_factory=list)
    eta_shifted: list[str] = Field(
        default_factory=list, description="kept, but starting > max_eta_shift later or earlier"
    )
    changed_visits: int = 0
    chosen: int = Field(
        0,
        description="changes the re-optimisation chose, against the day as it goes without it (what "
        "the budget limits; an overrun's own delay is not one)",
    )


class CustomerEta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    customer_id: str | None
    before: datetime | None = Field(description="the start the customer was told; none for new work")
    after: datetime | None = Field(description="the new start; none when the visit left the day")
    technician_before: str | None
    technician_after: str | None


NoticeKind = Literal["route_changed", "eta_changed", "visit_added", "visit_removed"]


class Notice(BaseModel):
    """Who must be told what: a technician whose route changed, a customer whose visit moved."""

    model_config = ConfigDict(extra="forbid")

    audience: Literal["technician", "customer"]
    kind: NoticeKind
    technician_id: str | None = None
    job_id: str | None = None
    customer_id: str | None = None
    message: str


class IntradayResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Plan = Field(description="the whole day: the frozen part as it was, the rest re-planned")
    rest: Plan = Field(description="the rest of the day alone: what the validator checks against `scenario`")
    scenario: Scenario = Field(
        description="the rest of the day as a scenario (shifts from each freeze point)"
    )
    frozen: dict[str, list[str]] = Field(description="per technician: the visits that could not move")
    diff: list[TechnicianDiff]
    customers: list[CustomerEta]
    notices: list[Notice]
    returned: list[Unassigned] = Field(description="jobs of the day's routes that go back to the pool")

    def violations(self) -> list[Violation]:
        out = validate_plan(self.scenario, self.rest)
        planned = {v.job_id for r in self.plan.routes for v in r.visits}
        frozen = {j for js in self.frozen.values() for j in js}
        rest = {v.job_id for r in self.rest.routes for v in r.visits}
        if frozen & rest:
            out.append(
                Violation("FROZEN_MOVED", "a frozen visit was planned again", sorted(frozen & rest)[0])
            )
        for u in self.plan.unassigned:
            if u.job_id in planned:
                out.append(Violation("DUPLICATE_JOB", "both planned and unassigned", u.job_id))
        return out


# --- the freeze point ---------------------------------------------------------------------------


@dataclass
class _Freeze:
    technician: Technician
    prefix: list[Visit]  # done, under way, driven to: they stay as they are
    free_at: datetime  # when the technician can start something new
    place: GeoPoint  # where
    shift: Shift | None  # the rest of the day's shift (None: nothing more today)
    lunch: Lunch | None
    max_overtime: int
    break_kept: tuple[datetime, datetime] | None  # a break already taken (or the absence as one)


def _ceil_minute(t: datetime) -> datetime:
    if t.second or t.microsecond:
        return (t + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return t


def _freeze(
    data: IntradayInput,
    tech: Technician,
    route: Route | None,
    ex: Execution | None,
    jobs: dict[str, Job],
    leg: _Legs,
    tz: Scenario,
) -> _Freeze:
    """Where and when `tech` is free again, what of their day can no longer move, and the rest of
    their shift (`tz`: an empty scenario of the day, for its time zone)."""
    now = tz.local(data.now)
    shift = next((s for s in tech.shifts if s.date == data.day), None)
    visits = {v.job_id: v for v in route.visits} if route else {}
    prefix: list[Visit] = []
    place = tech.start_point
    free = now
    if shift is not None:
        free = max(now, tz.at(data.day, shift.start))
    if ex is not None:
        for job_id in ex.done:
            v = visits.get(job_id)
            job = jobs.get(job_id)
            if v is not None:
                prefix.append(v)
            if job is not None:
                place = job.location
        if ex.position is not None and (ex.current is None or ex.current.state == CurrentState.EN_ROUTE):
            place = ex.position
        cur = ex.current
        if cur is not None and cur.job_id in jobs:
            job = jobs[cur.job_id]
            since = tz.local(cur.since)
            if cur.state == CurrentState.STARTED:
                start = since
                arrival = visits[cur.job_id].arrival if cur.job_id in visits else since
            else:
                arrival = since + timedelta(minutes=leg.minutes(place, job.location))
                start = max(arrival, window_open(job, arrival, tz))
            end = start + timedelta(minutes=job.duration_minutes)
            if cur.expected_end is not None:
                end = max(end if cur.state != CurrentState.STARTED else start, tz.local(cur.expected_end))
            off = tz.local(ex.unavailable_from) if ex.unavailable_from is not None else None
            if cur.state == CurrentState.STARTED or off is None or start < off:
                prefix.append(Visit(job_id=job.id, arrival=min(arrival, start), start=start, end=end))
                free = max(free, end)
                place = job.location
            # else: driving to a visit they will not start (off from before it): it goes to others
        free += timedelta(minutes=ex.delay_minutes)
    free = _ceil_minute(free)
    # The break counts as taken when it lay before the last visit that could not move began (or,
    # with none under way, before now): a visit that overran through it leaves it still to take.
    brk = route.break_ if route else None
    last = prefix[-1].start if prefix else now
    taken = (
        (brk.start, brk.end)
        if brk is not None and tz.local(brk.end) <= max(last, now if not prefix else last)
        else None
    )
    lunch = tech.lunch if taken is None else None
    max_ot = tech.max_overtime_minutes
    rest: Shift | None = None
    if shift is not None:
        end = tz.at(data.day, shift.end)
        start = free
        if ex is not None and ex.unavailable_from is not None:
            off = tz.local(ex.unavailable_from).replace(second=0, microsecond=0)
            back = tz.local(ex.unavailable_until) if ex.unavailable_until is not None else None
            if off <= start:
                start = _ceil_minute(back) if back is not None and back > start else start
                if back is None or back >= end:
                    start = end  # nothing more today
            elif back is None or back >= end or lunch is not None:
                # The rest of the day ends when the absence starts (a break still to take and an
                # absence in the middle of the day cannot both be placed: the earlier part is kept).
                end, max_ot = off, 0
            else:
                # An absence in the middle of the day with the lunch already taken: a fixed break.
                minutes = math.ceil((back - off).total_seconds() / 60)
                lunch = Lunch(
                    earliest=off.time(), latest=(off + timedelta(minutes=minutes)).time(), minutes=minutes
                )
                taken = (off, off + timedelta(minutes=minutes))
        if lunch is not None:
            lo = max(tz.at(data.day, lunch.earliest), start)
            hi = tz.at(data.day, lunch.latest)
            if (hi - lo).total_seconds() / 60 < lunch.minutes:
                lunch = None
            elif lo > tz.at(data.day, lunch.earliest):
                lunch = Lunch(earliest=lo.time(), latest=lunch.latest, minutes=lunch.minutes)
        if start.date() == data.day and start < end:
            rest = Shift(date=data.day, start=start.time(), end=end.time())
    return _Freeze(
        tech, prefix, free, place, rest, lunch, max_ot, taken if taken and tz.local(taken[0]) < free else None
    )


def window_open(job: Job, t: datetime, tz: Scenario) -> datetime:
    """The first allowed start at or after t (t itself when none opens later: the kernel decides)."""
    wins = [job.appointment] if job.appointment is not None else job.windows
    for w in sorted(wins, key=lambda w: tz.local(w.start)):
        if tz.local(w.end) >= t:
            return max(t, tz.local(w.start))
    return t


@dataclass
class _Legs:
    """Travel between any two places of the day, from the day's one provider (km, minutes)."""

    points: dict[tuple[float, float], int]
    km: np.ndarray
    mins: np.ndarray

    @classmethod
    def of(cls, travel: TravelSettings, places: Sequence[GeoPoint]) -> _Legs:
        keys: dict[tuple[float, float], int] = {}
        for p in places:
            keys.setdefault((p.lat, p.lon), len(keys))
        arr = np.array(list(keys), dtype=np.float64).reshape(-1, 2)
        km, mins = provider_for(travel).matrices(arr)
        return cls(keys, km, mins)

    def minutes(self, a: GeoPoint, b: GeoPoint) -> float:
        return float(self.mins[self.points[(a.lat, a.lon)], self.points[(b.lat, b.lon)]])

    def km_(self, a: GeoPoint, b: GeoPoint) -> float:
        return float(self.km[self.points[(a.lat, a.lon)], self.points[(b.lat, b.lon)]])


# --- the re-optimisation ------------------------------------------------------------------------


def reoptimise(data: IntradayInput) -> IntradayResult:
    """`_reoptimise`, with crews and multi-day jobs' visits held where they are (stand-ins pinned at
    their times, `groups.freeze_jobs`): the rest of the day moves around them. A crew no longer whole
    (a member unavailable) leaves the day, as a visit that no longer fits does."""
    ids = {j.id for j in data.jobs}
    if not any(is_group_job(j, ids) for j in data.jobs):
        return _reoptimise(data)
    day_routes = [r for r in data.routes if r.date == data.day]
    jobs, routes, thaw = freeze_jobs(data.jobs, day_routes, keep_unplanned=False)
    known = {j.id for j in jobs}

    def own(tid: str, jid: str) -> str:
        return thaw.forward.get((tid, data.day, jid), jid)

    execution = [
        e.model_copy(
            update={
                "done": [own(e.technician_id, j) for j in e.done],
                "current": e.current.model_copy(update={"job_id": own(e.technician_id, e.current.job_id)})
                if e.current is not None
                else None,
            }
        )
        for e in data.execution
    ]
    frozen = data.model_copy(
        update={
            "jobs": jobs,
            "routes": routes,
            "execution": execution,
            "emergencies": [j for j in data.emergencies if j in known],
            "pool": [j for j in data.pool if j in known],
        }
    )
    result = _reoptimise(frozen)
    plan, gone = thaw.plan(result.plan, "a crew member or a part of this job can no longer be kept today")
    returned: dict[str, Unassigned] = {}
    for u in result.returned:  # a crew's visits come back as one request
        returned.setdefault(thaw.id(u.job_id), u.model_copy(update={"job_id": thaw.id(u.job_id)}))
    return result.model_copy(
        update={
            "plan": plan,
            "frozen": {t: [thaw.id(j) for j in js] for t, js in result.frozen.items()},
            "diff": [thaw.ids(d) for d in result.diff],
            "customers": [thaw.ids(c) for c in result.customers],
            "notices": [thaw.ids(n) for n in result.notices],
            "returned": [*returned.values(), *(u for u in gone if u.job_id not in returned)],
        }
    )


def _reoptimise(data: IntradayInput) -> IntradayResult:
    """The rest of `data.day` re-planned from the execution state, by `data.policy`: the whole day's
    plan (frozen part and rest), the rest alone with the scenario it was checked against, the diff
    against the routes technicians were told, and who must be told what."""
    jobs = {j.id: j for j in data.jobs}
    routes = {r.technician_id: r for r in data.routes if r.date == data.day}
    places = [t.start_point for t in data.technicians] + [t.end_point for t in data.technicians]
    places += [j.location for j in data.jobs]
    places += [e.position for e in data.execution if e.position is not None]
    legs = _Legs.of(data.travel, places)
    tz = Scenario(
        name="tz", timezone=data.timezone, horizon=Horizon(start=data.day, days=1), technicians=[], jobs=[]
    )
    told = {e.technician_id: e for e in data.execution}
    freezes = {
        t.id: _freeze(data, t, routes.get(t.id), told.get(t.id), jobs, legs, tz) for t in data.technicians
    }
    frozen = {tid: [v.job_id for v in f.prefix] for tid, f in freezes.items() if f.prefix}
    frozen_ids = {j for js in frozen.values() for j in js}

    # The rest of the day as a one-day scenario: each technician starts at their freeze point.
    rest_techs = [
        f.technician.model_copy(
            update={
                "start_location": f.place,
                "shifts": [f.shift],
                "lunch": f.lunch,
                "max_overtime_minutes": f.max_overtime,
            }
        )
        for f in freezes.values()
        if f.shift is not None
    ]
    on_routes = [v.job_id for r in routes.values() for v in r.visits if v.job_id not in frozen_ids]
    wanted = list(dict.fromkeys([*on_routes, *data.emergencies, *data.pool]))
    wanted = [j for j in wanted if j in jobs and j not in frozen_ids]
    base = ReplanInput(
        name=data.name,
        timezone=data.timezone,
        horizon=Horizon(start=data.day, days=1),
        travel=data.travel,
        technicians=rest_techs,
        pool=[PoolJob(job=jobs[j]) for j in wanted],
        not_before=data.now,
        options=data.options,
    )
    prep = prepare(base)
    scenario = prep.scenario
    problem = build_problem(scenario, data.options)
    node_of = {job.id: i for i, job in enumerate(problem.jobs)}
    veh_of = {v.technician_id: v.index for v in problem.vehicles}
    tm = problem.timing
    rt = empty_routes(tm, problem.n_jobs + 2)

    # The routes as they stand, re-timed from each freeze point; what no longer fits comes out.
    orphans: list[int] = []
    for tid, route in routes.items():
        seq = [node_of[v.job_id] for v in route.visits if v.job_id in node_of]
        v = veh_of.get(tid)
        if v is None:
            orphans += seq  # the technician is gone for the day
            continue
        orphans += _fit(problem, tm, rt, v, seq)
    # An emergency the day has pushed past its SLA (or off its route) is placed again, as a new one.
    late = [n for n in orphans if problem.jobs[n].emergency]
    for v in range(len(rt.size) if data.policy != "none" else 0):
        starts = _starts_of(tm, rt, v)
        gone = [n for n, st in starts.items() if problem.jobs[n].emergency and 0 <= problem.due_start[n] < st]
        if gone:
            keep = [int(x) for x in rt.nodes[v, 1 : rt.size[v] + 1] if int(x) not in gone]
            set_route(tm, rt, v, np.array(keep, dtype=np.int64), len(keep))
            late += gone
    orphans = [n for n in orphans if n not in late]
    base_start = _starts(tm, rt)
    base_on = {node: v for v in range(len(rt.size)) for node in rt.nodes[v, 1 : rt.size[v] + 1].tolist()}
    emergencies = [node_of[j] for j in data.emergencies if j in node_of] + late
    emergencies.sort(key=lambda n: (int(problem.due_start[n]) if problem.due_start[n] >= 0 else INF, n))
    pool = [node_of[j] for j in data.pool if j in node_of and node_of[j] not in base_on]

    # Emergencies already on a route and inside their SLA stay inside it, whatever comes next.
    on_time = [n for n in base_on if problem.jobs[n].emergency and 0 <= base_start[n] <= problem.due_start[n]]
    if data.policy == "full":
        rest, scenario = _full(data, scenario, problem, tm, rt, emergencies, (base_start, base_on), on_time)
    else:
        search = _Budgeted(problem, tm, rt, base_start, base_on, data.budget, limited=data.policy == "budget")
        for node in on_time:
            search.hold(node, int(problem.due_start[node]))
        if data.policy in ("budget", "emergency_only"):
            for node in emergencies:
                search.place(node, displace=True)
        if data.policy == "budget":
            for node in sorted(set(orphans + search.displaced), key=lambda n: (int(problem.level[n]), n)):
                if search.place(node, displace=False) or problem.level[node] != 0:
                    continue
                if not search.place(node, displace=False, slack=_PROMISE_SLACK):
                    search.rescue(node, data.options)
            for node in sorted(pool, key=lambda n: (int(problem.level[n]), n)):
                search.place(node, displace=False)
        rest = _plan_of(problem, tm, rt)
        if data.policy == "budget":
            rest = _budget_reasons(problem, search, rest, data.budget, set(orphans + search.displaced))
    routed = {v.job_id for r in rest.routes for v in r.visits}
    on_day = {v.job_id for r in routes.values() for v in r.visits}
    unassigned: list[Unassigned] = []
    for u in rest.unassigned:
        if u.job_id in on_day or u.job_id in data.emergencies:
            if u.job_id in on_day and u.reason in (ReasonCode.CAPACITY, ReasonCode.NO_SHIFT_IN_WINDOW):
                u = Unassigned(
                    job_id=u.job_id,
                    reason=ReasonCode.DAY_DISRUPTED,
                    detail=f"taken out of today's plan at {problem.scenario.local(data.now):%H:%M}: "
                    f"{u.detail}; it comes back in the nightly re-plan one priority level more urgent",
                )
            unassigned.append(u)
    rest = rest.model_copy(
        update={
            "unassigned": [u for u in rest.unassigned if u.job_id not in {x.job_id for x in unassigned}]
            + unassigned
        }
    )
    for u in prep.expired:
        if u.job_id not in routed:
            unassigned.append(u)
    returned = [u for u in unassigned if u.job_id in on_day]

    day_routes = _whole_day(data, freezes, rest, legs, jobs)
    full = Plan(
        scenario=data.name,
        timezone=data.timezone,
        horizon_start=data.day,
        horizon_days=1,
        routes=day_routes,
        unassigned=unassigned,
        kpis=compute_kpis(
            Scenario(
                name=data.name,
                timezone=data.timezone,
                horizon=Horizon(start=data.day, days=1),
                travel=data.travel,
                technicians=[
                    t.model_copy(update={"shifts": [s for s in t.shifts if s.date == data.day]})
                    for t in data.technicians
                ],
                jobs=[
                    jobs[j]
                    for j in dict.fromkeys(
                        [*(v.job_id for r in day_routes for v in r.visits), *(u.job_id for u in unassigned)]
                    )
                ],
            ),
            day_routes,
            unassigned,
            None,
        ),
        solver=rest.solver,
    )
    diff, customers, notices = _diff(data, routes, day_routes, unassigned, jobs)
    chosen = _chosen(problem, rest, base_start, base_on, data.budget)
    diff = [d.model_copy(update={"chosen": chosen.get(d.technician_id, 0)}) for d in diff]
    return IntradayResult(
        plan=full,
        rest=rest,
        scenario=scenario,
        frozen=frozen,
        diff=diff,
        customers=customers,
        notices=notices,
        returned=returned,
    )


def _fit(problem: Problem, tm: Timing, rt: Routes, v: int, seq: list[int]) -> list[int]:
    """Set route v to `seq`, taking out (least urgent first, latest first) what no longer fits; an
    emergency only when nothing else would do."""
    out: list[int] = []
    seq = list(seq)
    while seq and not set_route(tm, rt, v, np.array(seq, dtype=np.int64), len(seq)):
        # The first position the route breaks at bounds what must go: drop the least urgent before it.
        k = _first_break(tm, rt, v, seq)
        head = seq[: k + 1]
        drop = max(head, key=lambda n: (not problem.jobs[n].emergency, int(problem.level[n]), head.index(n)))
        seq.remove(drop)
        out.append(drop)
    if not seq:
        set_route(tm, rt, v, np.zeros(0, dtype=np.int64), 0)
    return out


def _first_break(tm: Timing, rt: Routes, v: int, seq: list[int]) -> int:
    for k in range(1, len(seq) + 1):
        if not set_route(tm, rt, v, np.array(seq[:k], dtype=np.int64), k):
            return k - 1
    return len(seq) - 1


def _starts_of(tm: Timing, rt: Routes, v: int) -> dict[int, int]:
    buf = np.zeros(rt.nodes.shape[1], dtype=np.int64)
    n = int(rt.size[v])
    if not n:
        return {}
    route_starts(tm, rt, v, buf)
    return {int(rt.nodes[v, p]): int(buf[p]) for p in range(1, n + 1)}


def _starts(tm: Timing, rt: Routes) -> dict[int, int]:
    out: dict[int, int] = {}
    buf = np.zeros(rt.nodes.shape[1], dtype=np.int64)
    for v in range(len(rt.size)):
        n = int(rt.size[v])
        if n:
            route_starts(tm, rt, v, buf)
            for p in range(1, n + 1):
                out[int(rt.nodes[v, p])] = int(buf[p])
    return out


class _Budgeted:
    """Insertion (and replacement of one lower-priority visit) on the kernel, under the budget."""

    def __init__(
        self,
        problem: Problem,
        tm: Timing,
        rt: Routes,
        base_start: dict[int, int],
        base_on: dict[int, int],
        budget: Budget,
        *,
        limited: bool,
    ) -> None:
        # Its own copy of the start intervals: a placed emergency's are narrowed to keep its SLA.
        self.p, self.tm, self.rt = problem, tm._replace(dom=tm.dom.copy()), rt
        self.base_start, self.base_on = base_start, base_on
        self.limit = budget.max_changed_visits_per_technician if limited else 1 << 30
        self.shift = round(budget.max_eta_shift_minutes * 60 / problem.tick_seconds)
        self.buf = np.zeros(rt.nodes.shape[1], dtype=np.int64)
        self.displaced: list[int] = []

    def rescue(self, node: int, options: SolveOptions) -> bool:
        """A promised visit no insertion keeps: let the search re-order the routes of a few
        technicians near it (with it added), nearest first, a few groups in turn; keep a result only
        when it plans every visit those routes had and each of those technicians stays within the
        budget (plus the slack a promise earns)."""
        p, tm, rt = self.p, self.tm, self.rt
        ranked = sorted(
            p.allowed[node].tolist(),
            key=lambda v: min(int(tm.travel[node, int(x)]) for x in rt.nodes[v, : rt.size[v] + 2]),
        )
        k = _RESCUE_TECHNICIANS
        for group in [ranked[i : i + k] for i in range(0, min(len(ranked), k * _RESCUE_GROUPS), k)]:
            if self._rescue_in(node, group, options):
                return True
        return False

    def _rescue_in(self, node: int, near: list[int], options: SolveOptions) -> bool:
        p, tm, rt = self.p, self.tm, self.rt
        before = {v: rt.nodes[v, 1 : rt.size[v] + 1].tolist() for v in near}
        wanted = [x for v in near for x in before[v]] + [node]
        sc = p.scenario
        techs = {p.vehicles[v].technician_id for v in near}
        sub = sc.model_copy(
            update={
                "name": f"{sc.name} rescue",
                "technicians": [t for t in sc.technicians if t.id in techs],
                "jobs": [_only(p.jobs[x], techs) for x in wanted],
            }
        )
        warm = _plan_of(p, tm, rt).model_copy()
        warm.routes = [r for r in warm.routes if r.technician_id in techs]
        plan = solve(sub, options.model_copy(update={"iterations": _RESCUE_ITERATIONS}), previous=warm)
        if plan.unassigned:
            return False
        node_of = {p.jobs[x].id: x for x in wanted}
        by_tech = {r.technician_id: [node_of[v.job_id] for v in r.visits] for r in plan.routes}
        ok = True
        for v in near:
            seq = by_tech.get(p.vehicles[v].technician_id, [])
            ok = ok and set_route(tm, rt, v, np.array(seq, dtype=np.int64), len(seq))
        if ok and all(self.changes(v) <= self.limit + _PROMISE_SLACK for v in near):
            return True
        for v in near:
            set_route(tm, rt, v, np.array(before[v], dtype=np.int64), len(before[v]))
        return False

    def changes(self, v: int) -> int:
        """Visits of route v added, taken away, or moved more than the allowed shift."""
        n = int(self.rt.size[v])
        route_starts(self.tm, self.rt, v, self.buf)
        on = set()
        count = 0
        for p in range(1, n + 1):
            node = int(self.rt.nodes[v, p])
            on.add(node)
            if self.base_on.get(node) != v or abs(int(self.buf[p]) - self.base_start[node]) > self.shift:
                count += 1
        count += sum(1 for node, w in self.base_on.items() if w == v and node not in on)
        return count

    def place(self, node: int, *, displace: bool, slack: int = 0) -> bool:
        """Put `node` where it starts soonest past its SLA (then cheapest) within the budget.

        With `displace` (emergencies), also in place of one visit, or pushing in and taking out of the
        rest of that route the visits that then no longer fit: less urgent ones first; a promised
        visit only when nothing else reaches the emergency inside its SLA, and then preferably one
        that another technician can take inside its promised window. What it takes out is in
        `displaced`, for the caller to place elsewhere or return.
        """
        p, tm, rt = self.p, self.tm, self.rt
        due = int(p.due_start[node])
        level = int(p.level[node])

        def late(st: int) -> int:
            return max(0, st - due) if due >= 0 else 0

        options: list[tuple[int, int, int, int, int]] = []  # (late, cost, vehicle, position, kind)
        for v in p.allowed[node].tolist():
            n = int(rt.size[v])
            for q in range(n + 1):
                a, b = int(rt.nodes[v, q]), int(rt.nodes[v, q + 1])
                st, _ = insertion(
                    tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, q, node
                )
                if st < INF:
                    cost = int(tm.travel[a, node] + tm.travel[node, b] - tm.travel[a, b])
                    options.append((late(st), cost, v, q, _INSERT))
                elif displace:
                    ready = rt.cache[v, q, F0] + tm.travel[a, node]
                    st = first_start(tm.dom_ptr, tm.dom, node, ready)
                    if st < INF:  # pushed in, the rest of the route gives way
                        options.append((late(st), _TAKE_AWAY + int(tm.travel[a, node]), v, q, _PUSH))
            if not displace:
                continue
            for q in range(1, n + 1):
                old = int(rt.nodes[v, q])
                if 0 < p.level[old] <= level:
                    continue  # never anything as urgent
                st, _ = replacement(
                    tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, q, node
                )
                if st >= INF:
                    continue
                a, b = int(rt.nodes[v, q - 1]), int(rt.nodes[v, q + 1])
                cost = int(tm.travel[a, node] + tm.travel[node, b] - tm.travel[a, old] - tm.travel[old, b])
                options.append((late(st), cost + _TAKE_AWAY // 2, v, q, _REPLACE))
        options.sort(key=lambda o: (o[0], o[1]))
        # An emergency reached inside its SLA wins over the budget first, then over a promise.
        passes = [(True, True, False), (True, False, False), (True, True, True), (True, False, True)]
        # One already late (or that nobody reaches in time) still goes where it is done soonest.
        overdue = [(False, True, False), (False, False, False), (False, False, True)]
        passes = [*passes, *overdue] if displace else [(False, True, False)]
        rows = slice(int(tm.dom_ptr[node]), int(tm.dom_ptr[node + 1]))
        for in_sla, budgeted, promises in passes:
            saved = tm.dom[rows].copy()
            if in_sla:
                self.hold(node, due)  # the route's own timing must keep it inside the SLA
            if promises:
                if self._promise_pass(node, options, budgeted, in_sla):
                    if due >= 0 and not in_sla:
                        v = next(v for v in range(len(rt.size)) if node in rt.nodes[v, 1 : rt.size[v] + 1])
                        self.hold(node, max(due, self.start_of(node, v)))
                    return True
            else:
                for lateness, _, v, q, kind in options:
                    if in_sla and lateness > 0:
                        break
                    if self._try(node, v, q, kind, budgeted, promises=False, slack=slack):
                        if due >= 0 and not in_sla:
                            self.hold(node, max(due, self.start_of(node, v)))
                        return True
            tm.dom[rows] = saved
        return False

    def _promise_pass(
        self, node: int, options: list[tuple[int, int, int, int, int]], budgeted: bool, in_sla: bool
    ) -> bool:
        """Options (in the SLA, with `in_sla`) that take a promised visit out: the first whose promised
        visits others take inside their windows, else the first that works at all (those promises
        come back)."""
        fallback: tuple[int, int, int] | None = None
        tried = 0
        for lateness, _, v, q, kind in options:
            if (in_sla and lateness > 0) or tried >= _PROMISE_TRIES:
                break
            if kind == _INSERT:
                continue
            snap = self._snapshot()
            if not self._try(node, v, q, kind, budgeted, promises=True):
                continue
            tried += 1
            taken = [n for n in self.displaced[len(snap[-1]) :] if self.p.level[n] == 0]
            if all(self.place(n, displace=False) for n in taken):
                self.displaced = [n for n in self.displaced if n not in taken]
                return True
            fallback = fallback or (v, q, kind)
            self._restore(snap)
        if fallback is not None:
            v, q, kind = fallback
            return self._try(node, v, q, kind, budgeted, promises=True)
        return False

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
        rt = self.rt
        return (
            rt.nodes.copy(),
            rt.size.copy(),
            rt.cache.copy(),
            rt.vend.copy(),
            self.tm.dom.copy(),
            list(self.displaced),
        )

    def _restore(
        self, snap: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]
    ) -> None:
        rt = self.rt
        for dst, src in zip((rt.nodes, rt.size, rt.cache, rt.vend, self.tm.dom), snap[:5], strict=True):
            np.copyto(dst, src)
        self.displaced = snap[5]

    def start_of(self, node: int, v: int) -> int:
        route_starts(self.tm, self.rt, v, self.buf)
        pos = next(k for k in range(1, int(self.rt.size[v]) + 1) if self.rt.nodes[v, k] == node)
        return int(self.buf[pos])

    def hold(self, node: int, hi: int) -> None:
        """No start after `hi` for `node`: a placed emergency is not pushed past its SLA later on."""
        tm = self.tm
        first = int(tm.dom_ptr[node])
        for k in range(first, int(tm.dom_ptr[node + 1])):
            if tm.dom[k, 0] > hi:
                tm.dom[k] = tm.dom[k - 1] if k > first else (hi, hi)
            elif tm.dom[k, 1] > hi:
                tm.dom[k, 1] = hi

    def _try(
        self, node: int, v: int, q: int, kind: int, budgeted: bool, *, promises: bool, slack: int = 0
    ) -> bool:
        tm, rt = self.tm, self.rt
        before = rt.nodes[v, 1 : rt.size[v] + 1].tolist()
        limit = self.limit + slack if budgeted else 1 << 30
        if kind == _INSERT:
            after, out = [*before[:q], node, *before[q:]], []
        elif kind == _REPLACE:
            if not promises and self.p.level[before[q - 1]] == 0:
                return False
            after, out = [*before[: q - 1], node, *before[q:]], [before[q - 1]]
        else:
            after, out = self._pushed(v, before, q, node, limit, promises)
        ok = bool(after) and set_route(tm, rt, v, np.array(after, dtype=np.int64), len(after))
        if ok and self.changes(v) <= limit:
            self.displaced += out
            return True
        set_route(tm, rt, v, np.array(before, dtype=np.int64), len(before))
        return False

    def _pushed(
        self, v: int, before: list[int], q: int, node: int, limit: int, promises: bool
    ) -> tuple[list[int], list[int]]:
        """`node` after position q, and out of the rest of the route what then no longer fits, or
        what keeps the others' times within the budget: each time the visit whose removal helps most,
        least urgent first (a promise only with `promises`, and last; never anything as urgent); ([], [])
        when nothing does."""
        p, tm, rt = self.p, self.tm, self.rt
        level = int(p.level[node])
        seq = [*before[:q], node, *before[q:]]
        out: list[int] = []

        def score(order: list[int]) -> tuple[int, int]:
            if not set_route(tm, rt, v, np.array(order, dtype=np.int64), len(order)):
                return (1, 0)
            return (0, self.changes(v))

        now = score(seq)
        while now[0] or now[1] > limit:
            movable = [n for n in seq[q + 1 :] if p.level[n] > level or (promises and p.level[n] == 0)]
            if not movable:
                return [], []
            trials = [(score([n for n in seq if n != m]), -int(p.level[m]), seq.index(m), m) for m in movable]
            best = min(trials)
            seq.remove(best[-1])
            out.append(best[-1])
            now = best[0]
        return seq, out


def _budget_reasons(problem: Problem, search: _Budgeted, rest: Plan, budget: Budget, taken: set[int]) -> Plan:
    """A visit taken off the day that some technician could still fit in as the routes stand, were
    it not for the disruption budget, says so: the dispatcher's fix is a larger budget, not a call
    to the customer (the reason code stays; the detail changes)."""
    tm, rt = search.tm, search.rt
    node_of = {job.id: i for i, job in enumerate(problem.jobs)}

    def fits(node: int, v: int) -> bool:
        before = rt.nodes[v, 1 : rt.size[v] + 1].tolist()
        for q in range(len(before) + 1):
            st, _ = insertion(
                tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, q, node
            )
            if st >= INF:
                continue
            after = [*before[:q], node, *before[q:]]
            ok = set_route(tm, rt, v, np.array(after, dtype=np.int64), len(after))
            set_route(tm, rt, v, np.array(before, dtype=np.int64), len(before))
            if ok:
                return True
        return False

    notes: dict[str, str] = {}
    for u in rest.unassigned:
        node = node_of.get(u.job_id)
        if node is None or node not in taken:
            continue
        who = listed(
            problem.vehicles[v].technician_id for v in problem.allowed[node].tolist() if fits(node, v)
        )
        if who:
            notes[u.job_id] = (
                f"{who} could still fit it in, but only by changing more of their day than the disruption "
                f"budget allows ({budget.max_changed_visits_per_technician} visits per technician, a start "
                f"moved over {budget.max_eta_shift_minutes:g} min counting as one): a larger "
                "max_changed_visits_per_technician lets it"
            )
    if not notes:
        return rest
    return rest.model_copy(
        update={
            "unassigned": [
                u.model_copy(update={"detail": notes[u.job_id]}) if u.job_id in notes else u
                for u in rest.unassigned
            ]
        }
    )


def _only(job: Job, techs: set[str]) -> Job:
    """The job in a scenario of these technicians alone: preferences for others dropped."""
    return job.model_copy(
        update={
            "preferred_technicians": [t for t in job.preferred_technicians if t in techs],
            "excluded_technicians": [t for t in job.excluded_technicians if t in techs],
            "pinned": job.pinned if job.pinned is None or job.pinned.technician_id in techs else None,
        }
    )


_INSERT, _REPLACE, _PUSH = range(3)
#: Options that take a promised visit out, tried for one whose visit another technician takes.
_PROMISE_TRIES = 8
#: Changes beyond the budget one technician may take to keep another customer's promise.
_PROMISE_SLACK = 1
#: A promise no insertion keeps: the search re-orders this many nearby routes, this long.
_RESCUE_TECHNICIANS = 3
_RESCUE_ITERATIONS = 60
_RESCUE_GROUPS = 3
#: Taking a visit off someone's route ranks after any detour at the same lateness.
_TAKE_AWAY = 1 << 30


def _plan_of(problem: Problem, tm: Timing, rt: Routes) -> Plan:
    """The routes as a Plan, assembled as every solve's are (reasons for what is left out, KPIs)."""
    plan = assemble(problem, raw_routes(tm, rt), None)
    plan.solver = SolverStats(
        status="SUCCESS", wall_seconds=0.0, seed=0, time_limit_seconds=0.0, search_phases=["in-day insertion"]
    )
    return plan


def _full(
    data: IntradayInput,
    scenario: Scenario,
    problem: Problem,
    tm: Timing,
    rt: Routes,
    emergencies: list[int],
    base: tuple[dict[int, int], dict[int, int]],
    on_time: list[int],
) -> tuple[Plan, Scenario]:
    """The search over the rest of the day, no budget: emergencies first (as the budgeted policy
    places them, with no limit), their SLA then a hard bound, warm-started from the routes so made."""
    first = _Budgeted(problem, tm, rt, *base, data.budget, limited=False)
    bound = {problem.jobs[n].id: problem.moment(int(problem.due_start[n])) for n in on_time}
    for node in on_time:
        first.hold(node, int(problem.due_start[node]))
    for node in emergencies:
        if first.place(node, displace=True) and problem.due_start[node] >= 0:
            v = next(v for v in range(len(rt.size)) if node in rt.nodes[v, 1 : rt.size[v] + 1])
            if first.start_of(node, v) <= problem.due_start[node]:
                bound[problem.jobs[node].id] = problem.moment(int(problem.due_start[node]))
    if bound:
        # In the search an emergency inside its SLA is a promise: planned before any priority level.
        now = scenario.local(data.now)
        jobs = [
            j.model_copy(
                update={"appointment": Window(start=now, end=max(bound[j.id], now + timedelta(minutes=1)))}
            )
            if j.id in bound
            else j
            for j in scenario.jobs
        ]
        scenario = scenario.model_copy(update={"jobs": jobs})
    return solve(scenario, data.options, previous=_plan_of(problem, tm, rt)), scenario


def _chosen(
    problem: Problem, rest: Plan, base_start: dict[int, int], base_on: dict[int, int], budget: Budget
) -> dict[str, int]:
    """Per technician: visits added, taken away, or re-timed by more than the allowed shift, against
    the routes as they stand re-timed from the freeze points (`_Budgeted.changes`, for any plan)."""
    node_of = {j.id: i for i, j in enumerate(problem.jobs)}
    veh_of = {v.technician_id: v.index for v in problem.vehicles}
    shift = round(budget.max_eta_shift_minutes * 60 / problem.tick_seconds)
    out: dict[str, int] = {}
    for r in rest.routes:
        v = veh_of.get(r.technician_id)
        count = 0
        for visit in r.visits:
            node = node_of[visit.job_id]
            if base_on.get(node) != v or abs(problem.ticks(visit.start) - base_start[node]) > shift:
                count += 1
        out[r.technician_id] = count
    for node, v in base_on.items():
        tech = problem.vehicles[v].technician_id
        placed = any(
            node_of[x.job_id] == node for r in rest.routes if r.technician_id == tech for x in r.visits
        )
        if not placed:
            out[tech] = out.get(tech, 0) + 1
    return out


# --- the whole day and what changed -------------------------------------------------------------


def _whole_day(
    data: IntradayInput, freezes: dict[str, _Freeze], rest: Plan, legs: _Legs, jobs: dict[str, Job]
) -> list[Route]:
    rest_of = {r.technician_id: r for r in rest.routes}
    out: list[Route] = []
    for tid, f in freezes.items():
        later = rest_of.get(tid)
        if not f.prefix and later is None:
            continue
        visits = [*f.prefix, *(later.visits if later else [])]
        tech = f.technician
        stops = [tech.start_point, *(jobs[v.job_id].location for v in visits), tech.end_point]
        km = sum(legs.km_(a, b) for a, b in itertools.pairwise(stops))
        mins = sum(legs.minutes(a, b) for a, b in itertools.pairwise(stops))
        first = visits[0]
        start = first.arrival - timedelta(minutes=legs.minutes(tech.start_point, jobs[first.job_id].location))
        if later is not None:
            end = later.end
        else:
            last = visits[-1]
            end = last.end + timedelta(minutes=legs.minutes(jobs[last.job_id].location, tech.end_point))
        shift = next((s for s in tech.shifts if s.date == data.day), None)
        over = 0.0
        if shift is not None:
            shift_end = datetime.combine(data.day, shift.end, tzinfo=end.tzinfo)
            over = max(0.0, (end - shift_end).total_seconds() / 60)
        brk = later.break_ if later is not None and later.break_ is not None else None
        if brk is None and f.break_kept is not None:
            brk = Break(start=f.break_kept[0], end=f.break_kept[1])
        out.append(
            Route(
                technician_id=tid,
                date=data.day,
                start=start,
                end=end,
                distance_km=round(km, 3),
                travel_minutes=round(mins, 2),
                overtime_minutes=round(over, 2),
                visits=visits,
                break_=brk,
            )
        )
    out.sort(key=lambda r: r.technician_id)
    return out


def _diff(
    data: IntradayInput,
    before: dict[str, Route],
    after: list[Route],
    unassigned: list[Unassigned],
    jobs: dict[str, Job],
) -> tuple[list[TechnicianDiff], list[CustomerEta], list[Notice]]:
    shift = timedelta(minutes=data.budget.max_eta_shift_minutes)
    old_at = {v.job_id: (r.technician_id, v.start) for r in before.values() for v in r.visits}
    new_at = {v.job_id: (r.technician_id, v.start) for r in after for v in r.visits}
    now_routes = {r.technician_id: r for r in after}
    diffs: list[TechnicianDiff] = []
    notices: list[Notice] = []
    for tid in sorted(set(before) | set(now_routes)):
        old = [v.job_id for v in before[tid].visits] if tid in before else []
        new = [v.job_id for v in now_routes[tid].visits] if tid in now_routes else []
        added = [j for j in new if j not in old]
        removed = [j for j in old if j not in new]
        common_old = [j for j in old if j in new]
        common_new = [j for j in new if j in old]
        reordered = [j for j, k in zip(common_old, common_new, strict=True) if j != k]
        shifted = [j for j in common_new if j not in reordered and abs(new_at[j][1] - old_at[j][1]) > shift]
        d = TechnicianDiff(
            technician_id=tid,
            added=added,
            removed=removed,
            reordered=reordered,
            eta_shifted=shifted,
            changed_visits=len(added) + len(removed) + len(reordered) + len(shifted),
        )
        if d.changed_visits:
            diffs.append(d)
            parts = [
                f"{len(x)} {w}"
                for x, w in (
                    (added, "added"),
                    (removed, "taken off"),
                    (reordered, "re-ordered"),
                    (shifted, "re-timed"),
                )
                if x
            ]
            notices.append(
                Notice(
                    audience="technician",
                    kind="route_changed",
                    technician_id=tid,
                    message=f"your route for {data.day} changed: {', '.join(parts)}; pull it again",
                )
            )
    customers: list[CustomerEta] = []
    left = {u.job_id for u in unassigned}
    for job_id in sorted(set(old_at) | set(new_at)):
        o, n = old_at.get(job_id), new_at.get(job_id)
        if o is not None and n is not None and abs(n[1] - o[1]) <= shift:
            continue
        if o is None and n is None:
            continue
        job = jobs.get(job_id)
        customer = job.customer_id if job else None
        customers.append(
            CustomerEta(
                job_id=job_id,
                customer_id=customer,
                before=o[1] if o else None,
                after=n[1] if n else None,
                technician_before=o[0] if o else None,
                technician_after=n[0] if n else None,
            )
        )
        if n is None and job_id in left:
            kind: NoticeKind = "visit_removed"
            message = "we cannot come today as planned; we will call you to agree a new time"
        elif o is None:
            kind, message = "visit_added", f"a technician will arrive at about {n[1]:%H:%M}" if n else ""
        else:
            assert n is not None
            kind, message = "eta_changed", f"your visit now starts at about {n[1]:%H:%M} (was {o[1]:%H:%M})"
        notices.append(
            Notice(audience="customer", kind=kind, job_id=job_id, customer_id=customer, message=message)
        )
    return diffs, customers, notices


def as_planned(
    route: Route, now: datetime, done: Sequence[str] = ()
) -> tuple[list[str], CurrentVisit | None]:
    """A route taken as kept up to now, after the visits reported `done`: the visits planned to be
    over are over, the one planned under way is under way (since its planned start), the next is
    being driven to once its planned departure has passed (a break on the way included). The
    service assumes it where a technician has not reported; the simulation and tests start from it."""
    out = list(done)
    visits = route.visits
    reported = [k for k, v in enumerate(visits) if v.job_id in done]
    for k in range(reported[-1] + 1 if reported else 0, len(visits)):
        v = visits[k]
        departure = visits[k - 1].end if k else route.start
        if v.end <= now:
            out.append(v.job_id)
        elif v.start <= now:
            return out, CurrentVisit(job_id=v.job_id, state=CurrentState.STARTED, since=v.start)
        elif departure <= now:
            return out, CurrentVisit(job_id=v.job_id, state=CurrentState.EN_ROUTE, since=departure)
        else:
            break
    return out, None


def execution_as_planned(routes: Sequence[Route], now: datetime) -> list[Execution]:
    """What technicians who follow their routes exactly would have reported by `now`."""
    out: list[Execution] = []
    for r in routes:
        done, current = as_planned(r, now)
        out.append(Execution(technician_id=r.technician_id, done=done, current=current))
    return out
