"""National fleets: split a scenario into territories, solve them apart, merge, repair the borders.

One process cannot hold a 20,000-job week (its travel matrix alone would be 3 GB). The split follows
the route-based decomposition literature (Santini, Schneider, Vidal, Vigo 2023: cluster, solve the
parts with the same solver, then work across the borders):

1. **Split**: job sites are clustered (k-means on an equal-area projection, seeded, about
   `jobs_per_territory` each); technicians join the territory nearest home, then a territory with
   less shift time than its work asks for borrows the nearest technicians of better-staffed ones. A
   job no technician of its territory can do (skill, exclusion, pin) moves to the nearest territory
   that can: rare skills are never stranded.
2. **Solve**: each territory is a plain `Scenario`, solved by the same `solve` as everywhere, shipped
   to a worker as JSON (see `optimizer.parallel`).
3. **Border repair**: jobs a territory left out for lack of room are offered to the nearest
   territories that could do them, one neighbour per job per round (so no job can be planned twice);
   each neighbour re-solves its territory with the offered jobs, warm-started from its plan.
4. **Border polish**: neighbouring territories are paired; in each pair the technicians (those whose
   routes lie nearer the other side: `POLISH_FACING`, all of them by default), their jobs and the
   pair's jobs left out are re-solved together, warm-started (two rounds, a different pairing each),
   so routes a single solve would draw across a border can be drawn again. Repairs and polish start
   from this run's plans without the stability weight (a job moves at no cost), unless the caller
   gave a previous plan.
5. **Merge**: routes and left-out jobs joined; KPIs and the independent validator on the whole.

Everything here is pure: the backend (`map` over plain payloads) is given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models import GeoPoint, Job, Plan, ReasonCode, Route, Scenario, SolverStats, Technician, Unassigned
from optimizer.kpis import compute_kpis
from optimizer.options import SolveOptions

#: Reasons another territory may cure (room, shifts); the others hold everywhere.
REPAIRABLE = {ReasonCode.CAPACITY, ReasonCode.NO_SHIFT_IN_WINDOW, ReasonCode.DEMAND_EXCEEDS_VAN}
#: A territory with less shift time than this share of what its work asks for borrows technicians.
LOW = 0.9
#: Neighbours a left-out job is offered to, one per round.
NEIGHBOURS = 2
#: Rounds of re-solving the routes that face each other across a border, and their time limit as a
#: share of a territory's.
POLISH_ROUNDS = 2
POLISH_SHARE = 0.5
#: The share of each territory's technicians (those whose routes lie nearest the other side) in a
#: pair. Measured at 5,000 jobs (1,250 per territory, 30 s, single runs; the split alone varies by
#: about 1.5 % run to run), km per job: half of each side, two rounds 9.78; whole pairs, one round
#: 9.70, two rounds 9.59 (one solve: 9.2-9.3). Before the polish moved jobs freely (it paid the
#: stability weight for every job it took off a technician) half of each side did best (10.01).
POLISH_FACING = 1.0

Mapper = Callable[[Callable[[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]], list[dict[str, Any]]]


#: The least share of the time limit a territory far smaller than the average gets.
MIN_TIME_SHARE = 0.25

#: Above this many jobs `fieldplan solve` and the nightly re-plan split into territories.
DEFAULT_THRESHOLD = 3000


class TerritoryOptions(BaseModel):
    """How a large solve is split and where its territories run (plain values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: Annotated[int, Field(ge=1)] = Field(
        DEFAULT_THRESHOLD, description="split only scenarios with more jobs than this"
    )
    jobs_per_territory: Annotated[int, Field(ge=1)] = 1000
    backend: Literal["process", "ray", "serial"] = "process"
    parallel: Annotated[int, Field(ge=1, le=4096)] = 2
    address: str | None = Field(None, description="Ray: an existing cluster (else RAY_ADDRESS, else local)")


class Territory(BaseModel):
    name: str
    center: GeoPoint
    technician_ids: list[str]
    job_ids: list[str]


class Split(BaseModel):
    territories: list[Territory]
    moved: dict[str, str] = Field(
        default_factory=dict, description="job -> territory, for jobs placed away from their nearest one"
    )


def _xy(points: np.ndarray, lat0: float) -> np.ndarray:
    """Kilometres on a local equal-area plane: k-means distances mean something."""
    return np.column_stack((points[:, 1] * 111.32 * math.cos(math.radians(lat0)), points[:, 0] * 110.57))


def _kmeans(xy: np.ndarray, k: int, seed: int, rounds: int = 25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.empty((k, 2))
    centers[0] = xy[rng.integers(len(xy))]
    d2 = ((xy - centers[0]) ** 2).sum(axis=1)
    for c in range(1, k):  # k-means++ seeding
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centers[c] = xy[rng.choice(len(xy), p=p)]
        d2 = np.minimum(d2, ((xy - centers[c]) ** 2).sum(axis=1))
    label = np.zeros(len(xy), dtype=np.int64)
    for _ in range(rounds):
        label = _nearest(xy, centers)
        moved = centers.copy()
        for c in range(k):
            members = xy[label == c]
            if len(members):
                moved[c] = members.mean(axis=0)
        if np.allclose(moved, centers):
            break
        centers = moved
    return centers, label


def _nearest(xy: np.ndarray, centers: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """The nearest centre of every point, a chunk at a time (200,000 points x 400 centres at once
    would be a 1.3 GB matrix)."""
    out = np.empty(len(xy), dtype=np.int64)
    for a in range(0, len(xy), chunk):
        part = xy[a : a + chunk]
        out[a : a + chunk] = ((part[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    return out


def _shift_minutes(tech: Technician, days: set[Any]) -> float:
    return sum(
        (s.end.hour * 60 + s.end.minute) - (s.start.hour * 60 + s.start.minute)
        for s in tech.shifts
        if s.date in days
    )


def _can_do(tech: Technician, job: Job) -> bool:
    if any(tech.skills.get(name, 0) < level for name, level in job.skills.items()):
        return False
    if tech.id in job.excluded_technicians:
        return False
    return job.pinned is None or job.pinned.technician_id == tech.id


def split(scenario: Scenario, jobs_per_territory: int = 1000, seed: int = 0) -> Split:
    """Territories of about `jobs_per_territory` jobs with the technicians to do them."""
    jobs, techs = scenario.jobs, scenario.technicians
    k = max(1, min(math.ceil(len(jobs) / max(1, jobs_per_territory)), len(techs) or 1))
    if not jobs:
        return Split(territories=[Territory(name="T1", center=GeoPoint(lat=0, lon=0),
                                            technician_ids=[t.id for t in techs], job_ids=[])])  # fmt: skip
    job_pts = np.array([(j.location.lat, j.location.lon) for j in jobs], dtype=np.float64)
    lat0 = float(job_pts[:, 0].mean())
    xy = _xy(job_pts, lat0)
    centers, label = _kmeans(xy, min(k, len(jobs)), seed)
    k = len(centers)
    days = set(scenario.horizon.dates())
    work = np.zeros(k)
    for i, j in enumerate(jobs):
        work[label[i]] += j.duration_minutes
    capacity = np.array([_shift_minutes(t, days) for t in techs])
    need = work / max(work.sum(), 1e-9) * capacity.sum()
    # Everyone starts in the territory nearest home; then, while a territory has much less shift time
    # than its work asks for, it takes the technician of a better-staffed territory whose home is
    # nearest to it, so long as that leaves the giver staffed as well. Moves are few and short.
    home = _xy(np.array([(t.home.lat, t.home.lon) for t in techs], dtype=np.float64).reshape(-1, 2), lat0)
    dist = (
        np.sqrt(((home[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
        if len(techs)
        else np.zeros((0, k))
    )
    owner = dist.argmin(axis=1) if len(techs) else np.zeros(0, dtype=np.int64)
    held = np.bincount(owner, weights=capacity, minlength=k).astype(np.float64)
    for _ in range(len(techs)):
        ratio = held / np.maximum(need, 1.0)
        short = int(np.argmin(ratio))
        if ratio[short] >= LOW or need[short] <= 0:
            break
        # The candidates: technicians of territories that stay at least as well staffed after giving.
        after = (held[owner] - capacity) / np.maximum(need[owner], 1.0)
        ok = (owner != short) & (after >= np.maximum(ratio[short] + 0.05, LOW))
        if not ok.any():
            break
        t = int(np.flatnonzero(ok)[np.argmin(dist[ok, short] - dist[ok, owner[ok]])])
        held[owner[t]] -= capacity[t]
        held[short] += capacity[t]
        owner[t] = short
    # A territory nobody works in hands its jobs to the nearest that has technicians.
    staffed = [c for c in range(k) if (owner == c).any()] or [0]
    for c in range(k):
        if c not in staffed:
            nearest = min(staffed, key=lambda s: float(((centers[s] - centers[c]) ** 2).sum()))
            label[label == c] = nearest
    by_territory: dict[int, list[Technician]] = {
        c: [techs[t] for t in np.flatnonzero(owner == c)] for c in staffed
    }
    center_order = {
        c: [s for s in sorted(staffed, key=lambda s: float(((centers[s] - centers[c]) ** 2).sum()))]
        for c in range(k)
    }
    tech_home = {t.id: int(owner[i]) for i, t in enumerate(techs)}
    moved: dict[str, str] = {}
    # Who can meet each distinct skill requirement, by territory, once (a national week has a few
    # dozen); a job's exclusions are taken off that.
    qualified: dict[tuple[tuple[str, int], ...], dict[int, set[str]]] = {}
    able_for: dict[tuple[tuple[str, int], ...], set[int]] = {}
    for i, job in enumerate(jobs):
        here = int(label[i])
        if job.pinned is not None and job.pinned.technician_id in tech_home:
            target = tech_home[job.pinned.technician_id]
        else:
            need = tuple(sorted(job.skills.items()))
            if need not in qualified:
                where: dict[int, set[str]] = {}
                for t, tech in enumerate(techs):
                    if all(tech.skills.get(name, 0) >= level for name, level in need):
                        where.setdefault(int(owner[t]), set()).add(tech.id)
                qualified[need] = where
            if job.excluded_technicians:
                excluded = set(job.excluded_technicians)
                able = {c for c, ids in qualified[need].items() if ids - excluded}
            else:
                able = able_for.get(need) or able_for.setdefault(need, set(qualified[need]))
            if here in able:
                continue
            target = next((c for c in center_order[here] if c in able), here)
        if target != here:
            label[i] = target
            moved[job.id] = f"T{staffed.index(target) + 1}"
    # A job that follows another (commissioning after the installation, a follow-up by the repair's
    # technician) goes where that one went: a link across territories could never be kept.
    index = {j.id: i for i, j in enumerate(jobs)}
    for _ in range(3):  # chains: installation -> commissioning -> follow-up
        for i, job in enumerate(jobs):
            for link in (job.after, job.same_technician_as):
                other = index.get(link.job_id) if link is not None else None
                if other is not None and label[other] != label[i]:
                    label[i] = label[other]
                    moved[job.id] = f"T{staffed.index(int(label[other])) + 1}"
    territories = []
    for n, c in enumerate(staffed, start=1):
        lat, lon = centers[c][1] / 110.57, centers[c][0] / (111.32 * math.cos(math.radians(lat0)))
        territories.append(
            Territory(
                name=f"T{n}",
                center=GeoPoint(lat=max(-90.0, min(90.0, lat)), lon=max(-180.0, min(180.0, lon))),
                technician_ids=[t.id for t in by_territory[c]],
                job_ids=[jobs[i].id for i in np.flatnonzero(label == c)],
            )
        )
    return Split(territories=territories, moved=moved)


def sub_scenario(territory: Territory, *, scenario: Scenario, extra_jobs: Sequence[Job] = ()) -> Scenario:
    techs = set(territory.technician_ids)
    wanted = set(territory.job_ids)
    return scenario.model_copy(
        update={
            "name": f"{scenario.name} / {territory.name}",
            "technicians": [t for t in scenario.technicians if t.id in techs],
            "jobs": [
                _local_job(j, techs) for j in scenario.jobs if j.id in wanted
            ] + [_local_job(j, techs) for j in extra_jobs],
        }
    )  # fmt: skip


def _local_job(job: Job, techs: set[str]) -> Job:
    """Technician names from elsewhere mean nothing in this territory (a scenario must know them)."""
    pref = [t for t in job.preferred_technicians if t in techs]
    excl = [t for t in job.excluded_technicians if t in techs]
    if pref == job.preferred_technicians and excl == job.excluded_technicians:
        return job
    return job.model_copy(update={"preferred_technicians": pref, "excluded_technicians": excl})


def payload(
    scenario: Scenario, options: SolveOptions, name: str, previous: Plan | None = None
) -> dict[str, Any]:
    """What a worker gets: plain JSON-able values, never solver objects."""
    return {
        "name": name,
        "scenario": scenario.model_dump(mode="json"),
        "options": options.model_dump(mode="json"),
        "previous": previous.model_dump(mode="json", by_alias=True) if previous is not None else None,
    }


def solve_payload(data: dict[str, Any]) -> dict[str, Any]:
    """One territory's solve, in a worker: plain values in, plain values out (with the worker's
    peak memory, for the benchmark)."""
    from optimizer.solve import solve

    scenario = Scenario.model_validate(data["scenario"])
    previous = Plan.model_validate(data["previous"]) if data.get("previous") else None
    began = time.monotonic()
    plan = solve(scenario, SolveOptions.model_validate(data["options"]), previous=previous)
    return {
        "name": data["name"],
        "plan": plan.model_dump(mode="json", by_alias=True),
        "seconds": time.monotonic() - began,
        "peak_mb": _peak_mb(),
    }


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM is the process image's own; ru_maxrss survives
    exec on Linux, so a spawned worker would report the peak of the process that spawned it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def solve_territories(
    scenario: Scenario,
    options: SolveOptions,
    mapper: Mapper,
    *,
    jobs_per_territory: int = 1000,
    previous: Plan | None = None,
    worker: Callable[[dict[str, Any]], dict[str, Any]] = solve_payload,
    log: Callable[[str], None] | None = None,
    parts: Split | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """Split, solve each territory through `mapper`, repair the borders, merge. Returns the plan
    and what it took (territories, per-territory seconds and worker peak memory, repairs)."""
    began = time.monotonic()
    say = log or (lambda _: None)
    parts = parts or split(scenario, jobs_per_territory, seed=options.seed)
    say(f"split: {len(parts.territories)} territories, {len(parts.moved)} jobs moved for skills or pins")
    # The time limit is a territory's of average size; each gets it in proportion to its jobs (a
    # dense city clustered into one territory holds several times a rural one's work), the largest
    # first, so the workers' waves end together and every job gets about the same search.
    answers = mapper(
        worker,
        [
            payload(
                sub_scenario(t, scenario=scenario),
                options.model_copy(update={"time_limit_seconds": limit}),
                t.name,
                _part_of(previous, t),
            )
            for t, limit in _time_limits(parts.territories, options.time_limit_seconds)
        ],
    )
    plans = {a["name"]: Plan.model_validate(a["plan"]) for a in answers}
    stats: dict[str, Any] = {
        "territories": len(parts.territories),
        "solve_seconds": [round(a["seconds"], 2) for a in answers],
        "peak_mb": [round(a["peak_mb"], 1) for a in answers],
        "repairs": [],
        "repair_seconds": [],
    }
    phases = [
        f"territory {t.name}: {len(t.job_ids)} jobs, {len(t.technician_ids)} technicians, "
        f"{sum(len(r.visits) for r in plans[t.name].routes)} planned"
        for t in parts.territories
    ]
    say(f"territories solved: {sum(len(r.visits) for p in plans.values() for r in p.routes)} visits")
    jobs = {j.id: j for j in scenario.jobs}
    terr = {t.name: t for t in parts.territories}
    home = {j: t.name for t in parts.territories for j in t.job_ids}
    # Repairs and polish start from this run's own plans: a warm start, not a promise. Moving a job off
    # the technician such a plan gave it costs nothing (with the stability weight it would cost half
    # an hour of travel, and the routes facing each other across a border could hardly be redrawn).
    # A caller's previous plan keeps its weight: the territory solves were anchored to it.
    warm = options
    if previous is None:
        warm = options.model_copy(
            update={"weights": options.weights.model_copy(update={"stability_move": 0.0})}
        )
    repair_options = warm.model_copy(update={"time_limit_seconds": max(1.0, options.time_limit_seconds / 3)})
    for rnd in range(NEIGHBOURS):
        offers: dict[str, list[Job]] = {}
        left: dict[str, Unassigned] = {}  # the offered jobs' entries, kept by their territory if not taken
        for name, plan in plans.items():
            for u in plan.unassigned:
                job = jobs[u.job_id]
                if u.reason not in REPAIRABLE or job.pinned is not None:
                    continue
                able = [
                    other
                    for other in sorted(terr.values(), key=lambda t: _km(t.center, job.location))
                    if other.name != name and any(_can_do(tech, job) for tech in _techs(scenario, other))
                ]
                if rnd < len(able):
                    offers.setdefault(able[rnd].name, []).append(job)
                    left[job.id] = u
        if not offers:
            break
        # A job on offer is in transit: its own territory, if it takes offers too, re-solves without
        # it, so it can be planned by one territory only.
        tasks = [
            payload(
                sub_scenario(_without(terr[n], left), scenario=scenario, extra_jobs=extra),
                repair_options,
                n,
                previous=plans[n],
            )
            for n, extra in sorted(offers.items())
        ]
        taken_all: set[str] = set()
        for answer in mapper(worker, tasks):
            n = answer["name"]
            new = Plan.model_validate(answer["plan"])
            offered = {j.id for j in offers[n]}
            taken = {v.job_id for r in new.routes for v in r.visits} & offered
            plans[n] = new.model_copy(
                update={"unassigned": [u for u in new.unassigned if u.job_id not in offered]}
            )
            taken_all |= taken
            stats["repair_seconds"].append(round(answer["seconds"], 2))
            for job_id in taken:
                src = home[job_id]
                terr[n].job_ids.append(job_id)
                terr[src].job_ids.remove(job_id)
                home[job_id] = n
            stats["repairs"].append(
                {"round": rnd + 1, "territory": n, "offered": len(offered), "taken": len(taken)}
            )
            phases.append(f"border repair {rnd + 1}: {n} took {len(taken)} of {len(offered)} offered jobs")
        # Every offered job is now either planned by the neighbour that took it or left out by its
        # own territory, with the reason it had.
        for name in plans:
            kept = [u for u in plans[name].unassigned if u.job_id not in left]
            kept += [u for job_id, u in left.items() if home[job_id] == name and job_id not in taken_all]
            plans[name] = plans[name].model_copy(update={"unassigned": kept})
        say(f"border repair round {rnd + 1}: {len(left)} jobs offered, {len(taken_all)} taken")
    # Across the borders: the routes facing each other are re-solved together.
    pieces = list(plans.values())
    polish_options = warm.model_copy(
        update={"time_limit_seconds": max(1.0, options.time_limit_seconds * POLISH_SHARE)}
    )
    for rnd in range(POLISH_ROUNDS):
        groups = _border_groups(scenario, pieces, parts.territories, rnd)
        if not groups:
            break
        tasks = [
            payload(
                scenario.model_copy(
                    update={
                        "name": f"{scenario.name} / {name}",
                        "technicians": [t for t in scenario.technicians if t.id in g_techs],
                        "jobs": [_local_job(jobs[j], g_techs) for j in g_jobs],
                    }
                ),
                polish_options,
                name,
                previous=_routes_of(pieces, g_techs),
            )
            for name, g_techs, g_jobs in groups
        ]
        answers = mapper(worker, tasks)
        done_techs = set().union(*(g[1] for g in groups))
        done_jobs = set().union(*(g[2] for g in groups))
        pieces = [
            p.model_copy(
                update={
                    "routes": [r for r in p.routes if r.technician_id not in done_techs],
                    "unassigned": [u for u in p.unassigned if u.job_id not in done_jobs],
                }
            )
            for p in pieces
        ]
        for answer, (name, _, g_jobs) in zip(answers, groups, strict=True):
            new = Plan.model_validate(answer["plan"])
            pieces.append(new)
            stats["repair_seconds"].append(round(answer["seconds"], 2))
            planned = sum(len(r.visits) for r in new.routes)
            phases.append(f"border polish {rnd + 1}: {name}: {len(g_jobs)} jobs, {planned} planned")
        say(f"border polish round {rnd + 1}: {len(groups)} groups across borders re-solved")
    plan = merge(scenario, options, pieces, phases, time.monotonic() - began)
    stats["wall_seconds"] = round(time.monotonic() - began, 2)
    return plan, stats


def _time_limits(territories: list[Territory], seconds: float) -> list[tuple[Territory, float]]:
    """Each territory with its time limit, `seconds` for one of average size and in proportion to
    its jobs (at least `MIN_TIME_SHARE` of it), the largest first."""
    mean = max(1.0, sum(len(t.job_ids) for t in territories) / max(1, len(territories)))
    ranked = sorted(territories, key=lambda t: -len(t.job_ids))
    return [(t, max(1.0, seconds * max(MIN_TIME_SHARE, len(t.job_ids) / mean))) for t in ranked]


def _routes_of(pieces: list[Plan], techs: set[str]) -> Plan:
    base = pieces[0]
    routes = [r for p in pieces for r in p.routes if r.technician_id in techs]
    return base.model_copy(update={"routes": routes, "unassigned": []})


def _border_groups(
    scenario: Scenario, pieces: list[Plan], territories: list[Territory], rnd: int
) -> list[tuple[str, set[str], list[str]]]:
    """Pairs of neighbouring territories (each in one pair per round: the nearest free neighbour in
    round 1, the next in round 2), and in each pair the technicians whose work lies nearer the other
    side, with the jobs on their routes and the pair's jobs left out. Route-based, as Santini et al.
    re-decompose: routes that face each other across a border are solved together."""
    jobs = {j.id: j for j in scenario.jobs}
    techs = {t.id: t for t in scenario.technicians}
    route_jobs: dict[str, list[str]] = {}
    for p in pieces:
        for r in p.routes:
            route_jobs.setdefault(r.technician_id, []).extend(v.job_id for v in r.visits)
    left = {u.job_id for p in pieces for u in p.unassigned if u.reason in REPAIRABLE}

    def centre(tid: str) -> GeoPoint:
        pts = [jobs[j].location for j in route_jobs.get(tid, [])] or [techs[tid].home]
        return GeoPoint(lat=sum(p.lat for p in pts) / len(pts), lon=sum(p.lon for p in pts) / len(pts))

    pairs = sorted(
        (_km(a.center, b.center), i, k)
        for i, a in enumerate(territories)
        for k, b in enumerate(territories)
        if i < k
    )
    # Neighbours only: a pair further apart than twice a territory's reach faces no border.
    reach = _reach(territories, jobs)
    used: set[int] = set()
    chosen: list[tuple[int, int]] = []
    skip: dict[int, int] = {}
    for dist, i, k in pairs:
        if i in used or k in used or dist > 2 * max(reach.get(i, 0.0), reach.get(k, 0.0)):
            continue
        # Round r takes each territory's (r+1)-th nearest pairing: skip the first r offered to it.
        if skip.get(i, 0) < rnd or skip.get(k, 0) < rnd:
            skip[i], skip[k] = skip.get(i, 0) + 1, skip.get(k, 0) + 1
            continue
        used |= {i, k}
        chosen.append((i, k))
    groups = []
    for i, k in chosen:
        a, b = territories[i], territories[k]
        g_techs: set[str] = set()
        for mine, other in ((a, b), (b, a)):
            ranked = sorted(mine.technician_ids, key=lambda t: _km(centre(t), other.center))
            g_techs |= set(ranked[: max(1, math.ceil(len(ranked) * POLISH_FACING))])
        g_jobs = [j for t in sorted(g_techs) for j in route_jobs.get(t, [])]
        pair_left = left & (set(a.job_ids) | set(b.job_ids))
        g_jobs += sorted(j for j in pair_left if any(_can_do(techs[t], jobs[j]) for t in g_techs))
        if g_jobs:
            groups.append((f"{a.name}+{b.name}", g_techs, g_jobs))
    return groups


def _reach(territories: list[Territory], jobs: dict[str, Job]) -> dict[int, float]:
    """How far a territory's jobs lie from its centre (90th percentile, km)."""
    out = {}
    for i, t in enumerate(territories):
        d = sorted(_km(t.center, jobs[j].location) for j in t.job_ids if j in jobs)
        out[i] = d[int(0.9 * (len(d) - 1))] if d else 0.0
    return out


def _without(territory: Territory, gone: dict[str, Unassigned]) -> Territory:
    return territory.model_copy(update={"job_ids": [j for j in territory.job_ids if j not in gone]})


def _part_of(previous: Plan | None, territory: Territory) -> Plan | None:
    """The previous plan's routes of this territory's technicians: its warm start."""
    if previous is None:
        return None
    techs = set(territory.technician_ids)
    return previous.model_copy(
        update={"routes": [r for r in previous.routes if r.technician_id in techs], "unassigned": []}
    )


def solve_large(
    scenario: Scenario,
    options: SolveOptions,
    how: TerritoryOptions,
    *,
    previous: Plan | None = None,
    log: Callable[[str], None] | None = None,
) -> Plan:
    """Territories on the configured backend (imported here: a plain solve never needs it)."""
    from optimizer.parallel import backend

    plan, _ = solve_territories(
        scenario,
        options,
        backend(how.backend, how.parallel, how.address),
        jobs_per_territory=how.jobs_per_territory,
        previous=previous,
        log=log,
    )
    return plan


def _techs(scenario: Scenario, territory: Territory) -> list[Technician]:
    ids = set(territory.technician_ids)
    return [t for t in scenario.technicians if t.id in ids]


def _km(a: GeoPoint, b: GeoPoint) -> float:
    dlat = (a.lat - b.lat) * 110.57
    dlon = (a.lon - b.lon) * 111.32 * math.cos(math.radians((a.lat + b.lat) / 2))
    return math.hypot(dlat, dlon)


def merge(
    scenario: Scenario, options: SolveOptions, plans: list[Plan], phases: list[str], wall: float
) -> Plan:
    """One plan of the territories' plans: every job in one route or in `unassigned`, once."""
    routes: list[Route] = sorted(
        (r for p in plans for r in p.routes), key=lambda r: (r.date, r.technician_id)
    )
    planned = {v.job_id for r in routes for v in r.visits}
    seen: set[str] = set()
    unassigned: list[Unassigned] = []
    for p in plans:
        for u in p.unassigned:
            if u.job_id not in planned and u.job_id not in seen:
                seen.add(u.job_id)
                unassigned.append(u)
    statuses = {p.solver.status for p in plans}
    return Plan(
        scenario=scenario.name,
        timezone=scenario.timezone,
        horizon_start=scenario.horizon.start,
        horizon_days=scenario.horizon.days,
        routes=routes,
        unassigned=unassigned,
        kpis=compute_kpis(scenario, routes, unassigned, None),
        solver=SolverStats(
            status="DEGRADED" if "DEGRADED" in statuses else "SUCCESS",
            wall_seconds=round(wall, 3),
            seed=options.seed,
            time_limit_seconds=options.time_limit_seconds,
            solutions=sum(p.solver.solutions for p in plans),
            search_phases=phases,
        ),
    )
