"""A simulated stretch of an after-sales operation: requests arrive, nights re-plan, days happen.

    python -m benchmarks.simulate [--days 10] [--technicians 12] [--per-day 45] [--time-limit 5]
                                  [--policies greedy,scratch,stable] [--seed 1] [--out DIR]
    python -m benchmarks.simulate --intraday ...   (one disrupted day: `benchmarks/intraday.py`)
    python -m benchmarks.simulate --contracts ...  (12 weeks of maintenance: `benchmarks/maintenance.py`)

Each night runs `optimizer.replan.replan`, the very function the service's nightly job calls, over
today and the next working days. The day is then executed: actual durations vary, a few visits fail
(and come back one priority level more urgent, through `optimizer.replan.raised_priority`), visits
that no longer fit the shift are missed and return to the pool. The next night sees the outcome.

Policies compared side by side on the same arrivals and the same dice:
  greedy   no re-plan: yesterday's assignments stay, new requests are inserted greedily;
  scratch  re-plan everything from scratch each night (churn reported, not avoided);
  stable   re-plan with the previous plan as warm start and a cost per moved job (the default).
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Literal

from models import Job, JobStatus, Pinned, ReasonCode, Route, Scenario, working_days
from optimizer import SolveOptions
from optimizer.replan import PoolJob, ReplanInput, raised_priority, replan, working_days_horizon
from scenarios.generate import generate

RESULTS = Path(__file__).parent / "results"
Policy = Literal["greedy", "scratch", "stable"]
POLICIES: tuple[Policy, ...] = ("greedy", "scratch", "stable")


@dataclass
class Arrival:
    job: Job
    day: date  # first night that sees it


@dataclass
class World:
    """The seeded operation: technicians and every request with the night it arrives."""

    scenario: Scenario
    arrivals: list[Arrival]
    days: list[date]


def build_world(days: int, technicians: int, per_day: int, seed: int, start: date) -> World:
    sim_days = working_days(start, days)
    span = working_days(start, days + 8)
    base = generate(
        name="simulation",
        region="lyon",
        technicians=technicians,
        jobs=per_day * days,
        days=(span[-1] - start).days + 1,
        start=start,
        seed=seed,
    )
    rng = random.Random(seed)
    tz = base.tz
    arrivals: list[Arrival] = []
    for k, job in enumerate(base.jobs):
        night = sim_days[k % len(sim_days)]
        later = [d for d in span if d > night]
        update: dict[str, object] = {"windows": [], "release": None, "due": None, "pinned": None}
        if job.emergency:
            update["windows"] = [_win(night, clock(8), clock(15), tz)]
            update["due"] = datetime.combine(night, clock(18), tz)
        elif rng.random() < 0.35:
            day = rng.choice(later[:5])  # the customer booked a half-day slot in the coming week
            am = rng.random() < 0.5
            update["windows"] = [_win(day, clock(8) if am else clock(13), clock(12) if am else clock(17), tz)]
        if job.warranty and not job.emergency:
            update["due"] = datetime.combine(_plus_working(night, 2), clock(17), tz)  # 48 h warranty SLA
        elif job.contract.value == "premium" and not job.emergency:
            update["due"] = datetime.combine(_plus_working(night, 3), clock(17), tz)
        arrivals.append(Arrival(job.model_copy(update=update), night))
    return World(base, arrivals, sim_days)


def _win(day: date, a: clock, b: clock, tz: object) -> object:
    from models import Window

    return Window(start=datetime.combine(day, a, tz), end=datetime.combine(day, b, tz))  # type: ignore[arg-type]


def _plus_working(day: date, n: int) -> date:
    return working_days(day + timedelta(days=1), n)[-1]


@dataclass
class DayStats:
    day: date
    policy: str
    arrived: int = 0
    planned_today: int = 0
    served: int = 0
    failed: int = 0
    missed: int = 0
    sla_due: int = 0
    sla_met: int = 0
    travel_km: float = 0.0
    overtime_min: float = 0.0
    churn: float | None = None
    wait_days: dict[int, list[int]] = field(default_factory=dict)
    solve_s: float = 0.0


@dataclass
class Request:
    job: Job
    arrived: date
    status: JobStatus = JobStatus.OPEN
    served_on: date | None = None


def _kept(job: Job, kept: dict[str, tuple[str, date]]) -> Job:
    """Greedy policy: yesterday's assignments stay, as pins (technician and day)."""
    if job.id not in kept:
        return job
    tech, day = kept[job.id]
    return job.model_copy(update={"pinned": Pinned(technician_id=tech, date=day)})


