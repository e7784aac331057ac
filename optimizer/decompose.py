"""Splitting a large plan into groups of technician-days that OR-Tools handles well.

OR-Tools 9.15 rejects a warm start (and plans nothing) once a model has more than about 150
vehicles with break intervals (measured on this project's scenarios; related to or-tools issue
#1243). Large horizons are therefore improved group by group: each day on its own, and a day with
many technicians split by geography. Jobs a group leaves out are offered to the next group.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from optimizer.problem import Problem, Vehicle

MAX_VEHICLES_WITH_BREAKS = 100


def needs_split(problem: Problem) -> bool:
    return len(problem.vehicles) > MAX_VEHICLES_WITH_BREAKS and any(v.lunch for v in problem.vehicles)


def vehicle_groups(problem: Problem, limit: int = MAX_VEHICLES_WITH_BREAKS) -> list[list[int]]:
    """By day; a day with more than `limit` technician-days is cut into bands of longitude."""
    groups: list[list[int]] = []
    days = sorted({v.day for v in problem.vehicles})
    for day in days:
        members = [v.index for v in problem.vehicles if v.day == day]
        if len(members) <= limit:
            groups.append(members)
            continue
        members.sort(key=lambda i: float(problem.points[problem.vehicles[i].start_node][1]))
        parts = -(-len(members) // limit)
        groups.extend(part.tolist() for part in np.array_split(np.array(members), parts))
    return groups


def restrict(problem: Problem, vehicles: list[int], nodes: list[int]) -> Problem:
    """The same problem limited to some vehicles and job nodes, re-indexed from zero."""
    p = problem
    locs = sorted({p.vehicles[v].start_node for v in vehicles} | {p.vehicles[v].end_node for v in vehicles})
    select = np.array(nodes + locs, dtype=np.int64)
    new_of = {old: new for new, old in enumerate(select.tolist())}
    veh_new = {old: new for new, old in enumerate(vehicles)}
    sub_vehicles: list[Vehicle] = [
        replace(
            p.vehicles[old],
            index=new,
            start_node=new_of[p.vehicles[old].start_node],
            end_node=new_of[p.vehicles[old].end_node],
        )
        for new, old in enumerate(vehicles)
    ]
    allowed = []
    for n in nodes:
        kept = [veh_new[v] for v in p.allowed[n].tolist() if v in veh_new]
        allowed.append(np.array(kept, dtype=np.int64))
    idx = np.array(nodes, dtype=np.int64)
    return replace(
        p,
        jobs=[p.jobs[n] for n in nodes],
        job_index=[p.job_index[n] for n in nodes],
        n_nodes=len(select),
        points=p.points[select],
        km=p.km[np.ix_(select, select)],
        travel=p.travel[np.ix_(select, select)],
        service=p.service[select],
        domains=[p.domains[n] for n in nodes],
        due_start=p.due_start[idx] if nodes else p.due_start[:0],
        priority=p.priority[idx] if nodes else p.priority[:0],
        level=p.level[idx] if nodes else p.level[:0],
        demand=p.demand[idx] if nodes else p.demand[:0],
        vehicles=sub_vehicles,
        allowed=allowed,
        preferred=[p.preferred[n] for n in nodes],
        earliest_day=p.earliest_day[idx] if nodes else p.earliest_day[:0],
        previous={new_of[n]: p.previous[n] for n in nodes if n in p.previous},
        rejected=[],
    )
