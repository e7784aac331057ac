"""Field-service weeks: fieldplan against VROOM and plain OR-Tools, every plan through the validator.

    python -m benchmarks.field [--sizes 150,600,2000,5000] [--families rural,urban,...]
                               [--solvers fieldplan,vroom,ortools] [--time-limit S] [--seeds N]
                               [--jobs P] [--out DIR] [--held-out]

Scenarios come from `scenarios.families` (dispersed rural, dense urban, scarce skills, overload with
priorities 1-5, absences over several days, alternative windows on different days) at four sizes:
150 jobs / 12 technicians / 3 days, 600 / 30 / 5, 2,000 / 100 / 5 and 5,000 / 250 / 5. `--held-out`
perturbs every family's shape (spread, speed, absences, windows, durations) so a result is not an
artefact of one generator. `--families crews` (not in the default set) adds crews of 2-3, multi-day
installations with their commissioning visits and follow-ups by the same technician: fieldplan
alone (no peer sends two technicians together), with the crews' idle wait per crew visit.

The peers get the same problem: the travel matrix fieldplan plans with (seconds, rounded up), the
jobs fieldplan does not reject up front, and every field rule a VROOM user would encode:
- VROOM (pyvroom): one vehicle per technician-day from home to home, time window = shift start to
  shift end + overtime; skills with levels as one skill id per (skill, level), exclusions as a
  "not technician X" id, pins as a "technician-day" id; lunch as a break with its window; each job's
  allowed start intervals (windows clipped by the release date) as its time windows; priorities
  1..5 as VROOM priorities 100, 30, 9, 3, 1 (VROOM maximises their sum first, so a priority-1 job is
  worth more than three priority-2 jobs: as close to a strict order as its 0-100 scale allows).
  Exploration level 5 up to 600 jobs, 0 above (as the issue measured), one thread.
- plain OR-Tools: fieldplan's OR-Tools model (same costs, breaks, windows, allowed technician-days)
  with OR-Tools' own first solution (parallel cheapest insertion) and guided local search; "no plan"
  when it finds none.
Every plan (VROOM's converted to the plan format) is checked by `optimizer.validate`, and travel is
recomputed from the plan's own sequences. Each run is a fresh process, so peak memory is its own.

Writes `field-<stamp>.csv`, `.md` (per family and size, planned per priority counted cumulatively,
travel per planned job, time to the first plan, wall time, peak memory, violations, and fieldplan
against VROOM: the issue's targets) and `.png` to `benchmarks/results/` (or `--out`).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SIZES: dict[int, tuple[int, int, int]] = {  # jobs -> (jobs, technicians, days)
    150: (150, 12, 3),
    600: (600, 30, 5),
    2000: (2000, 100, 5),
    5000: (5000, 250, 5),
}
FAMILIES = ("rural", "urban", "scarce", "overload", "absences", "altwindows")
# Crews, multi-day and linked jobs: fieldplan alone (the peers cannot send two technicians together).
OWN_FAMILIES = ("crews",)
VROOM_PRIORITY = {1: 100, 2: 30, 3: 9, 4: 3, 5: 1}
LEVELS = (1, 2, 3, 4, 5)


def default_limit(jobs: int) -> float:
    """The issue's budgets: 15 s up to 600 jobs, 60 s at 2,000, 120 s at 5,000."""
    return 15.0 if jobs <= 600 else 60.0 if jobs <= 2000 else 120.0


def scenario_for(family: str, size: int, seed: int, held_out: bool):  # type: ignore[no-untyped-def]
    from scenarios.families import family_scenario
    from scenarios.families import held_out as perturbed

    jobs, techs, days = SIZES[size]
    shape = perturbed(family, seed) if held_out else None
    return family_scenario(family, jobs=jobs, technicians=techs, days=days, seed=seed, shape=shape)


# --- solvers: each returns (plan, seconds to its first plan or None) ----------------------------


def solve_fieldplan(scenario, time_limit: float, seed: int):  # type: ignore[no-untyped-def]
    from optimizer import SolveOptions, solve

    plan = solve(scenario, SolveOptions(time_limit_seconds=time_limit, seed=seed))
    return plan, plan.solver.first_solution_seconds


