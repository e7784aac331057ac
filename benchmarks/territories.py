"""National fleets: territories solved in parallel, against one solve and against one after another.

    python -m benchmarks.territories [--jobs 20000] [--technicians 1000] [--backends process,ray]
                                     [--time-limit 15] [--compare 5000] [--parallel 2]
    (also: python -m benchmarks.scale --territories)

The national week is regions side by side: family scenarios (rural, urban, scarce, absences,
altwindows, overload in turn) of 2,000 jobs and 100 technicians each, moved to their own centre
across France, 5 days. Per backend: share of the doable jobs planned (a job is doable unless its
reason says no plan could hold it: no qualified technician, too long, no shift in its window, ...),
travel per planned job, wall time, the largest worker's peak memory, border repairs. "One after
another" is the same territories' solve and repair times summed (what one process would take).
`--compare N` also solves an N-job national week whole, with the decomposed run's wall time as its
time limit, to show what the split costs. `--regions-alone S` also solves each region of the
national week whole (S seconds each): the jobs a region short of hands leaves out whatever the split
does, so the split's own loss is the planned share of what the regions plan solved whole.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from typing import Any

from models import Plan, ReasonCode, Scenario
from optimizer import SolveOptions, solve, validate_plan
from optimizer.parallel import backend
from optimizer.territories import payload, solve_payload, solve_territories
from scenarios.families import family_scenario

#: Reasons no plan could cure: the job is not doable.
NOT_DOABLE = {
    ReasonCode.NO_QUALIFIED_TECHNICIAN,
    ReasonCode.ALL_EXCLUDED,
    ReasonCode.TOO_LONG,
    ReasonCode.NO_SHIFT_IN_WINDOW,
    ReasonCode.DEMAND_EXCEEDS_VAN,
    ReasonCode.PINNED_CONFLICT,
}
FAMILIES = ("rural", "urban", "scarce", "absences", "altwindows", "overload")
#: Region centres (lat, lon): French cities, about 100-600 km apart.
CENTRES = [
    (48.85, 2.35), (45.76, 4.84), (43.30, 5.37), (43.60, 1.44), (44.84, -0.58), (47.22, -1.55),
    (48.58, 7.75), (50.63, 3.06), (43.70, 7.27), (48.11, -1.68), (49.26, 4.03), (47.32, 5.04),
    (45.19, 5.72), (45.78, 3.08), (47.90, 1.90), (49.44, 1.10), (46.58, 0.34), (43.61, 3.88),
    (47.47, -0.55), (48.69, 6.18),
]  # fmt: skip


def national(jobs: int, technicians: int, seed: int = 7) -> Scenario:
    """Regions of about 2,000 jobs, each a family scenario moved to its own city."""
    regions = max(1, round(jobs / 2000))
    per_jobs, per_techs = jobs // regions, technicians // regions
    merged: dict[str, Any] | None = None
    for r in range(regions):
        family = FAMILIES[r % len(FAMILIES)]
        part = family_scenario(family, jobs=per_jobs, technicians=per_techs, days=5, seed=seed + r)
        data = part.model_dump(mode="json")
        lat0 = sum(j["location"]["lat"] for j in data["jobs"]) / max(1, len(data["jobs"]))
        lon0 = sum(j["location"]["lon"] for j in data["jobs"]) / max(1, len(data["jobs"]))
        dlat, dlon = CENTRES[r % len(CENTRES)][0] - lat0, CENTRES[r % len(CENTRES)][1] - lon0
        ids = {t["id"]: f"R{r:02d}-{t['id']}" for t in data["technicians"]}

        def move(
            point: dict[str, float] | None, dlat: float = dlat, dlon: float = dlon
        ) -> dict[str, float] | None:
            return None if point is None else {"lat": point["lat"] + dlat, "lon": point["lon"] + dlon}

        for t in data["technicians"]:
            t["id"] = ids[t["id"]]
            for key in ("home", "start_location", "end_location"):
                t[key] = move(t.get(key))
        for j in data["jobs"]:
            j["id"] = f"R{r:02d}-{j['id']}"
            j["location"] = move(j["location"])
            for key in ("preferred_technicians", "excluded_technicians"):
                j[key] = [ids[x] for x in j.get(key, []) if x in ids]
            if j.get("pinned"):
                j["pinned"]["technician_id"] = ids[j["pinned"]["technician_id"]]
        if merged is None:
            merged = data
            merged["name"] = f"national week: {jobs} jobs, {technicians} technicians"
        else:
            merged["technicians"] += data["technicians"]
            merged["jobs"] += data["jobs"]
    assert merged is not None
    return Scenario.model_validate(merged)


def region(identifier: str) -> str:
    """The region a technician or job of `national` belongs to: its id's prefix (R03-...)."""
    return identifier[:3]


