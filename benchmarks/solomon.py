"""Solomon VRPTW: fieldplan against plain OR-Tools, PyVRP and VROOM, one independent checker.

    python -m benchmarks.solomon [--instances DIR] [--time-limit S] [--solvers fieldplan,ortools,...]
                                 [--only C101,R101] [--jobs N] [--routes-out DIR] [--out DIR]

Each instance is mapped into fieldplan's own scenario model (depot = start and end of identical
technicians with van capacity; customers = jobs with demand, one window and a service time; planar
Euclidean travel, time = distance) and solved by `optimizer.solve`, the code path a dispatcher's plan
takes. The objective is the literature's: fewest vehicles first (a fixed cost per technician-day that
dominates distance), then distance. Every solver's routes are re-checked here (capacity, windows,
return to the depot, each customer once) and their distance recomputed in real numbers.
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "solomon"
RESULTS = Path(__file__).parent / "results"
CLASSES = ("C1", "C2", "R1", "R2", "RC1", "RC2")
DAY = date(2026, 1, 5)
EPS = 1e-6


@dataclass(frozen=True)
class Instance:
    name: str
    vehicles: int
    capacity: int
    x: np.ndarray
    y: np.ndarray
    demand: np.ndarray
    ready: np.ndarray
    due: np.ndarray
    service: np.ndarray

    @property
    def n(self) -> int:
        return len(self.x) - 1

    @property
    def klass(self) -> str:
        return self.name[:3] if self.name.startswith("RC") else self.name[:2]

    def dist(self) -> np.ndarray:
        return np.hypot(self.x[:, None] - self.x[None, :], self.y[:, None] - self.y[None, :])


def read_instance(path: Path) -> Instance:
    lines = [ln.split() for ln in path.read_text().splitlines()]
    name = lines[0][0]
    fleet = next(i for i, ln in enumerate(lines) if ln[:1] == ["NUMBER"]) + 1
    vehicles, capacity = int(lines[fleet][0]), int(lines[fleet][1])
    rows = [ln for ln in lines[fleet + 1 :] if len(ln) == 7 and ln[0].isdigit()]
    a = np.array(rows, dtype=float)
    if a[0, 0] != 0 or len(a) < 2:
        raise ValueError(f"{path}: expected the depot as customer 0 and customers after it")
    return Instance(name, vehicles, capacity, a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6])


def read_bks(folder: Path) -> dict[str, tuple[int, float]]:
    path = folder / "bks.csv"
    if not path.exists():
        return {}
    with path.open() as f:
        return {r["instance"]: (int(r["vehicles"]), float(r["distance"])) for r in csv.DictReader(f)}


# --- the independent checker --------------------------------------------------------------------


@dataclass
class Checked:
    feasible: bool
    vehicles: int
    distance: float
    problems: list[str]


def check(inst: Instance, routes: list[list[int]]) -> Checked:
    """Re-derive every time and load from the instance alone; nothing from any solver's code."""
    d = inst.dist()
    problems: list[str] = []
    seen: dict[int, int] = {}
    total = 0.0
    used = [r for r in routes if r]
    for ri, route in enumerate(used):
        t, load, prev = 0.0, 0.0, 0
        for c in route:
            if not 1 <= c <= inst.n:
                problems.append(f"route {ri + 1}: no customer {c}")
                continue
            seen[c] = seen.get(c, 0) + 1
            total += d[prev, c]
            start = max(t + d[prev, c], inst.ready[c])
            if start > inst.due[c] + EPS:
                problems.append(
                    f"route {ri + 1}: customer {c} starts {start:.2f} after due {inst.due[c]:.0f}"
                )
            t = start + inst.service[c]
            load += inst.demand[c]
            prev = c
        total += d[prev, 0]
        if t + d[prev, 0] > inst.due[0] + EPS:
            problems.append(f"route {ri + 1}: back at the depot {t + d[prev, 0]:.2f} after {inst.due[0]:.0f}")
        if load > inst.capacity + EPS:
            problems.append(f"route {ri + 1}: load {load:.0f} over capacity {inst.capacity}")
    missing = [c for c in range(1, inst.n + 1) if c not in seen]
    twice = [c for c, k in seen.items() if k > 1]
    if missing:
        problems.append(f"customers not served: {missing[:10]}{'...' if len(missing) > 10 else ''}")
    if twice:
        problems.append(f"customers served twice: {twice[:10]}")
    if len(used) > inst.vehicles:
        problems.append(f"{len(used)} vehicles, the fleet has {inst.vehicles}")
    return Checked(not problems, len(used), total, problems)


