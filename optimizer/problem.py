"""Scenario -> frozen, indexed problem: integer ticks, matrices, vehicles, allowed vehicles.

This is the one place where wall-clock datetimes become integers. Everything downstream (the
constructor, the OR-Tools model, the plan writer) works on these arrays; jobs that no vehicle can
serve are taken out here, with their reason, so they never reach the search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from models import Job, Plan, ReasonCode, Scenario
from optimizer.kernel import Checker, Timing
from optimizer.options import SolveOptions
from optimizer.travel import TravelProvider, provider_for

NO_DUE_DAY = -(10**6)  # `Problem.due_day` of a job that is not a maintenance occurrence
COST_PER_TRAVEL_TICK = 10  # integer costs with a tenth-of-a-tick resolution for the soft weights


def per_tick(weight: float) -> int:
    """A weight in travel-minutes per minute -> integer cost per tick (travel costs 1 per tick)."""
    return round(weight * COST_PER_TRAVEL_TICK)


@dataclass(frozen=True)
class Vehicle:
    """One technician on one working day."""

    index: int
    technician: int
    technician_id: str
    day: int
    date: date
    start_node: int
    end_node: int
    shift_start: int
    shift_end: int
    latest_end: int
    capacity: int | None
    lunch: tuple[int, int, int] | None  # (earliest break start, latest break start, duration)


@dataclass(frozen=True)
class Problem:
    scenario: Scenario
    tick_seconds: float
    origin: datetime
    jobs: list[Job]  # the jobs that reach the search, node i is jobs[i]
    job_index: list[int]  # node -> index in scenario.jobs
    n_nodes: int
    points: NDArray[np.float64]
    km: NDArray[np.float64]
    travel: NDArray[np.int64]  # ticks, rounded up so the plan is feasible in real time
    service: NDArray[np.int64]
    domains: list[list[tuple[int, int]]]  # per job node: allowed start intervals, sorted
    due_start: NDArray[np.int64]  # latest start meeting the SLA, -1 without `due`
    priority: NDArray[np.int64]
    level: NDArray[np.int64]  # 0 for a promise (pinned), else the priority: the order of `costs.better`
    demand: NDArray[np.int64]
    vehicles: list[Vehicle]
    allowed: list[NDArray[np.int64]]  # per job node: vehicles that may serve it alone
    preferred: list[frozenset[int]]  # technician indices
    earliest_day: NDArray[np.int64]
    due_day: NDArray[np.int64]  # a maintenance occurrence's due date (horizon day index); NO_DUE_DAY else
    previous: dict[int, tuple[int, int]] = field(default_factory=dict)  # node -> (technician, day)
    rejected: list[tuple[int, ReasonCode, str]] = field(default_factory=list)

    @property
    def n_jobs(self) -> int:
        return len(self.jobs)

    @cached_property
    def solo(self) -> Checker:
        """Exact checks of one job alone on a technician-day (reasons for what is left out)."""
        return Checker(self.timing, 3)

    @cached_property
    def timing(self) -> Timing:
        """The arrays the timing kernel works on."""
        ptr = np.zeros(self.n_jobs + 1, dtype=np.int64)
        for j, dom in enumerate(self.domains):
            ptr[j + 1] = ptr[j] + len(dom)
        intervals = np.array([iv for dom in self.domains for iv in dom], dtype=np.int64).reshape(-1, 2)
        veh = np.array(
            [
                (
                    v.start_node,
                    v.end_node,
                    v.shift_start,
                    v.shift_end,
                    v.latest_end,
                    *(v.lunch if v.lunch else (0, 0, 0)),
                )
                for v in self.vehicles
            ],
            dtype=np.int64,
        ).reshape(-1, 8)
        return Timing(
            travel=np.ascontiguousarray(self.travel, dtype=np.int64),
            service=self.service.astype(np.int64),
            dom_ptr=ptr,
            dom=intervals,
            veh=veh,
        )

    def moment(self, ticks: int | float) -> datetime:
        """Ticks -> an aware datetime; via UTC so a DST change inside the horizon is exact."""
        instant = self.origin.astimezone(UTC) + timedelta(seconds=float(ticks) * self.tick_seconds)
        return instant.astimezone(self.scenario.tz)

    def ticks(self, moment: datetime) -> int:
        """An instant -> ticks from the horizon's start (as `build_problem` counts them)."""
        local = self.scenario.local(moment).astimezone(UTC)
        return round((local - self.origin.astimezone(UTC)).total_seconds() / self.tick_seconds)

    @property
    def horizon_end(self) -> int:
        return self.ticks(self.scenario.horizon_end)

    def minutes(self, ticks: int | float) -> float:
        return float(ticks) * self.tick_seconds / 60.0