def by_family(plan: Any) -> str:
    """Planned / doable per region family (ids start with the region: R03-...)."""
    total: dict[str, list[int]] = {}
    planned = {v.job_id for r in plan.routes for v in r.visits}
    not_doable = {u.job_id for u in plan.unassigned if u.reason in NOT_DOABLE}
    ids = planned | {u.job_id for u in plan.unassigned}
    for job_id in ids:
        family = FAMILIES[int(region(job_id)[1:]) % len(FAMILIES)]
        cell = total.setdefault(family, [0, 0])
        cell[0] += job_id in planned
        cell[1] += job_id not in not_doable
    return ", ".join(f"{f} {100 * a / max(b, 1):.1f} %" for f, (a, b) in sorted(total.items()))


def regions_alone(scenario: Scenario, parallel: int, time_limit: float) -> dict[str, int]:
    """Each region of the national week solved whole (its own scenario, one worker each): how many
    jobs of it one solve plans. A region short of hands leaves jobs out whatever the split does;
    this is the reference that says how many the split itself costs."""
    regions: dict[str, tuple[list[Any], list[Any]]] = {}
    for t in scenario.technicians:
        regions.setdefault(region(t.id), ([], []))[0].append(t)
    for j in scenario.jobs:
        regions.setdefault(region(j.id), ([], []))[1].append(j)
    tasks = [
        payload(
            scenario.model_copy(update={"name": f"{scenario.name} / {r}", "technicians": t, "jobs": j}),
            SolveOptions(time_limit_seconds=time_limit, seed=1),
            r,
        )
        for r, (t, j) in sorted(regions.items())
    ]
    out = {}
    for answer in backend("process", parallel)(solve_payload, tasks):
        plan = Plan.model_validate(answer["plan"])
        out[answer["name"]] = sum(len(r.visits) for r in plan.routes)
        print(f"[territories] region {answer['name']} solved whole: {out[answer['name']]} planned",
              file=sys.stderr)  # fmt: skip
    return out


def doable(plan: Any) -> int:
    return plan.kpis.jobs_total - sum(u.reason in NOT_DOABLE for u in plan.unassigned)


def row(
    label: str, how: str, scenario: Scenario, plan: Any, wall: float, stats: dict[str, Any] | None
) -> dict[str, Any]:
    planned = plan.kpis.jobs_planned
    can = doable(plan)
    violations = len(validate_plan(scenario, plan))
    return {
        "scenario": label,
        "how": how,
        "territories": stats["territories"] if stats else 1,
        "planned": planned,
        "doable": can,
        "share": planned / can if can else 1.0,
        "km_per_job": plan.kpis.travel_km_per_job,
        "wall_s": wall,
        "serial_s": (sum(stats["solve_seconds"]) + sum(stats.get("repair_seconds", []))) if stats else None,
        "peak_mb": max(stats["peak_mb"])
        if stats
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "repaired": sum(r["taken"] for r in stats["repairs"]) if stats else 0,
        "violations": violations,
        "families": by_family(plan),
    }


