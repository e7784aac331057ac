"""Shorten the routes kept: ruin and recreate by string removals (SISR, Christiaens & Vanden Berghe, 2020).

At the fewest technician-days a plan is tight: most single moves break a window, and guided local
search, which only ever takes feasible one-step moves, stalls a few per cent above the best plans
known (measured on Solomon's R1, RC1 and RC2, see benchmarks/README.md). Ruin and recreate takes
larger steps: take out a few short strings of consecutive jobs near one another, in several routes
at once, and put the jobs back one by one at their cheapest feasible places, skipping a place now
and then ("blinks"). The new plan is kept by simulated annealing, so the search can walk through
worse plans to better ones; the best plan seen is returned.

Plain Python over `route_min.RouteSet` (O(1) insertion checks): some thousands of iterations a
second on 100 jobs. The routes in use stay in use or empty; a job that finds no place undoes the
iteration, so every job stays served and every returned route passes `construct.schedule`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import numpy as np

from optimizer.construct import schedule, vehicle_node_costs
from optimizer.options import Weights
from optimizer.problem import Problem, per_tick
from optimizer.route_min import RouteSet, Snapshot

AVG_REMOVED = 10  # jobs taken out per iteration on average (the paper's c-bar)
MAX_STRING = 10  # longest string taken out of one route (the paper's L_max)
BLINK = 0.01  # share of feasible places skipped on recreate
NEAREST = 100  # strings are taken around the seed job's nearest jobs
# A job goes back into a route through one of its CLOSE nearest jobs if any has a place (twelve
# instances, 4 s, two seeds: mean gap 2.7 % scanning every route, 2.5 % at 10, 2.3 % at 20 and 30).
CLOSE = 20
# Annealing temperatures, in mean arc costs of the starting plan: the paper's 100 -> 1 on Solomon
# (mean arc about 10) is for millions of iterations; a few seconds' worth do better starting cooler
# (twelve R, RC and C instances, 4 s from the ejection pool's plan, two seeds, mean gap to the best
# known: 4.4 % starting at 1, 4.2 % at 3, 3.9 % at 10, 4.0 % at 30; after the speed-ups 2.5 % at 5,
# 2.3 % at 10, 2.4 % at 20; 10 jobs removed on average against 2.5 % for 7 and 3.1 % for 15).
T_START = 10.0
T_END = 0.01


class _Costs:
    """A route's cost in the search's integer units: travel, per-job costs, overtime, SLA lateness.

    Overtime and lateness are read off the earliest starts (lunch ignored): the exact model polishes
    after this phase, so an estimate that is exact for plans without breaks is enough here.
    """

    def __init__(self, state: RouteSet, weights: Weights) -> None:
        p = state.p
        self.state = state
        self.travel_w = per_tick(weights.travel_per_minute)
        self.overtime_w = per_tick(weights.overtime_per_minute)
        self.sla_w = per_tick(weights.sla_late_per_minute)
        node = vehicle_node_costs(p, weights)
        self.node: list[list[int]] | None = node.tolist() if node.any() else None
        self.due = p.due_start.tolist()

    def route(self, v: int) -> int:
        s = self.state
        nodes = s.routes.get(v)
        if not nodes:
            return 0
        veh, travel, service = s.p.vehicles[v], s.travel, s.service
        prev, dist, late = veh.start_node, 0, 0
        est = s.est[v]
        for k, n in enumerate(nodes):
            dist += travel[prev][n]
            if self.due[n] >= 0 and est[k] > self.due[n]:
                late += est[k] - self.due[n]
            prev = n
        dist += travel[prev][veh.end_node]
        end = est[-1] + service[nodes[-1]] + travel[prev][veh.end_node]
        cost = dist * self.travel_w + self.sla_w * late + self.overtime_w * max(end - veh.shift_end, 0)
        if self.node is not None:
            row = self.node[v]
            cost += sum(row[n] for n in nodes)
        return cost


def shorten_routes(
    problem: Problem,
    routes: dict[int, list[int]],
    deadline: float,
    weights: Weights,
    seed: int = 0,
    progress: Callable[[str, dict[str, float]], None] | None = None,
) -> tuple[dict[int, list[int]], list[str]]:
    """The same jobs on the same (or fewer) technician-days, cheaper; every route passes `schedule`."""
    state = RouteSet(problem, routes, seed, neighbours=NEAREST)
    rng = state.rng
    costs = _Costs(state, weights)
    cost = {v: costs.route(v) for v in state.routes}
    current = sum(cost.values())
    start_cost = best_cost = current
    best = {v: list(nodes) for v, nodes in state.routes.items()}
    n = problem.n_jobs
    if n < 2 or not state.routes:
        return best, []
    near = state.near
    starts = sorted({problem.vehicles[v].start_node for v in state.routes})
    home: list[int] = problem.travel[np.ix_(starts, range(n))].min(axis=0).tolist()
    arcs = sum(len(nodes) + 1 for nodes in state.routes.values())
    t_start = max(T_START * current / arcs, 1.0)
    t_end = max(T_END * current / arcs, 0.1)
    began = time.monotonic()
    span = max(deadline - began, 1e-3)
    iterations = accepted = failed = 0
    served = sorted(state.route_of)

    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        temperature = t_start * (t_end / t_start) ** ((now - began) / span)
        iterations += 1
        before: dict[int, Snapshot] = {}
        removed = _ruin(state, served[int(rng.random() * len(served))], before)
        _sort_for_recreate(rng, removed, state.demand, home)
        route_of = state.route_of
        for job in removed:
            # Routes through the job's nearest jobs first; the others only if none has a place.
            close = {route_of[x] for x in near[job][:CLOSE] if x in route_of}
            spot = state.best_insertion(job, BLINK, close)
            if spot is None:
                spot = state.best_insertion(job, BLINK, [v for v in state.routes if v not in close])
            if spot is None:
                # No fleet to grow into (the days are fixed): undo. Tried instead, keeping such
                # jobs out at a penalty: the search settled with jobs out and never came back.
                failed += 1
                break
            v, k = spot
            if v not in before:
                before[v] = state.snapshot(v)
            state.insert(job, v, k)
        else:
            changed = {v: costs.route(v) for v in before}
            candidate = current + sum(changed[v] - cost.get(v, 0) for v in before)
            # Simulated annealing: worse by d is kept with probability exp(-d / temperature).
            if candidate < current - temperature * math.log(1.0 - rng.random()):
                accepted += 1
                current = candidate
                cost.update(changed)
                if current < best_cost:
                    best_cost = current
                    best = {v: list(nodes) for v, nodes in state.routes.items()}
                continue
        for v, snap in before.items():
            state.restore(v, snap)

    for v, nodes in best.items():
        assert schedule(problem, problem.vehicles[v], nodes) is not None, "ruin and recreate broke a route"
    if progress is not None:
        progress("ruin and recreate", {"iterations": iterations, "cost": best_cost})
    gain = 100.0 * (start_cost - best_cost) / start_cost if start_cost else 0.0
    note = (
        f"ruin and recreate (string removals): {iterations} iterations, {failed} left a job out, "
        f"{accepted} accepted, cost {gain:.1f} % lower"
    )
    return best, [note]


def _ruin(state: RouteSet, seed_job: int, before: dict[int, Snapshot]) -> list[int]:
    """Take strings of consecutive jobs out of routes near `seed_job` (SISR's string removal)."""
    rng, routes = state.rng, state.routes
    mean_len = sum(len(nodes) for nodes in routes.values()) / len(routes)
    longest = min(float(MAX_STRING), mean_len)
    strings = int(rng.uniform(1.0, 4.0 * AVG_REMOVED / (1.0 + longest)))
    removed: list[int] = []
    for job in (seed_job, *state.near[seed_job]):
        if len(before) >= strings:
            break
        v = state.route_of.get(job)
        if v is None or v in before:
            continue
        nodes = routes[v]
        before[v] = state.snapshot(v)
        length = int(rng.uniform(1.0, min(len(nodes), longest) + 1.0))
        at = nodes.index(job)
        first = rng.randint(max(0, at - length + 1), min(at, len(nodes) - length))
        removed += state.remove_string(v, first, length)
    return removed


def _sort_for_recreate(rng: random.Random, removed: list[int], demand: list[int], home: list[int]) -> None:
    """SISR's insertion orders, by weight 4:4:2:1: random, largest demand, farthest, closest."""
    pick = rng.random() * 11
    if pick < 4:
        rng.shuffle(removed)
    elif pick < 8:
        removed.sort(key=lambda j: -demand[j])
    elif pick < 10:
        removed.sort(key=lambda j: -home[j])
    else:
        removed.sort(key=lambda j: home[j])