# --- fieldplan ----------------------------------------------------------------------------------


def minutes_per_unit(inst: Instance) -> float:
    """Solomon time units to minutes, so the horizon fits one shift and its end is a whole minute."""
    horizon = inst.due[0]
    for s in (1.0, 0.5, 0.4, 0.25, 0.2, 0.1):
        if horizon * s <= 1439 and abs(horizon * s - round(horizon * s)) < 1e-9:
            return s
    raise ValueError(f"{inst.name}: depot horizon {horizon} does not fit one day")


def to_scenario(inst: Instance) -> tuple[object, float]:
    """Instance -> fieldplan Scenario (coordinates halved into lat/lon range, 2 km per unit)."""
    from models import Scenario

    s = minutes_per_unit(inst)
    t0 = datetime.combine(DAY, datetime.min.time())

    def at(units: float) -> str:
        return (t0 + timedelta(seconds=round(units * s * 60, 6))).isoformat()

    end = round(inst.due[0] * s)
    depot = {"lat": inst.y[0] / 2, "lon": inst.x[0] / 2}
    techs = [
        {
            "id": f"V{k + 1:02d}",
            "name": f"vehicle {k + 1}",
            "home": depot,
            "shifts": [{"date": DAY.isoformat(), "start": "00:00", "end": f"{end // 60:02d}:{end % 60:02d}"}],
            "capacity": inst.capacity,
        }
        for k in range(inst.vehicles)
    ]
    jobs = []
    for c in range(1, inst.n + 1):
        lo, hi = inst.ready[c], max(inst.due[c], inst.ready[c] + 1e-3)
        jobs.append(
            {
                "id": f"C{c}",
                "kind": "maintenance",
                "location": {"lat": inst.y[c] / 2, "lon": inst.x[c] / 2},
                "duration_minutes": max(inst.service[c] * s, 1e-3),
                "windows": [{"start": at(lo), "end": at(hi)}],
                "demand": int(inst.demand[c]),
                "priority": 1,
            }
        )
    scenario = Scenario.model_validate(
        {
            "name": inst.name,
            "timezone": "UTC",
            "horizon": {"start": DAY.isoformat(), "days": 1},
            "travel": {"metric": "planar", "planar_km_per_unit": 2.0, "speed_kmh": 60.0 / s},
            "technicians": techs,
            "jobs": jobs,
        }
    )
    return scenario, s


def solve_fieldplan(inst: Instance, time_limit: float, seed: int) -> list[list[int]]:
    from optimizer import SolveOptions, Weights, solve

    scenario, s = to_scenario(inst)
    options = SolveOptions(
        time_limit_seconds=time_limit,
        seed=seed,
        tick_seconds=s * 60 / 1000,  # a thousandth of a distance unit
        weights=Weights(technician_day_fixed=2000.0 * s, wait_per_day=0.0, sla_late_per_day=0.0),
        route_minimisation=True,
    )
    plan = solve(scenario, options)  # type: ignore[arg-type]
    return [[int(v.job_id[1:]) for v in r.visits] for r in plan.routes]


# --- peers --------------------------------------------------------------------------------------

SCALE = 1000  # integer units per distance unit for solvers that need integers; times rounded up