def solve_vroom(scenario, time_limit: float, seed: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import vroom

    from optimizer import SolveOptions
    from optimizer.problem import build_problem

    p = build_problem(scenario, SolveOptions())
    ids: dict[tuple[str, ...], int] = {}

    def skill(*key: str) -> int:
        return ids.setdefault(key, len(ids) + 1)

    techs = scenario.technicians
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=np.ascontiguousarray(p.travel, dtype=np.uint32))
    vehicles = []
    for v in p.vehicles:
        tech = techs[v.technician]
        owned = {skill("s", name, str(lv)) for name, top in tech.skills.items() for lv in range(1, top + 1)}
        owned |= {skill("not", other.id) for other in techs if other.id != tech.id}
        owned.add(skill("pin", tech.id, v.date.isoformat()))
        breaks = []
        if v.lunch is not None:
            lo, hi, minutes = v.lunch
            breaks.append(vroom.Break(v.index + 1, time_windows=[vroom.TimeWindow(lo, hi)], service=minutes))
        vehicles.append(
            vroom.Vehicle(
                v.index + 1,
                start=v.start_node,
                end=v.end_node,
                capacity=[v.capacity] if v.capacity is not None else [10**9],
                skills=owned,
                time_window=vroom.TimeWindow(v.shift_start, v.latest_end),
                breaks=breaks,
            )
        )
    problem.add_vehicle(vehicles)
    jobs = []
    for n, job in enumerate(p.jobs):
        need = {skill("s", name, str(lv)) for name, lv in job.skills.items()}
        need |= {skill("not", t) for t in job.excluded_technicians}
        if job.pinned is not None:
            need.add(skill("pin", job.pinned.technician_id, job.pinned.date.isoformat()))
        jobs.append(
            vroom.Job(
                n + 1,
                location=n,
                default_service=int(p.service[n]),
                delivery=[int(p.demand[n])],
                skills=need,
                priority=VROOM_PRIORITY[int(p.priority[n])],
                time_windows=[vroom.TimeWindow(int(a), int(b)) for a, b in p.domains[n]],
            )
        )
    problem.add_job(jobs)
    level = 5 if p.n_jobs <= 600 else 0
    began = time.monotonic()
    solution = problem.solve(exploration_level=level, nb_threads=1, timeout=timedelta(seconds=time_limit))
    _ = time.monotonic() - began
    return _plan_from_steps(p, solution.routes), None


def _plan_from_steps(p, frame):  # type: ignore[no-untyped-def]
    """VROOM's steps -> the plan format, times as VROOM scheduled them."""
    from models import Break, Route, Visit
    from optimizer.assemble import assemble

    plan = assemble(p, [], None)
    routes = []
    served = set()
    for vid, steps in frame.groupby("vehicle_id", sort=True):
        v = p.vehicles[int(vid) - 1]
        visits, brk, km, travel = [], None, 0.0, 0
        prev = v.start_node
        start = end = None
        for row in steps.itertuples():
            if row.type == "start":
                start = int(row.arrival)
            elif row.type == "job":
                node = int(row.id) - 1
                begin = int(row.arrival) + int(row.waiting_time)
                visits.append(
                    Visit(
                        job_id=p.jobs[node].id,
                        arrival=p.moment(int(row.arrival)),
                        start=p.moment(begin),
                        end=p.moment(begin + int(p.service[node])),
                    )
                )
                km += float(p.km[prev, node])
                travel += int(p.travel[prev, node])
                prev = node
                served.add(node)
            elif row.type == "break":
                b = int(row.arrival) + int(row.waiting_time)
                brk = Break(start=p.moment(b), end=p.moment(b + int(row.service)))
            elif row.type == "end":
                end = int(row.arrival)
        if not visits:
            continue
        km += float(p.km[prev, v.end_node])
        travel += int(p.travel[prev, v.end_node])
        routes.append(
            Route(
                technician_id=v.technician_id,
                date=v.date,
                start=p.moment(start),
                end=p.moment(end),
                distance_km=round(km, 3),
                travel_minutes=round(p.minutes(travel), 2),
                overtime_minutes=round(p.minutes(max(0, end - v.shift_end)), 2),
                visits=visits,
                break_=brk,
            )
        )
    return _with_routes(p, plan, routes, served)


