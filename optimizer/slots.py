"""Appointment slots: the arrival windows a call-centre agent can offer, each priced and explained.

A customer on the phone is offered arrival windows ("Tuesday 10:00-12:00"). Each window is priced
the way the search would price the job there: the plan as it stands (the routes technicians see,
held slots included) is loaded into the one timing kernel, the job's start is narrowed to the
window, and every technician-day's cheapest exact insertion is found (`slotscan.scan_windows`, the
search's own insertion scan). Where nothing fits, a visit of lower priority may give way (never a
promise, never equal or higher priority): the slot then names it and its cost.

A slot carries its cost breakdown in `Weights`' unit (minutes of travel), the visits it would move,
and its robustness: how many technician-days could take it, so an agent can tell a comfortable slot
from the last gap of the week. Windows that are not offered come back with the reason, diagnosed by
relaxing one rule at a time (the lunch break, the overtime limit, the routes already planned, held
slots).

`place` is the booking side: the same evaluation for one window, applied to the cheapest
technician-day, the route re-timed by the kernel and checked by the independent validator. Pure like
the rest of the optimizer: plain values in, plain values out.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from models import (
    GeoPoint,
    Job,
    JobKind,
    Plan,
    ReasonCode,
    Route,
    Scenario,
    SolverStats,
    Technician,
    TravelSettings,
    Unassigned,
    Window,
)
from models.common import ClockTime
from optimizer import kernel
from optimizer.assemble import RawRoute, assemble_routes
from optimizer.costs import DAY_TICKS, cost_model, per_minute, to_minutes, vehicle_job_costs
from optimizer.groups import freeze_jobs
from optimizer.kernel import DAY_END, INF, LATEST_END, LUNCH_LEN, NEG, SHIFT_END, Routes, Timing
from optimizer.kpis import compute_kpis
from optimizer.problem import Problem, build_problem, travel_ticks
from optimizer.replan import ReplanInput, prepare
from optimizer.search import Engine
from optimizer.slotscan import COST, DISPLACED, HOW, INSERT, POSITION, REPLACE, scan_windows
from optimizer.solve import previous_routes
from optimizer.travel import provider_for
from optimizer.validate import Violation, validate_plan

#: "It would fit with more overtime" means with at most this many minutes more than allowed.
EXTRA_OVERTIME_MINUTES = 120
#: The placeholder job node a board's questions overwrite.
PROBE_ID = "slot-probe:0"
#: Grading: a slot costing this many more minutes than the best one gets half its grade.
GRADE_HALF = 60.0
#: Candidates re-timed exactly per slot asked for, before the final ranking.
SHORTLIST = 3
#: The technician's clock in a fresh route copy is re-derived, so a visit "moves" only past this.
MOVE_TOLERANCE_MINUTES = 1.0
#: What a caller's slot is charged per minute it moves planned visits (later, as an insertion does;
#: `Weights`' unit). A booked visit keeps its window, so every minute it is pushed is a minute of
#: room gone for the calls to come. Measured with the call centre of `benchmarks.booking` on 12
#: weeks (urban and rural seeds 1-4, altwindows and scarce 1-2), with the latest-window order below:
#: 0.05, 0.1 and 0.2 saved the same, 8 % of travel per job against neither, less in all 12 weeks.
#: A dispatcher's move on the board is not charged it.
ROOM_PRICE_PER_MINUTE = 0.1


class NotOfferedReason(StrEnum):
    """Why a window was not offered, in a dispatcher's words."""

    NO_QUALIFIED_TECHNICIAN = "no_qualified_technician"
    NO_SHIFT = "no_shift"  # no qualified technician works then
    LUNCH = "lunch"  # it would fit but for the lunch break
    OVERTIME_LIMIT = "overtime_limit"  # it would fit with more overtime than allowed
    BEFORE_RELEASE = "before_release"  # before the spare part arrives
    CAPACITY = "capacity"  # every qualified technician working then is fully booked
    HELD = "held"  # the last capacity is held for another customer
    ROUTE_UNDER_WAY = "route_under_way"  # only routes already under way could take it
    TOO_LONG = "too_long"
    UNPLANNABLE = "unplannable"


class Preferences(BaseModel):
    """What the customer said: only between these hours, not on these days."""

    model_config = ConfigDict(extra="forbid")

    from_time: ClockTime | None = Field(None, description="windows start at or after (e.g. 08:00)")
    until_time: ClockTime | None = Field(None, description="windows end at or before (12:00: mornings)")
    excluded_dates: list[date] = Field(default_factory=list)
    excluded_weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=list, description="0 is Monday"
    )


class SlotQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: Job
    window_minutes: Annotated[int, Field(ge=15, le=720)] = 120
    step_minutes: Annotated[int, Field(ge=5, le=720)] | None = Field(
        None, description="windows start every this many minutes; default min(60, window_minutes)"
    )
    earliest: date | None = None
    latest: date | None = None
    max_slots: Annotated[int, Field(ge=1, le=100)] = 8
    preferences: Preferences = Field(default_factory=Preferences)


class Hold(BaseModel):
    """A slot held for another customer: its job, promised its window, is planned like a booking."""

    model_config = ConfigDict(extra="forbid")

    job: Job = Field(description="with `appointment` set to the held window")
    technician_id: str | None = None