def _int_matrices(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    d = inst.dist()
    return np.rint(d * SCALE).astype(np.int64), np.ceil(d * SCALE - 1e-9).astype(np.int64)


def solve_ortools(inst: Instance, time_limit: float, seed: int) -> list[list[int]]:
    """OR-Tools as its VRPTW sample writes it: PATH_CHEAPEST_ARC, then guided local search."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    dist, dur = _int_matrices(inst)
    service = np.rint(inst.service * SCALE).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(inst.n + 1, inst.vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)

    def distance_cb(i: int, j: int) -> int:
        return int(dist[manager.IndexToNode(i), manager.IndexToNode(j)])

    def time_cb(i: int, j: int) -> int:
        a = manager.IndexToNode(i)
        return int(service[a] + dur[a, manager.IndexToNode(j)])

    def demand_cb(i: int) -> int:
        return int(inst.demand[manager.IndexToNode(i)])

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(distance_cb))
    horizon = int(inst.due[0] * SCALE)
    routing.AddDimension(routing.RegisterTransitCallback(time_cb), horizon, horizon, False, "Time")
    tdim = routing.GetDimensionOrDie("Time")
    for c in range(1, inst.n + 1):
        tdim.CumulVar(manager.NodeToIndex(c)).SetRange(int(inst.ready[c] * SCALE), int(inst.due[c] * SCALE))
    for v in range(inst.vehicles):
        tdim.CumulVar(routing.Start(v)).SetRange(0, horizon)
        tdim.CumulVar(routing.End(v)).SetRange(0, horizon)
    routing.AddDimensionWithVehicleCapacity(
        routing.RegisterUnaryTransitCallback(demand_cb), 0, [inst.capacity] * inst.vehicles, True, "Load"
    )
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(time_limit * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return []
    routes = []
    for v in range(inst.vehicles):
        idx, route = routing.Start(v), []
        idx = solution.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            route.append(manager.IndexToNode(idx))
            idx = solution.Value(routing.NextVar(idx))
        routes.append(route)
    return routes


def solve_pyvrp(inst: Instance, time_limit: float, seed: int) -> list[list[int]]:
    """PyVRP's hybrid genetic search, distance only (its default objective)."""
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    dist, dur = _int_matrices(inst)
    m = Model()
    locs = [m.add_location(x=float(inst.x[i]), y=float(inst.y[i])) for i in range(inst.n + 1)]
    depot = m.add_depot(locs[0], tw_early=0, tw_late=int(inst.due[0] * SCALE))
    m.add_vehicle_type(
        num_available=inst.vehicles,
        capacity=inst.capacity,
        start_depot=depot,
        end_depot=depot,
        tw_early=0,
        tw_late=int(inst.due[0] * SCALE),
    )
    for c in range(1, inst.n + 1):
        m.add_client(
            locs[c],
            delivery=int(inst.demand[c]),
            service_duration=round(inst.service[c] * SCALE),
            tw_early=int(inst.ready[c] * SCALE),
            tw_late=int(inst.due[c] * SCALE),
        )
    for i in range(inst.n + 1):
        for j in range(inst.n + 1):
            m.add_edge(locs[i], locs[j], distance=int(dist[i, j]), duration=int(dur[i, j]))
    result = m.solve(stop=MaxRuntime(time_limit), seed=seed, display=False)
    # Client activities carry the client's 0-based index in the order they were added.
    return [[a.idx + 1 for a in r if a.is_client()] for r in result.best.routes()]


def solve_vroom(inst: Instance, time_limit: float, seed: int) -> list[list[int]]:
    """VROOM at its highest exploration level, on one thread, distance (= duration) only."""
    import vroom

    _, dur = _int_matrices(inst)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=dur.astype(np.uint32))
    horizon = int(inst.due[0] * SCALE)
    problem.add_vehicle(
        [
            vroom.Vehicle(
                k + 1, start=0, end=0, capacity=[inst.capacity], time_window=vroom.TimeWindow(0, horizon)
            )
            for k in range(inst.vehicles)
        ]
    )
    problem.add_job(
        [
            vroom.Job(
                c,
                location=c,
                default_service=round(inst.service[c] * SCALE),
                delivery=[int(inst.demand[c])],
                time_windows=[vroom.TimeWindow(int(inst.ready[c] * SCALE), int(inst.due[c] * SCALE))],
            )
            for c in range(1, inst.n + 1)
        ]
    )
    solution = problem.solve(exploration_level=5, nb_threads=1, timeout=timedelta(seconds=time_limit))
    frame = solution.routes
    routes = []
    for _, group in frame[frame["type"] == "job"].groupby("vehicle_id", sort=True):
        routes.append([int(i) for i in group["id"]])
    return routes


SOLVERS: dict[str, Callable[[Instance, float, int], list[list[int]]]] = {
    "fieldplan": solve_fieldplan,
    "ortools": solve_ortools,
    "pyvrp": solve_pyvrp,
    "vroom": solve_vroom,
}
PEERS = {"pyvrp": "pyvrp", "vroom": "vroom"}


