"""A simulated disrupted day: a technician falls ill, emergencies come in, visits overrun, customers
are not at home, and four policies answer.

    python -m benchmarks.simulate --intraday [--families urban,rural,overload] [--seeds 3]
                                             [--technicians 20] [--jobs 110] [--latency 100]

Each day is a scenario of one of the field families, planned at night (`optimizer.solve`); every
planned visit becomes a promise (its window, or the planned start give or take an hour, as the service
makes it on publishing). The day then happens, in 5-minute steps: technicians leave so as to arrive
when the customer's window opens (free where they are until then), drive (the plan's travel times),
work the actual duration, take the break where their latest plan has it. The same seeded dice for
every policy: one technician ill from 10:00, emergencies through the day (SLA: finished within the
service's default `emergency_sla_hours`, 4 h; `--sla-hours`), 8 % of visits overrun (x1.5-2.5, known
when the visit starts), 4 % of customers not at home (10 minutes).

Policies (named apart from `simulate.py`'s nightly ones):
  do_nothing      technicians follow the morning plan; the ill one's visits and the emergencies wait;
  emergency_only  each emergency inserted where it is reached soonest, nothing else re-planned;
  full_replan     the rest of the day re-planned by the search after every event, no budget;
  budgeted        `POST /v1/days/{day}/reoptimise`'s policy: emergencies first, the budget held.
Every re-planning policy calls `optimizer.intraday.reoptimise`, the function the service calls.

Reported per policy: emergencies finished within their SLA, visits completed, promises broken (a
promised visit not made today, or begun after its window; a customer not at home breaks nothing),
promises a policy broke that doing nothing kept on the same day (and the reverse: saved), changed
visits per affected technician per re-optimisation (the ill one aside), overtime, and the
re-optimisation's time. `--latency N` times one re-optimisation of an N-technician day (the
issue's bound: 5 s for 100 technicians).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path

from api.settings import Settings
from api.store import promise_window
from models import GeoPoint, Job, Plan, Route, Scenario, Window
from optimizer import SolveOptions, solve
from optimizer.intraday import (
    Budget,
    CurrentState,
    CurrentVisit,
    Execution,
    IntradayInput,
    IntradayResult,
    Policy,
    execution_as_planned,
    reoptimise,
    window_open,
)
from optimizer.travel import provider_for
from scenarios.families import FAMILIES, family_scenario

RESULTS = Path(__file__).parent / "results"
POLICIES: dict[str, Policy | None] = {
    "do_nothing": None,
    "emergency_only": "emergency_only",
    "full_replan": "full",
    "budgeted": "budget",
}
STEP = timedelta(minutes=5)
SLA = timedelta(hours=Settings.model_fields["emergency_sla_hours"].default)  # the service's default


@dataclass
class Disrupted:
    """One seeded day: the morning plan with its promises, and what will happen to it."""

    scenario: Scenario
    plan: Plan
    ill: str
    ill_at: datetime
    emergencies: list[tuple[datetime, Job]]
    factor: dict[str, float]  # actual duration / planned, per job
    absent: set[str]


def build_day(
    family: str, seed: int, technicians: int, jobs: int, iterations: int, sla: timedelta = SLA
) -> Disrupted:
    sc = family_scenario(family, jobs=jobs, technicians=technicians, days=1, seed=seed)
    plan = solve(sc, SolveOptions(iterations=iterations, time_limit_seconds=120, seed=seed))
    rng = random.Random(f"intraday:{family}:{seed}")
    starts = {v.job_id: v.start for r in plan.routes for v in r.visits}
    jobs_ = [
        j.model_copy(update={"appointment": _promise(j, starts[j.id], sc)}) if j.id in starts else j
        for j in sc.jobs
    ]
    sc = sc.model_copy(update={"jobs": jobs_})
    day = sc.horizon.start
    busy = [r for r in plan.routes if len(r.visits) >= 3] or plan.routes
    ill = rng.choice(busy).technician_id
    planned = [j for j in sc.jobs if j.id in starts]
    # Emergencies need a skill at least three technicians other than the ill one hold.
    holders: dict[str, int] = {}
    for t in sc.technicians:
        if t.id != ill and t.shifts:
            for name in t.skills:
                holders[name] = holders.get(name, 0) + 1
    common = [j for j in planned if all(holders.get(name, 0) >= 3 for name in j.skills)] or planned
    emergencies: list[tuple[datetime, Job]] = []
    for k in range(max(2, technicians // 5)):
        when = sc.at(day, clock(8, 30)) + timedelta(minutes=rng.randint(0, 78) * 5)
        near = rng.choice(common)
        emergencies.append(
            (
                when,
                Job(
                    id=f"EM{k + 1:03d}",
                    kind="repair",
                    location=GeoPoint(
                        lat=round(near.location.lat + rng.gauss(0, 0.01), 5),
                        lon=round(near.location.lon + rng.gauss(0, 0.01), 5),
                    ),
                    duration_minutes=rng.choice((30, 45, 60, 90)),
                    skills={name: 1 for name in near.skills},
                    emergency=True,
                    priority=1,
                    due=when + sla,
                ),
            )
        )
    factor = {j.id: rng.uniform(1.5, 2.5) for j in planned if rng.random() < 0.08}
    absent = {j.id for j in planned if rng.random() < 0.04}
    return Disrupted(
        sc, plan, ill, sc.at(day, clock(10)), sorted(emergencies, key=lambda e: e[0]), factor, absent
    )


def _promise(job: Job, start: datetime, sc: Scenario) -> Window:
    """The window publishing promises (`api.store.promise_window`, the service's own rule)."""
    lo, hi = promise_window(job, start, sc.tz)
    return Window(start=lo, end=hi)


@dataclass
class Done:
    job_id: str
    depart: datetime
    arrival: datetime
    start: datetime
    end: datetime
    outcome: str  # done | absent


@dataclass
class Tech:
    id: str
    place: GeoPoint
    free_at: datetime
    queue: list[str]
    lunch_at: datetime | None
    lunch_minutes: int
    shift_end: datetime
    home: GeoPoint
    log: list[Done] = field(default_factory=list)
    stopped: bool = False


@dataclass
class Outcome:
    policy: str
    family: str
    seed: int
    emergencies: int = 0
    emergencies_in_sla: int = 0
    emergencies_reachable: int = 0  # some qualified technician on shift could finish it in time at all
    promised: int = 0
    promises_broken: int = 0
    broken_why: dict[str, int] = field(default_factory=dict)  # ill technician's, late, dropped
    broken_ids: set[str] = field(default_factory=set)
    # Against doing nothing on the same day: promises it kept that this policy broke, and the reverse.
    broke_kept: int = 0
    saved: int = 0
    # Promises this policy kept only by working past the overtime limit (the visit's end plus the
    # drive home beyond it), and how many of `broke_kept` doing nothing kept only so.
    over_limit_ids: set[str] = field(default_factory=set)
    broke_kept_over_limit: int = 0
    completed: int = 0
    overtime_minutes: float = 0.0
    busy: float = 0.0  # the night plan's median utilisation
    changes: list[int] = field(default_factory=list)  # per affected technician and re-optimisation
    reopt_seconds: list[float] = field(default_factory=list)


class DaySim:
    """Technicians executing their routes minute by minute (in steps), and a policy re-planning."""

    def __init__(self, d: Disrupted, policy: str) -> None:
        self.d, self.policy = d, policy
        sc = d.scenario
        self.sc = sc
        self.jobs = {j.id: j for j in sc.jobs} | {e.id: e for _, e in d.emergencies}
        pts = {
            (p.lat, p.lon)
            for p in [
                *(j.location for j in self.jobs.values()),
                *(t.home for t in sc.technicians),
                *(t.start_point for t in sc.technicians),
                *(t.end_point for t in sc.technicians),
            ]
        }
        self.index = {p: i for i, p in enumerate(sorted(pts))}
        import numpy as np

        _, self.minutes = provider_for(sc.travel).matrices(np.array(sorted(pts), dtype=np.float64))
        self.routes: list[Route] = list(d.plan.routes)
        by = {r.technician_id: r for r in self.routes}
        self.techs: dict[str, Tech] = {}
        for t in sc.technicians:
            r = by.get(t.id)
            shift = t.shifts[0] if t.shifts else None
            if shift is None:
                continue
            self.techs[t.id] = Tech(
                id=t.id,
                place=t.start_point,
                free_at=r.start if r else sc.at(shift.date, shift.start),
                queue=[v.job_id for v in r.visits] if r else [],
                lunch_at=r.break_.start if r and r.break_ else None,
                lunch_minutes=t.lunch.minutes if t.lunch else 0,
                shift_end=sc.at(shift.date, shift.end),
                home=t.end_point,
            )
        self.arrived: list[str] = []  # emergencies known so far
        self.events: list[str] = []  # what the last re-optimisation answered
        self.announced: set[str] = set()  # overruns told
        self.pool = [u.job_id for u in d.plan.unassigned if u.job_id in self.jobs]
        busy = statistics.median(d.plan.kpis.utilisation.values()) if d.plan.kpis.utilisation else 0.0
        self.out = Outcome(policy=policy, family=sc.name.split("-")[0], seed=0, busy=busy)

    def travel(self, a: GeoPoint, b: GeoPoint) -> timedelta:
        return timedelta(minutes=float(self.minutes[self.index[(a.lat, a.lon)], self.index[(b.lat, b.lon)]]))

    def advance(self, until: datetime) -> None:
        """Every technician sets off for their next visit (when free, and in time for its window
        rather than early), up to `until`."""
        for t in self.techs.values():
            while t.queue and not t.stopped and t.free_at <= until:
                job = self.jobs[t.queue[0]]
                # Leave so as to be there when the customer's window opens, not hours early: until
                # then the technician is free where they are (and a re-plan may send them elsewhere).
                drive = self.travel(t.place, job.location)
                depart = max(t.free_at, window_open(job, t.free_at + drive, self.sc) - drive)
                if t.id == self.d.ill and min(depart, until) >= self.d.ill_at:
                    t.stopped = True
                    break
                if depart > until:
                    break
                arrival = depart + drive
                start = max(arrival, window_open(job, arrival, self.sc))
                if t.lunch_at is not None and max(t.lunch_at, depart) <= start:
                    # The break before this visit, as the plan has it: on the way, or while waiting.
                    taken = max(t.lunch_at, depart)
                    pause = timedelta(minutes=t.lunch_minutes)
                    if taken < arrival:
                        arrival += pause
                        start = max(arrival, window_open(job, arrival, self.sc))
                    else:
                        start = max(start, taken + pause)
                    t.lunch_at = None
                if t.id == self.d.ill and start >= self.d.ill_at:
                    t.stopped = True  # ill before getting there
                    break
                t.queue.pop(0)
                if job.id in self.d.absent:
                    end, outcome = start + timedelta(minutes=10), "absent"
                else:
                    minutes = job.duration_minutes * self.d.factor.get(job.id, 1.0)
                    end, outcome = start + timedelta(minutes=minutes), "done"
                t.log.append(Done(job.id, depart, arrival, start, end, outcome))
                t.free_at, t.place = end, job.location

    def execution(self, now: datetime) -> list[Execution]:
        out = []
        for t in self.techs.values():
            done = [x.job_id for x in t.log if x.end <= now]
            cur = None
            for x in t.log:
                if x.start <= now < x.end:
                    known = x.job_id in self.d.factor and x.job_id in self.announced
                    cur = CurrentVisit(
                        job_id=x.job_id,
                        state=CurrentState.STARTED,
                        since=x.start,
                        expected_end=x.end if known else None,
                    )
                elif x.depart <= now < x.start:
                    cur = CurrentVisit(job_id=x.job_id, state=CurrentState.EN_ROUTE, since=x.depart)
            out.append(
                Execution(
                    technician_id=t.id,
                    done=done,
                    current=cur,
                    unavailable_from=self.d.ill_at if t.id == self.d.ill and now >= self.d.ill_at else None,
                )
            )
        return out

    def reoptimise(self, now: datetime, policy: Policy) -> IntradayResult:
        placed = {x.job_id for t in self.techs.values() for x in t.log} | {
            v.job_id for r in self.routes for v in r.visits
        }
        data = IntradayInput(
            timezone=self.sc.timezone,
            day=self.sc.horizon.start,
            now=now,
            travel=self.sc.travel,
            technicians=self.sc.technicians,
            jobs=list(self.jobs.values()),
            routes=self.routes,
            execution=self.execution(now),
            emergencies=[e for e in self.arrived if e not in placed],
            pool=[j for j in self.pool if j not in placed],
            policy=policy,
            budget=Budget(),
            options=SolveOptions(iterations=150, time_limit_seconds=10, seed=1),
        )
        began = time.perf_counter()
        result = reoptimise(data)
        self.out.reopt_seconds.append(time.perf_counter() - began)
        bad = result.violations()
        if bad:
            raise AssertionError(f"{self.policy}: the in-day plan failed the validator: {bad[:3]}")
        self.routes = result.plan.routes
        new = {r.technician_id: r for r in self.routes}
        for t in self.techs.values():
            logged = {x.job_id for x in t.log}
            r = new.get(t.id)
            t.queue = [v.job_id for v in r.visits if v.job_id not in logged] if r else []
            if r is not None and t.lunch_at is not None:
                # As the new plan has it: moved, or gone when an overrun ran through its window.
                t.lunch_at = r.break_.start if r.break_ is not None else None
        self.out.changes += [d.chosen for d in result.diff if d.technician_id != self.d.ill and d.chosen]
        return result

    def run(self) -> Outcome:
        sc, d = self.sc, self.d
        policy = POLICIES[self.policy]
        now = min(t.free_at for t in self.techs.values()) - STEP
        end = sc.at(sc.horizon.start, clock(21))
        ill_told = False
        while now < end:
            now += STEP
            self.advance(now)
            events = []
            if not ill_told and now >= d.ill_at:
                ill_told = True
                events.append("ill")
            for when, job in d.emergencies:
                if when <= now and job.id not in self.arrived:
                    self.arrived.append(job.id)
                    events.append("emergency")
            for t in self.techs.values():
                for x in t.log:
                    if x.job_id in d.factor and x.start <= now and x.job_id not in self.announced:
                        self.announced.add(x.job_id)
                        events.append("overrun")
            if policy is None or not events:
                continue
            if policy == "emergency_only" and "emergency" not in events:
                continue
            self.events = events
            self.reoptimise(now, policy)
            self.advance(now)
        return self.score()

    def reachable(self, when: datetime, job: Job) -> bool:
        """Could anyone have finished it in time, as the day stood when it came in? Each qualified
        technician (the ill one aside) first finishes the visit under way, or the one they are driving
        to (neither moves), then drives there and works it, and still gets home within their overtime.
        An upper bound: it ignores the other emergencies wanting the same hands."""
        assert job.due is not None
        for tech in self.sc.technicians:
            t = self.techs.get(tech.id)
            if t is None or tech.id == self.d.ill:
                continue
            if any(tech.skills.get(name, 0) < level for name, level in job.skills.items()):
                continue
            free, place = when, tech.start_point
            for x in t.log:
                if x.depart > when:
                    break
                free, place = max(when, x.end), self.jobs[x.job_id].location
            finish = free + self.travel(place, job.location) + timedelta(minutes=job.duration_minutes)
            home = finish + self.travel(job.location, tech.end_point)
            if finish <= job.due and home <= t.shift_end + timedelta(minutes=tech.max_overtime_minutes):
                return True
        return False

    def score(self) -> Outcome:
        o, sc = self.out, self.sc
        did = {x.job_id: x for t in self.techs.values() for x in t.log}
        for when, job in self.d.emergencies:
            o.emergencies += 1
            o.emergencies_reachable += self.reachable(when, job)
            x = did.get(job.id)
            if x is not None and job.due is not None and x.end <= job.due:
                o.emergencies_in_sla += 1
        ill = {v.job_id for r in self.d.plan.routes if r.technician_id == self.d.ill for v in r.visits}
        for job in sc.jobs:
            if job.appointment is None:
                continue
            o.promised += 1
            x = did.get(job.id)
            if x is None or x.start > sc.local(job.appointment.end):
                o.promises_broken += 1
                o.broken_ids.add(job.id)
                why = "ill" if job.id in ill and x is None else "late" if x is not None else "dropped"
                o.broken_why[why] = o.broken_why.get(why, 0) + 1
        o.completed = sum(1 for x in did.values() if x.outcome == "done")
        limit = {t.id: timedelta(minutes=t.max_overtime_minutes) for t in sc.technicians}
        for t in self.techs.values():
            back = t.free_at  # home from the last visit, or never left
            for x in t.log:
                back = x.end + self.travel(self.jobs[x.job_id].location, t.home)
                promised = self.jobs[x.job_id].appointment is not None
                if promised and x.job_id not in o.broken_ids and back > t.shift_end + limit[t.id]:
                    o.over_limit_ids.add(x.job_id)
            o.overtime_minutes += max(0.0, (back - t.shift_end).total_seconds() / 60)
        return o


def latency(technicians: int, seed: int, repeats: int = 3) -> list[float]:
    """One re-optimisation of an N-technician day at 10:00 (an absence and an emergency), timed."""
    jobs = technicians * 5
    sc = family_scenario("urban", jobs=jobs, technicians=technicians, days=1, seed=seed)
    plan = solve(sc, SolveOptions(iterations=50, time_limit_seconds=300, seed=seed))
    now = sc.at(sc.horizon.start, clock(10))
    ex = execution_as_planned(plan.routes, now)
    ill = plan.routes[0].technician_id
    ex = [e.model_copy(update={"unavailable_from": now}) if e.technician_id == ill else e for e in ex]
    near = sc.jobs[0]
    em = Job(
        id="EM",
        kind="repair",
        location=near.location,
        duration_minutes=60,
        skills={k: 1 for k in near.skills},
        emergency=True,
        due=now + SLA,
    )
    out = []
    for _ in range(repeats):
        data = IntradayInput(
            timezone=sc.timezone,
            day=sc.horizon.start,
            now=now,
            travel=sc.travel,
            technicians=sc.technicians,
            jobs=[*sc.jobs, em],
            routes=plan.routes,
            execution=ex,
            emergencies=["EM"],
            pool=[u.job_id for u in plan.unassigned],
        )
        began = time.perf_counter()
        result = reoptimise(data)
        out.append(time.perf_counter() - began)
        assert result.violations() == []
    return out


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| policy | night plan busy | emergencies in SLA | visits completed | promises broken (the ill "
        "technician's / late / dropped) | kept only past the overtime limit "
        "| broken by the re-plan (kept doing nothing; of those, only past the overtime limit) / saved by it "
        "| changed visits per affected technician (mean / max / share <= 2) "
        "| overtime min | re-opt s (median / max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in POLICIES:
        mine = [o for o in outcomes if o.policy == name]
        if not mine:
            continue
        em = sum(o.emergencies for o in mine)
        em_ok = sum(o.emergencies_in_sla for o in mine)
        em_reach = sum(o.emergencies_reachable for o in mine)
        promised = sum(o.promised for o in mine)
        broken = sum(o.promises_broken for o in mine)
        why = {k: sum(o.broken_why.get(k, 0) for o in mine) for k in ("ill", "late", "dropped")}
        changes = [c for o in mine for c in o.changes]
        secs = [s for o in mine for s in o.reopt_seconds]
        within = sum(c <= 2 for c in changes) / len(changes) if changes else 0.0
        ch = f"{statistics.mean(changes):.2f} / {max(changes)} / {within:.0%}" if changes else "-"
        sec = f"{statistics.median(secs):.2f} / {max(secs):.2f}" if secs else "-"
        bk = sum(o.broke_kept for o in mine)
        bko = sum(o.broke_kept_over_limit for o in mine)
        over = sum(len(o.over_limit_ids) for o in mine)
        lines.append(
            f"| {name} | {statistics.median(o.busy for o in mine):.0%} | {em_ok}/{em} "
            f"({em_ok / max(em, 1):.1%}; {em_ok / max(em_reach, 1):.1%} of {em_reach} reachable) | "
            f"{sum(o.completed for o in mine)} | "
            f"{broken}/{promised} ({broken / max(promised, 1):.1%}; "
            f"{why['ill']} / {why['late']} / {why['dropped']}) | "
            f"{over} | {bk}/{promised} ({bk / max(promised, 1):.1%}; {bko}) / {sum(o.saved for o in mine)} | "
            f"{ch} | "
            f"{sum(o.overtime_minutes for o in mine):.0f} | {sec} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="urban,rural,overload")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--technicians", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=0, help="jobs of the day; default 3.5 per technician")
    parser.add_argument("--iterations", type=int, default=400, help="of the night's plan")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument(
        "--sla-hours",
        type=float,
        default=SLA.total_seconds() / 3600,
        help="an emergency must be finished this long after it comes in (default: the service's)",
    )
    parser.add_argument(
        "--latency", type=int, default=0, help="also time a re-optimisation of an N-technician day"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bad = [f for f in families if f not in FAMILIES] + [p for p in policies if p not in POLICIES]
    if bad or args.technicians < 2 or (args.jobs and args.jobs < 5) or args.seeds < 1 or args.sla_hours <= 0:
        print(
            f"error: unknown {', '.join(bad) or 'size'}: --families among {', '.join(FAMILIES)}, --policies "
            f"among {', '.join(POLICIES)}, --technicians >= 2, --jobs >= 5, --seeds >= 1, --sla-hours > 0",
            file=sys.stderr,
        )
        return 2
    outcomes: list[Outcome] = []
    args.jobs = args.jobs or round(args.technicians * 3.5)
    for family in families:
        for seed in range(args.seed, args.seed + args.seeds):
            print(
                f"[{family} seed {seed}] night plan of {args.jobs} jobs, {args.technicians} technicians...",
                file=sys.stderr,
                flush=True,
            )
            sla = timedelta(hours=args.sla_hours)
            day = build_day(family, seed, args.technicians, args.jobs, args.iterations, sla)
            idle = DaySim(day, "do_nothing").run()
            for name in policies:
                o = idle if name == "do_nothing" else DaySim(day, name).run()
                o.broke_kept = len(o.broken_ids - idle.broken_ids)
                o.broke_kept_over_limit = len((o.broken_ids - idle.broken_ids) & idle.over_limit_ids)
                o.saved = len(idle.broken_ids - o.broken_ids)
                o.family, o.seed = family, seed
                outcomes.append(o)
                print(
                    f"  {name:15s} emergencies {o.emergencies_in_sla}/{o.emergencies} in SLA, promises "
                    f"broken {o.promises_broken}/{o.promised}, completed {o.completed}, changes {o.changes}",
                    file=sys.stderr,
                    flush=True,
                )
    report = table(outcomes)
    per_family = "\n\n".join(f"**{f}**\n\n" + table([o for o in outcomes if o.family == f]) for f in families)
    head = (
        f"{len(families)} families x {args.seeds} seeds, {args.technicians} technicians, {args.jobs} jobs, "
        f"emergency SLA {args.sla_hours:g} h"
    )
    text = f"# Disrupted days: {head}\n\n{report}\n\n{per_family}\n"
    if args.latency:
        secs = latency(args.latency, args.seed)
        text += (
            f"\nOne re-optimisation of a {args.latency}-technician, {args.latency * 5}-job day (absence + "
            f"emergency at 10:00): median {statistics.median(secs):.2f} s, max {max(secs):.2f} s over "
            f"{len(secs)} runs\n"
        )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"intraday-{args.technicians}t.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
