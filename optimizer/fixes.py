"""What would make it fit: the smallest changes that would let each job left out into the plan.

A reason code says why a job is out; a dispatcher then still has to find the change that lets it in.
For every unassigned job this module proposes such changes (`models.Fix`), ranks them by what they
cost and checks the best ones with the optimizer itself:

1. **Candidates** come from the one timing kernel over the plan as it stands (each question is an
   O(1) insertion check per position, as in the search): the overtime a technician-day would need
   (exact: its day end recomputed with the limit lifted), the same minutes as a longer shift, a
   wider window (15-120 min each side), another day at the same hours, a lower-priority visit it
   could take the place of, a technician who would need one skill level more, a technician who
   does not work that day. Jobs that reach no search (no qualified technician, longer than any
   shift, no shift in their windows) get the changes that address their reason.
2. **Verification**: a candidate is applied to a copy of the scenario cut down to the technician-days
   it touches (their visits, the job, the change), re-planned with `optimizer.solve` warm-started
   from the plan with `keep_planned` and an iteration limit (repeatable), and checked by the
   independent validator. Verified means: the job is planned, every visit those routes held is
   still planned (bar the named displaced ones) and the validator finds nothing. Other technician-
   days are untouched, so the whole plan with the change stays valid.
3. **Cost**: `cost_delta`, in minutes of travel (`Weights`' unit), is the re-plan's cost model total
   after minus before, plus the displaced jobs' unserved weights; a longer shift prices each added
   minute as a minute of travel and a day off called in its whole shift (the cost model has no price
   for regular hours). Unverified candidates carry the kernel's estimate.

Pure like the rest of the optimizer: scenario and plan in, fixes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from models import Fix, Job, Pinned, Plan, ReasonCode, Route, Scenario, Shift, Technician, Unassigned, Window
from optimizer import kernel
from optimizer.costs import cost_model
from optimizer.groups import freeze, is_group_job, needs_groups
from optimizer.kernel import INF, LATEST_END, SHIFT_END, Routes, Timing
from optimizer.options import SolveOptions
from optimizer.problem import Vehicle, build_problem, start_domain
from optimizer.search import Engine
from optimizer.solve import previous_routes, solve
from optimizer.travel import TravelProvider, haversine_km
from optimizer.validate import validate_plan

#: Largest shift extension, overtime or window widening proposed, in minutes.
MOST_MINUTES = 240
WIDENINGS = (15, 30, 60, 90, 120)
#: Verified fixes wanted per job, and candidates tried to get them.
VERIFY_TOP = 3
VERIFY_TRIES = 8
#: A visit this long (minutes) rarely fits around a lunch window: fixes may move the break.
LONG_VISIT = 240
#: What a missing skill level costs to fix, in minutes of travel (a day of training is 480).
TRAINING_PER_LEVEL = 240.0
#: Ruin-and-recreate iterations of a verification re-plan (small problems: a few routes).
VERIFY_ITERATIONS = 150
#: Candidates kept per kind and job before ranking.
PER_KIND = 3
#: Reasons no change of capacity or timing addresses (the customer's or dispatcher's own rules).
NOT_FIXED = {ReasonCode.ALL_EXCLUDED, ReasonCode.PINNED_CONFLICT, ReasonCode.DEMAND_EXCEEDS_VAN}


@dataclass
class Candidate:
    """A change to try: plain values, and how to apply it to a cut-down scenario."""

    kind: str
    job_id: str
    detail: str
    estimate: float  # minutes of travel
    days: tuple[tuple[str, date], ...]  # the technician-days it touches
    technician_id: str | None = None
    date: date | None = None
    minutes: int | None = None
    displaced: tuple[str, ...] = ()
    job: Job | None = None  # the job as changed (windows), else as it is
    technician: Callable[[Technician], Technician] | None = None  # the change to a technician
    extra_cost: float = 0.0  # added to the verified delta (regular minutes, a day called in)
    routes: list[Route] | None = None  # the verified re-plan of the technician-days it touches

    def fix(self, cost: float, verified: bool) -> Fix:
        return Fix(
            kind=self.kind,  # type: ignore[arg-type]
            detail=self.detail,
            technician_id=self.technician_id,
            date=self.date,
            minutes=self.minutes,
            displaced_job_ids=list(self.displaced),
            cost_delta=round(cost, 1),
            verified=verified,
        )


@dataclass
class Explainer:
    """The plan loaded into the kernel once; asked per job."""

    scenario: Scenario
    plan: Plan
    options: SolveOptions = field(default_factory=SolveOptions)
    travel: TravelProvider | None = None

    def __post_init__(self) -> None:
        if needs_groups(self.scenario):
            # Crews, multi-day and linked visits stay where they are: what-ifs move single visits.
            self.scenario, self.plan = freeze(self.scenario, self.plan)
        self.problem = build_problem(self.scenario, self.options, travel=self.travel)
        p = self.problem
        self.engine = Engine(p, cost_model(p, self.options.weights))
        self.engine.warm_start(previous_routes(p, self.plan))
        self.node = {job.id: n for n, job in enumerate(p.jobs)}
        self.jobs = {j.id: j for j in self.scenario.jobs}
        self.techs = {t.id: t for t in self.scenario.technicians}
        self.per_tick = p.tick_seconds / 60.0
        self._before: dict[tuple[tuple[str, date], ...], float] = {}
        self._qualified_memo: dict[str, list[int]] = {}

    # --- the questions, per job ------------------------------------------------------------------

    def fixes(self, job_id: str, reason: ReasonCode, *, verify: bool = True) -> list[Fix]:
        """Fixes for one unassigned job, cheapest first; the top ones verified."""
        if reason in NOT_FIXED or job_id not in self.jobs:
            return []
        if is_group_job(self.jobs[job_id], set(self.jobs)):
            return []  # a crew, a multi-day job or one linked to another left out: its reason says why
        cands = self.candidates(job_id, reason)
        cands.sort(key=lambda c: c.estimate)
        out: list[Fix] = []
        verified = tried = 0
        for cand in cands:
            if verify and verified < VERIFY_TOP and tried < VERIFY_TRIES:
                tried += 1
                ok, cost, pushed = self.verify(cand)
                verified += ok
                if pushed:
                    names = ", ".join(f"{x} (priority {self.jobs[x].effective_priority})" for x in pushed)
                    cand.detail += f"; the re-plan then leaves out {names}"
                    cand.displaced = (*cand.displaced, *pushed)
                out.append(cand.fix(cost if ok else cand.estimate, ok))
            else:
                out.append(cand.fix(cand.estimate, False))
        out.sort(key=lambda f: (not f.verified, f.cost_delta))
        return out

    def candidates(self, job_id: str, reason: ReasonCode) -> list[Candidate]:
        job = self.jobs[job_id]
        found: list[Candidate] = []
        if job_id in self.node:
            j = self.node[job_id]
            found += self._as_is(j)
            found += self._more_time(j)
            found += self._displace(j)
            found += self._make_room(j)
            found += self._wider_window(j)
            found += self._other_day(j)
        elif reason is ReasonCode.TOO_LONG:
            found += self._longer_for_long_job(job)
        elif reason is ReasonCode.NO_SHIFT_IN_WINDOW:
            found += self._longer_for_window(job)
        if reason is ReasonCode.NO_QUALIFIED_TECHNICIAN or self._scarce(job):
            found += self._skill(job)
        if reason in (ReasonCode.NO_SHIFT_IN_WINDOW, ReasonCode.CAPACITY, ReasonCode.PROMISE_BROKEN):
            found += self._extra_day(job)
        if reason in (ReasonCode.NO_SHIFT_IN_WINDOW, ReasonCode.CAPACITY, ReasonCode.TOO_LONG):
            found += self._lunch(job)
        seen: set[tuple[object, ...]] = set()
        unique = []
        for c in found:
            key = (c.kind, c.technician_id, c.date, c.minutes, c.displaced)
            if key not in seen:
                seen.add(key)
                unique.append(c)
        return unique

    # --- candidates from the kernel --------------------------------------------------------------

    def _scan(
        self, tm: Timing, rt: Routes, vehicles: Iterable[int], j: int
    ) -> list[tuple[float, int, int, int]]:
        """Per vehicle the cheapest feasible insertion of node j: (added travel minutes, v, p, day end)."""
        best: dict[int, tuple[float, int, int, int]] = {}
        travel = tm.travel
        for v in vehicles:
            n = int(rt.size[v])
            for p in range(n + 1):
                st, arr = kernel.insertion(
                    tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, p, j
                )
                if st >= INF:
                    continue
                a, b = rt.nodes[v, p], rt.nodes[v, p + 1]
                added = float(travel[a, j] + travel[j, b] - travel[a, b]) * self.per_tick
                end = arr if n == 0 else kernel.end_after(rt.cache, rt.vend, v, p + 1, arr)
                if v not in best or added < best[v][0]:
                    best[v] = (added, v, p, int(end))
        return sorted(best.values())

    def _qualified_vehicles(self, job: Job) -> list[int]:
        """Technician-days with the skills, not excluded, the pin respected (asked by several
        kinds of candidate for the same job: computed once per job)."""
        if job.id not in self._qualified_memo:
            self._qualified_memo[job.id] = self._qualified_for(job)
        return self._qualified_memo[job.id]

    def _qualified_for(self, job: Job) -> list[int]:
        out = []
        for v in self.problem.vehicles:
            tech = self.techs[v.technician_id]
            if tech.id in job.excluded_technicians:
                continue
            if job.pinned is not None and (job.pinned.technician_id, job.pinned.date) != (tech.id, v.date):
                continue
            if _qualified(tech, job):
                out.append(v.index)
        return out

    def _as_is(self, j: int) -> list[Candidate]:
        """The job fits somewhere without any change (the search's time ran out before it)."""
        p = self.problem
        hits = self._scan(p.timing, self.engine.rt, p.allowed[j].tolist(), j)
        out = []
        for added, v, _, end in hits[:1]:
            if end <= p.timing.veh[v, LATEST_END]:
                veh = p.vehicles[v]
                out.append(
                    self._cand(
                        "insert", j, v, added, f"fits as it is on {veh.technician_id}'s {veh.date} route"
                    )
                )
        return out

    def _more_time(self, j: int) -> list[Candidate]:
        """Overtime, or the same minutes as a longer shift: exact, with the day's limit lifted."""
        p, w = self.problem, self.options.weights
        tm = p.timing
        relaxed = tm._replace(veh=tm.veh.copy())
        rt = self.engine.rt
        scratch = _scratch(rt)
        out: list[Candidate] = []
        options = []
        for v in p.allowed[j].tolist():
            relaxed.veh[v, LATEST_END] = tm.veh[v, LATEST_END] + 24 * 3600 // int(p.tick_seconds)
            kernel.refresh(relaxed, scratch, v)
            hit = self._scan(relaxed, scratch, [v], j)
            relaxed.veh[v, LATEST_END] = tm.veh[v, LATEST_END]
            kernel.refresh(tm, scratch, v)
            if not hit:
                continue
            added, _, _, end = hit[0]
            need = int(np.ceil((end - tm.veh[v, LATEST_END]) * self.per_tick / 5.0)) * 5
            if 0 < need <= MOST_MINUTES:
                options.append((need, added, v))
        options.sort(key=lambda x: (x[0], x[1]))
        for need, added, v in options[:PER_KIND]:
            veh = p.vehicles[v]
            tech = self.techs[veh.technician_id]
            beyond = max(0, (int(tm.veh[v, LATEST_END] - tm.veh[v, SHIFT_END]) * self.per_tick)) + need
            if tech.max_overtime_minutes + need <= 720:
                out.append(
                    self._cand(
                        "overtime",
                        j,
                        v,
                        added + w.overtime_per_minute * beyond,
                        f"allow {veh.technician_id} {need} more minutes of overtime on {veh.date} "
                        f"({tech.max_overtime_minutes} -> {tech.max_overtime_minutes + need})",
                        minutes=need,
                        technician=_more_overtime(need),
                    )
                )
            paid = need * w.travel_per_minute
            out.append(_longer(p.jobs[j].id, veh, need, added + paid, paid))
        return out

    def _displace(self, j: int) -> list[Candidate]:
        """Take the place of one visit of lower priority (never a promise)."""
        p, w = self.problem, self.options.weights
        tm, rt = p.timing, self.engine.rt
        mine = int(p.level[j])
        options = []
        for v in p.allowed[j].tolist():
            for q in range(1, int(rt.size[v]) + 1):
                u = int(rt.nodes[v, q])
                if int(p.level[u]) <= mine:
                    continue
                st, _ = kernel.replacement(
                    tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, q, j
                )
                if st >= INF:
                    continue
                a, b = rt.nodes[v, q - 1], rt.nodes[v, q + 1]
                added = float(tm.travel[a, j] + tm.travel[j, b] - tm.travel[a, u] - tm.travel[u, b])
                lost = w.unserved_by_priority.get(int(p.priority[u]), 0.0)
                options.append((lost + added * self.per_tick, v, u))
        options.sort()
        out = []
        for est, v, u in options[:PER_KIND]:
            veh, other = p.vehicles[v], p.jobs[u]
            out.append(
                self._cand(
                    "displace",
                    j,
                    v,
                    est,
                    f"give {other.id} (priority {other.effective_priority}) a later slot and send "
                    f"{veh.technician_id} here on {veh.date} instead",
                    displaced=(other.id,),
                )
            )
        return out

    def _make_room(self, j: int) -> list[Candidate]:
        """Re-plan a technician-day with the job in: lower-priority visits may leave (the
        verification names them). Wider than one in-place swap: the day is re-ordered too."""
        p, w = self.problem, self.options.weights
        rt = self.engine.rt
        mine = int(p.level[j])
        options = []
        for v in p.allowed[j].tolist():
            lower = [
                int(rt.nodes[v, q])
                for q in range(1, int(rt.size[v]) + 1)
                if int(p.level[rt.nodes[v, q]]) > mine
            ]
            if lower:
                cheapest = min(w.unserved_by_priority.get(int(p.priority[u]), 0.0) for u in lower)
                home = float(p.travel[p.vehicles[v].start_node, j]) * self.per_tick
                options.append((cheapest + 2 * home, v))
        options.sort()
        out = []
        for est, v in options[:PER_KIND]:
            veh = p.vehicles[v]
            out.append(
                self._cand(
                    "displace",
                    j,
                    v,
                    est,
                    f"re-plan {veh.technician_id}'s {veh.date} with {p.jobs[j].id} in, "
                    "lower-priority visits giving way",
                )
            )
        return out

    def _scarce(self, job: Job) -> bool:
        """Few technicians hold the skills: training one more is a fix worth showing."""
        return sum(1 for t in self.scenario.technicians if _qualified(t, job)) <= 2

    def _with_domain(self, j: int, dom: list[tuple[int, int]]) -> Timing:
        tm = self.problem.timing
        lo, hi = int(tm.dom_ptr[j]), int(tm.dom_ptr[j + 1])
        new = np.array(dom, dtype=np.int64).reshape(-1, 2)
        ptr = tm.dom_ptr.copy()
        ptr[j + 1 :] += len(new) - (hi - lo)
        return tm._replace(dom_ptr=ptr, dom=np.concatenate([tm.dom[:lo], new, tm.dom[hi:]]))

    def _wider_window(self, j: int) -> list[Candidate]:
        p = self.problem
        job = p.jobs[j]
        if not job.windows:
            return []
        vehicles = self._qualified_vehicles(job)
        for k in WIDENINGS:
            delta = timedelta(minutes=k)
            wider = job.model_copy(
                update={"windows": [Window(start=w.start - delta, end=w.end + delta) for w in job.windows]}
            )
            dom = start_domain(wider, p.ticks, p.horizon_end)
            hits = self._scan(self._with_domain(j, dom), self.engine.rt, vehicles, j)
            hits = [h for h in hits if h[3] <= p.timing.veh[h[1], LATEST_END]]
            if hits:
                out = []
                for added, v, _, _ in hits[:PER_KIND]:
                    veh = p.vehicles[v]
                    out.append(
                        self._cand(
                            "wider_window",
                            j,
                            v,
                            added + k,
                            f"ask the customer to widen the window by {k} min each side; "
                            f"{veh.technician_id} can then come on {veh.date}",
                            minutes=k,
                            job=wider,
                        )
                    )
                return out
        return []

    def _other_day(self, j: int) -> list[Candidate]:
        """The same hours on a day the customer did not offer (the customer must agree)."""
        p = self.problem
        job = p.jobs[j]
        if not job.windows:
            return []
        tz = self.scenario.tz
        first = self.scenario.local(job.windows[0].start)
        span = job.windows[0].end - job.windows[0].start
        offered = {self.scenario.local(w.start).date() for w in job.windows}
        vehicles = self._qualified_vehicles(job)
        out = []
        for day in self.scenario.horizon.dates():
            if day in offered or (job.release is not None and self.scenario.local(job.release).date() > day):
                continue
            start = datetime.combine(day, first.time(), tz)
            moved = job.model_copy(update={"windows": [Window(start=start, end=start + span)]})
            dom = start_domain(moved, p.ticks, p.horizon_end)
            if not dom or dom[0][0] > dom[0][1]:
                continue
            on_day = [v for v in vehicles if p.vehicles[v].date == day]
            hits = self._scan(self._with_domain(j, dom), self.engine.rt, on_day, j)
            hits = [h for h in hits if h[3] <= p.timing.veh[h[1], LATEST_END]]
            for added, v, _, _ in hits[:1]:
                veh = p.vehicles[v]
                out.append(
                    self._cand(
                        "other_day",
                        j,
                        v,
                        added + 10,
                        f"offer the customer {day:%a %d %b} at {first:%H:%M}-{(first + span):%H:%M} "
                        f"with {veh.technician_id}",
                        job=moved,
                    )
                )
        out.sort(key=lambda c: c.estimate)
        return out[:PER_KIND]

    # --- candidates for jobs no search could take --------------------------------------------------

    def _skill(self, job: Job) -> list[Candidate]:
        """The technicians nearest to having the skills: fewest levels missing, then nearest home."""
        ranked = []
        for tech in self.scenario.technicians:
            if tech.id in job.excluded_technicians or not tech.shifts:
                continue
            gap = sum(max(0, lv - tech.skills.get(s, 0)) for s, lv in job.skills.items())
            if gap == 0:
                continue
            km = _km(tech.home.lat, tech.home.lon, job.location.lat, job.location.lon)
            ranked.append((gap, km, tech))
        ranked.sort(key=lambda x: (x[0], x[1]))
        out = []
        for gap, km, tech in ranked[:PER_KIND]:
            missing = ", ".join(
                f"{s} {tech.skills.get(s, 0)}->{lv}"
                for s, lv in job.skills.items()
                if tech.skills.get(s, 0) < lv
            )
            days = tuple(
                (tech.id, s.date) for s in tech.shifts if s.date in set(self.scenario.horizon.dates())
            )
            out.append(
                Candidate(
                    kind="skill",
                    job_id=job.id,
                    detail=f"qualify {tech.id} ({missing}; {gap} level(s) missing, home {km:.0f} km away)",
                    estimate=2 * km + TRAINING_PER_LEVEL * gap,
                    days=days,
                    technician_id=tech.id,
                    technician=_skilled(dict(job.skills)),
                )
            )
        return out

    def _extra_day(self, job: Job) -> list[Candidate]:
        """A qualified technician who does not work on a day the job may be done."""
        days = self.scenario.horizon.dates()
        if job.windows:
            days = sorted({self.scenario.local(w.start).date() for w in job.windows} & set(days))
        ranked = []
        for tech in self.scenario.technicians:
            if tech.id in job.excluded_technicians:
                continue
            if not _qualified(tech, job):
                continue
            if job.pinned is not None and job.pinned.technician_id != tech.id:
                continue
            working = {s.date for s in tech.shifts}
            hours = _usual_hours(tech)
            km = _km(tech.home.lat, tech.home.lon, job.location.lat, job.location.lon)
            for day in days:
                if day in working or (job.pinned is not None and job.pinned.date != day):
                    continue
                ranked.append((km, day, tech, hours))
        ranked.sort(key=lambda x: (x[0], x[1]))
        out = []
        for km, day, tech, hours in ranked[:PER_KIND]:
            shift_minutes = (
                datetime.combine(day, hours[1]) - datetime.combine(day, hours[0])
            ).total_seconds() / 60
            change = _shift_on(Shift(date=day, start=hours[0], end=hours[1]))
            detail = (
                f"call {tech.id} in on {day:%a %d %b} ({hours[0]:%H:%M}-{hours[1]:%H:%M}, "
                f"home {km:.0f} km away)"
            )
            if tech.lunch is not None and job.duration_minutes >= LONG_VISIT:
                change = _then(change, _any_time_lunch(day))  # a whole day for one long visit
                detail += ", lunch before or after the visit"
            out.append(
                Candidate(
                    kind="extra_day",
                    job_id=job.id,
                    detail=detail,
                    estimate=shift_minutes + 2 * km,
                    days=((tech.id, day),),
                    technician_id=tech.id,
                    date=day,
                    technician=change,
                    extra_cost=shift_minutes,
                )
            )
        return out

    def _lunch(self, job: Job) -> list[Candidate]:
        """A long visit across the lunch window: the break taken outside its usual window that day."""
        p = self.problem
        with_lunch = {v.index for v in p.vehicles if v.lunch is not None}
        if not with_lunch or job.duration_minutes < LONG_VISIT:
            return []
        dom = start_domain(job, p.ticks, p.horizon_end)
        ranked = []
        for v in self._qualified_vehicles(job):
            veh = p.vehicles[v]
            if v not in with_lunch:
                continue
            if not any(lo <= veh.latest_end and hi >= veh.shift_start for lo, hi in dom):
                continue
            ranked.append((self._home_km(veh.technician_id, job), veh.date, veh))
        ranked.sort(key=lambda x: (x[0], x[1]))
        return [
            _on_day(
                "lunch",
                job.id,
                veh,
                30 + 2 * km,
                f"let {veh.technician_id} take the lunch break before or after the visit on "
                f"{veh.date} (any time in the shift), home {km:.0f} km away",
                technician=_any_time_lunch(veh.date),
            )
            for km, _, veh in ranked[:PER_KIND]
        ]

    def _longer_for_long_job(self, job: Job) -> list[Candidate]:
        """A job longer than every shift: the longest qualified shift, extended."""
        best = None
        for v in self._qualified_vehicles(job):
            veh = self.problem.vehicles[v]
            length = (veh.latest_end - veh.shift_start) * self.per_tick
            if best is None or length > best[0]:
                best = (length, veh)
        if best is None:
            return []
        length, veh = best
        need = int(np.ceil((job.duration_minutes + 60 - length) / 15.0)) * 15
        if need > MOST_MINUTES:
            return []
        return [_longer(job.id, veh, need, float(need), float(need))]

    def _longer_for_window(self, job: Job) -> list[Candidate]:
        """A window outside every qualified shift: the nearest shifts stretched to reach it."""
        p = self.problem
        dom = start_domain(job, p.ticks, p.horizon_end)
        if not dom:
            return []
        service = job.duration_minutes / self.per_tick
        margin = 45 / self.per_tick  # travel there and back, checked by the verification
        ranked = []
        for v in self._qualified_vehicles(job):
            veh = p.vehicles[v]
            for lo, hi in dom:
                if hi < veh.shift_start or lo > veh.latest_end + MOST_MINUTES / self.per_tick:
                    continue
                if lo >= veh.shift_start:  # after the day: a later end
                    need = (max(lo, veh.shift_start) + service + margin - veh.latest_end) * self.per_tick
                    if need <= 0:
                        continue
                    need_m = int(np.ceil(need / 15.0)) * 15
                    if need_m <= MOST_MINUTES:
                        ranked.append((need_m + 2 * self._home_km(veh.technician_id, job), need_m, veh))
                    break
        ranked.sort(key=lambda x: x[0])
        return [_longer(job.id, veh, need, est, float(need)) for est, need, veh in ranked[:PER_KIND]]

    def _home_km(self, technician_id: str, job: Job) -> float:
        home = self.techs[technician_id].home
        return _km(home.lat, home.lon, job.location.lat, job.location.lon)

    def _cand(self, kind: str, j: int, v: int, estimate: float, detail: str, **more: Any) -> Candidate:
        """A candidate on technician-day v for job node j."""
        return _on_day(kind, self.problem.jobs[j].id, self.problem.vehicles[v], estimate, detail, **more)

    # --- verification ----------------------------------------------------------------------------

    def local(self, cand: Candidate, *, changed: bool = True) -> tuple[Scenario, Plan, set[str]]:
        """The scenario cut down to the candidate's technician-days (with the change when `changed`),
        the plan's routes there, and the jobs those routes hold."""
        days = set(cand.days)
        routes = [r for r in self.plan.routes if (r.technician_id, r.date) in days]
        drop = set(cand.displaced) if changed else set()
        held = [v.job_id for r in routes for v in r.visits]
        kept = [x for x in held if x not in drop]
        techs = []
        for tid in sorted({t for t, _ in days}):
            dates = {d for t, d in days if t == tid}
            tech = self.techs[tid]
            tech = tech.model_copy(update={"shifts": [s for s in tech.shifts if s.date in dates]})
            if changed and cand.technician is not None:
                tech = cand.technician(tech)
            techs.append(tech)
        present = {t.id for t in techs}
        jobs = [self.jobs[x] for x in kept]
        if changed:
            jobs.append(cand.job or self.jobs[cand.job_id])
        jobs = [_only(job, present) for job in jobs]
        sub = _scenario_with(self.scenario, techs, jobs, name=f"fix-{cand.job_id}")
        previous = self.plan.model_copy(
            update={
                "routes": [
                    r.model_copy(update={"visits": [v for v in r.visits if v.job_id not in drop]})
                    for r in routes
                ],
                "unassigned": [],
            }
        )
        return sub, previous, set(kept)

    def verify(self, cand: Candidate) -> tuple[bool, float, tuple[str, ...]]:
        """Apply the change to a cut-down copy, re-plan those routes, validate.

        Returns (verified, cost, jobs the re-plan left out to make room). Those may only be of lower
        priority than the job (the search's strict order guarantees it; checked anyway): the fix
        then names them, as a displacement does.
        """
        options = self.options.model_copy(
            update={
                "iterations": VERIFY_ITERATIONS,
                "keep_planned": True,
                "polish_share": 0.0,
                "time_limit_seconds": 30.0,
                "route_minimisation": False,
            }
        )
        try:
            sub, previous, kept = self.local(cand)
        except ValueError:
            return False, cand.estimate, ()
        result = solve(sub, options, previous=previous, travel=self.travel)
        planned = {v.job_id for r in result.routes for v in r.visits}
        if cand.job_id not in planned or validate_plan(sub, result):
            return False, cand.estimate, ()
        mine = self.jobs[cand.job_id]
        pushed = tuple(sorted(kept - planned))
        if any(not _below(self.jobs[x], mine) for x in pushed):
            return False, cand.estimate, ()
        before = self._cost_before(cand)
        lost = sum(
            self.options.weights.unserved_by_priority.get(self.jobs[x].effective_priority, 0.0)
            for x in (*cand.displaced, *pushed)
        )
        cost = float(result.solver.objective or 0) - before + lost + cand.extra_cost
        cand.routes = result.routes
        return True, cost, pushed

    def _cost_before(self, cand: Candidate) -> float:
        key = tuple(sorted(cand.days))
        if key not in self._before:
            sub, previous, _ = self.local(cand, changed=False)
            options = self.options.model_copy(update={"local_search": False, "polish_share": 0.0})
            base = solve(sub, options, previous=previous, travel=self.travel)
            self._before[key] = float(base.solver.objective or 0)
        return self._before[key]

    def applied(self, cand: Candidate) -> tuple[Scenario, Plan]:
        """The whole scenario with a verified change (the job pinned where the re-plan put it), and
        the plan with its re-planned routes in place of the old ones: what a dispatcher gets by
        accepting the fix."""
        assert cand.routes is not None, "only a verified candidate has routes"
        techs = [
            cand.technician(t) if cand.technician is not None and t.id == cand.technician_id else t
            for t in self.scenario.technicians
        ]
        # Accepting a fix pins the job where the verified re-plan put it: a later re-plan keeps it.
        where = next(
            (r.technician_id, r.date) for r in cand.routes for v in r.visits if v.job_id == cand.job_id
        )
        target = (cand.job or self.jobs[cand.job_id]).model_copy(
            update={"pinned": Pinned(technician_id=where[0], date=where[1])}
        )
        jobs = [target if j.id == cand.job_id else j for j in self.scenario.jobs]
        scenario = _scenario_with(self.scenario, techs, jobs)
        days = set(cand.days)
        routes = [r for r in self.plan.routes if (r.technician_id, r.date) not in days] + list(cand.routes)
        planned = {v.job_id for r in routes for v in r.visits}
        left = [u for u in self.plan.unassigned if u.job_id not in planned]
        left += [
            Unassigned(job_id=x, reason=ReasonCode.CAPACITY, detail=f"gave way to {cand.job_id}")
            for x in cand.displaced
            if x not in planned
        ]
        return scenario, self.plan.model_copy(update={"routes": routes, "unassigned": left})

    # --- planned visits ----------------------------------------------------------------------------

    def alternatives(self, job_id: str, top: int = 3) -> list[dict[str, object]]:
        """Why this technician and day: the next-best places for a planned visit, with the added
        travel each would cost against where it is (minutes)."""
        p = self.problem
        j = self.node.get(job_id)
        if j is None:
            return []
        rt = self.engine.rt
        v0 = int(self.engine.st.route_of[j])
        if v0 < 0:
            return []
        scratch = _scratch(rt)
        q0 = 1 + int(np.flatnonzero(scratch.nodes[v0, 1 : scratch.size[v0] + 1] == j)[0])
        a, b = scratch.nodes[v0, q0 - 1], scratch.nodes[v0, q0 + 1]
        here = float(p.travel[a, j] + p.travel[j, b] - p.travel[a, b]) * self.per_tick
        kernel.remove(p.timing, scratch, v0, q0, 1)
        hits = self._scan(p.timing, scratch, p.allowed[j].tolist(), j)
        out = []
        for added, v, _, end in hits:
            if v == v0 or end > p.timing.veh[v, LATEST_END]:
                continue
            veh = p.vehicles[v]
            out.append(
                {
                    "technician_id": veh.technician_id,
                    "date": veh.date,
                    "added_travel_minutes": round(added, 1),
                    "difference_minutes": round(added - here, 1),
                }
            )
            if len(out) == top:
                break
        return out


# --- the whole plan ------------------------------------------------------------------------------


def explain_plan(
    scenario: Scenario,
    plan: Plan,
    options: SolveOptions | None = None,
    *,
    travel: TravelProvider | None = None,
    jobs: Iterable[str] | None = None,
    verify: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """The plan with `unassigned[].fixes` filled (for `jobs`, or every job left out)."""
    explainer = Explainer(scenario, plan, options or SolveOptions(), travel)
    wanted = set(jobs) if jobs is not None else {u.job_id for u in plan.unassigned}
    rows = []
    done = 0
    for u in plan.unassigned:
        if u.job_id in wanted:
            u = u.model_copy(update={"fixes": explainer.fixes(u.job_id, u.reason, verify=verify)})
            done += 1
            if progress is not None:
                progress(done, len(wanted))
        rows.append(u)
    return plan.model_copy(update={"unassigned": rows})


# --- changes to a technician, as plain functions ------------------------------------------------


def _more_overtime(minutes: int) -> Callable[[Technician], Technician]:
    def apply(tech: Technician) -> Technician:
        return tech.model_copy(update={"max_overtime_minutes": min(720, tech.max_overtime_minutes + minutes)})

    return apply


def _longer_shift(day: date, minutes: int) -> Callable[[Technician], Technician]:
    def apply(tech: Technician) -> Technician:
        shifts = []
        for s in tech.shifts:
            if s.date == day:
                end = datetime.combine(day, s.end) + timedelta(minutes=minutes)
                if end.date() != day:
                    raise ValueError("a shift cannot run past midnight")
                s = s.model_copy(update={"end": end.time()})
            shifts.append(s)
        return tech.model_copy(update={"shifts": shifts})

    return apply


def _then(
    first: Callable[[Technician], Technician], second: Callable[[Technician], Technician]
) -> Callable[[Technician], Technician]:
    return lambda tech: second(first(tech))


def _any_time_lunch(day: date) -> Callable[[Technician], Technician]:
    def apply(tech: Technician) -> Technician:
        shift = next((s for s in tech.shifts if s.date == day), None)
        if tech.lunch is None or shift is None:
            return tech
        lunch = tech.lunch.model_copy(update={"earliest": shift.start, "latest": shift.end})
        return tech.model_copy(update={"lunch": lunch})

    return apply


def _shift_on(shift: Shift) -> Callable[[Technician], Technician]:
    def apply(tech: Technician) -> Technician:
        return tech.model_copy(update={"shifts": sorted([*tech.shifts, shift], key=lambda s: s.date)})

    return apply


def _skilled(needed: dict[str, int]) -> Callable[[Technician], Technician]:
    def apply(tech: Technician) -> Technician:
        skills = dict(tech.skills)
        for name, level in needed.items():
            skills[name] = max(skills.get(name, 0), level)
        return tech.model_copy(update={"skills": skills})

    return apply


def _qualified(tech: Technician, job: Job) -> bool:
    return all(tech.skills.get(s, 0) >= lv for s, lv in job.skills.items())


def _scratch(rt: Routes) -> Routes:
    """A copy of the routes to try changes on, the search's own left as they are."""
    return Routes(rt.nodes.copy(), rt.size.copy(), rt.cache.copy(), rt.vend.copy())


def _on_day(kind: str, job_id: str, veh: Vehicle, estimate: float, detail: str, **more: Any) -> Candidate:
    """A candidate that touches one technician-day."""
    return Candidate(
        kind=kind,
        job_id=job_id,
        detail=detail,
        estimate=round(estimate, 1),
        days=((veh.technician_id, veh.date),),
        technician_id=veh.technician_id,
        date=veh.date,
        **more,
    )


def _longer(job_id: str, veh: Vehicle, minutes: int, estimate: float, paid: float) -> Candidate:
    return _on_day(
        "longer_shift",
        job_id,
        veh,
        estimate,
        f"extend {veh.technician_id}'s shift on {veh.date} by {minutes} minutes",
        minutes=minutes,
        technician=_longer_shift(veh.date, minutes),
        extra_cost=paid,
    )


def _scenario_with(scenario: Scenario, techs: list[Technician], jobs: list[Job], **extra: Any) -> Scenario:
    """`scenario` with other technicians and jobs, validated again (cross-references included)."""
    return Scenario.model_validate(
        {
            **scenario.model_dump(mode="json", exclude={"technicians", "jobs"}),
            **extra,
            "technicians": [t.model_dump(mode="json") for t in techs],
            "jobs": [j.model_dump(mode="json") for j in jobs],
        }
    )


def _below(other: Job, job: Job) -> bool:
    """`other` ranks below `job` in the plan's strict order (promises first, then priority)."""
    if other.promised:
        return False
    return job.promised or other.effective_priority > job.effective_priority


def _only(job: Job, present: set[str]) -> Job:
    """A job whose references name only the technicians of a cut-down scenario."""
    return job.model_copy(
        update={
            "preferred_technicians": [t for t in job.preferred_technicians if t in present],
            "excluded_technicians": [t for t in job.excluded_technicians if t in present],
        }
    )


def _usual_hours(tech: Technician) -> tuple[time, time]:
    if not tech.shifts:
        return time(8, 0), time(17, 0)
    pairs = [(s.start, s.end) for s in tech.shifts]
    return max(set(pairs), key=pairs.count)


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(haversine_km(np.array([[lat1, lon1]]), np.array([[lat2, lon2]]))[0, 0])