def _with_routes(p, plan, routes, served):  # type: ignore[no-untyped-def]
    from models import Unassigned
    from optimizer.kpis import compute_kpis

    served_ids = {p.jobs[n].id for n in served}
    unassigned = [u for u in plan.unassigned if u.job_id not in served_ids]
    present = {u.job_id for u in unassigned}
    for n in range(p.n_jobs):
        if n not in served and p.jobs[n].id not in present:
            unassigned.append(Unassigned(job_id=p.jobs[n].id, reason="CAPACITY", detail="left out"))
    routes.sort(key=lambda r: (r.date, r.technician_id))
    plan.routes = routes
    plan.unassigned = unassigned
    plan.kpis = compute_kpis(p.scenario, routes, unassigned)
    return plan


def solve_ortools(scenario, time_limit: float, seed: int):  # type: ignore[no-untyped-def]
    from optimizer import SolveOptions
    from optimizer.assemble import assemble, raw_routes
    from optimizer.costs import cost_model
    from optimizer.problem import build_problem
    from optimizer.routing_model import search
    from optimizer.search import Engine

    options = SolveOptions(time_limit_seconds=time_limit, seed=seed)
    p = build_problem(scenario, options)
    result = search(p, options, None, deadline=time.monotonic() + time_limit)
    if not result.routes:
        return None, None
    # Re-timed by the kernel: the same sequences, shown the way fieldplan shows its own.
    engine = Engine(p, cost_model(p, options.weights))
    routes = [[] for _ in p.vehicles]
    for vehicle, nodes in result.routes:
        routes[vehicle] = nodes
    engine.warm_start(routes)
    return assemble(p, raw_routes(p.timing, engine.rt), None), result.first_solution_seconds


SOLVERS: dict[str, Callable] = {  # type: ignore[type-arg]
    "fieldplan": solve_fieldplan,
    "vroom": solve_vroom,
    "ortools": solve_ortools,
}