def travel_ticks(minutes: NDArray[np.float64], tick: float) -> NDArray[np.int64]:
    """Minutes of driving -> whole ticks, rounded up so a plan is feasible in real time. In place
    (the argument is spent): at 5,000 jobs a square matrix is 200 MB, and a temporary doubles it."""
    minutes *= 60.0 / tick
    minutes -= 1e-9
    np.ceil(minutes, out=minutes)
    return minutes.astype(np.int64)


def _tick_of(scenario: Scenario, origin: datetime, tick: float, day: date, clock: time) -> int:
    moment = scenario.at(day, clock)
    return round((moment.astimezone(UTC) - origin.astimezone(UTC)).total_seconds() / tick)


def _describe_skills(job: Job) -> str:
    return ", ".join(f"{name}>={level}" for name, level in sorted(job.skills.items())) or "no skill"


def build_problem(
    scenario: Scenario,
    options: SolveOptions,
    travel: TravelProvider | None = None,
    previous: Plan | None = None,
) -> Problem:
    tick = options.tick_seconds
    origin = scenario.horizon_start
    techs = scenario.technicians
    tech_pos = {t.id: i for i, t in enumerate(techs)}
    dates = scenario.horizon.dates()
    day_of = {d: i for i, d in enumerate(dates)}

    def at(day: date, clock: time) -> int:
        return _tick_of(scenario, origin, tick, day, clock)

    def ticks(moment: datetime) -> int:
        return round((scenario.local(moment).astimezone(UTC) - origin.astimezone(UTC)).total_seconds() / tick)

    horizon_end = ticks(scenario.horizon_end)
    n_all = len(scenario.jobs)

    # Location nodes: one per distinct technician start/end point, after the job nodes.
    loc_points: list[tuple[float, float]] = []
    loc_index: dict[tuple[float, float], int] = {}

    def loc(point: tuple[float, float]) -> int:
        if point not in loc_index:
            loc_index[point] = len(loc_points)
            loc_points.append(point)
        return loc_index[point]

    tech_start = [loc((t.start_point.lat, t.start_point.lon)) for t in techs]
    tech_end = [loc((t.end_point.lat, t.end_point.lon)) for t in techs]

    job_points = np.array(
        [(j.location.lat, j.location.lon) for j in scenario.jobs], dtype=np.float64
    ).reshape(-1, 2)
    all_points = np.vstack([job_points, np.array(loc_points, dtype=np.float64).reshape(-1, 2)])
    provider = travel or provider_for(scenario.travel)
    km_all, minutes_all = provider.matrices(all_points)
    travel_all = travel_ticks(minutes_all, tick)
    del minutes_all
    np.fill_diagonal(travel_all, 0)
    loc_offset = n_all

    # Vehicles: one per technician per shift inside the horizon.
    vehicles: list[Vehicle] = []
    for ti, tech in enumerate(techs):
        for shift in tech.shifts:
            if shift.date not in day_of:
                continue
            s, e = at(shift.date, shift.start), at(shift.date, shift.end)
            emax = e + round(tech.max_overtime_minutes * 60 / tick)
            lunch = None
            if tech.lunch is not None:
                le, ll = at(shift.date, tech.lunch.earliest), at(shift.date, tech.lunch.latest)
                m = round(tech.lunch.minutes * 60 / tick)
                lo, hi = max(le, s), min(ll, emax) - m
                if lo <= hi:
                    lunch = (lo, hi, m)
            vehicles.append(
                Vehicle(
                    index=len(vehicles),
                    technician=ti,
                    technician_id=tech.id,
                    day=day_of[shift.date],
                    date=shift.date,
                    start_node=loc_offset + tech_start[ti],
                    end_node=loc_offset + tech_end[ti],
                    shift_start=s,
                    shift_end=e,
                    latest_end=emax,
                    capacity=tech.capacity,
                    lunch=lunch,
                )
            )
    n_veh = len(vehicles)
    v_tech = np.array([v.technician for v in vehicles], dtype=np.int64)
    v_start = np.array([v.shift_start for v in vehicles], dtype=np.int64)
    v_emax = np.array([v.latest_end for v in vehicles], dtype=np.int64)
    v_snode = np.array([v.start_node for v in vehicles], dtype=np.int64)
    v_enode = np.array([v.end_node for v in vehicles], dtype=np.int64)
    v_cap = np.array([v.capacity if v.capacity is not None else 2**40 for v in vehicles], dtype=np.int64)
    v_day = np.array([v.day for v in vehicles], dtype=np.int64)
    v_date = [v.date for v in vehicles]

    keep: list[int] = []
    domains: list[list[tuple[int, int]]] = []
    allowed: list[NDArray[np.int64]] = []
    rejected: list[tuple[int, ReasonCode, str]] = []
    durations = np.array([round(j.duration_minutes * 60 / tick) for j in scenario.jobs], dtype=np.int64)

    # Skill qualification per technician, once per distinct requirement (a few dozen in a week).
    names = sorted({name for t in techs for name in t.skills} | {n for j in scenario.jobs for n in j.skills})
    levels = np.array([[t.skills.get(n, 0) for n in names] for t in techs], dtype=np.int64).reshape(
        len(techs), len(names)
    )
    column = {n: i for i, n in enumerate(names)}
    qualified_for: dict[tuple[tuple[str, int], ...], NDArray[np.bool_]] = {}

    for ji, job in enumerate(scenario.jobs):
        need = tuple(sorted(job.skills.items()))
        if need not in qualified_for:
            mask = np.ones(len(techs), dtype=bool)
            for name, minimum in need:
                mask &= levels[:, column[name]] >= minimum
            qualified_for[need] = mask
        qualified = qualified_for[need]
        if not qualified.any():
            rejected.append((ji, ReasonCode.NO_QUALIFIED_TECHNICIAN, _no_skill_detail(job, scenario)))
            continue
        ok_tech = qualified.copy()
        for tid in job.excluded_technicians:
            ok_tech[tech_pos[tid]] = False
        if not ok_tech.any():
            rejected.append(
                (
                    ji,
                    ReasonCode.ALL_EXCLUDED,
                    "every technician with " + _describe_skills(job) + " is excluded by the customer",
                )
            )
            continue
        mask = ok_tech[v_tech] if n_veh else np.zeros(0, dtype=bool)
        if job.pinned is not None:
            pt = tech_pos[job.pinned.technician_id]
            pin_mask = (v_tech == pt) & np.array([d == job.pinned.date for d in v_date], dtype=bool)
            if not (pin_mask & mask).any():
                why = (
                    "is not qualified or is excluded"
                    if not ok_tech[pt]
                    else f"has no shift on {job.pinned.date}"
                )
                rejected.append(
                    (
                        ji,
                        ReasonCode.PINNED_CONFLICT,
                        f"pinned to {job.pinned.technician_id} on {job.pinned.date}, who {why}",
                    )
                )
                continue
            mask &= pin_mask
        if not mask.any():
            rejected.append(
                (ji, ReasonCode.NO_SHIFT_IN_WINDOW, "no qualified technician has a shift in the horizon")
            )
            continue
        dur = int(durations[ji])
        span = v_emax - v_start
        if not (mask & (span >= dur)).any():
            longest = int(span[mask].max())
            rejected.append(
                (
                    ji,
                    ReasonCode.TOO_LONG,
                    f"{job.duration_minutes:g} min is longer than the longest qualified shift "
                    f"({longest * tick / 60:.0f} min with overtime)",
                )
            )
            continue
        if not (mask & (v_cap >= job.demand)).any():
            rejected.append(
                (
                    ji,
                    ReasonCode.DEMAND_EXCEEDS_VAN,
                    f"demand {job.demand} exceeds every qualified van (largest {int(v_cap[mask].max())})",
                )
            )
            continue
        mask &= v_cap >= job.demand
        dom = start_domain(job, ticks, horizon_end)
        # Alone on vehicle v: start in [shift_start + travel in, latest_end - duration - travel out].
        earliest = v_start + travel_all[v_snode, ji]
        latest = v_emax - dur - travel_all[ji, v_enode]
        time_ok = np.zeros(n_veh, dtype=bool)
        for a, b in dom:
            time_ok |= np.maximum(earliest, a) <= np.minimum(latest, b)
        final = mask & time_ok
        if not final.any():
            rejected.append(
                (
                    ji,
                    ReasonCode.NO_SHIFT_IN_WINDOW,
                    _window_detail(job, dom, vehicles, mask),
                )
            )
            continue
        keep.append(ji)
        domains.append(dom)
        allowed.append(np.flatnonzero(final).astype(np.int64))

    # A promised window that can no longer be kept is the dispatcher's to renegotiate, whatever blocks it.
    rejected = [
        (
            ji,
            ReasonCode.PROMISE_BROKEN,
            f"{_promise(scenario, scenario.jobs[ji])} can no longer be kept: {detail}",
        )
        if scenario.jobs[ji].appointment is not None and reason != ReasonCode.NO_QUALIFIED_TECHNICIAN
        else (ji, reason, detail)
        for ji, reason, detail in rejected
    ]

    # Re-index: kept jobs become nodes 0..n-1, then location nodes.
    n_jobs = len(keep)
    # Only locations some technician-day starts or ends at: an unused one would be a node OR-Tools
    # must visit (it has no disjunction), e.g. the home of a technician off for the whole horizon.
    used_locs = sorted({v.start_node for v in vehicles} | {v.end_node for v in vehicles})
    n_loc = len(used_locs)
    select = np.array(keep + used_locs, dtype=np.int64)
    remap = {old: new for new, old in enumerate(select.tolist())}
    if len(select) == len(all_points) and (select == np.arange(len(all_points))).all():
        travel_m, km_m = travel_all, km_all  # nothing left out: no copy
    else:
        travel_m = travel_all[np.ix_(select, select)]
        km_m = km_all[np.ix_(select, select)]
    del travel_all, km_all
    points = all_points[select]
    final_vehicles = [
        Vehicle(**{**v.__dict__, "start_node": remap[v.start_node], "end_node": remap[v.end_node]})
        for v in vehicles
    ]
    jobs = [scenario.jobs[i] for i in keep]
    service = np.zeros(n_jobs + n_loc, dtype=np.int64)
    service[:n_jobs] = durations[keep] if keep else []
    # An occurrence's lateness is priced per day from its due date (`due_day`), not per tick.
    due_start = np.array(
        [
            ticks(j.due) - int(durations[i]) if j.due is not None and j.occurrence is None else -1
            for i, j in zip(keep, jobs, strict=True)
        ],
        dtype=np.int64,
    )
    h_start = scenario.horizon.start
    due_day = np.array(
        [(j.occurrence.due - h_start).days if j.occurrence is not None else NO_DUE_DAY for j in jobs],
        dtype=np.int64,
    )
    priority = np.array([j.effective_priority for j in jobs], dtype=np.int64)
    level = np.where(np.array([j.promised for j in jobs], dtype=bool), 0, priority).astype(np.int64)
    demand = np.array([j.demand for j in jobs], dtype=np.int64)
    preferred = [frozenset(tech_pos[t] for t in j.preferred_technicians) for j in jobs]
    earliest_day = np.array([int(v_day[a].min()) for a in allowed], dtype=np.int64)

    prev_map: dict[int, tuple[int, int]] = {}
    if previous is not None:
        node_of = {scenario.jobs[old].id: new for new, old in enumerate(keep)}
        for route in previous.routes:
            if route.technician_id not in tech_pos or route.date not in day_of:
                continue
            for visit in route.visits:
                if visit.job_id in node_of:
                    prev_map[node_of[visit.job_id]] = (tech_pos[route.technician_id], day_of[route.date])

    return Problem(
        scenario=scenario,
        tick_seconds=tick,
        origin=origin,
        jobs=jobs,
        job_index=keep,
        n_nodes=n_jobs + n_loc,
        points=points,
        km=km_m,
        travel=travel_m,
        service=service,
        domains=domains,
        due_start=due_start,
        priority=priority,
        level=level,
        demand=demand,
        vehicles=final_vehicles,
        allowed=allowed,
        preferred=preferred,
        earliest_day=earliest_day,
        due_day=due_day,
        previous=prev_map,
        rejected=rejected,
    )


