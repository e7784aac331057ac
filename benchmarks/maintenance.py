"""Twelve simulated weeks of preventive maintenance: fixed dates against the router picking the day.

    python -m benchmarks.simulate --contracts [--weeks 12] [--technicians 4] [--assets 1500]
                                  [--window 7] [--time-limit 2] [--seeds 1] [--region lyon]

The same contract book (technicians on weekly templates with public holidays and absences, assets,
yearly to monthly contracts, some floating) is run twice, night after night, through
`optimizer.replan.replan` (the service's nightly step):

  fixed   what other tools do: each occurrence is booked on its nominal date (moved to the next
          working day when that is a weekend or holiday; re-booked on the next working day when
          the day passes without a visit);
  router  the occurrence may be visited on any day of [nominal - window, nominal + window]; the
          cost model prefers the due date and the search picks the day that saves travel.

Both are measured against the contract's window: the share of occurrences done inside it (settled:
done, or window closed), travel per maintenance visit, overtime. Every day's plan is validator-checked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any, Literal

from models import JobStatus, Route, Scenario, Technician, Window
from models.expand import occurrence_job
from models.maintenance import Asset, MaintenanceContract, Occurrence, occurrences
from optimizer import SolveOptions
from optimizer.replan import PoolJob, ReplanInput, replan, working_days_horizon
from scenarios.maintenance import maintenance_book

RESULTS = Path(__file__).parent / "results"
Policy = Literal["fixed", "router"]
POLICIES: tuple[Policy, ...] = ("fixed", "router")


@dataclass
class Book:
    tz: Any
    timezone: str
    technicians: list[Technician]
    assets: dict[str, Asset]
    contracts: list[MaintenanceContract]
    work_days: list[date]


@dataclass
class Visit:
    occ: Occurrence
    book_day: date | None = None  # fixed: the day it is booked on
    status: JobStatus = JobStatus.OPEN
    done_on: date | None = None


@dataclass
class Totals:
    policy: str
    seed: int
    settled: int = 0
    in_window: int = 0
    done: int = 0
    km: float = 0.0
    travel_min: float = 0.0
    overtime_min: float = 0.0
    violations: int = 0
    solve_s: list[float] = field(default_factory=list)
    off_due: list[int] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "seed": self.seed,
            "settled": self.settled,
            "in_window_share": self.in_window / self.settled if self.settled else 0.0,
            "visits_done": self.done,
            "km_per_visit": self.km / self.done if self.done else 0.0,
            "travel_min_per_visit": self.travel_min / self.done if self.done else 0.0,
            "overtime_min": self.overtime_min,
            "median_days_off_due": statistics.median(self.off_due) if self.off_due else 0.0,
            "violations": self.violations,
            "median_solve_s": statistics.median(self.solve_s) if self.solve_s else 0.0,
        }


def build_book(
    *, start: date, weeks: int, technicians: int, assets: int, window: int, seed: int, region: str
) -> Book:
    raw = maintenance_book(
        region=region, technicians=technicians, assets=assets, start=start, seed=seed,
        before_days=window, after_days=window,
    )  # fmt: skip
    span = [start + timedelta(days=i) for i in range(7 * weeks + 21)]
    techs = [Technician.model_validate(t).with_derived_shifts(span) for t in raw["technicians"]]
    work = sorted({s.date for t in techs for s in t.shifts})
    probe = Scenario(
        name="p", timezone=raw["timezone"], horizon={"start": start, "days": 1}, technicians=[], jobs=[]
    )  # type: ignore[arg-type]
    return Book(
        tz=probe.tz,
        timezone=raw["timezone"],
        technicians=techs,
        assets={a["id"]: Asset.model_validate(a) for a in raw["assets"]},
        contracts=[MaintenanceContract.model_validate(c) for c in raw["contracts"]],
        work_days=work,
    )


def _next_work(day: date, work: list[date]) -> date:
    return next((d for d in work if d >= day), day)


def run(book: Book, policy: Policy, *, start: date, weeks: int, time_limit: float, seed: int) -> Totals:
    tot = Totals(policy, seed)
    visits: dict[str, Visit] = {}
    last_done: dict[str, date] = {}
    previous: list[Route] = []
    end = start + timedelta(days=7 * weeks)
    nights = [d for d in book.work_days if start <= d < end]
    by_id = {c.id: c for c in book.contracts}
    for night in nights:
        # Generation, as the service's nightly job does it: eight weeks ahead, idempotent; a
        # floating contract's open occurrences follow its last completion.
        for c in book.contracts:
            wanted = {
                o.key: o
                for o in occurrences(
                    c, until=night + timedelta(days=56), last_done=last_done.get(c.id), open_on=night
                )
            }
            for key, v in list(visits.items()):
                if (
                    v.occ.contract_id == c.id
                    and v.status == JobStatus.OPEN
                    and key not in wanted
                    and v.occ.nominal >= night
                ):
                    del visits[key]
            for key, occ in wanted.items():
                if key not in visits:
                    visits[key] = Visit(
                        occ, _next_work(occ.nominal, book.work_days) if policy == "fixed" else None
                    )
        pool = []
        planned = {x.job_id for r in previous for x in r.visits}
        for key, v in visits.items():
            if v.status == JobStatus.DONE:
                continue
            c = by_id[v.occ.contract_id]
            job = occurrence_job(c, book.assets[c.asset_ids[0]], v.occ, book.tz)
            if policy == "fixed":
                if v.book_day is not None and v.book_day < night:
                    v.book_day = _next_work(night, book.work_days)  # the day passed: re-booked
                day = v.book_day or night
                job = job.model_copy(
                    update={
                        "windows": [
                            Window(
                                start=datetime.combine(day, clock(0), book.tz),
                                end=datetime.combine(day, clock(23, 59), book.tz),
                            )
                        ],
                        "occurrence": job.occurrence.model_copy(
                            update={"due": day, "earliest": day, "latest": day}
                        )  # type: ignore[union-attr]
                        if job.occurrence
                        else None,
                    }
                )
            elif v.occ.latest < night:
                continue  # the window closed unvisited: settled as missed
            pool.append(PoolJob(job=job, status=JobStatus.PLANNED if key in planned else JobStatus.OPEN))
        data = ReplanInput(
            name=f"{policy} {night}",
            timezone=book.timezone,
            horizon=working_days_horizon(night, 5, book.work_days),
            technicians=book.technicians,
            pool=pool,
            previous=previous,
            options=SolveOptions(time_limit_seconds=time_limit, seed=seed),
        )
        began = time.perf_counter()
        result = replan(data)
        tot.solve_s.append(time.perf_counter() - began)
        tot.violations += len(result.violations())
        for route in result.plan.routes:
            if route.date != night:
                continue
            tot.km += route.distance_km
            tot.travel_min += route.travel_minutes
            tot.overtime_min += route.overtime_minutes
            for x in route.visits:
                v = visits[x.job_id]
                v.status, v.done_on = JobStatus.DONE, night
                last_done[v.occ.contract_id] = max(night, last_done.get(v.occ.contract_id, night))
                tot.done += 1
        previous = [r for r in result.plan.routes if r.date > night]
        if night.weekday() == 4 or night == nights[-1]:
            print(
                f"{policy:7} week of {night - timedelta(days=night.weekday())}: {tot.done} visits done, "
                f"{tot.km / max(tot.done, 1):.1f} km/visit, "
                f"median solve {statistics.median(tot.solve_s):.1f} s",
                file=sys.stderr,
                flush=True,
            )
    for v in visits.values():
        # Judged against the contract's own window, whatever day the policy booked.
        if v.occ.nominal >= end - timedelta(days=7) or v.occ.nominal < start:
            continue  # outside the measured stretch (its window may not have closed yet)
        if v.done_on is not None:
            tot.settled += 1
            tot.in_window += v.occ.earliest <= v.done_on <= v.occ.latest
            tot.off_due.append((v.done_on - v.occ.due).days)
        elif v.occ.latest < end:
            tot.settled += 1
    return tot


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| policy | seed | settled | in window | visits | km / visit | travel min / visit | overtime min "
        "| median days off due | violations | median solve s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['policy']} | {r['seed']} | {r['settled']} | {r['in_window_share']:.1%} | {r['visits_done']} "
        f"| {r['km_per_visit']:.2f} | {r['travel_min_per_visit']:.1f} | {r['overtime_min']:.0f} "
        f"| {r['median_days_off_due']:+.0f} | {r['violations']} | {r['median_solve_s']:.1f} |\n"
        for r in rows
    )
    return head + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Maintenance contracts: fixed dates against the router's day"
    )
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--technicians", type=int, default=4)
    parser.add_argument("--assets", type=int, default=1500)
    parser.add_argument("--window", type=int, default=7, help="days before and after the due date")
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per nightly re-plan")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--region", default="lyon")
    parser.add_argument("--start", default="2027-01-04", help="a Monday, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.weeks < 2 or args.technicians < 1 or args.assets < 1 or args.window < 0:
        print(
            "error: --weeks at least 2, --technicians and --assets at least 1, --window 0 or more",
            file=sys.stderr,
        )
        return 2
    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        print(f"error: --start: {args.start!r} is not a date YYYY-MM-DD", file=sys.stderr)
        return 2
    rows = []
    for seed in range(args.seed, args.seed + max(args.seeds, 1)):
        book = build_book(
            start=start, weeks=args.weeks, technicians=args.technicians, assets=args.assets,
            window=args.window, seed=seed, region=args.region,
        )  # fmt: skip
        for policy in POLICIES:
            rows.append(
                run(book, policy, start=start, weeks=args.weeks, time_limit=args.time_limit, seed=seed).row()
            )
    table = markdown(rows)
    print(table)
    fixed = [r for r in rows if r["policy"] == "fixed"]
    router = [r for r in rows if r["policy"] == "router"]
    ratios = [
        r["km_per_visit"] / f["km_per_visit"] for r, f in zip(router, fixed, strict=True) if f["km_per_visit"]
    ]
    if ratios:
        print(
            f"router / fixed travel per visit: median {statistics.median(ratios):.3f} "
            f"({(1 - statistics.median(ratios)):.1%} less); router in window: "
            f"median {statistics.median(r['in_window_share'] for r in router):.1%}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"maintenance-{args.weeks}w-{args.technicians}t-{args.assets}a.md").write_text(table)
    return 0 if all(r["violations"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