def available(name: str) -> bool:
    module = PEERS.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# --- running ------------------------------------------------------------------------------------


def run_one(path: Path, solver: str, time_limit: float, seed: int) -> dict[str, object]:
    inst = read_instance(path)
    began = time.perf_counter()
    error = ""
    try:
        routes = SOLVERS[solver](inst, time_limit, seed)
    except Exception as exc:  # a peer failing on one instance is a result, not a crash
        routes, error = [], f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - began
    checked = check(inst, routes) if routes else Checked(False, 0, math.nan, [error or "no solution"])
    return {
        "instance": inst.name,
        "solver": solver,
        "time_limit": time_limit,
        "vehicles": checked.vehicles if checked.feasible else "",
        "distance": round(checked.distance, 3) if checked.feasible else "",
        "feasible": checked.feasible,
        "wall_s": round(wall, 2),
        "problems": "; ".join(checked.problems)[:300],
        "routes": routes if checked.feasible else [],
    }


def summarise(rows: list[dict[str, object]], bks: dict[str, tuple[int, float]]) -> list[dict[str, object]]:
    for r in rows:
        known = bks.get(str(r["instance"]))
        r["bks_vehicles"], r["bks_distance"] = known if known else ("", "")
        if known and r["feasible"]:
            r["gap_pct"] = round((float(r["distance"]) / known[1] - 1) * 100, 2)  # type: ignore[arg-type]
        else:
            r["gap_pct"] = ""
    return rows


