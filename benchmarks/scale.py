"""Speed, quality and memory against plan size.

For generated one-day and five-day scenarios of 100 to 2,000 jobs (technicians = jobs / 20), each solve
runs in a fresh process so its peak memory (ru_maxrss) is its own. Reports, as medians over
`--repeats` runs: time to the first feasible plan, share of jobs planned and objective at the time
limit, wall time and peak memory; writes a CSV and a log-log plot with the fitted growth exponent.

    python -m benchmarks.scale                       # the full grid
    python -m benchmarks.scale --jobs 1000 --days 1 --time-limit 10 --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results"


def _one(jobs: int, days: int, time_limit: float, seed: int, queue: mp.Queue) -> None:
    from optimizer import SolveOptions, solve, validate_plan
    from scenarios.generate import generate

    scenario = generate(
        name=f"scale-{jobs}-{days}d",
        region="bavaria",
        technicians=max(1, jobs // 20),
        jobs=jobs,
        days=days,
        start=date(2026, 12, 7),
        seed=seed,
    )
    began = time.monotonic()
    plan = solve(scenario, SolveOptions(time_limit_seconds=time_limit, seed=seed))
    wall = time.monotonic() - began
    violations = len(validate_plan(scenario, plan))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "jobs": jobs,
            "days": days,
            "technicians": len(scenario.technicians),
            "first_plan_s": plan.solver.first_solution_seconds,
            "planned_share": plan.kpis.jobs_planned / max(1, plan.kpis.jobs_total),
            "objective": plan.solver.objective or 0,
            "wall_s": wall,
            "peak_mb": peak_mb,
            "violations": violations,
            "phases": "; ".join(plan.solver.search_phases),
        }
    )


def run(jobs: int, days: int, time_limit: float, seed: int) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_one, args=(jobs, days, time_limit, seed, queue))
    proc.start()
    result = queue.get(timeout=time_limit * 4 + 300)
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if "--territories" in argv:  # national fleets: benchmarks/territories.py
        from benchmarks import territories

        return territories.main([a for a in argv if a != "--territories"])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, nargs="*", default=[100, 500, 1000, 2000])
    ap.add_argument("--days", type=int, nargs="*", default=[1, 5])
    ap.add_argument("--time-limit", type=float, default=None, help="seconds; default 10 (1 day), 60 (5 days)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for days in args.days:
        limit = args.time_limit or (10.0 if days == 1 else 60.0)
        for jobs in args.jobs:
            runs = []
            for r in range(args.repeats):
                print(
                    f"[scale] {jobs} jobs, {days} day(s), run {r + 1}/{args.repeats} ...",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(run(jobs, days, limit, seed=r))
            row = {
                "jobs": jobs,
                "days": days,
                "technicians": runs[0]["technicians"],
                "time_limit_s": limit,
                **{
                    k: statistics.median(x[k] for x in runs)
                    for k in ("first_plan_s", "planned_share", "objective", "wall_s", "peak_mb")
                },
                "violations": max(x["violations"] for x in runs),
                "runs": len(runs),
                "phases": runs[0]["phases"],
            }
            rows.append(row)
            print(
                f"  first plan {row['first_plan_s']:.2f}s  planned {row['planned_share']:.1%}  "
                f"wall {row['wall_s']:.1f}s  peak {row['peak_mb']:.0f} MB  violations {row['violations']}",
                file=sys.stderr,
            )
    path = args.out / "scale.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("\n| jobs | days | techs | limit s | first plan s | planned | wall s | peak MB | violations |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['jobs']} | {r['days']} | {r['technicians']} | {r['time_limit_s']:.0f} | "
            f"{r['first_plan_s']:.2f} | {r['planned_share']:.1%} | {r['wall_s']:.1f} | {r['peak_mb']:.0f} | "
            f"{r['violations']} |"
        )
    _plot(rows, args.out / "scale.png")
    print(f"\nCSV: {path}\nplot: {args.out / 'scale.png'}")
    return 0


def _plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install -e '.[bench]')", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for days in sorted({r["days"] for r in rows}):
        sub = [r for r in rows if r["days"] == days]
        x = np.array([r["jobs"] for r in sub], dtype=float)
        for ax, key, label in (
            (axes[0], "first_plan_s", "first plan (s)"),
            (axes[1], "peak_mb", "peak memory (MB)"),
        ):
            y = np.array([max(r[key], 1e-3) for r in sub], dtype=float)
            slope = np.polyfit(np.log(x), np.log(y), 1)[0] if len(x) > 1 else float("nan")
            ax.loglog(x, y, "o-", label=f"{days} day(s): growth ~ n^{slope:.2f}")
            ax.set_xlabel("jobs")
            ax.set_ylabel(label)
            ax.legend()
            ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("fieldplan scale (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