def run_one(family: str, size: int, solver: str, seed: int, time_limit: float, held_out: bool) -> dict:  # type: ignore[type-arg]
    from optimizer import validate_plan
    from optimizer.groups import doable as doable_jobs
    from optimizer.options import SolveOptions

    scenario = scenario_for(family, size, seed, held_out)
    can = doable_jobs(scenario, SolveOptions())
    priority_of = {j.id: j.effective_priority for j in scenario.jobs if j.id in can}
    doable = len(can)
    began = time.monotonic()
    error = ""
    try:
        plan, first = SOLVERS[solver](scenario, time_limit, seed)
    except Exception as exc:  # a peer failing is a result, not a crash
        plan, first, error = None, None, f"{type(exc).__name__}: {exc}"
    wall = time.monotonic() - began
    row: dict[str, object] = {
        "family": family + ("*" if held_out else ""),
        "size": size,
        "seed": seed,
        "solver": solver,
        "time_limit": time_limit,
        "doable": doable,
        "wall_s": round(wall, 2),
        "first_s": round(first, 3) if first is not None else "",
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if plan is None:
        row.update({"planned": "", "violations": "", "status": error or "no plan"})
        return row
    violations = validate_plan(scenario, plan)
    planned = sorted(
        {v.job_id for r in plan.routes for v in r.visits}
    )  # a crew's or a long job's visits: one job
    cum = 0
    for lv in LEVELS:
        cum += sum(1 for j in planned if priority_of.get(j) == lv)
        row[f"p1_{lv}"] = cum
    km = sum(r.distance_km for r in plan.routes)
    row.update(
        {
            "planned": len(planned),
            "planned_share": round(len(planned) / doable, 4) if doable else 1.0,
            "travel_km": round(km, 1),
            "km_per_job": round(km / len(planned), 3) if planned else "",
            "overtime_min": round(sum(r.overtime_minutes for r in plan.routes), 1),
            "violations": len(violations),
            "status": plan.solver.status or "ok",
            **crew_wait(plan),
        }
    )
    return row


def crew_wait(plan) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Crew members' idle wait at the door, summed per crew visit (one job's part): the median."""
    waits: dict[tuple[str, int], float] = {}
    for route in plan.routes:
        for v in route.visits:
            if v.role is not None:
                key = (v.job_id, v.part or 1)
                waits[key] = waits.get(key, 0.0) + (v.start - v.arrival).total_seconds() / 60
    if not waits:
        return {}
    return {"crew_visits": len(waits), "crew_wait_med": round(statistics.median(waits.values()), 1)}


def _median(rows: list[dict], key: str) -> float | None:  # type: ignore[type-arg]
    vals = [float(r[key]) for r in rows if r.get(key) not in ("", None)]
    return statistics.median(vals) if vals else None


def table(rows: list[dict], solvers: list[str]) -> str:  # type: ignore[type-arg]
    """Markdown: medians over seeds per family, size and solver, and the targets against VROOM."""
    head = (
        "| family | size | solver | doable | P1 | P1-2 | P1-3 | P1-4 | all | share | km/job | first s "
        "| wall s | peak MB | violations | vs VROOM |"
    )
    out = [head, "|" + "---|" * 16]
    keys = sorted({(r["family"], r["size"]) for r in rows}, key=lambda k: (int(k[1]), str(k[0])))
    for fam, size in keys:
        peer = [r for r in rows if r["family"] == fam and r["size"] == size and r["solver"] == "vroom"]
        for solver in solvers:
            mine = [r for r in rows if r["family"] == fam and r["size"] == size and r["solver"] == solver]
            if not mine:
                continue
            if all(r.get("planned") in ("", None) for r in mine):
                out.append(f"| {fam} | {size} | {solver} | {mine[0]['doable']} | no plan |||||||||||| |")
                continue
            cells = [_median(mine, f"p1_{lv}") for lv in LEVELS]
            verdict = ""
            if solver == "fieldplan" and peer:
                verdict = _verdict(mine, peer)
            share = _median(mine, "planned_share")
            out.append(
                f"| {fam} | {size} | {solver} | {mine[0]['doable']} | "
                + " | ".join(f"{c:g}" if c is not None else "" for c in cells)
                + f" | {100 * share:.1f} % | {_fmt(_median(mine, 'km_per_job'), 2)} | "
                f"{_fmt(_median(mine, 'first_s'), 2)} | {_fmt(_median(mine, 'wall_s'), 1)} | "
                f"{_fmt(_median(mine, 'peak_mb'), 0)} | {sum(int(r['violations'] or 0) for r in mine)} | "
                f"{verdict} |"
            )
    return "\n".join(out)


def crew_table(rows: list[dict]) -> str:  # type: ignore[type-arg]
    """The crew family's own figures: crew visits and members' idle wait (goal: median <= 10 min)."""
    mine = [r for r in rows if r.get("crew_visits")]
    if not mine:
        return ""
    out = [
        "",
        "",
        "| family | size | crew visits | idle wait per crew visit, median (min) |",
        "|---|---|---|---|",
    ]
    for fam, size in sorted({(r["family"], r["size"]) for r in mine}, key=lambda k: (int(k[1]), str(k[0]))):
        these = [r for r in mine if (r["family"], r["size"]) == (fam, size)]
        visits, wait = _median(these, "crew_visits"), _median(these, "crew_wait_med")
        out.append(f"| {fam} | {size} | {_fmt(visits, 0)} | {_fmt(wait, 1)} |")
    return "\n".join(out)


def _verdict(mine: list[dict], peer: list[dict]) -> str:  # type: ignore[type-arg]
    """Per seed: planned >= VROOM's at every cumulative level, and travel per job <= 0.95 x VROOM's."""
    by_seed = {r["seed"]: r for r in peer if r.get("planned") not in ("", None)}
    met = total = 0
    ratios = []
    for r in mine:
        other = by_seed.get(r["seed"])
        if other is None or r.get("planned") in ("", None):
            continue
        total += 1
        counts_ok = all(int(r[f"p1_{lv}"]) >= int(other[f"p1_{lv}"]) for lv in LEVELS)
        ratio = float(r["km_per_job"]) / float(other["km_per_job"]) if other["km_per_job"] else 0.0
        ratios.append(ratio)
        met += counts_ok and ratio <= 0.95
    if not total:
        return ""
    return f"{met}/{total} met, km ratio {statistics.median(ratios):.2f}"


def _fmt(x: float | None, digits: int) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def plot(rows: list[dict], path: Path) -> Path | None:  # type: ignore[type-arg]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = sorted({(r["family"], r["size"]) for r in rows}, key=lambda k: (int(k[1]), str(k[0])))
    labels, share_ratio, km_ratio = [], [], []
    for fam, size in keys:
        mine = [r for r in rows if (r["family"], r["size"]) == (fam, size) and r["solver"] == "fieldplan"]
        peer = [r for r in rows if (r["family"], r["size"]) == (fam, size) and r["solver"] == "vroom"]
        a, b = _median(mine, "planned"), _median(peer, "planned")
        c, d = _median(mine, "km_per_job"), _median(peer, "km_per_job")
        if None in (a, b, c, d) or not b or not d:
            continue
        labels.append(f"{fam}\n{size}")
        share_ratio.append(a / b)  # type: ignore[operator]
        km_ratio.append(c / d)  # type: ignore[operator]
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(max(8, len(labels) * 0.9), 4.5))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], share_ratio, 0.4, label="jobs planned / VROOM's")
    ax.bar([x + 0.2 for x in xs], km_ratio, 0.4, label="travel per job / VROOM's")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(0.95, color="grey", lw=0.8, ls="--")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_title("fieldplan against VROOM (1.0 = equal; travel target 0.95)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _warm_up() -> None:
    """Compile (or load) the search's numba code once before the timed runs start."""
    from optimizer.search import warm_up

    print(f"search compiled or loaded in {warm_up():.1f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="150,600", help="comma-separated: 150, 600, 2000, 5000")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--solvers", default="fieldplan,vroom,ortools")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds (default by size)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 1..N per family and size")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one core each)")
    parser.add_argument("--held-out", action="store_true", help="perturbed family shapes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print(f"error: --sizes: {args.sizes!r} is not a list of numbers", file=sys.stderr)
        return 2
    bad = [s for s in sizes if s not in SIZES]
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    for what, wrong, known in (
        ("--sizes", bad, SIZES),
        ("--families", [f for f in families if f not in FAMILIES + OWN_FAMILIES], FAMILIES + OWN_FAMILIES),
        ("--solvers", [s for s in solvers if s not in SOLVERS], SOLVERS),
    ):
        if wrong:
            print(
                f"error: {what}: unknown {', '.join(map(str, wrong))} (known: {', '.join(map(str, known))})",
                file=sys.stderr,
            )
            return 2
    if "vroom" in solvers:
        try:
            import vroom  # noqa: F401
        except ImportError:
            print(
                "note: pyvroom is not installed (pip install -e '.[bench]'); VROOM skipped", file=sys.stderr
            )
            solvers.remove("vroom")
    tasks = [
        (fam, size, solver, seed, args.time_limit or default_limit(SIZES[size][0]))
        for size in sizes
        for fam in families
        for seed in range(1, args.seeds + 1)
        for solver in solvers
        if fam not in OWN_FAMILIES or solver == "fieldplan"
    ]
    budget = sum(t[4] for t in tasks) / max(args.jobs, 1)
    print(f"{len(tasks)} runs, {args.jobs} at a time: about {budget / 60:.0f} min", file=sys.stderr)
    _warm_up()
    rows: list[dict] = []  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_one, *t, args.held_out) for t in tasks]
        for k, future in enumerate(futures, 1):
            row = future.result()
            rows.append(row)
            print(
                f"[{k}/{len(tasks)}] {row['family']:11} {row['size']:>5} {row['solver']:9} "
                f"seed {row['seed']}: "
                + (
                    f"planned {row['planned']}/{row['doable']} km/job {row.get('km_per_job')} "
                    f"violations {row['violations']} wall {row['wall_s']} s, {row['peak_mb']} MB"
                    if row.get("planned") not in ("", None)
                    else str(row.get("status"))
                ),
                file=sys.stderr,
                flush=True,
            )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = "field" + ("-held-out" if args.held_out else "") + "-" + "-".join(map(str, sizes))
    fields = sorted(
        {k for r in rows for k in r}, key=lambda k: (k not in ("family", "size", "seed", "solver"), k)
    )
    with (args.out / f"{stamp}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    md = table(rows, solvers) + crew_table(rows)
    (args.out / f"{stamp}.md").write_text(md + "\n")
    picture = plot(rows, args.out / f"{stamp}.png")
    print(md)
    print(f"\nwrote {args.out / (stamp + '.csv')}, {stamp}.md" + (f", {picture.name}" if picture else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