def table(rows: list[dict[str, object]], solvers: list[str]) -> str:
    """Markdown: per class and solver, feasible count, BKS vehicle matches, extra vehicles, mean gap."""
    out = [
        "| class | solver | instances | feasible | BKS vehicles matched | vehicles over BKS | mean gap % "
        "| gap % where vehicles match | mean wall s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for klass in (*CLASSES, "all"):
        for solver in solvers:
            mine = [
                r
                for r in rows
                if r["solver"] == solver and (klass == "all" or _klass(str(r["instance"])) == klass)
            ]
            if not mine:
                continue
            ok = [r for r in mine if r["feasible"]]
            with_bks = [r for r in ok if r["bks_vehicles"] != ""]
            match = [r for r in with_bks if int(r["vehicles"]) <= int(r["bks_vehicles"])]  # type: ignore[arg-type]
            over = sum(max(0, int(r["vehicles"]) - int(r["bks_vehicles"])) for r in with_bks)  # type: ignore[arg-type]
            gaps = [float(r["gap_pct"]) for r in with_bks]  # type: ignore[arg-type]
            mgaps = [float(r["gap_pct"]) for r in match]  # type: ignore[arg-type]
            out.append(
                f"| {klass} | {solver} | {len(mine)} | {len(ok)} | {len(match)} | {over} | "
                f"{statistics.mean(gaps) if gaps else math.nan:.2f} | "
                f"{statistics.mean(mgaps) if mgaps else math.nan:.2f} | "
                f"{statistics.mean(float(r['wall_s']) for r in mine):.1f} |"  # type: ignore[arg-type]
            )
    return "\n".join(out)


def _klass(name: str) -> str:
    return name[:3] if name.startswith("RC") else name[:2]


def plot(rows: list[dict[str, object]], solvers: list[str], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(solvers), 1)
    for k, solver in enumerate(solvers):
        over, gap = [], []
        for klass in CLASSES:
            mine = [
                r
                for r in rows
                if r["solver"] == solver
                and _klass(str(r["instance"])) == klass
                and r["feasible"]
                and r["bks_vehicles"] != ""
            ]
            over.append(sum(int(r["vehicles"]) - int(r["bks_vehicles"]) for r in mine))  # type: ignore[arg-type]
            gap.append(statistics.mean(float(r["gap_pct"]) for r in mine) if mine else 0.0)  # type: ignore[arg-type]
        xs = np.arange(len(CLASSES)) + k * width
        ax1.bar(xs, over, width, label=solver)
        ax2.bar(xs, gap, width, label=solver)
    for ax, title in ((ax1, "vehicles over best-known (sum)"), (ax2, "mean distance gap to best-known, %")):
        ax.set_xticks(np.arange(len(CLASSES)) + 0.4 - width / 2, CLASSES)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    ax1.legend()
    fig.suptitle(f"Solomon 100-customer instances, {rows[0]['time_limit']} s each")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_routes(rows: list[dict[str, object]], folder: Path) -> None:
    for r in rows:
        if not r["feasible"]:
            continue
        target = folder / str(r["solver"]) / f"{r['instance']}.sol"
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            f"Route #{i + 1}: {' '.join(map(str, route))}"
            for i, route in enumerate([x for x in r["routes"] if x])  # type: ignore[attr-defined]
        ]
        target.write_text("\n".join([*lines, f"Cost {float(r['distance']):.2f}"]) + "\n")  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=Path, default=DEFAULT_DIR, help="folder of Solomon .txt files")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance and solver")
    parser.add_argument("--solvers", default="fieldplan,ortools,pyvrp,vroom")
    parser.add_argument("--only", default="", help="comma-separated instance names, e.g. C101,R101")
    parser.add_argument("--jobs", type=int, default=1, help="instances solved in parallel (one core each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--routes-out", type=Path, default=None, help="write DIR/<solver>/<instance>.sol")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the CSV, table and plot")
    args = parser.parse_args(argv)

    if not args.instances.is_dir():
        print(f"error: --instances: {args.instances} is not a folder", file=sys.stderr)
        return 2
    paths = sorted(p for p in args.instances.glob("*.txt") if p.stem.upper() != "README")
    if args.only:
        wanted = {w.strip().upper() for w in args.only.split(",") if w.strip()}
        paths = [p for p in paths if p.stem.upper() in wanted]
        unknown = wanted - {p.stem.upper() for p in paths}
        if unknown:
            print(f"error: --only: no instance file for {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    bad = [s for s in solvers if s not in SOLVERS]
    if bad:
        print(f"error: --solvers: unknown {', '.join(bad)} (known: {', '.join(SOLVERS)})", file=sys.stderr)
        return 2
    missing = [s for s in solvers if not available(s)]
    if missing:
        print(
            f"note: {', '.join(missing)} not installed (pip install -e '.[bench]'); skipped", file=sys.stderr
        )
        solvers = [s for s in solvers if s not in missing]
    bks = read_bks(args.instances)
    if "fieldplan" in solvers:
        from optimizer.search import warm_up

        print(f"search compiled or loaded in {warm_up():.1f} s", file=sys.stderr)
    tasks = [(p, s) for p in paths for s in solvers]
    print(
        f"{len(paths)} instances x {len(solvers)} solvers at {args.time_limit:g} s, {args.jobs} at a time: "
        f"about {len(tasks) * args.time_limit / args.jobs / 60:.1f} min",
        file=sys.stderr,
    )
    rows: list[dict[str, object]] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_one, p, s, args.time_limit, args.seed) for p, s in tasks]
        for k, future in enumerate(futures, 1):
            row = future.result()
            rows.append(row)
            known = bks.get(str(row["instance"]))
            print(
                f"[{k}/{len(tasks)}] {row['instance']:6} {row['solver']:9} "
                + (
                    f"{row['vehicles']:>3} veh {row['distance']:>9}"
                    if row["feasible"]
                    else "infeasible: " + str(row["problems"])[:80]
                )
                + (f"   (BKS {known[0]} / {known[1]})" if known else "")
                + f"  {row['wall_s']} s",
                file=sys.stderr,
                flush=True,
            )
    rows = summarise(rows, bks)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = f"solomon-{int(args.time_limit)}s"
    fields = [
        "instance",
        "solver",
        "time_limit",
        "vehicles",
        "distance",
        "bks_vehicles",
        "bks_distance",
        "gap_pct",
        "feasible",
        "wall_s",
    ]
    with (args.out / f"{stamp}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    md = table(rows, solvers)
    (args.out / f"{stamp}.md").write_text(md + "\n")
    picture = plot(rows, solvers, args.out / f"{stamp}.png")
    if args.routes_out is not None:
        write_routes(rows, args.routes_out)
    print(md)
    print(f"\nwrote {args.out / (stamp + '.csv')}, {stamp}.md" + (f", {picture.name}" if picture else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
