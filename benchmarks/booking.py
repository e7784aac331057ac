"""Appointment booking: how fast slots come back, and what booking one customer at a time costs.

    python -m benchmarks.booking [--families urban,rural] [--seeds 2] [--customers 300]
                                 [--queries 60] [--skip-latency] [--skip-callcentre]

1. **Slot search latency** (per family): a week of 100 technicians x 5 days with about 2,000
   planned visits (`scenarios.families`, planned with an iteration limit). The board (the plan
   loaded into the kernel, what the service keeps while the plan does not change) is built three
   times (cold: after every booking or re-plan); then `--queries` new jobs of the same family ask
   for slots on it (warm). Reported: cold build median, warm p50/p95. Target: p95 < 300 ms.
2. **A simulated call centre** (per family and seed): `--customers` customers call one after another
   into an empty week of 20 technicians x 5 days. Each is offered up to 8 two-hour windows (some want
   mornings only, some exclude a weekday); the customer takes the first offered slot half the time,
   else one of the best three; the booking is placed into the plan at once (the board rebuilt, as the
   service does). At the end the week is re-planned as the nightly re-plan does (every booked
   window kept, the booked plan as its warm start), and compared with planning the same jobs in one
   batch solve (no window promised; the callers' wishes as the jobs' own windows), both with the same
   iteration limit; `--window` varies the promised window. Reported: share of customers given a slot
   on their first call, travel per planned job (booked as placed, booked after the re-plan, batch),
   promises kept.
   Target: at most 10 % more travel per job than the batch plan, promises kept 100 %.
   `--clairvoyant`: not a policy, an experiment. Each caller is offered only the windows around the
   arrival that a batch plan of the whole week (knowing every call to come) gives them, on that
   plan's day, and takes the best: what booking in calling order with these slot prices costs even
   knowing the future.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime

from models import Job, Plan, Scenario, Window
from optimizer import SolveOptions, solve, validate_plan
from optimizer.replan import ReplanInput, input_of, replan
from optimizer.slots import Preferences, SlotBoard, SlotInput, SlotQuery, apply_placement, find_slots, place
from scenarios.families import family_scenario

ITERATIONS = 1500


def base_of(scenario: Scenario, plan: Plan, options: SolveOptions) -> ReplanInput:
    return input_of(scenario, plan.routes, options=options)


def customer_job(job: Job, k: int) -> Job:
    """A family job as a caller describes it: their availability is said on the phone, not a window."""
    return job.model_copy(update={"id": f"C{k:04d}", "windows": [], "pinned": None, "appointment": None})


def latency(family: str, queries: int) -> dict[str, float]:
    scenario = family_scenario(family, jobs=2300, technicians=100, days=5, seed=11)
    options = SolveOptions(iterations=ITERATIONS, seed=1, time_limit_seconds=600)
    began = time.perf_counter()
    plan = solve(scenario, options)
    print(f"[latency {family}] planned {sum(len(r.visits) for r in plan.routes)} visits in "
          f"{time.perf_counter() - began:.0f} s", file=sys.stderr)  # fmt: skip
    base = base_of(scenario, plan, options)
    builds = []
    for _ in range(3):
        began = time.perf_counter()
        board = SlotBoard(base)
        builds.append(time.perf_counter() - began)
    callers = family_scenario(family, jobs=queries, technicians=5, days=5, seed=12).jobs
    times = []
    offered = 0
    for k, job in enumerate(callers):
        data = SlotInput(base=base, query=SlotQuery(job=customer_job(job, k)))
        began = time.perf_counter()
        answer = find_slots(data, board)
        times.append(time.perf_counter() - began)
        offered += bool(answer.slots)
    times.sort()
    return {
        "visits": float(sum(len(r.visits) for r in plan.routes)),
        "build_median_s": statistics.median(builds),
        "p50_ms": 1000 * times[len(times) // 2],
        "p95_ms": 1000 * times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        "with_slots": offered / len(times),
    }


def wish(rng: random.Random, days: list[date]) -> Preferences:
    """What a caller says: 30 % mornings only, 20 % not on one weekday, the rest any time."""
    draw = rng.random()
    if draw < 0.3:
        return Preferences(until_time=dtime(12, 0))  # type: ignore[arg-type]
    if draw < 0.5:
        return Preferences(excluded_weekdays=[rng.choice(days).weekday()])
    return Preferences()


def callcentre(
    family: str,
    seed: int,
    customers: int,
    width: int = 120,
    clairvoyant: bool = False,
    iterations: int = ITERATIONS,
) -> dict[str, float]:
    rng = random.Random(f"{family}:{seed}")
    week = family_scenario(family, jobs=customers, technicians=20, days=5, seed=seed)
    options = SolveOptions(iterations=iterations, seed=seed, time_limit_seconds=600)
    callers = [customer_job(j, k) for k, j in enumerate(week.jobs)]
    empty = week.model_copy(update={"jobs": []})
    scenario = empty
    plan = solve(scenario, options)
    days = week.horizon.dates()
    first_call = booked = 0
    windows: dict[str, Window] = {}
    ask_times: list[float] = []
    wishes: dict[str, Preferences] = {}
    foreseen: dict[str, datetime] = {}
    if clairvoyant:  # every wish is known up front, and the plan knowing them all
        said = random.Random(f"{family}:{seed}:wishes")
        wishes = {job.id: wish(said, days) for job in callers}
        known = solve(
            week.model_copy(update={"jobs": [as_windows(j, wishes[j.id], week) for j in callers]}), options
        )
        foreseen = {v.job_id: v.start.astimezone(week.tz) for r in known.routes for v in r.visits}
    began = time.perf_counter()
    for k, job in enumerate(callers):
        prefs = wishes[job.id] if clairvoyant else wish(rng, days)
        wishes[job.id] = prefs
        query = SlotQuery(job=job, preferences=prefs, window_minutes=width)
        data = SlotInput(base=base_of(scenario, plan, options), query=query)
        t0 = time.perf_counter()
        board = SlotBoard(data.base)
        answer = find_slots(data, board)
        ask_times.append(time.perf_counter() - t0)
        if job.id in foreseen:
            told = SlotInput(base=data.base, query=_around(query, foreseen[job.id], width))
            hindsight = find_slots(told, board)
            if hindsight.slots:
                data, answer = told, hindsight
        if not answer.slots:
            continue
        first_call += 1
        if clairvoyant:
            slot = answer.slots[0]
        else:
            slot = answer.slots[0] if rng.random() < 0.5 else rng.choice(answer.slots[:3])
        placement = place(data, slot.start, slot.end, slot.technician_id, board)
        window = Window(start=slot.start, end=slot.end)
        plan = apply_placement(plan, placement, job.id)
        scenario = scenario.model_copy(
            update={"jobs": [*scenario.jobs, job.model_copy(update={"appointment": window})]}
        )
        windows[job.id] = window
        booked += 1
        for gone in placement.pushed_out:  # a caller whose visit gave way is called back: not counted
            windows.pop(gone, None)
        if (k + 1) % 50 == 0:
            print(f"[callcentre {family} seed {seed}] {k + 1}/{customers} callers, {booked} booked, "
                  f"{time.perf_counter() - began:.0f} s", file=sys.stderr)  # fmt: skip
    assert validate_plan(scenario, plan) == [], "a booked plan failed the validator"
    placed_travel = sum(r.travel_minutes for r in plan.routes) / max(1, _planned(plan))
    nightly = replan(base_of(scenario, plan, options))
    assert nightly.violations() == []
    starts = {v.job_id: v.start for r in nightly.plan.routes for v in r.visits}
    kept = sum(1 for j, w in windows.items() if j in starts and w.start <= starts[j] <= w.end)
    after_travel = sum(r.travel_minutes for r in nightly.plan.routes) / max(1, _planned(nightly.plan))
    # The batch plan gets what the callers said (mornings only, a weekday excluded) as windows.
    batch_jobs = [as_windows(j, wishes[j.id], week) for j in callers if j.id in {x.id for x in scenario.jobs}]
    batch = solve(week.model_copy(update={"jobs": batch_jobs}), options)
    batch_travel = sum(r.travel_minutes for r in batch.routes) / max(1, _planned(batch))
    # The same jobs with the same promised windows, planned at once from nothing: what booking one
    # call at a time costs against planning those promises together.
    same = solve(scenario, options)
    same_travel = sum(r.travel_minutes for r in same.routes) / max(1, _planned(same))
    return {
        "first_call": first_call / customers,
        "booked": float(booked),
        "placed_travel": placed_travel,
        "after_replan_travel": after_travel,
        "batch_travel": batch_travel,
        "batch_planned": float(_planned(batch)),
        "same_windows_travel": same_travel,
        "ratio_same_windows": after_travel / same_travel,
        "ratio_placed": placed_travel / batch_travel,
        "ratio_after": after_travel / batch_travel,
        "kept": kept / max(1, len(windows)),
        "ask_median_ms": 1000 * statistics.median(ask_times),
    }


def as_windows(job: Job, prefs: Preferences, week: Scenario) -> Job:
    """A caller's wishes as the job's own windows: arrival on an accepted day, by `until_time`."""
    if prefs.until_time is None and not prefs.excluded_weekdays:
        return job
    until = prefs.until_time or dtime(23, 59)
    days = [d for d in week.horizon.dates() if d.weekday() not in prefs.excluded_weekdays]
    windows = [Window(start=week.at(d, dtime(0, 0)), end=week.at(d, until)) for d in days]
    return job.model_copy(update={"windows": windows})


def _around(query: SlotQuery, start: datetime, width: int) -> SlotQuery:
    """The query narrowed to windows holding `start`, on its day (the caller's wishes kept)."""
    prefs = query.preferences
    midnight = datetime.combine(start.date(), dtime(0, 0), start.tzinfo)
    lo = max(start - timedelta(minutes=width), midnight).time()
    hi = min(start + timedelta(minutes=width), midnight + timedelta(hours=23, minutes=59)).time()
    narrowed = prefs.model_copy(
        update={
            "from_time": max(lo, prefs.from_time) if prefs.from_time else lo,
            "until_time": min(hi, prefs.until_time) if prefs.until_time else hi,
        }
    )
    return query.model_copy(
        update={"preferences": narrowed, "earliest": start.date(), "latest": start.date()}
    )


def _planned(plan: Plan) -> int:
    return sum(len(r.visits) for r in plan.routes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="urban,rural")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--window", type=int, default=120, help="promised arrival window, minutes")
    parser.add_argument(
        "--iterations", type=int, default=ITERATIONS, help="of every call-centre solve (re-plan and batch)"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-callcentre", action="store_true")
    parser.add_argument(
        "--clairvoyant",
        action="store_true",
        help="an experiment: callers offered the windows of a plan knowing every call",
    )
    args = parser.parse_args(argv)
    families = args.families.split(",")
    if not args.skip_latency:
        print("| family | planned visits | board build (cold, median) | slots p50 | slots p95 | with slots |")
        print("|---|---:|---:|---:|---:|---:|")
        for family in families:
            r = latency(family, args.queries)
            print(f"| {family} | {r['visits']:.0f} | {r['build_median_s']:.2f} s | {r['p50_ms']:.0f} ms | "
                  f"{r['p95_ms']:.0f} ms | {100 * r['with_slots']:.0f} % |", flush=True)  # fmt: skip
    if not args.skip_callcentre:
        print()
        print(
            "| family | seed | first-call slot | booked | travel/job placed | after re-plan "
            "| batch, same windows | batch, no windows | ratio vs same windows | ratio vs no windows "
            "| promises kept | ask (cold board) median |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        ratios: list[float] = []
        same: list[float] = []
        for family in families:
            for seed in range(1, args.seeds + 1):
                r = callcentre(family, seed, args.customers, args.window, args.clairvoyant, args.iterations)
                ratios.append(r["ratio_after"])
                same.append(r["ratio_same_windows"])
                print(f"| {family} | {seed} | {100 * r['first_call']:.0f} % | {r['booked']:.0f} | "
                      f"{r['placed_travel']:.1f} min | {r['after_replan_travel']:.1f} min | "
                      f"{r['same_windows_travel']:.1f} min | {r['batch_travel']:.1f} min | "
                      f"{r['ratio_same_windows']:.2f} | {r['ratio_after']:.2f} | "
                      f"{100 * r['kept']:.0f} % | {r['ask_median_ms']:.0f} ms |", flush=True)  # fmt: skip
        print(
            "\nmedian ratio after the re-plan, against the same windows planned at once: "
            f"{statistics.median(same):.2f}; against no windows: {statistics.median(ratios):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