class SlotInput(BaseModel):
    """Plain values: the state of the plan (as a re-plan would read it) and the question."""

    model_config = ConfigDict(extra="forbid")

    base: ReplanInput
    query: SlotQuery
    holds: list[Hold] = Field(default_factory=list)


class SlotCost(BaseModel):
    total: float = Field(description="minutes of travel, `Weights`' unit: everything below summed")
    added_travel_minutes: float
    overtime_minutes: float = Field(description="overtime the slot adds to its technician-day")
    sla_late_minutes: float
    waiting: float = Field(description="the days waited and a preferred technician missed, priced")
    pushed_out: list[str] = Field(default_factory=list, description="lower-priority visits giving way")
    pushed_out_cost: float = 0.0
    moved_visits: int = Field(0, description="planned visits of that route whose start moves")
    moved_minutes: float = 0.0
    opening_share: float = Field(
        0.0,
        description="a slot that opens a technician-day is charged its share of the trip out and back "
        "(1 / the visits an open day carries), not all of it: this gives back the rest (zero or less)",
    )
    room: float = Field(
        0.0,
        description="the room taken from later callers: the minutes planned visits move "
        "(`moved_minutes`, later as a rule), priced; zero on a dispatcher's move",
    )


class Slot(BaseModel):
    start: datetime
    end: datetime
    date: date
    grade: Annotated[int, Field(ge=0, le=100)]
    technician_id: str = Field(description="the technician it would go to now: a candidate, not a promise")
    cost: SlotCost
    robustness: int = Field(description="technician-days that could take the job in this window")


class NotOffered(BaseModel):
    start: datetime
    end: datetime
    reason: NotOfferedReason
    detail: str


class SlotAnswer(BaseModel):
    job_id: str
    slots: list[Slot]
    not_offered: list[NotOffered]
    windows_considered: int


class Placement(BaseModel):
    """A booked window applied to the plan: the one route that changes, re-timed and validated."""

    route: Route
    pushed_out: list[str]
    cost: SlotCost


#: How much of an opened day's trip beyond its 1/k share a slot is not charged (see `_opening`).
#: Measured with `python -m benchmarks.booking` (travel per job after the call centre's week,
#: against no allowance): 0.6 saved 5-10 % on urban and rural (2 seeds each) and 5-6 % on the
#: held-out altwindows and scarce; 0.35 and 1.0 saved less, 1.4 cost more than none.
OPENING_SHARE = 0.6


