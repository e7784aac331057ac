"""Route minimisation: try to empty whole technician-days, one at a time.

A fixed cost per technician-day alone rarely lets guided local search close a route: every job of
the route must move at once. So, as the best VRPTW heuristics do, take the emptiest route away, ask
the search to serve its jobs with the routes left (stopping as soon as it does), keep the smaller plan
if it succeeds and try another route if not. Benchmarks (fewest vehicles first) and field service
(a technician-day freed for other work) both gain from it.
"""

from __future__ import annotations

import time

import numpy as np

from optimizer.decompose import restrict
from optimizer.options import SolveOptions
from optimizer.problem import Problem
from optimizer.routing_model import ProgressHook, RawRoute, search

MAX_FAILED_IN_A_ROW = 3  # then the time is better spent polishing the routes kept


def minimise_routes(
    problem: Problem,
    options: SolveOptions,
    routes: list[RawRoute],
    deadline: float,
    progress: ProgressHook | None = None,
) -> tuple[list[RawRoute], list[str]]:
    phases: list[str] = []
    failed: set[int] = set()
    began_with = len([r for r in routes if r.nodes])
    attempts = 0
    while time.monotonic() < deadline - 0.2:
        used = [r for r in routes if r.nodes]
        if len(used) <= 1:
            break
        candidates = [r for r in used if r.vehicle not in failed]
        if not candidates or len(failed) >= MAX_FAILED_IN_A_ROW:
            break
        # The route with the least work is the easiest to spread over the others.
        victim = min(candidates, key=lambda r: (len(r.nodes), int(np.sum(problem.service[r.nodes]))))
        keep = [r for r in used if r is not victim]
        nodes = [n for r in used for n in r.nodes]
        local = {n: i for i, n in enumerate(nodes)}
        sub = restrict(problem, [r.vehicle for r in keep], nodes)
        remaining = deadline - time.monotonic()
        budget = min(remaining, max(0.5, remaining / 3))
        attempts += 1
        result = search(
            sub,
            options,
            [[local[n] for n in r.nodes] for r in keep],
            progress=progress,
            deadline=time.monotonic() + budget,
            stop_when_all_served=True,
        )
        if sum(len(r.nodes) for r in result.routes) == len(nodes):
            group = [r.vehicle for r in keep]
            routes = [
                RawRoute(
                    group[rr.vehicle],
                    [nodes[i] for i in rr.nodes],
                    rr.starts,
                    rr.depart,
                    rr.end,
                    rr.break_start,
                )
                for rr in result.routes
            ]
            failed.clear()
        else:
            failed.add(victim.vehicle)
    final = len([r for r in routes if r.nodes])
    phases.append(f"route minimisation: {began_with} -> {final} technician-days in {attempts} attempt(s)")
    return routes, phases
