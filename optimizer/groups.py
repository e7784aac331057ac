"""Crews, multi-day jobs and linked visits: jobs that are several visits, or that depend on another.

Such a job becomes *units*, ordinary jobs to the kernel (one per crew member and day's part, id
`JOB~part.member`, a character no job id may hold), which the search places together:
- a crew's members start at one shared tick t: each unit's start intervals are narrowed to [t, t]
  while it is placed, so the kernel's one timing rule keeps the crew together whatever else moves;
- a multi-day job's parts go on successive working days of the same technician(s) (no working day of
  theirs skipped in between), each part a share of the duration in whole minutes;
- a linked job (`after` or `same_technician_as` a job of this plan) is placed once the job it names
  is, on the days and technician the link allows; `same_technician_as` that is not hard costs
  `Weights.same_technician_miss` per visit given to someone else. Links to a job already done
  (`after.done_on`, `same_technician_as.technician_id`) need no group: they become the job's
  windows, release and technicians (`fixed_links`).

Once placed, a unit may go only on its technician-day (its column of the search's `allowed`), so the
compiled ruin and recreate moves the single jobs around it and re-sequences it within its route but
never splits a group. Between search rounds the group pass takes each group (with the jobs linked
to it) out and puts it back at its best place in the plan as it has become, kept only when the
plan is better by the usual order (priority levels, then cost). A group the search had to break
(a unit dropped for more urgent work) leaves the plan whole, with its reason.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from models import Job, Lunch, Pinned, Plan, ReasonCode, Route, Scenario, Unassigned, Visit, Window
from models.common import minutes_of
from optimizer import kernel
from optimizer.costs import lexicographic_key, per_minute
from optimizer.explain import dropped_reason
from optimizer.groupscan import earliest_starts, unit_places
from optimizer.kernel import INF
from optimizer.kpis import compute_kpis
from optimizer.options import SolveOptions, Weights
from optimizer.problem import Problem, build_problem
from optimizer.search import Engine, SearchStats
from optimizer.stop import FirstOf, MaxIterations, MaxRuntime, Stop

UNIT_MARK = "~"
SHARED_STARTS = 120  # candidate shared starts tried per crew and day (spread over those possible)
TRAVEL_ALLOWANCE = 45  # minutes of a working day a multi-day job's part leaves for the drive
ROUNDS = 4  # search rounds, each followed by a group pass
LEADS_TRIED = 3  # a crew's cheapest leads, each completed by the cheapest free helpers
LINKED_TRIES = 4  # start days tried for the first job of a linked set

M = TypeVar("M", bound=BaseModel)
Placement = list[tuple[int, int, int]]  # (unit node, technician-day, shared start or -1)
Progress = Callable[[str, dict[str, float]], None]


def unit_id(job_id: str, part: int, member: int) -> str:
    return f"{job_id}{UNIT_MARK}{part}.{member}"


@dataclass(frozen=True)
class Snapshot:
    """What a group move changes, to put back when it does not pay."""

    nodes: NDArray[np.int64]
    size: NDArray[np.int64]
    dom: NDArray[np.int64]
    allowed: NDArray[np.bool_]
    last_hi: NDArray[np.int64]
    placed: dict[str, Placement]
    why: dict[str, tuple[ReasonCode, str]]


@dataclass
class Group:
    """One job the group moves place: its units [part][member] and the jobs of this plan it follows."""

    job: Job
    parts: int
    crew: int
    units: list[list[str]]
    follows: list[str] = field(default_factory=list)
    reason: tuple[ReasonCode, str] | None = None
    nodes: list[list[int]] = field(default_factory=list)

    @property
    def level(self) -> int:
        return 0 if self.job.promised else self.job.effective_priority


# --- scenario -> units ------------------------------------------------------------------------


def needs_groups(scenario: Scenario) -> bool:
    return any(
        j.crew_size > 1 or j.max_days > 1 or j.after is not None or j.same_technician_as is not None
        for j in scenario.jobs
    )


def split(scenario: Scenario) -> tuple[Scenario, dict[str, Group]]:
    """The scenario with each crew, multi-day or linked job replaced by its units, and the groups."""
    ids = {j.id for j in scenario.jobs}
    linked: set[str] = set()
    for job in scenario.jobs:
        for target in _targets(job):
            if target in ids:
                linked |= {job.id, target}
    out: list[Job] = []
    groups: dict[str, Group] = {}
    for original in scenario.jobs:
        job, why = fixed_links(scenario, original, ids)
        parts, too_long = parts_needed(scenario, job)
        why = why or too_long
        if job.crew_size == 1 and parts == 1 and job.first_part == 1 and job.id not in linked and why is None:
            out.append(job)
            continue
        g = Group(
            job=job,
            parts=parts,
            crew=job.crew_size,
            units=[
                [unit_id(job.id, d, m) for m in range(1, job.crew_size + 1)]
                for d in range(job.first_part, job.first_part + parts)
            ],
            follows=[t for t in _targets(job) if t in ids],
            reason=why,
        )
        groups[job.id] = g
        if why is None:
            for d, minutes in enumerate(part_minutes(job.duration_minutes, parts), start=job.first_part):
                for m in range(1, job.crew_size + 1):
                    out.append(_unit(job, d, m, minutes))
    _break_cycles(groups)
    return scenario.model_copy(update={"jobs": out}), groups


def _targets(job: Job) -> list[str]:
    return [link.job_id for link in (job.after, job.same_technician_as) if link is not None]


def _unit(job: Job, part: int, member: int, minutes: float) -> Job:
    lead = member == 1
    return _one_visit(
        job, unit_id(job.id, part, member), minutes, helper=not lead, first_day=part == 1,
        preferred_technicians=job.preferred_technicians if lead else [],
    )  # fmt: skip


def _one_visit(job: Job, vid: str, minutes: float, *, helper: bool, first_day: bool, **more: object) -> Job:
    """One visit of a crew or multi-day job as a job of its own: a member's skills, no crew, no days,
    no links; the kit rides in the lead's van, once."""
    return job.model_copy(
        update={
            "id": vid,
            "duration_minutes": minutes,
            "skills": job.helper_skills if helper else job.skills,
            "demand": job.demand if not helper and first_day else 0,
            "crew_size": 1,
            "helper_skills": {},
            "max_days": 1,
            "after": None,
            "same_technician_as": None,
            **more,
        }
    )