class SlotUnavailable(RuntimeError):
    """The window can no longer be kept: the plan changed since it was offered."""

    def __init__(self, reason: NotOfferedReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class _Window:
    day: date
    lo: int
    hi: int


class SlotBoard:
    """The plan loaded into the kernel once (routes, holds), then asked about one job at a time.

    Building it is the expensive part (the matrices, the warm start: about a second for 2,000
    visits), so it carries one placeholder job node, the probe, whose data each question overwrites
    (`ask`): its travel row and column, duration, start intervals, qualified technician-days and
    costs, each computed by the same code that builds a problem (`build_problem` on the job alone).
    A service keeps a board while the plan does not change; questions to one board take its `lock`.
    """

    def __init__(self, base: ReplanInput, holds: Sequence[Hold] = (), exclude: str | None = None) -> None:
        self.base = base
        self.lock = threading.Lock()
        hold_jobs = [h.job for h in holds if h.job.id != exclude]
        held = _ids(hold_jobs)
        # An existing request asking for another slot: the question is about it alone, as if it were
        # not planned yet, so its own visit frees its place first.
        trimmed = base.model_copy(
            update={
                "pool": [e for e in base.pool if e.job.id != exclude and e.job.id not in held],
                "previous": [
                    r.model_copy(update={"visits": [x for x in r.visits if x.job_id != exclude]})
                    for r in base.previous
                ],
            }
        )
        # Crews and multi-day jobs' visits stand where they are (pinned stand-ins): a booking moves
        # single visits only; those still waiting for a crew are not slot questions.
        jobs, previous, self.thaw = freeze_jobs(
            [e.job for e in trimmed.pool], trimmed.previous, keep_unplanned=False
        )
        status = {e.job.id: e for e in trimmed.pool}
        trimmed = trimmed.model_copy(
            update={
                "pool": [status[self.thaw.id(j.id)].model_copy(update={"job": j}) for j in jobs],
                "previous": previous,
            }
        )
        anchor = base.technicians[0].home if base.technicians else GeoPoint(lat=0.0, lon=0.0)
        probe = Job(id=PROBE_ID, kind=JobKind.REPAIR, location=anchor, duration_minutes=1)
        prep = prepare(trimmed, [*hold_jobs, probe])
        self.scenario = prep.scenario
        self.options = base.options
        p = build_problem(self.scenario, self.options)
        self.problem = p
        self.per_tick = p.tick_seconds / 60.0
        node = {j.id: n for n, j in enumerate(p.jobs)}
        self.probe: int | None = node.get(PROBE_ID)
        assert self.probe is None or self.probe == p.n_jobs - 1, "the probe is the last job node (slotscan)"
        self.costs = cost_model(p, self.options.weights)
        engine = Engine(p, self.costs)
        self.engine = engine
        self.frozen: set[int] = set()
        if prep.last_plan is not None:
            engine.warm_start(previous_routes(p, prep.last_plan))
            # A technician-day whose route the kernel cannot re-time as stored (visits done or under
            # way, a visit now before the clock) is not offered: a slot there would rewrite history.
            shown = {(r.technician_id, r.date): len(r.visits) for r in prep.last_plan.routes}
            for veh in p.vehicles:
                if int(engine.rt.size[veh.index]) != shown.get((veh.technician_id, veh.date), 0):
                    self.frozen.add(veh.index)
        nb = engine.nb
        self.allowed = nb.allowed.copy()
        self.last_hi = nb.last_hi.copy()
        self.lost = np.array(
            [per_minute(p, self.options.weights.unserved_by_priority.get(int(x), 0.0)) for x in p.priority],
            dtype=np.int64,
        )
        self.rng = np.array([1], dtype=np.uint64)
        self.tm = p.timing
        self._extra_overtime = round(EXTRA_OVERTIME_MINUTES * 60 / p.tick_seconds)
        self.provider = provider_for(self.scenario.travel)
        # The routes without holds (to tell "held" from "full"), then with them.
        self.rt_free = _copy(engine.rt)
        self.load_free = engine.st.load.copy()
        self.rt = _copy(engine.rt)
        self.load = engine.st.load.copy()
        self.empty = kernel.empty_routes(self.tm, self.rt.nodes.shape[1])
        self.held_at: dict[str, tuple[int, int]] = {}
        for hold in holds:
            h = node.get(hold.job.id)
            if h is not None and hold.job.id != exclude:
                self._place_hold(h, hold.technician_id)
        # Set by `ask`.
        self.query = SlotQuery(job=probe)
        self.now: datetime | None = base.not_before
        self.j: int | None = None
        self.rejected: tuple[ReasonCode, str] | None = None
        self.qualified: list[int] = []

    def ask(self, query: SlotQuery, now: datetime | None = None) -> None:
        """Make the probe the query's job (under `lock`): what `answer` and `place` then price."""
        self.query, self.now = query, now if now is not None else self.base.not_before
        self.j, self.rejected = None, None
        job = query.job
        if (
            job.crew_size > 1
            or job.max_days > 1
            or job.after is not None
            or job.same_technician_as is not None
        ):
            self.rejected = (
                ReasonCode.CREW_UNAVAILABLE if job.crew_size > 1 else ReasonCode.PARTS_DO_NOT_FIT,
                "slots are offered for single visits; a crew, a job over several days or a linked visit "
                "is planned by the dispatcher (POST /v1/requests, then a re-plan)",
            )
            return
        alone = prepare(self.base.model_copy(update={"pool": [], "previous": []}), [job])
        if not alone.scenario.jobs:
            gone = "it is due after the horizon" if alone.deferred else "its windows have passed"
            self.rejected = (ReasonCode.NO_SHIFT_IN_WINDOW, f"the job cannot be planned now: {gone}")
            return
        mini = build_problem(alone.scenario, self.options)
        if mini.n_jobs == 0:
            _, reason, detail = mini.rejected[0]
            self.rejected = (reason, detail)
            return
        if self.probe is None:
            self.rejected = (ReasonCode.NO_SHIFT_IN_WINDOW, "no technician works in the horizon")
            return
        p, j, tm = self.problem, self.probe, self.tm
        p.jobs[j] = mini.jobs[0]
        point = np.array([[job.location.lat, job.location.lon]], dtype=np.float64)
        p.points[j] = point[0]
        km_out, min_out = self.provider.between(point, p.points)
        km_in, min_in = self.provider.between(p.points, point)
        p.km[j, :], p.km[:, j] = km_out[0], km_in[:, 0]
        for travel in {id(p.travel): p.travel, id(tm.travel): tm.travel}.values():
            travel[j, :] = travel_ticks(min_out, p.tick_seconds)[0]
            travel[:, j] = travel_ticks(min_in, p.tick_seconds)[:, 0]
            travel[j, j] = 0
        p.km[j, j] = 0.0
        p.service[j] = tm.service[j] = mini.service[0]
        p.domains[j] = mini.domains[0]
        dom = np.array(mini.domains[0], dtype=np.int64).reshape(-1, 2)
        ptr = tm.dom_ptr.copy()
        ptr[j + 1] = ptr[j] + len(dom)
        self.tm = tm._replace(dom_ptr=ptr, dom=np.concatenate([tm.dom[: tm.dom_ptr[j]], dom]))
        for array, value in (
            (p.due_start, mini.due_start[0]),
            (self.costs.due_start, mini.due_start[0]),
            (p.priority, mini.priority[0]),
            (p.level, mini.level[0]),
            (self.engine.nb.level, mini.level[0]),
            (p.demand, mini.demand[0]),
            (self.engine.nb.demand, mini.demand[0]),
            (p.earliest_day, mini.earliest_day[0]),
            (p.due_day, mini.due_day[0]),
            (self.last_hi, dom[-1, 1]),
            (
                self.lost,
                per_minute(p, self.options.weights.unserved_by_priority.get(int(mini.priority[0]), 0.0)),
            ),
        ):
            array[j] = value
        p.preferred[j] = mini.preferred[0]
        self.qualified = mini.allowed[0].tolist()
        p.allowed[j] = np.array([v for v in self.qualified if v not in self.frozen], dtype=np.int64)
        self.allowed[:, j] = False
        self.allowed[p.allowed[j], j] = True
        self.costs.node[:, j] = vehicle_job_costs(mini, self.options.weights)[:, 0]
        self.j = j

    # --- the compiled scan -------------------------------------------------------------------------

    def scan(
        self,
        job: int,
        vehicles: NDArray[np.int64],
        windows: NDArray[np.int64],
        *,
        timing: Timing | None = None,
        routes: Routes | None = None,
        load: NDArray[np.int64] | None = None,
    ) -> NDArray[np.int64]:
        tm = timing or self.tm
        rt = routes or self.rt
        out = np.empty((len(windows), len(vehicles), 4), dtype=np.int64)
        nb, cs = self.engine.nb, self.costs
        scan_windows(
            tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend,
            cs.w, cs.node, cs.due_start, self.allowed, self.load if load is None else load, nb.demand,
            nb.capacity, self.last_hi, nb.level, self.lost, self.rng, job, vehicles, windows, out,
        )  # fmt: skip
        return out

    def _place_hold(self, h: int, technician_id: str | None) -> None:
        """A held slot takes its capacity: the cheapest feasible place, its technician first."""
        p = self.problem
        vehicles = np.array(p.allowed[h], dtype=np.int64)
        if len(vehicles) == 0:
            return
        whole = np.array([[0, INF - 1]], dtype=np.int64)
        out = self.scan(h, vehicles, whole)[0]
        ok = [x for x in range(len(vehicles)) if out[x, HOW] == INSERT]
        if not ok:
            return
        x = min(ok, key=lambda i: (p.vehicles[vehicles[i]].technician_id != technician_id, out[i, COST]))
        v = int(vehicles[x])
        kernel.insert(p.timing, self.rt, v, int(out[x, POSITION]), h)
        self.load[v] += int(p.demand[h])
        self.held_at[p.jobs[h].id] = (v, int(out[x, POSITION]))

    # --- windows -----------------------------------------------------------------------------------

    def windows(self) -> list[_Window]:
        """The grid of arrival windows over the allowed days, as the customer's preferences allow."""
        p, q = self.problem, self.query
        prefs = q.preferences
        step = q.step_minutes or min(60, q.window_minutes)
        tick = p.tick_seconds
        step_t = max(1, round(step * 60 / tick))
        win_t = round(q.window_minutes * 60 / tick)
        now = p.ticks(self.now) if self.now is not None else NEG
        out: list[_Window] = []
        for day in self.scenario.horizon.dates():
            if (q.earliest and day < q.earliest) or (q.latest and day > q.latest):
                continue
            if day in prefs.excluded_dates or day.weekday() in prefs.excluded_weekdays:
                continue
            vs = [v for v in p.vehicles if v.date == day]
            if not vs:
                continue
            midnight = p.ticks(self.scenario.at(day, time(0)))
            first = min(v.shift_start for v in vs)
            last = max(v.latest_end for v in vs)
            lo_pref = p.ticks(self.scenario.at(day, prefs.from_time)) if prefs.from_time else NEG
            hi_pref = p.ticks(self.scenario.at(day, prefs.until_time)) if prefs.until_time else INF
            s = midnight + (first - midnight) // step_t * step_t
            while s < last:
                e = s + win_t
                if s >= now and s >= lo_pref and e <= hi_pref:
                    out.append(_Window(day, s, e))
                s += step_t
        return out

    # --- the answer --------------------------------------------------------------------------------

    def answer(self) -> SlotAnswer:
        q = self.query
        grid = self.windows()
        if self.j is None:
            assert self.rejected is not None
            reason, detail = self.rejected
            code = _REJECTED.get(reason, NotOfferedReason.UNPLANNABLE)
            return SlotAnswer(
                job_id=q.job.id,
                slots=[],
                not_offered=[self._not_offered(w, code, detail) for w in grid[: q.max_slots]],
                windows_considered=len(grid),
            )
        j = self.j
        p = self.problem
        domain = p.domains[j]
        priced: list[tuple[int, int, _Window, int, NDArray[np.int64]]] = []  # cost, start, window, x, row
        missed: list[_Window] = []
        by_day: dict[date, list[_Window]] = {}
        for w in grid:
            if _overlaps(domain, w.lo, w.hi):
                by_day.setdefault(w.day, []).append(w)
            elif domain and w.hi < domain[0][0]:
                missed.append(w)  # before the release: diagnosed below; after it, the customer's own windows
        day_vehicles: dict[date, NDArray[np.int64]] = {}
        opening = self._opening(j)
        for day, ws in by_day.items():
            vehicles = np.array([v for v in p.allowed[j] if p.vehicles[v].date == day], dtype=np.int64)
            day_vehicles[day] = vehicles
            if len(vehicles) == 0:
                missed.extend(ws)
                continue
            out = self.scan(j, vehicles, np.array([(w.lo, w.hi) for w in ws], dtype=np.int64))
            for i, w in enumerate(ws):
                costs = np.where(out[i, :, COST] < INF, out[i, :, COST] - opening[vehicles], INF)
                x = int(np.argmin(costs))
                if costs[x] >= INF:
                    missed.append(w)
                else:
                    priced.append((int(costs[x]), w.lo, w, x, out[i]))
        # The scan prices overtime as an upper bound (as the search does); the breakdown re-times the
        # route exactly. Rank a few times more candidates than asked by the exact price. Of windows
        # costing the same, the latest first: the earliest that fits puts the visit at the end of its
        # window, where the next caller squeezed in before it breaks the promise; the latest puts it at
        # the start (the technician may wait for it, time the calls to come fill), and the route keeps
        # its order open (6 % less travel per job after a call-centre week, `benchmarks.booking`).
        priced.sort(key=lambda t: (t[0], -t[1]))
        exact = []
        for _, _, w, x, row in priced[: q.max_slots * SHORTLIST]:
            v = int(day_vehicles[w.day][x])
            cost = self._breakdown(j, v, row[x], w, opening=int(opening[v]), caller=True)
            exact.append((cost, w, v, row))
        exact.sort(key=lambda t: (t[0].total, -t[1].lo))
        best_total = exact[0][0].total if exact else 0.0
        slots = [
            Slot(
                start=p.moment(w.lo),
                end=p.moment(w.hi),
                date=w.day,
                grade=_grade(breakdown.total, best_total),
                technician_id=p.vehicles[v].technician_id,
                cost=breakdown,
                robustness=int(np.count_nonzero(row[:, COST] < INF)),
            )
            for breakdown, w, v, row in exact[: q.max_slots]
        ]
        missed.sort(key=lambda w: w.lo)
        not_offered = [self._diagnose(j, w) for w in missed[: q.max_slots]]
        return SlotAnswer(job_id=q.job.id, slots=slots, not_offered=not_offered, windows_considered=len(grid))

    def _breakdown(
        self, j: int, v: int, row: NDArray[np.int64], w: _Window, *, opening: int = 0, caller: bool = False
    ) -> SlotCost:
        """The slot's cost in its parts, and the visits of that route it would move. For a slot
        offered to a caller (`caller`), what `_opening` gives back on this technician-day (`opening`,
        cost units) and the room it takes from the calls to come (`ROOM_PRICE_PER_MINUTE`); a
        dispatcher's move on the board is priced as it is."""
        p, cs = self.problem, self.costs
        tm = self._narrowed(j, w.lo, w.hi)
        pos, how = int(row[POSITION]), int(row[HOW])
        # The route is edited in place and put back (copying every route per slot would cost more
        # than the question).
        scratch = self.rt
        saved = _save(scratch, v)
        before = _starts(tm, scratch, v)
        pushed: list[str] = []
        lost = 0.0
        try:
            if how == REPLACE:
                u = int(row[DISPLACED])
                pushed = [p.jobs[u].id]
                lost = self.options.weights.unserved_by_priority.get(int(p.priority[u]), 0.0)
                a, b = scratch.nodes[v, pos - 1], scratch.nodes[v, pos + 1]
                added = float(tm.travel[a, j] + tm.travel[j, b] - tm.travel[a, u] - tm.travel[u, b])
                kernel.remove(tm, scratch, v, pos, 1)
                kernel.insert(tm, scratch, v, pos - 1, j)
            else:
                a, b = scratch.nodes[v, pos], scratch.nodes[v, pos + 1]
                added = float(tm.travel[a, j] + tm.travel[j, b] - tm.travel[a, b])
                kernel.insert(tm, scratch, v, pos, j)
            after = _starts(tm, scratch, v)
            new_end = int(scratch.vend[v, DAY_END])
        finally:
            _restore(scratch, v, saved)
        shift_end = int(tm.veh[v, SHIFT_END])
        old_end = int(self.rt.vend[v, DAY_END]) if int(self.rt.size[v]) else shift_end
        overtime = max(0, new_end - shift_end) - max(0, old_end - shift_end)
        start_j = after[j]
        due = int(cs.due_start[j])
        late = max(0, start_j - due) if due >= 0 else 0
        moved = [abs(after[u] - before[u]) for u in before if u in after]
        moved_min = [m * self.per_tick for m in moved if m * self.per_tick >= MOVE_TOLERANCE_MINUTES]
        weights = self.options.weights
        travel_min = added * self.per_tick
        over_min = overtime * self.per_tick
        late_min = late * self.per_tick
        late_days = -(-late // int(cs.w[DAY_TICKS])) if late else 0
        waiting = to_minutes(p, int(cs.node[v, j]))
        if int(self.rt.size[v]) == 0:
            waiting += weights.technician_day_fixed
        given = -to_minutes(p, opening)
        room = ROOM_PRICE_PER_MINUTE * sum(moved_min) if caller else 0.0
        total = (
            travel_min * weights.travel_per_minute
            + over_min * weights.overtime_per_minute
            + late_min * weights.sla_late_per_minute
            + late_days * weights.sla_late_per_day
            + waiting
            + lost
            + given
            + room
        )
        return SlotCost(
            total=round(total, 1),
            added_travel_minutes=round(travel_min, 1),
            overtime_minutes=round(over_min, 1),
            sla_late_minutes=round(late_min, 1),
            waiting=round(waiting, 1),
            pushed_out=pushed,
            pushed_out_cost=round(lost, 1),
            moved_visits=len(moved_min),
            moved_minutes=round(sum(moved_min), 1),
            opening_share=round(given, 1),
            room=round(room, 1),
        )

    def _opening(self, j: int) -> NDArray[np.int64]:
        """Per technician-day, the part of opening it that the slot is not charged (cost units; zero
        for a day already open).

        Booking one caller at a time, a day's whole trip out and back falls on its first visit, so
        every later caller is cheaper squeezed into an open day, however far, than opening another:
        days fill in calling order, each criss-crossing the area, where a plan made knowing all the
        jobs gives each day a part of it. A day opened now will carry about as many visits as the
        open days do on average, so the first is charged 1/k of the trip and of the day's fixed
        cost, or rather `OPENING_SHARE` of the difference: the later visits add detours of their own.
        With few days open k is near 1 and nothing changes; an empty plan opens none."""
        rt, tm, cs = self.rt, self.tm, self.costs
        sizes = rt.size[rt.size > 0]
        k = float(sizes.mean()) if len(sizes) else 1.0
        out = np.zeros(len(rt.size), dtype=np.int64)
        if k <= 1.0:
            return out
        empty = np.flatnonzero(rt.size == 0)
        home, back = rt.nodes[empty, 0], rt.nodes[empty, 1]
        trip = tm.travel[home, j] + tm.travel[j, back] - tm.travel[home, back]
        given = OPENING_SHARE * (1.0 - 1.0 / k)
        out[empty] = np.rint(given * (cs.travel_w * trip + cs.fixed)).astype(np.int64)
        return out

    def _narrowed(self, j: int, lo: int, hi: int) -> Timing:
        """The timing with job j's start intervals narrowed to [lo, hi] (a promised window)."""
        tm = self.tm
        a, b = int(tm.dom_ptr[j]), int(tm.dom_ptr[j + 1])
        pieces = [(max(x, lo), min(y, hi)) for x, y in tm.dom[a:b].tolist() if max(x, lo) <= min(y, hi)]
        new = np.array(pieces, dtype=np.int64).reshape(-1, 2)
        ptr = tm.dom_ptr.copy()
        ptr[j + 1 :] += len(new) - (b - a)
        return tm._replace(dom_ptr=ptr, dom=np.concatenate([tm.dom[:a], new, tm.dom[b:]]))

    # --- why a window is not offered ---------------------------------------------------------------

    def _not_offered(self, w: _Window, reason: NotOfferedReason, detail: str) -> NotOffered:
        p = self.problem
        return NotOffered(start=p.moment(w.lo), end=p.moment(w.hi), reason=reason, detail=detail)

    def _diagnose(self, j: int, w: _Window) -> NotOffered:
        """One rule relaxed at a time: the first whose relaxation lets the job in is the reason."""
        p = self.problem
        job = p.jobs[j]
        domain = p.domains[j]
        if domain and w.hi < domain[0][0] and job.release is not None and p.ticks(job.release) > w.hi:
            return self._not_offered(
                w,
                NotOfferedReason.BEFORE_RELEASE,
                f"the job cannot start before {p.moment(domain[0][0]):%Y-%m-%d %H:%M} (spare part)",
            )
        qualified = [v for v in self.qualified if p.vehicles[v].date == w.day]
        if not qualified:
            return self._not_offered(
                w, NotOfferedReason.NO_SHIFT, f"no qualified technician works on {w.day}"
            )
        open_ = [v for v in qualified if v not in self.frozen]
        if not open_:
            return self._not_offered(
                w,
                NotOfferedReason.ROUTE_UNDER_WAY,
                f"the qualified technicians' routes of {w.day} are under way; in-day changes are the "
                "dispatcher's",
            )
        vehicles = np.array(open_, dtype=np.int64)
        windows = np.array([(w.lo, w.hi)], dtype=np.int64)
        tm = self.tm
        zero = np.zeros_like(self.load)
        if not _fits(self.scan(j, vehicles, windows, routes=self.empty, load=zero)):
            # Not even on an empty day: the window against the shifts, the break, the overtime limit.
            for relaxed, code, text in (
                (_no_lunch(tm), NotOfferedReason.LUNCH, "the lunch break leaves no room for the visit then"),
                (
                    _more_overtime(tm, self._extra_overtime),
                    NotOfferedReason.OVERTIME_LIMIT,
                    "the visit would end past the overtime limit",
                ),
            ):
                empty = _refreshed(relaxed, self.empty, open_)
                if _fits(self.scan(j, vehicles, windows, timing=relaxed, routes=empty, load=zero)):
                    return self._not_offered(w, code, text)
            return self._not_offered(
                w,
                NotOfferedReason.NO_SHIFT,
                "no qualified technician's shift covers the window and the visit",
            )
        if _fits(self.scan(j, vehicles, windows, routes=self.rt_free, load=self.load_free)):
            return self._not_offered(
                w, NotOfferedReason.HELD, "the last capacity then is held for another customer"
            )
        # Full: the reason is capacity; whether overtime would make room is the hint a dispatcher acts on.
        relaxed = _more_overtime(tm, self._extra_overtime)
        hint = ""
        if _fits(self.scan(j, vehicles, windows, timing=relaxed, routes=_refreshed(relaxed, self.rt, open_))):
            hint = f"; it would fit with up to {EXTRA_OVERTIME_MINUTES} min more overtime than allowed"
        return self._not_offered(
            w,
            NotOfferedReason.CAPACITY,
            f"every qualified technician working then is fully booked ({len(open_)} technician(s)){hint}",
        )

    # --- booking -----------------------------------------------------------------------------------

    def place(self, start: datetime, end: datetime, technician_id: str | None = None) -> Placement:
        """Apply a window to the plan: the cheapest technician-day that keeps it (the one offered
        first when it still can), re-timed, validated. Raises SlotUnavailable when none can."""
        p = self.problem
        if self.j is None:
            assert self.rejected is not None
            reason, detail = self.rejected
            raise SlotUnavailable(_REJECTED.get(reason, NotOfferedReason.UNPLANNABLE), detail)
        j = self.j
        lo, hi = p.ticks(start), p.ticks(end)
        day = p.scenario.local(start).date()
        w = _Window(day, lo, hi)
        vehicles = np.array([v for v in p.allowed[j] if p.vehicles[v].date == day], dtype=np.int64)
        out = self.scan(j, vehicles, np.array([(lo, hi)], dtype=np.int64))[0] if len(vehicles) else None
        if out is None or not _fits(out[None]):
            why = self._diagnose(j, w)
            raise SlotUnavailable(why.reason, why.detail)
        ok = [x for x in range(len(vehicles)) if out[x, COST] < INF]
        x = min(ok, key=lambda i: (out[i, COST], p.vehicles[vehicles[i]].technician_id != technician_id))
        v = int(vehicles[x])
        cost = self._breakdown(j, v, out[x], w, opening=int(self._opening(j)[v]), caller=True)
        route = self.placed_route(j, v, out[x], lo, hi)
        violations = self.check(route, start, end)
        if violations:
            listed = "; ".join(str(x) for x in violations[:5])
            raise SlotUnavailable(
                NotOfferedReason.UNPLANNABLE, f"the placement failed the validator: {listed}"
            )
        return Placement(route=self.thaw.route(route), pushed_out=cost.pushed_out, cost=cost)

    def placed_route(self, j: int, v: int, row: NDArray[np.int64], lo: int, hi: int) -> Route:
        """Technician-day v with job j where the scan's `row` put it, re-timed by the kernel (held
        slots left out: they are not in the plan)."""
        p = self.problem
        tm = self._narrowed(j, lo, hi)
        scratch = _copy(self.rt)
        pos = int(row[POSITION])
        if int(row[HOW]) == REPLACE:
            kernel.remove(tm, scratch, v, pos, 1)
            pos -= 1
        kernel.insert(tm, scratch, v, pos, j)
        route = _route_of(p, tm, scratch, v)
        held = set(self.held_at)
        return route.model_copy(update={"visits": [x for x in route.visits if x.job_id not in held]})

    def check(self, route: Route, start: datetime, end: datetime) -> list[Violation]:
        """The independent validator on the one route that changes (the others are untouched)."""
        tech = next(t for t in self.scenario.technicians if t.id == route.technician_id)
        tech = tech.model_copy(update={"shifts": [s for s in tech.shifts if s.date == route.date]})
        jobs = {x.id: x for x in self.scenario.jobs}
        booked = self.query.job.model_copy(update={"appointment": Window(start=start, end=end)})
        jobs[booked.id] = booked
        held = [jobs[x.job_id] for x in route.visits]
        sub = Scenario(
            name="booking",
            timezone=self.scenario.timezone,
            horizon=self.scenario.horizon,
            travel=self.scenario.travel,
            technicians=[tech],
            jobs=[_alone(x) for x in held],
        )
        plan = Plan(
            scenario=sub.name,
            timezone=sub.timezone,
            horizon_start=sub.horizon.start,
            horizon_days=sub.horizon.days,
            routes=[route],
            unassigned=[],
            kpis=compute_kpis(sub, [route], [], None),
            solver=SolverStats(status="", wall_seconds=0.0, seed=0, time_limit_seconds=0.0),
        )
        return validate_plan(sub, plan)


_REJECTED = {
    ReasonCode.NO_QUALIFIED_TECHNICIAN: NotOfferedReason.NO_QUALIFIED_TECHNICIAN,
    ReasonCode.TOO_LONG: NotOfferedReason.TOO_LONG,
    ReasonCode.NO_SHIFT_IN_WINDOW: NotOfferedReason.NO_SHIFT,
    ReasonCode.ALL_EXCLUDED: NotOfferedReason.NO_QUALIFIED_TECHNICIAN,
}


def apply_placement(plan: Plan, placement: Placement, job_id: str, why: str = "") -> Plan:
    """The plan with a booking in: its one route replaced, the job out of `unassigned`, and the
    visits that gave way unassigned with the reason (priced in the slot's cost; never a promise)."""
    key = (placement.route.technician_id, placement.route.date)
    routes = [r for r in plan.routes if (r.technician_id, r.date) != key] + [placement.route]
    routes.sort(key=lambda r: (r.date, r.technician_id))
    gone = {job_id, *placement.pushed_out}
    unassigned = [u for u in plan.unassigned if u.job_id not in gone] + [
        Unassigned(
            job_id=x,
            reason=ReasonCode.CAPACITY,
            detail=why or f"gave way to the appointment booked for {job_id}",
        )
        for x in placement.pushed_out
    ]
    return plan.model_copy(update={"routes": routes, "unassigned": unassigned})


def without_visit(
    route: Route, job_id: str, technician: Technician, points: dict[str, GeoPoint], travel: TravelSettings
) -> Route:
    """The route with one visit taken out (an appointment moved or cancelled). The others keep
    their times, each still reachable (the detour only gets shorter); its distance and driving are
    measured again with the same travel model."""
    visits = [v for v in route.visits if v.job_id != job_id]
    stops = [technician.start_point, *(points[v.job_id] for v in visits), technician.end_point]
    provider = provider_for(travel)
    km = minutes = 0.0
    for a, b in itertools.pairwise(stops):
        leg_km, leg_min = provider.between(
            np.array([[a.lat, a.lon]], dtype=np.float64), np.array([[b.lat, b.lon]], dtype=np.float64)
        )
        km += float(leg_km[0, 0])
        minutes += float(leg_min[0, 0])
    return route.model_copy(
        update={"visits": visits, "distance_km": round(km, 3), "travel_minutes": round(minutes, 2)}
    )


def board_for(data: SlotInput) -> SlotBoard:
    return SlotBoard(data.base, data.holds, exclude=data.query.job.id)


def find_slots(data: SlotInput, board: SlotBoard | None = None) -> SlotAnswer:
    """The best arrival windows for the query's job, best first, and the earliest ones not offered.
    A `board` given is asked as it is (built for `data.base` and `data.holds`, kept by the caller)."""
    board = board or board_for(data)
    with board.lock:
        board.ask(data.query, data.base.not_before)
        return board.answer()


def place(
    data: SlotInput,
    start: datetime,
    end: datetime,
    technician_id: str | None = None,
    board: SlotBoard | None = None,
) -> Placement:
    """Book: the job promised [start, end], placed in the plan as it stands now."""
    board = board or board_for(data)
    with board.lock:
        board.ask(data.query, data.base.not_before)
        return board.place(start, end, technician_id)


# --- helpers -------------------------------------------------------------------------------------


def _alone(job: Job) -> Job:
    """The job in a one-technician check: its technician rules were the scan's, not this check's."""
    return job.model_copy(update={"pinned": None, "preferred_technicians": [], "excluded_technicians": []})


def _ids(jobs: list[Job]) -> set[str]:
    return {x.id for x in jobs}


def _copy(rt: Routes) -> Routes:
    return Routes(nodes=rt.nodes.copy(), size=rt.size.copy(), cache=rt.cache.copy(), vend=rt.vend.copy())


def _save(rt: Routes, v: int) -> tuple[NDArray[np.int64], int, NDArray[np.int64], NDArray[np.int64]]:
    return rt.nodes[v].copy(), int(rt.size[v]), rt.cache[v].copy(), rt.vend[v].copy()


def _restore(
    rt: Routes, v: int, saved: tuple[NDArray[np.int64], int, NDArray[np.int64], NDArray[np.int64]]
) -> None:
    rt.nodes[v], rt.size[v], rt.cache[v], rt.vend[v] = saved


def _refreshed(tm: Timing, rt: Routes, vehicles: list[int]) -> Routes:
    """A copy of the routes re-timed under relaxed rules (only the vehicles asked about)."""
    out = _copy(rt)
    for v in vehicles:
        kernel.refresh(tm, out, v)
    return out


def _no_lunch(tm: Timing) -> Timing:
    veh = tm.veh.copy()
    veh[:, LUNCH_LEN] = 0
    return tm._replace(veh=veh)


def _more_overtime(tm: Timing, ticks: int) -> Timing:
    veh = tm.veh.copy()
    veh[:, LATEST_END] += ticks
    return tm._replace(veh=veh)


def _fits(out: NDArray[np.int64]) -> bool:
    return bool((out[..., COST] < INF).any())


def _overlaps(domain: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(max(a, lo) <= min(b, hi) for a, b in domain)


def _starts(tm: Timing, rt: Routes, v: int) -> dict[int, int]:
    n = int(rt.size[v])
    out = np.zeros(rt.nodes.shape[1], dtype=np.int64)
    kernel.route_starts(tm, rt, v, out)
    return {int(rt.nodes[v, q]): int(out[q]) for q in range(1, n + 1)}


def _route_of(p: Problem, tm: Timing, rt: Routes, v: int) -> Route:
    width = rt.nodes.shape[1]
    starts = np.zeros(width, dtype=np.int64)
    arrivals = np.zeros(width, dtype=np.int64)
    depart, brk = kernel.schedule(tm, rt, v, starts, arrivals)
    n = int(rt.size[v])
    raw = RawRoute(
        vehicle=v,
        nodes=rt.nodes[v, 1 : n + 1].tolist(),
        starts=starts[1 : n + 1].tolist(),
        arrivals=arrivals[1 : n + 1].tolist(),
        depart=int(depart),
        end=int(rt.vend[v, DAY_END]),
        break_start=None if brk == NEG else int(brk),
    )
    return assemble_routes(p, [raw])[0]


def _grade(total: float, best: float) -> int:
    """100 for the best slot, half for one costing GRADE_HALF more minutes, towards 0 beyond."""
    extra = max(0.0, total - best)
    return max(0, min(100, round(100 * GRADE_HALF / (GRADE_HALF + extra))))