def decomposed(
    scenario: Scenario, name: str, parallel: int, time_limit: float, per: int
) -> tuple[Any, float, dict[str, Any]]:
    mapper = backend(name, parallel)
    began = time.monotonic()
    plan, stats = solve_territories(
        scenario,
        SolveOptions(time_limit_seconds=time_limit, seed=1),
        mapper,
        jobs_per_territory=per,
        log=lambda text: print(f"[territories {name}] {text}", file=sys.stderr),
    )
    wall = time.monotonic() - began
    if name == "ray":
        import ray

        ray.shutdown()
    return plan, wall, stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20000, help="the national week (0: only --compare)")
    ap.add_argument("--technicians", type=int, default=1000)
    ap.add_argument("--backends", default="process,ray")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument(
        "--time-limit",
        type=float,
        default=15.0,
        help="seconds for a territory of average size (each in proportion to its jobs)",
    )
    ap.add_argument("--territory-jobs", type=int, default=1000)
    ap.add_argument("--compare", type=int, default=5000, help="also solve a week this size whole (0: no)")
    ap.add_argument(
        "--regions-alone",
        type=float,
        default=0.0,
        help="also solve each region of the national week whole, this many seconds each (0: no)",
    )
    args = ap.parse_args(argv)
    rows = []
    if args.compare:
        small = national(args.compare, args.compare // 20)
        plan, wall, stats = decomposed(small, "process", args.parallel, args.time_limit, args.territory_jobs)
        rows.append(row(f"{args.compare} jobs", f"process x{args.parallel}", small, plan, wall, stats))
        began = time.monotonic()
        whole = solve(small, SolveOptions(time_limit_seconds=max(wall, 10.0), seed=1))
        rows.append(
            row(
                f"{args.compare} jobs",
                "one solve (same wall time)",
                small,
                whole,
                time.monotonic() - began,
                None,
            )
        )
        ratio = rows[-2]["km_per_job"] / max(rows[-1]["km_per_job"], 1e-9)
        print(f"[territories] {args.compare} jobs: km per job split / whole = {ratio:.3f}", file=sys.stderr)
    big = national(args.jobs, args.technicians) if args.jobs else None
    for name in [b for b in args.backends.split(",") if b and big is not None]:
        assert big is not None
        print(f"[territories] {len(big.jobs)} jobs, {len(big.technicians)} technicians", file=sys.stderr)
        try:
            plan, wall, stats = decomposed(big, name, args.parallel, args.time_limit, args.territory_jobs)
        except RuntimeError as exc:
            print(f"[territories] {name}: {exc}", file=sys.stderr)
            continue
        rows.append(row(f"{args.jobs} jobs", f"{name} x{args.parallel}", big, plan, wall, stats))
        print(f"[territories] {rows[-1]}", file=sys.stderr)
    print(
        "| scenario | how | territories | planned / doable | share | km per job | wall s "
        "| one after another s | worker peak MB (max) | repaired | violations |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        serial = f"{r['serial_s']:.0f}" if r["serial_s"] is not None else ""
        print(f"| {r['scenario']} | {r['how']} | {r['territories']} | {r['planned']} / {r['doable']} | "
              f"{100 * r['share']:.1f} % | {r['km_per_job']:.2f} | {r['wall_s']:.0f} | {serial} | "
              f"{r['peak_mb']:.0f} | {r['repaired']} | {r['violations']} |")  # fmt: skip
    for r in rows:
        print(f"{r['scenario']}, {r['how']}: planned / doable by region family: {r['families']}")
    if big is not None and args.regions_alone:
        whole = regions_alone(big, args.parallel, args.regions_alone)
        reference = sum(whole.values())
        print(f"{args.jobs} jobs, each region solved whole: {reference} planned")
        for r in rows:
            if r["scenario"] == f"{args.jobs} jobs":
                share = r["planned"] / max(reference, 1)
                print(
                    f"{r['scenario']}, {r['how']}: {r['planned']} planned = {share:.1%} of the {reference} "
                    f"its regions plan solved whole ({args.regions_alone:g} s each)"
                )
    per_territory = [
        s for r in rows for s in ([] if r["serial_s"] is None else [r["serial_s"] / r["territories"]])
    ]
    if per_territory:
        print(f"median solve-and-repair seconds per territory: {statistics.median(per_territory):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