def doable(scenario: Scenario, options: SolveOptions) -> set[str]:
    """Jobs some plan could hold on their own terms, alone (what benchmarks count a plan against):
    every unit accepted up front and, for a crew, as many distinct qualified technicians."""
    scenario = scenario.expanded()
    units, groups = split(scenario) if needs_groups(scenario) else (scenario, {})
    p = build_problem(units, options)
    ok = {j.id for j in p.jobs if UNIT_MARK not in j.id}
    node_of = {j.id: n for n, j in enumerate(p.jobs)}
    tech_of = [v.technician for v in p.vehicles]
    for gid, g in groups.items():
        nodes = [node_of.get(uid, -1) for part in g.units for uid in part]
        if g.reason is not None or min(nodes, default=-1) < 0:
            continue
        people = {tech_of[v] for n in nodes for v in p.allowed[n].tolist()}
        if len(people) >= g.crew:
            ok.add(gid)
    return ok


def is_group_job(job: Job, ids: set[str]) -> bool:
    """A job the group moves place: a crew, several days, or a link to a job of this plan."""
    return job.crew_size > 1 or job.max_days > 1 or any(t in ids for t in _targets(job))


def freeze(scenario: Scenario, plan: Plan) -> tuple[Scenario, Plan]:
    """The plan's crew, multi-day and linked visits as pinned single visits at their planned times
    (id `JOB.n`), links to them as links to done jobs: a plan other code can reason about visit by
    visit (the explanations' what-if re-plans) without splitting a crew or moving a part."""
    jobs, routes, _ = freeze_jobs(scenario.jobs, plan.routes, keep_unplanned=True)
    return scenario.model_copy(update={"jobs": jobs}), plan.model_copy(update={"routes": routes})


def freeze_jobs(
    jobs: Sequence[Job], routes: Sequence[Route], *, keep_unplanned: bool
) -> tuple[list[Job], list[Route], Thaw]:
    """`freeze` on plain jobs and routes, and how to turn answers back (`Thaw`). Group jobs with no
    visit stay as they are (`keep_unplanned`) or are left out (a question about single visits)."""
    ids = {j.id for j in jobs}
    linked = {t for j in jobs for t in _targets(j) if t in ids}
    frozen = {j.id for j in jobs if j.crew_size > 1 or j.max_days > 1 or j.id in linked or _targets(j)}
    visits: dict[str, list[tuple[str, date, Visit]]] = {}
    for route in routes:
        for visit in route.visits:
            if visit.job_id in frozen:
                visits.setdefault(visit.job_id, []).append((route.technician_id, route.date, visit))
    out: list[Job] = []
    thaw = Thaw()
    taken = set(ids)
    for job in jobs:
        if job.id not in visits:
            if job.id not in frozen or keep_unplanned:
                out.append(_unlinked(job, visits))
            continue
        for k, (tech, day, visit) in enumerate(sorted(visits[job.id], key=lambda x: (x[1], x[0])), start=1):
            sid = f"{job.id}.{k}"
            while sid in taken:
                sid += "_"
            taken.add(sid)
            thaw.add(sid, job, tech, day, visit)
            out.append(
                _one_visit(
                    job,
                    sid,
                    (visit.end - visit.start).total_seconds() / 60,
                    helper=visit.role == "helper",
                    first_day=(visit.part or 1) == 1,
                    pinned=Pinned(technician_id=tech, date=day, start=visit.start),
                    appointment=None,
                )
            )
    renamed = [
        r.model_copy(
            update={
                "visits": [
                    v.model_copy(update={"job_id": stand, "part": None, "role": None})
                    if (stand := thaw.forward.get((r.technician_id, r.date, v.job_id))) is not None
                    else v
                    for v in r.visits
                ]
            }
        )
        for r in routes
    ]
    return out, renamed, thaw