def start_domain(job: Job, ticks: Callable[[datetime], int], horizon_end: int) -> list[tuple[int, int]]:
    """Allowed start intervals: the windows, clipped by the release, a promised window, a pinned
    start and the horizon (also what an explanation asks about a job with other windows)."""
    lo_bound = ticks(job.release) if job.release is not None else 0
    hi_bound = horizon_end
    if job.appointment is not None:
        lo_bound = max(lo_bound, ticks(job.appointment.start))
        hi_bound = min(hi_bound, ticks(job.appointment.end))
    if job.pinned is not None and job.pinned.start is not None:
        at = ticks(job.pinned.start)
        lo_bound, hi_bound = max(lo_bound, at), min(hi_bound, at)
    raw = [(ticks(w.start), ticks(w.end)) for w in job.windows] or [(0, horizon_end)]
    return _merge([(max(a, lo_bound, 0), min(b, hi_bound)) for a, b in raw])


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(i for i in intervals if i[0] <= i[1]):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _promise(scenario: Scenario, job: Job) -> str:
    assert job.appointment is not None
    a, b = scenario.local(job.appointment.start), scenario.local(job.appointment.end)
    return f"the promised window {a:%Y-%m-%d %H:%M}-{b:%H:%M}"


def _no_skill_detail(job: Job, scenario: Scenario) -> str:
    best = None
    for tech in scenario.technicians:
        missing = [
            f"{name} {tech.skills.get(name, 0)}<{level}"
            for name, level in job.skills.items()
            if tech.skills.get(name, 0) < level
        ]
        if best is None or len(missing) < len(best[1]):
            best = (tech.id, missing)
    closest = f"; closest: {best[0]} ({', '.join(best[1])})" if best else ""
    return f"needs {_describe_skills(job)}; no technician has it{closest}"


def _window_detail(
    job: Job,
    dom: list[tuple[int, int]],
    vehicles: list[Vehicle],
    mask: NDArray[np.bool_],
) -> str:
    if not dom:
        return "its release date leaves no start time inside its windows or the horizon"
    days = sorted({vehicles[i].date.isoformat() for i in np.flatnonzero(mask)})
    when = ", ".join(days[:5]) + (" ..." if len(days) > 5 else "")
    return (
        f"no qualified technician's shift (incl. travel and {job.duration_minutes:g} min on site) "
        f"fits a start inside its windows/release; qualified shifts on {when or 'no day'}"
    )