def run_policy(
    world: World, policy: Policy, time_limit: float, seed: int, progress: bool = True
) -> list[DayStats]:
    tz = world.scenario.tz
    dice = random.Random(seed * 7919 + 1)  # the same dice for every policy
    requests: dict[str, Request] = {}
    previous: list[Route] = []
    stats: list[DayStats] = []
    techs = {t.id: t for t in world.scenario.technicians}
    kept: dict[str, tuple[str, date]] = {}
    for night in world.days:
        st = DayStats(night, policy)
        for a in world.arrivals:
            if a.day == night:
                requests[a.job.id] = Request(a.job, night)
                st.arrived += 1
        horizon = working_days_horizon(night, 5)
        pool = [
            PoolJob(job=_kept(r.job, kept) if policy == "greedy" else r.job, status=r.status)
            for r in requests.values()
            if not r.status.terminal
        ]
        data = ReplanInput(
            name=f"{policy} {night}",
            timezone=world.scenario.timezone,
            horizon=horizon,
            technicians=world.scenario.technicians,
            pool=pool,
            previous=previous,
            mode="scratch" if policy == "scratch" else "stable",
            options=SolveOptions(time_limit_seconds=time_limit, seed=seed, local_search=policy != "greedy"),
        )
        began = time.perf_counter()
        result = replan(data)
        st.solve_s = time.perf_counter() - began
        plan = result.plan
        st.churn = plan.kpis.churn
        for u in plan.unassigned:
            if u.reason == ReasonCode.WINDOW_PASSED:
                # the dispatcher calls the customer and agrees "any time": the job stays in the pool
                r = requests[u.job_id]
                r.job = r.job.model_copy(update={"windows": []})
        where = {v.job_id: r for r in plan.routes for v in r.visits}
        for jid, r in requests.items():
            if r.status in (JobStatus.OPEN, JobStatus.PLANNED, JobStatus.FAILED):
                r.status = JobStatus.PLANNED if jid in where else JobStatus.OPEN
        # --- the day happens ---
        for route in plan.routes:
            if route.date != night:
                continue
            tech = techs[route.technician_id]
            shift = next(s for s in tech.shifts if s.date == night)
            limit = datetime.combine(night, shift.end, tz) + timedelta(minutes=tech.max_overtime_minutes)
            st.travel_km += route.distance_km
            planned_end, actual_end = route.start, route.start
            for visit in route.visits:
                st.planned_today += 1
                req = requests[visit.job_id]
                leg = visit.arrival - planned_end  # travel (and a lunch taken on the way) as planned
                begin = max(visit.start, actual_end + leg)
                minutes = (visit.end - visit.start).total_seconds() / 60 * dice.lognormvariate(0.0, 0.2)
                fails = dice.random() < 0.04
                end = begin + timedelta(minutes=min(minutes, 15.0) if fails else minutes)
                if end > limit:
                    req.status = JobStatus.OPEN  # no time left today: back to the pool
                    st.missed += 1
                    continue
                planned_end, actual_end = visit.end, end
                if fails:
                    req.status = JobStatus.FAILED
                    req.job = raised_priority(req.job)
                    st.failed += 1
                    continue
                req.status, req.served_on = JobStatus.DONE, night
                st.served += 1
                st.wait_days.setdefault(req.job.effective_priority, []).append((night - req.arrived).days)
                if req.job.due is not None:
                    st.sla_due += 1
                    st.sla_met += end <= world.scenario.local(req.job.due)
            home = actual_end + (route.end - planned_end)
            st.overtime_min += max(0.0, (home - datetime.combine(night, shift.end, tz)).total_seconds() / 60)
        previous = [r for r in plan.routes if r.date > night]
        kept = {v.job_id: (r.technician_id, r.date) for r in previous for v in r.visits}
        stats.append(st)
        if progress:
            print(
                f"{policy:8} {night}  arrived {st.arrived:3}  served {st.served:3}  failed {st.failed}  "
                f"missed {st.missed}  churn {st.churn if st.churn is not None else '-'}  {st.solve_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    never = [r for r in requests.values() if r.status != JobStatus.DONE]
    stats[-1].__dict__["never_served"] = len(never)
    return stats


def totals(stats: list[DayStats]) -> dict[str, object]:
    served = sum(s.served for s in stats)
    due = sum(s.sla_due for s in stats)
    waits: dict[int, list[int]] = {}
    for s in stats:
        for pr, w in s.wait_days.items():
            waits.setdefault(pr, []).extend(w)
    churns = [s.churn for s in stats if s.churn is not None]
    return {
        "policy": stats[0].policy,
        "arrived": sum(s.arrived for s in stats),
        "served": served,
        "failed": sum(s.failed for s in stats),
        "missed": sum(s.missed for s in stats),
        "never_served": stats[-1].__dict__.get("never_served", 0),
        "sla_pct": round(100 * sum(s.sla_met for s in stats) / due, 1) if due else None,
        "km_per_visit": round(sum(s.travel_km for s in stats) / max(served, 1), 2),
        "overtime_min": round(sum(s.overtime_min for s in stats), 0),
        "mean_churn_pct": round(100 * statistics.mean(churns), 1) if churns else None,
        "days_to_visit_by_priority": {p: round(statistics.mean(w), 2) for p, w in sorted(waits.items())},
        "solve_s_median": round(statistics.median(s.solve_s for s in stats), 2),
    }


def markdown(all_totals: list[dict[str, object]]) -> str:
    head = (
        "| seed | policy | arrived | served | failed | missed | never served | SLA met % | km / visit | "
        "overtime min | mean churn % | days to visit by priority | solve s (median) |"
    )
    lines = [head, "|" + " --- |" * 13]
    for t in all_totals:
        waits = ", ".join(f"P{p}: {w}" for p, w in t["days_to_visit_by_priority"].items())  # type: ignore[attr-defined]
        lines.append(
            f"| {t['seed']} | {t['policy']} | {t['arrived']} | {t['served']} | {t['failed']} | "
            f"{t['missed']} | "
            f"{t['never_served']} | {t['sla_pct']} | {t['km_per_visit']} | {t['overtime_min']:.0f} | "
            f"{t['mean_churn_pct']} | {waits} | {t['solve_s_median']} |"
        )
    seeds = {t["seed"] for t in all_totals}
    if len(seeds) > 1:
        lines += [
            "",
            "| policy | seeds | served (sum) | SLA met % (mean) | km / visit (mean) | churn % (mean) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for policy in dict.fromkeys(str(t["policy"]) for t in all_totals):
            mine = [t for t in all_totals if t["policy"] == policy]

            def mean(key: str, rows: list[dict[str, object]] = mine) -> float:
                vals = [float(r[key]) for r in rows if r[key] is not None]  # type: ignore[arg-type]
                return round(statistics.mean(vals), 2) if vals else float("nan")

            lines.append(
                f"| {policy} | {len(mine)} | {sum(int(t['served']) for t in mine)} | {mean('sla_pct')} | "  # type: ignore[call-overload]
                f"{mean('km_per_visit')} | {mean('mean_churn_pct')} |"
            )
    return "\n".join(lines)


def plot(per_policy: dict[str, list[DayStats]], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for policy, stats in per_policy.items():
        xs = [s.day.strftime("%d.%m") for s in stats]
        axes[0].plot(xs, [s.served for s in stats], marker="o", label=policy)
        axes[1].plot(xs, [100 * (s.churn or 0) for s in stats], marker="o", label=policy)
        axes[2].plot(xs, [s.travel_km / max(s.served, 1) for s in stats], marker="o", label=policy)
    for ax, title in zip(axes, ("visits served per day", "churn %", "km per served visit"), strict=True):
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", rotation=45)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if "--intraday" in args_in:  # the disrupted day: its own script, its own options
        from benchmarks import intraday

        return intraday.main([a for a in args_in if a != "--intraday"])
    if "--contracts" in args_in:  # maintenance contracts over weeks: fixed dates against the router
        from benchmarks import maintenance

        return maintenance.main([a for a in args_in if a != "--contracts"])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=10, help="working days simulated")
    parser.add_argument("--technicians", type=int, default=12)
    parser.add_argument("--per-day", type=int, default=45, help="new requests per day")
    parser.add_argument("--time-limit", type=float, default=5.0, help="seconds per nightly re-plan")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1, help="repeat with seeds seed, seed+1, ...")
    parser.add_argument("--start", default="2026-12-07", help="a Monday, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    bad = [p for p in policies if p not in POLICIES]
    if bad or args.days < 1 or args.technicians < 1 or args.per_day < 1:
        print(
            f"error: --policies must be among {', '.join(POLICIES)}; --days, --technicians, "
            "--per-day at least 1",
            file=sys.stderr,
        )
        return 2
    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        print(f"error: --start: {args.start!r} is not a date YYYY-MM-DD", file=sys.stderr)
        return 2
    runs: dict[int, dict[str, list[DayStats]]] = {}
    all_totals: list[dict[str, object]] = []
    for seed in range(args.seed, args.seed + max(args.seeds, 1)):
        world = build_world(args.days, args.technicians, args.per_day, seed, start)
        runs[seed] = {p: run_policy(world, p, args.time_limit, seed) for p in policies}  # type: ignore[arg-type]
        all_totals += [{"seed": seed, **totals(st)} for st in runs[seed].values()]
    per_policy = runs[args.seed]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"simulate-{args.days}d-{args.technicians}t"
    with (args.out / f"{stem}.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "seed",
                "policy",
                "day",
                "arrived",
                "planned_today",
                "served",
                "failed",
                "missed",
                "sla_due",
                "sla_met",
                "travel_km",
                "overtime_min",
                "churn",
                "solve_s",
            ]
        )
        for seed, by_policy in runs.items():
            for stats in by_policy.values():
                for s in stats:
                    writer.writerow(
                        [
                            seed,
                            s.policy,
                            s.day,
                            s.arrived,
                            s.planned_today,
                            s.served,
                            s.failed,
                            s.missed,
                            s.sla_due,
                            s.sla_met,
                            round(s.travel_km, 1),
                            round(s.overtime_min, 1),
                            s.churn,
                            round(s.solve_s, 2),
                        ]
                    )
    md = markdown(all_totals)
    (args.out / f"{stem}.md").write_text(md + "\n")
    picture = plot(per_policy, args.out / f"{stem}.png")
    print(md)
    print(f"\nwrote {args.out / (stem + '.csv')}, {stem}.md" + (f", {picture.name}" if picture else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