@dataclass
class Thaw:
    """From stand-ins (`freeze_jobs`) back to the jobs they stand for."""

    back: dict[str, tuple[Job, int | None, str | None]] = field(default_factory=dict)  # id -> job, part, role
    forward: dict[tuple[str, date, str], str] = field(default_factory=dict)  # (technician, day, job) -> id

    def add(self, sid: str, job: Job, tech: str, day: date, visit: Visit) -> None:
        self.back[sid] = (job, visit.part, visit.role)
        self.forward[(tech, day, job.id)] = sid

    def id(self, value: str) -> str:
        return self.back[value][0].id if value in self.back else value

    def plan(self, plan: Plan, why: str) -> tuple[Plan, list[Unassigned]]:
        """The plan in the jobs' own terms; a crew or a part no longer whole (a member gone, a start
        moved) leaves the plan as one entry of `unassigned` (`why`), also returned on its own."""
        visits: dict[str, list[tuple[str, date, Visit]]] = {}
        for route in plan.routes:
            for v in route.visits:
                if v.job_id in self.back:
                    visits.setdefault(self.back[v.job_id][0].id, []).append(
                        (route.technician_id, route.date, v)
                    )
        expected = Counter(job.id for job, _, _ in self.back.values())
        broken: set[str] = set()
        for jid, count in expected.items():
            mine = visits.get(jid, [])
            starts: dict[tuple[date, int | None], set[datetime]] = {}
            for _, day, v in mine:
                starts.setdefault((day, self.back[v.job_id][1]), set()).add(v.start)
            if len(mine) != count or any(len(x) > 1 for x in starts.values()):
                broken.add(jid)
        routes = [self.route(route, drop=broken) for route in plan.routes]
        gone = [Unassigned(job_id=jid, reason=ReasonCode.DAY_DISRUPTED, detail=why) for jid in sorted(broken)]
        unassigned = [
            u.model_copy(update={"job_id": self.id(u.job_id)})
            for u in plan.unassigned
            if u.job_id not in self.back
        ]
        return plan.model_copy(update={"routes": routes, "unassigned": unassigned + gone}), gone

    def route(self, route: Route, drop: Collection[str] = ()) -> Route:
        """One route in the jobs' own terms (a booking's route: its stand-ins never move), without
        the visits of the jobs in `drop`."""
        visits = []
        for v in route.visits:
            if v.job_id in self.back:
                job, part, role = self.back[v.job_id]
                if job.id in drop:
                    continue
                v = v.model_copy(update={"job_id": job.id, "part": part, "role": role})
            visits.append(v)
        return route.model_copy(update={"visits": visits})

    def ids(self, model: M) -> M:
        """Any model with the stand-ins' ids replaced by their jobs' (diffs, notices, ETAs)."""

        def walk(x: object) -> object:
            if isinstance(x, str):
                return self.id(x)
            if isinstance(x, list):
                return [walk(y) for y in x]
            if isinstance(x, dict):
                return {self.id(k) if isinstance(k, str) else k: walk(y) for k, y in x.items()}
            return x

        return type(model).model_validate(walk(model.model_dump(mode="json", by_alias=True)))


def _unlinked(job: Job, visits: dict[str, list[tuple[str, date, Visit]]]) -> Job:
    """A job left out whose links name planned (so frozen) jobs: linked to them as to done ones."""
    update: dict[str, object] = {}
    if job.after is not None and job.after.job_id in visits:
        last = max(day for _, day, _ in visits[job.after.job_id])
        update["after"] = job.after.model_copy(update={"done_on": last})
    same = job.same_technician_as
    if same is not None and same.job_id in visits:
        lead = next(t for t, _, v in visits[same.job_id] if v.role != "helper")
        update["same_technician_as"] = same.model_copy(update={"technician_id": lead})
    if not update:
        return job
    # Their ids are gone from the frozen scenario: the links now stand on done_on/technician_id.
    return job.model_copy(update=update)


def part_minutes(duration: float, parts: int) -> list[float]:
    """Equal whole-minute parts, the last taking what is left: the validator checks the sum."""
    if parts == 1:
        return [duration]
    base = math.floor(duration / parts)
    return [float(base)] * (parts - 1) + [duration - base * (parts - 1)]


