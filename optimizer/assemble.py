"""Routes of job nodes -> the Plan a dispatcher reads: times from the kernel, reasons, KPIs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import Break, Plan, Route, SolverStats, Unassigned, Visit
from optimizer.explain import dropped_reason
from optimizer.kernel import DAY_END, NEG, Routes, Timing, schedule
from optimizer.kpis import compute_kpis
from optimizer.problem import Problem


@dataclass
class RawRoute:
    """One technician-day in ticks: job nodes, their service starts, departure, end, break start."""

    vehicle: int
    nodes: list[int]
    starts: list[int]
    arrivals: list[int]
    depart: int
    end: int
    break_start: int | None


def raw_routes(timing: Timing, routes: Routes) -> list[RawRoute]:
    """Every used technician-day of `routes`, timed by the kernel's schedule."""
    out: list[RawRoute] = []
    width = routes.nodes.shape[1]
    starts = np.zeros(width, dtype=np.int64)
    arrivals = np.zeros(width, dtype=np.int64)
    for v in range(len(routes.size)):
        n = int(routes.size[v])
        if n == 0:
            continue
        depart, brk = schedule(timing, routes, v, starts, arrivals)
        out.append(
            RawRoute(
                vehicle=v,
                nodes=routes.nodes[v, 1 : n + 1].tolist(),
                starts=starts[1 : n + 1].tolist(),
                arrivals=arrivals[1 : n + 1].tolist(),
                depart=int(depart),
                end=int(routes.vend[v, DAY_END]),
                break_start=None if brk == NEG else int(brk),
            )
        )
    return out


def assemble_routes(problem: Problem, raw: list[RawRoute]) -> list[Route]:
    """The routes alone, in technician-day order (a booking re-times one route, nothing else)."""
    p = problem
    routes: list[Route] = []
    for rr in raw:
        v = p.vehicles[rr.vehicle]
        lunch = v.lunch
        brk = (rr.break_start, rr.break_start + lunch[2]) if (rr.break_start is not None and lunch) else None
        visits: list[Visit] = []
        prev = v.start_node
        km = 0.0
        travel_ticks = 0
        for node, start, arrival in zip(rr.nodes, rr.starts, rr.arrivals, strict=True):
            visits.append(
                Visit(
                    job_id=p.jobs[node].id,
                    arrival=p.moment(min(arrival, start)),
                    start=p.moment(start),
                    end=p.moment(start + int(p.service[node])),
                )
            )
            km += float(p.km[prev, node])
            travel_ticks += int(p.travel[prev, node])
            prev = node
        km += float(p.km[prev, v.end_node])
        travel_ticks += int(p.travel[prev, v.end_node])
        routes.append(
            Route(
                technician_id=v.technician_id,
                date=v.date,
                start=p.moment(rr.depart),
                end=p.moment(rr.end),
                distance_km=round(km, 3),
                travel_minutes=round(p.minutes(travel_ticks), 2),
                overtime_minutes=round(p.minutes(max(0, rr.end - v.shift_end)), 2),
                visits=visits,
                break_=Break(start=p.moment(brk[0]), end=p.moment(brk[1])) if brk else None,
            )
        )
    routes.sort(key=lambda r: (r.date, r.technician_id))
    return routes


def assemble(problem: Problem, raw: list[RawRoute], previous: Plan | None) -> Plan:
    p, scenario = problem, problem.scenario
    routes = assemble_routes(problem, raw)
    served = {node for rr in raw for node in rr.nodes}
    unassigned = [
        Unassigned(job_id=scenario.jobs[ji].id, reason=reason, detail=detail)
        for ji, reason, detail in p.rejected
    ]
    for node in range(p.n_jobs):
        if node not in served:
            reason, detail = dropped_reason(p, node)
            unassigned.append(Unassigned(job_id=p.jobs[node].id, reason=reason, detail=detail))
    order = {j.id: i for i, j in enumerate(scenario.jobs)}
    unassigned.sort(key=lambda u: order[u.job_id])
    return Plan(
        scenario=scenario.name,
        timezone=scenario.timezone,
        horizon_start=scenario.horizon.start,
        horizon_days=scenario.horizon.days,
        routes=routes,
        unassigned=unassigned,
        kpis=compute_kpis(scenario, routes, unassigned, previous),
        solver=SolverStats(status="", wall_seconds=0.0, seed=0, time_limit_seconds=0.0),
    )