def parts_needed(scenario: Scenario, job: Job) -> tuple[int, tuple[ReasonCode, str] | None]:
    """Days a job takes: 1 when it fits a qualified working day, else the fewest that fit it.

    A day's part is one visit and the lunch break is taken between visits (the kernel's rule), so a
    part fits the morning (shift start to the latest lunch) or the afternoon (the earliest lunch's end
    to the shift's end with overtime), less the drive. Parts are sized for the median qualified
    technician's longest day, so half of them can take them; within `max_days`, else for the third-
    best, else the best (on the crews family about as many planned as sizing for the third-best).
    """
    if job.max_days == job.first_part:
        return 1, None
    best: list[float] = []
    for tech in scenario.technicians:
        if any(tech.skills.get(s, 0) < lv for s, lv in job.skills.items()):
            continue
        days = [
            _day_room(tech.lunch, shift.start, shift.end, tech.max_overtime_minutes) for shift in tech.shifts
        ]
        if days:
            best.append(max(days))
    best.sort(reverse=True)
    if not best or best[0] <= 0:
        return 1, None  # the problem says why (no qualified technician, no shift)
    left = job.max_days - job.first_part + 1  # days a job already begun still has
    for room in (best[len(best) // 2], best[min(2, len(best) - 1)], best[0]):
        need = max(1, math.ceil(job.duration_minutes / room)) if room > 0 else left + 1
        if need <= left:
            break
    if need > left:
        return 1, (
            ReasonCode.TOO_LONG,
            f"{job.duration_minutes:g} min needs {need} working days of at most {best[0]:.0f} min on site "
            f"(the lunch break is taken between visits); max_days is {job.max_days}",
        )
    if need > 1 and job.duration_minutes / need < job.min_part_minutes:
        return 1, (
            ReasonCode.PARTS_DO_NOT_FIT,
            f"{need} parts of {job.duration_minutes / need:.0f} min are shorter than min_part_minutes "
            f"({job.min_part_minutes:g})",
        )
    return need, None


def _day_room(lunch: Lunch | None, start: clock, end: clock, overtime: int) -> float:
    """The longest visit a working day holds: all of it without lunch, else a morning or an afternoon."""
    a, b = minutes_of(start), minutes_of(end) + overtime
    if lunch is None:
        return b - a - TRAVEL_ALLOWANCE
    lo, hi = max(minutes_of(lunch.earliest), a), min(minutes_of(lunch.latest), b)
    if hi - lo < lunch.minutes:  # no break that day
        return b - a - TRAVEL_ALLOWANCE
    return max(hi - lunch.minutes - a, b - (lo + lunch.minutes)) - TRAVEL_ALLOWANCE


def fixed_links(scenario: Scenario, job: Job, ids: set[str]) -> tuple[Job, tuple[ReasonCode, str] | None]:
    """Links to jobs already done become the job's own terms: days from `done_on` as release and
    windows, the technician who did it as the only (hard) or a preferred (soft) one."""
    update: dict[str, object] = {}
    why: tuple[ReasonCode, str] | None = None
    fleet = {t.id for t in scenario.technicians}
    link = job.after
    if link is not None and link.job_id not in ids:
        if link.done_on is None:
            why = (ReasonCode.LINKED_JOB_NOT_PLANNED, f"follows {link.job_id}, which is not in this plan")
        else:
            lo = scenario.at(link.done_on + timedelta(days=link.min_days), clock(0))
            release = max(scenario.local(job.release), lo) if job.release is not None else lo
            update["release"] = release
            if link.max_days is not None:
                hi = scenario.at(link.done_on + timedelta(days=link.max_days + 1), clock(0))
                spans = [(scenario.local(w.start), scenario.local(w.end)) for w in job.windows] or [
                    (max(lo, scenario.horizon_start), hi)
                ]
                windows = [Window(start=a, end=min(b, hi)) for a, b in spans if min(b, hi) > max(a, release)]
                if not windows:
                    why = (
                        ReasonCode.NO_SHIFT_IN_WINDOW,
                        f"must follow {link.job_id} (done {link.done_on}) by {link.min_days}-{link.max_days} "
                        "days: none of those days is open to it",
                    )
                else:
                    update["windows"] = windows
    same = job.same_technician_as
    if same is not None and same.job_id not in ids:
        if same.technician_id is None:
            if same.hard:  # soft: a preference for nobody known is no constraint
                why = why or (
                    ReasonCode.LINKED_JOB_NOT_PLANNED,
                    f"must go to the technician of {same.job_id}, which is not in this plan",
                )
        elif same.hard:
            if same.technician_id not in fleet:
                why = why or (
                    ReasonCode.ALL_EXCLUDED,
                    f"must go to {same.technician_id} (who did {same.job_id}), who does not work here",
                )
            update["excluded_technicians"] = sorted(
                set(job.excluded_technicians) | (fleet - {same.technician_id})
            )
        elif same.technician_id not in job.preferred_technicians and same.technician_id in fleet:
            update["preferred_technicians"] = [same.technician_id, *job.preferred_technicians]
    return (job.model_copy(update=update) if update else job), why


def _break_cycles(groups: dict[str, Group]) -> None:
    """Jobs that follow each other round in a circle cannot be planned: said, not looped over."""
    state: dict[str, int] = {}

    def visit(gid: str, path: list[str]) -> None:
        state[gid] = 1
        for t in groups[gid].follows:
            if t in groups and state.get(t) == 1:
                for member in path[path.index(t) :] if t in path else [gid]:
                    groups[member].reason = (
                        ReasonCode.LINKED_JOB_NOT_PLANNED,
                        "its links to other jobs form a circle: " + " -> ".join([*path[path.index(t) :], t]),
                    )
            elif t in groups and t not in state:
                visit(t, [*path, t])
        state[gid] = 2

    for gid in groups:
        if gid not in state:
            visit(gid, [gid])


# --- the group moves ---------------------------------------------------------------------------


class GroupLayer:
    """Places, takes out and re-places groups in a search engine's routes (see the module's doc)."""

    def __init__(self, problem: Problem, engine: Engine, groups: dict[str, Group], weights: Weights) -> None:
        p, e = problem, engine
        e.tm = e.tm._replace(dom=e.tm.dom.copy())  # crews' shared starts narrow their units' intervals
        self.p, self.e, self.groups = p, e, groups
        node_of = {j.id: n for n, j in enumerate(p.jobs)}
        rejected = {p.scenario.jobs[ji].id: (reason, detail) for ji, reason, detail in p.rejected}
        units: list[int] = []
        for g in groups.values():
            g.nodes = []
            if g.reason is not None:
                continue
            for d, part in enumerate(g.units):
                for m, uid in enumerate(part):
                    if uid in rejected and g.reason is None:
                        reason, detail = rejected[uid]
                        who = "" if g.crew == 1 else ("the lead: " if m == 0 else "a helper: ")
                        day = "" if g.parts == 1 else f"part {d + 1}: "
                        g.reason = (reason, day + who + detail)
                g.nodes.append([node_of.get(uid, -1) for uid in part])
            units += [n for row in g.nodes for n in row if n >= 0]  # never planned alone, even half a crew
            if g.reason is not None:
                g.nodes = []
        self.units = np.array(sorted(units), dtype=np.int64)
        self.unit_set = frozenset(units)
        self.dom0 = e.tm.dom.copy()
        self.allowed0 = e.nb.allowed.copy()
        self.last_hi0 = e.nb.last_hi.copy()
        e.nb.allowed[:, self.units] = False
        self.v_tech = np.array([v.technician for v in p.vehicles], dtype=np.int64)
        self.v_date = [v.date for v in p.vehicles]
        self.v_ord = np.array([d.toordinal() for d in self.v_date], dtype=np.int64)
        self.by_tech: dict[int, list[int]] = {}
        for v in sorted(range(len(p.vehicles)), key=lambda v: (self.v_tech[v], self.v_ord[v])):
            self.by_tech.setdefault(int(self.v_tech[v]), []).append(v)
        self.soft_miss = per_minute(p, weights.same_technician_miss)
        self.placed: dict[str, Placement] = {}
        self.why: dict[str, tuple[ReasonCode, str]] = {}
        self.order = self._order()
        self.passes = 0
        self.moved = 0
        self.broken = 0
        self.ejected = 0

    # --- order and links -----------------------------------------------------------------------

    def _order(self) -> list[str]:
        """Jobs followed before their followers; then promises and priority; the longest (successive
        days are the scarcest) and the largest crews first."""
        depth: dict[str, int] = {}

        def d(gid: str, seen: frozenset[str] = frozenset()) -> int:
            if gid not in depth:
                targets = [t for t in self.groups[gid].follows if t in self.groups and t not in seen]
                depth[gid] = 1 + max((d(t, seen | {gid}) for t in targets), default=-1)
            return depth[gid]

        return sorted(
            self.groups,
            key=lambda gid: (d(gid), self.groups[gid].level, -self.groups[gid].parts, -self.groups[gid].crew),
        )

    def components(self) -> list[list[str]]:
        """Groups linked to each other (either way), each in placing order."""
        parent = {gid: gid for gid in self.groups}

        def root(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for gid, g in self.groups.items():
            for t in g.follows:
                if t in parent:
                    parent[root(gid)] = root(t)
        rank = {gid: i for i, gid in enumerate(self.order)}
        comps: dict[str, list[str]] = {}
        for gid in self.order:
            comps.setdefault(root(gid), []).append(gid)
        return [sorted(c, key=rank.__getitem__) for c in comps.values()]

    def _lead_tech(self, gid: str) -> int:
        return int(self.v_tech[self.placed[gid][0][1]])

    def _link_mask(self, g: Group) -> tuple[NDArray[np.bool_] | None, int, str]:
        """Technician-days the job's links allow (None: a job it follows is not planned), the
        technician a soft link prefers (-1 none), and what the links ask (for a reason)."""
        mask = np.ones(len(self.v_tech), dtype=np.bool_)
        soft = -1
        said: list[str] = []
        link = g.job.after
        if link is not None and link.job_id in self.groups:
            if link.job_id not in self.placed:
                return None, -1, link.job_id
            last = max(int(self.v_ord[v]) for _, v, _ in self.placed[link.job_id])
            gap = self.v_ord - last
            mask &= gap >= link.min_days
            if link.max_days is not None:
                mask &= gap <= link.max_days
            most = f"-{link.max_days}" if link.max_days is not None else " or more"
            said.append(f"{link.min_days}{most} days after {link.job_id} ({date.fromordinal(last)})")
        same = g.job.same_technician_as
        if same is not None and same.job_id in self.groups:
            if same.job_id not in self.placed:
                return None, -1, same.job_id
            tech = self._lead_tech(same.job_id)
            if same.hard:
                mask &= self.v_tech == tech
                said.append(f"with {self.p.scenario.technicians[tech].id}, who has {same.job_id}")
            else:
                soft = tech
        return mask, soft, " and ".join(said)

    # --- evaluation ----------------------------------------------------------------------------

    def _places(self, node: int, vehs: NDArray[np.int64], at: int = -1) -> tuple[NDArray[np.int64], ...]:
        e, tm, rt = self.e, self.e.tm, self.e.rt
        n = len(vehs)
        cost = np.empty(n, dtype=np.int64)
        pos = np.empty(n, dtype=np.int64)
        start = np.empty(n, dtype=np.int64)
        ready = np.empty(n, dtype=np.int64)
        unit_places(
            tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend,
            e.costs.w, e.costs.node, e.costs.due_start, e.st.load, e.nb.demand, e.nb.capacity,
            vehs, node, at, cost, pos, start, ready,
        )  # fmt: skip
        if at >= 0:  # a crew member waiting at the door for the others: paid as driving is
            cost = np.where(cost < INF, cost + (start - ready) * self.e.costs.travel_w, cost)
        return cost, pos, start

    def _starts(self, node: int, vehs: NDArray[np.int64]) -> NDArray[np.int64]:
        tm, rt = self.e.tm, self.e.rt
        out = np.empty(max(1, len(vehs) * rt.nodes.shape[1]), dtype=np.int64)
        n = earliest_starts(
            tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.size, rt.cache, vehs, node, out
        )
        return np.unique(out[:n])

    def _crew(
        self, nodes: list[int], lead_vehs: NDArray[np.int64], helper_vehs: NDArray[np.int64], soft: int
    ) -> tuple[int, Placement] | None:
        """The cheapest crew of one part on one day: a lead, distinct helpers, one shared start."""
        lead, helper = nodes[0], nodes[1]
        times = np.union1d(self._starts(lead, lead_vehs), self._starts(helper, helper_vehs))
        if len(times) > SHARED_STARTS:
            times = times[np.unique(np.linspace(0, len(times) - 1, SHARED_STARTS).astype(np.int64))]
        best: tuple[int, Placement] | None = None
        need = len(nodes) - 1
        for t in times.tolist():
            lc = self._places(lead, lead_vehs, t)[0]
            if soft >= 0:
                lc = lc + np.where(self.v_tech[lead_vehs] == soft, 0, self.soft_miss)
            hc = self._places(helper, helper_vehs, t)[0]
            h_order = [i for i in np.argsort(hc, kind="stable").tolist() if hc[i] < INF]
            if len(h_order) < need:
                continue
            for li in np.argsort(lc, kind="stable")[:LEADS_TRIED].tolist():
                if lc[li] >= INF:
                    break
                lead_tech = self.v_tech[lead_vehs[li]]
                chosen: list[int] = []
                techs = {int(lead_tech)}
                for hi in h_order:
                    tech = int(self.v_tech[helper_vehs[hi]])
                    if tech not in techs:
                        chosen.append(hi)
                        techs.add(tech)
                        if len(chosen) == need:
                            break
                if len(chosen) < need:
                    continue
                total = int(lc[li]) + sum(int(hc[hi]) for hi in chosen)
                if best is None or total < best[0]:
                    place = [(lead, int(lead_vehs[li]), t)]
                    place += [(nodes[1 + k], int(helper_vehs[hi]), t) for k, hi in enumerate(chosen)]
                    best = (total, place)
        return best

    def best(self, gid: str) -> tuple[int, Placement] | None:
        """The group's cheapest placement in the routes as they are; None (and why) when none."""
        found = self.candidates(gid)
        return found[0] if found else None

    def candidates(self, gid: str, k: int = 1) -> list[tuple[int, Placement]]:
        """The cheapest placement starting on each day, the `k` cheapest of those, cheapest first
        (none: why is in `self.why`)."""
        g = self.groups[gid]
        mask, soft, said = self._link_mask(g)
        if mask is None:
            self.why[gid] = (ReasonCode.LINKED_JOB_NOT_PLANNED, f"follows {said}, which is not planned")
            return []
        per_day = self._single_day(g, mask, soft) if g.parts == 1 else self._multi_day(g, mask, soft)
        if not per_day:
            self.why[gid] = self._no_place(g, mask, said, [row[0] for row in g.nodes])
        return sorted(per_day.values(), key=lambda c: c[0])[:k]

    def _vehicles(self, node: int, mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        return np.flatnonzero(self.allowed0[:, node] & mask).astype(np.int64)

    def _single_day(self, g: Group, mask: NDArray[np.bool_], soft: int) -> dict[int, tuple[int, Placement]]:
        nodes = g.nodes[0]
        lead_all = self._vehicles(nodes[0], mask)
        out: dict[int, tuple[int, Placement]] = {}
        if len(lead_all) == 0:
            return out
        if g.crew == 1:
            cost = self._places(nodes[0], lead_all)[0]
            if soft >= 0:
                cost = cost + np.where(self.v_tech[lead_all] == soft, 0, self.soft_miss)
            for i in np.argsort(cost, kind="stable").tolist():
                day = int(self.v_ord[lead_all[i]])
                if cost[i] < INF and day not in out:
                    out[day] = (int(cost[i]), [(nodes[0], int(lead_all[i]), -1)])
            return out
        helper_all = self._vehicles(nodes[1], np.ones_like(mask))
        for day in np.unique(self.v_ord[lead_all]).tolist():
            found = self._crew(
                nodes, lead_all[self.v_ord[lead_all] == day], helper_all[self.v_ord[helper_all] == day], soft
            )
            if found is not None:
                out[day] = found
        return out

    def _multi_day(self, g: Group, mask: NDArray[np.bool_], soft: int) -> dict[int, tuple[int, Placement]]:
        """Each qualified lead's runs of successive working days; a crew keeps its helpers all along."""
        out: dict[int, tuple[int, Placement]] = {}
        n = g.parts
        for tech, vehs in self.by_tech.items():
            for s in range(len(vehs) - n + 1):
                run = vehs[s : s + n]
                if not all(self.allowed0[v, g.nodes[d][0]] and mask[v] for d, v in enumerate(run)):
                    continue
                extra = 0 if soft < 0 or soft == tech else self.soft_miss * n
                found = self._run(g, run, extra)
                day = int(self.v_ord[run[0]])
                if found is not None and (day not in out or found[0] < out[day][0]):
                    out[day] = found
        return out

    def _run(self, g: Group, run: list[int], extra: int) -> tuple[int, Placement] | None:
        total, place = extra, []
        if g.crew == 1:
            for d, v in enumerate(run):
                c, _, _ = self._places(g.nodes[d][0], np.array([v], dtype=np.int64))
                if c[0] >= INF:
                    return None
                total += int(c[0])
                place.append((g.nodes[d][0], v, -1))
            return total, place
        # The helpers: chosen on the first day among those who also work every later day of the run.
        days = [int(self.v_ord[v]) for v in run]
        lead = int(self.v_tech[run[0]])
        helper_techs = [t for t, vs in self.by_tech.items() if t != lead and self._follows_run(g, vs, days)]
        if len(helper_techs) < g.crew - 1:
            return None
        chosen: list[int] | None = None
        for d, v in enumerate(run):
            pool = [
                w
                for t in (chosen if chosen is not None else helper_techs)
                for w in self.by_tech[t]
                if self.v_ord[w] == days[d]
            ]
            found = self._crew(g.nodes[d], np.array([v], dtype=np.int64), np.array(pool, dtype=np.int64), -1)
            if found is None:
                return None
            if chosen is None:
                chosen = [int(self.v_tech[w]) for _, w, _ in found[1][1:]]
            total += found[0]
            place += found[1]
        return total, place

    def _follows_run(self, g: Group, vehs: list[int], days: list[int]) -> bool:
        """A helper who can work every day of the run and works no other day between them."""
        worked = {int(self.v_ord[v]): v for v in vehs}
        if any(days[0] < d < days[-1] and d not in days for d in worked):
            return False
        return all(day in worked and self.allowed0[worked[day], g.nodes[k][1]] for k, day in enumerate(days))

    def _no_place(
        self, g: Group, mask: NDArray[np.bool_], said: str, lead_nodes: list[int]
    ) -> tuple[ReasonCode, str]:
        if said and not any(self._vehicles(n, mask).size for n in lead_nodes):
            return ReasonCode.NO_SHIFT_IN_WINDOW, f"must be {said}: no qualified technician-day then"
        if g.parts > 1:
            crew = f", with the same crew of {g.crew}" if g.crew > 1 else ""
            minutes = part_minutes(g.job.duration_minutes, g.parts)
            return (
                ReasonCode.PARTS_DO_NOT_FIT,
                f"its {g.parts} parts ({minutes[0]:g} min a day) do not fit {g.parts} successive working "
                f"days of one qualified technician{crew}, inside its windows",
            )
        if g.crew > 1:
            return (
                ReasonCode.CREW_UNAVAILABLE,
                f"no {g.crew} qualified technicians are free together inside its windows on any day",
            )
        return dropped_reason(self.p, lead_nodes[0])

    # --- editing -------------------------------------------------------------------------------

    def _pin(self, node: int, v: int, at: int) -> None:
        e = self.e
        lo, hi = e.tm.dom_ptr[node], e.tm.dom_ptr[node + 1]
        if at >= 0:
            e.tm.dom[lo:hi] = at
            e.nb.last_hi[node] = at
        e.nb.allowed[:, node] = False
        e.nb.allowed[v, node] = True

    def _unpin(self, node: int) -> None:
        e = self.e
        lo, hi = e.tm.dom_ptr[node], e.tm.dom_ptr[node + 1]
        e.tm.dom[lo:hi] = self.dom0[lo:hi]
        e.nb.last_hi[node] = self.last_hi0[node]
        e.nb.allowed[:, node] = False

    def apply(self, gid: str, place: Placement) -> bool:
        done: Placement = []
        for node, v, at in place:
            self._pin(node, v, at)
            cost, pos, _ = self._places(node, np.array([v], dtype=np.int64))
            if cost[0] >= INF:
                self._unpin(node)
                self.placed[gid] = done
                self.remove(gid)
                return False
            kernel.insert(self.e.tm, self.e.rt, v, int(pos[0]), node)
            self.e.st.load[v] += int(self.e.nb.demand[node])
            done.append((node, v, at))
        self.placed[gid] = done
        self.why.pop(gid, None)
        return True

    def remove(self, gid: str) -> None:
        rt = self.e.rt
        for node, _, _ in self.placed.pop(gid, []):
            rows, cols = np.nonzero(rt.nodes[:, 1:] == node)
            for v, p in zip(rows.tolist(), cols.tolist(), strict=True):
                if p < rt.size[v]:  # only the route's own positions, not what lies after its end
                    kernel.remove(self.e.tm, rt, v, p + 1, 1)
                    self.e.st.load[v] -= int(self.e.nb.demand[node])
                    break
            self._unpin(node)

    def place(self, gid: str) -> bool:
        if self.groups[gid].reason is not None:
            return False
        found = self.best(gid)
        return found is not None and self.apply(gid, found[1])

    def penalty(self) -> int:
        """Soft `same_technician_as` misses: not in the search's own cost, so added here."""
        out = 0
        for gid in self.placed:
            same = self.groups[gid].job.same_technician_as
            if (
                same is not None
                and not same.hard
                and same.job_id in self.placed
                and self._lead_tech(gid) != self._lead_tech(same.job_id)
            ):
                out += self.soft_miss * self.groups[gid].parts
        return out

    def key(self) -> tuple[float, ...]:
        return lexicographic_key(self.e.unserved, self.e.cost + self.penalty())

    # --- the phases ----------------------------------------------------------------------------

    def construct(self) -> int:
        """Groups first (the big rocks), each linked set together; returns how many were placed."""
        for comp in self.components():
            self.place_component(comp)
        self.e._rebuild()
        return len(self.placed)

    def place_component(self, comp: list[str]) -> None:
        """Jobs linked together: the first one's cheapest days tried in turn (commissioning a week
        after an installation needs the installation early enough), each with the others placed
        after it; the best plan by the usual order is kept."""
        if len(comp) == 1 or self.groups[comp[0]].reason is not None:
            for gid in comp:
                if self.place(gid):
                    self.e._rebuild()
            return
        options = self.candidates(comp[0], LINKED_TRIES)
        if not options:
            return
        best: tuple[tuple[float, ...], int] | None = None
        saved = self._snapshot()
        for i, (_, place) in enumerate(options):
            if self.apply(comp[0], place):
                self.e._rebuild()
                for gid in comp[1:]:
                    if self.place(gid):
                        self.e._rebuild()
                key = self.key()
                if best is None or key < best[0]:
                    best = (key, i)
            self._restore(saved)
        if best is not None and self.apply(comp[0], options[best[1]][1]):
            self.e._rebuild()
            for gid in comp[1:]:
                if self.place(gid):
                    self.e._rebuild()

    def check(self) -> None:
        """A group the search broke (a unit dropped), or whose job it follows left, leaves whole."""
        route_of = self.e.st.route_of
        changed = True
        while changed:
            changed = False
            for gid in list(self.placed):
                g = self.groups[gid]
                whole = all(route_of[node] == v for node, v, _ in self.placed[gid])
                gone = [t for t in g.follows if t in self.groups and t not in self.placed]
                if whole and not gone:
                    continue
                self.remove(gid)
                self.broken += 1
                self.why[gid] = (
                    (ReasonCode.LINKED_JOB_NOT_PLANNED, f"follows {gone[0]}, which is not planned")
                    if gone
                    else (ReasonCode.CAPACITY, "its technicians' time went to more urgent work")
                )
                changed = True
        self.e._rebuild()

    def group_pass(self) -> int:
        """Each linked set of groups out and back at its best place; kept when the plan is better."""
        self.check()
        better = 0
        for comp in self.components():
            if all(self.groups[gid].reason is not None for gid in comp):
                continue
            before = self.key()
            saved = self._snapshot()
            for gid in reversed(comp):
                self.remove(gid)
            self.e._rebuild()
            self.place_component(comp)
            after = self.key()
            if after < before:
                better += 1
            elif after > before:
                self._restore(saved)
            for gid in comp:
                if gid not in self.placed and self.groups[gid].reason is None and self._eject_place(gid):
                    better += 1
        self.passes += 1
        self.moved += better
        return better

    def _eject_place(self, gid: str) -> bool:
        """A group left out takes the place of less urgent single visits (the priority order): found
        on routes thinned of them, placed on the technician-days it needs with only theirs taken
        out, those put back wherever they fit best; kept when the plan is better."""
        e, rt = self.e, self.e.rt
        level, units = e.nb.level, self.unit_set
        lv = self.groups[gid].level
        before = self.key()
        saved = self._snapshot()
        thinned: dict[int, list[int]] = {}
        for v in range(len(rt.size)):
            seq = rt.nodes[v, 1 : rt.size[v] + 1].tolist()
            out = [n for n in seq if level[n] > lv and n not in units]
            if out:
                keep = np.array([n for n in seq if n not in out], dtype=np.int64)
                kernel.set_route(e.tm, rt, v, keep, len(keep))
                thinned[v] = out
        if not thinned:
            self._restore(saved)
            return False
        e._rebuild()
        found = self.best(gid)
        self._restore(saved)
        if found is None:
            return False
        removed: list[int] = []
        for v in sorted({v for _, v, _ in found[1]}):
            if v in thinned:
                seq = [n for n in rt.nodes[v, 1 : rt.size[v] + 1].tolist() if n not in thinned[v]]
                kernel.set_route(e.tm, rt, v, np.array(seq, dtype=np.int64), len(seq))
                removed += thinned[v]
        e._rebuild()
        if not self.apply(gid, found[1]):
            self._restore(saved)
            return False
        e._rebuild()
        if removed:
            e.construct(removed)
        if self.key() < before:
            self.ejected += 1
            return True
        self._restore(saved)
        return False

    def _snapshot(self) -> Snapshot:
        e = self.e
        return Snapshot(
            e.rt.nodes.copy(), e.rt.size.copy(), e.tm.dom.copy(), e.nb.allowed.copy(), e.nb.last_hi.copy(),
            dict(self.placed), dict(self.why),
        )  # fmt: skip

    def _restore(self, saved: Snapshot) -> None:
        e = self.e
        e.rt.nodes[:] = saved.nodes
        e.rt.size[:] = saved.size
        e.tm.dom[:] = saved.dom
        e.nb.allowed[:] = saved.allowed
        e.nb.last_hi[:] = saved.last_hi
        self.placed = dict(saved.placed)
        self.why = dict(saved.why)
        e._rebuild()

    def improve(
        self,
        seconds: float,
        iterations: int | None,
        floor: list[int] | None,
        progress: Progress | None = None,
    ) -> SearchStats:
        """ROUNDS of the compiled search, each followed by a group pass; then the plan made whole."""
        total = SearchStats()
        began = time.monotonic()
        for r in range(ROUNDS):
            if r:
                self.group_pass()
            left = seconds - (time.monotonic() - began)
            share = left / (ROUNDS - r)
            criteria: list[Stop] = [MaxRuntime(max(share, 0.0))]
            if iterations is not None:
                criteria.append(
                    MaxIterations(iterations // ROUNDS + (iterations % ROUNDS if r == ROUNDS - 1 else 0))
                )
            stats = self.e.improve(FirstOf(*criteria), floor=floor, progress=progress)
            for name in ("iterations", "accepted", "improvements", "fewer_out", "more_out", "no_room"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        self.check()
        for gid in self.order:  # what the last round broke, where there is room
            if gid not in self.placed and self.place(gid):
                self.e._rebuild()
        singles = [n for n in self.e.unserved_jobs() if n not in self.unit_set]
        if singles:
            self.e.construct(singles)
        total.seconds = time.monotonic() - began
        return total

    # --- the plan a dispatcher reads -------------------------------------------------------------

    def collapse(self, plan: Plan, scenario: Scenario, previous: Plan | None) -> Plan:
        """Units back to their jobs: a crew's visits carry the job's id and `role`, a multi-day job's
        its `part`; one unassigned entry per group left out, with its reason."""
        unit: dict[str, tuple[Group, int, int]] = {}
        for g in self.groups.values():
            for d, part in enumerate(g.units):
                for m, uid in enumerate(part):
                    unit[uid] = (g, d, m)
        routes = []
        for route in plan.routes:
            visits = []
            for visit in route.visits:
                if visit.job_id in unit:
                    g, d, m = unit[visit.job_id]
                    visit = visit.model_copy(
                        update={
                            "job_id": g.job.id,
                            "part": g.job.first_part + d if g.parts > 1 or g.job.first_part > 1 else None,
                            "role": ("lead" if m == 0 else "helper") if g.crew > 1 else None,
                        }
                    )
                visits.append(visit)
            routes.append(route.model_copy(update={"visits": visits}))
        unassigned = [u for u in plan.unassigned if u.job_id not in unit]
        for gid, g in self.groups.items():
            if gid in self.placed:
                continue
            reason, detail = (
                g.reason or self.why.get(gid) or (ReasonCode.CAPACITY, "no room was found for it")
            )
            unassigned.append(Unassigned(job_id=gid, reason=reason, detail=detail))
        order = {j.id: i for i, j in enumerate(scenario.jobs)}
        unassigned.sort(key=lambda u: order.get(u.job_id, len(order)))
        kpis = compute_kpis(scenario, routes, unassigned, previous)
        return plan.model_copy(update={"routes": routes, "unassigned": unassigned, "kpis": kpis})

    def stats(self) -> str:
        crews = sum(g.crew > 1 for g in self.groups.values())
        multi = sum(g.parts > 1 for g in self.groups.values())
        return (
            f"group moves: {len(self.placed)} of {len(self.groups)} crew, multi-day or linked jobs placed "
            f"({crews} crews, {multi} multi-day), {self.passes} passes, {self.moved} better "
            f"({self.ejected} in place of less urgent visits), {self.broken} broken by the search and "
            "re-placed or left out"
        )
