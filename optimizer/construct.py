"""A fast first plan: priority-ordered cheapest feasible insertion, vectorised over all slots.

OR-Tools' built-in first-solution strategies plan nothing or time out on week-long plans with
optional jobs and skills (see issue 2), so we build the first plan ourselves and hand it to the
search as a warm start. Feasibility of an insertion is checked in O(1) per slot from each route's
earliest starts and latest starts; routes with a lunch break are then re-checked exactly by
`schedule`, which places the break in the best gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optimizer.options import Weights
from optimizer.problem import COST_PER_TRAVEL_TICK, Problem, Vehicle

INF = np.iinfo(np.int64).max // 4


def first_start(dom: list[tuple[int, int]], t: int) -> int | None:
    """Earliest allowed start at or after t."""
    for lo, hi in dom:
        if t <= hi:
            return max(t, lo)
    return None


def last_start(dom: list[tuple[int, int]], t: int) -> int | None:
    """Latest allowed start at or before t."""
    for lo, hi in reversed(dom):
        if t >= lo:
            return min(t, hi)
    return None


@dataclass(frozen=True)
class Schedule:
    start: int  # departure from the start location
    starts: list[int]  # service start per visit
    end: int  # arrival at the end location
    break_start: int | None


def schedule(problem: Problem, vehicle: Vehicle, nodes: list[int]) -> Schedule | None:
    """Earliest feasible timing of a route, or None. With a lunch, every gap is tried for the break.

    The break may lie anywhere in the gap between leaving one stop and starting the next, so the gap
    must hold travel plus break; it may also follow the arrival at the end location.
    """
    if vehicle.lunch is None:
        return _simulate(problem, vehicle, nodes, None)
    best: Schedule | None = None
    for gap in range(len(nodes) + 2):  # gap len(nodes)+1: after arriving at the end location
        found = _simulate(problem, vehicle, nodes, gap)
        if found is not None and (best is None or found.end < best.end):
            best = found
    return best


def _simulate(problem: Problem, v: Vehicle, nodes: list[int], gap: int | None) -> Schedule | None:
    travel, service = problem.travel, problem.service
    ready, prev = v.shift_start, v.start_node
    starts: list[int] = []
    brk: int | None = None
    lunch = v.lunch
    for k, node in enumerate([*nodes, v.end_node]):
        tr = int(travel[prev, node])
        if gap == k and lunch is not None:
            bs = max(ready, lunch[0])
            if bs > lunch[1]:
                return None
            brk = bs
            arrive = max(ready + tr, bs) + lunch[2]
        else:
            arrive = ready + tr
        if k == len(nodes):
            if arrive > v.latest_end:
                return None
            if gap == k + 1 and lunch is not None:
                bs = max(arrive, lunch[0])
                if bs > lunch[1] or bs + lunch[2] > v.latest_end:
                    return None
                brk = bs
            end = arrive
            break
        st = first_start(problem.domains[node], arrive)
        if st is None:
            return None
        starts.append(st)
        ready, prev = st + int(service[node]), node
    else:  # pragma: no cover - the loop always breaks at the end node
        return None
    if lunch is not None and brk is None:
        return None
    # Leave as late as possible: shift the departure forward by the slack before the first visit.
    depart = v.shift_start
    if nodes and (gap is None or gap > 0):
        depart = max(v.shift_start, starts[0] - int(travel[v.start_node, nodes[0]]))
    return Schedule(start=depart, starts=starts, end=end, break_start=brk)


class _Slots:
    """Insertion slots of every vehicle as (V, K) arrays, so one job is priced against all at once."""

    def __init__(self, problem: Problem, capacity: int = 16) -> None:
        self.p = problem
        v = len(problem.vehicles)
        self.routes: list[list[int]] = [[] for _ in range(v)]
        self.load = np.zeros(v, dtype=np.int64)
        self.k = capacity
        self.prev = np.zeros((v, capacity), dtype=np.int64)
        self.next = np.zeros((v, capacity), dtype=np.int64)
        self.dep = np.zeros((v, capacity), dtype=np.int64)
        self.lst = np.zeros((v, capacity), dtype=np.int64)
        self.valid = np.zeros((v, capacity), dtype=bool)
        for veh in problem.vehicles:
            self.refresh(veh.index)

    def _grow(self) -> None:
        pad = self.k
        self.prev = np.pad(self.prev, ((0, 0), (0, pad)))
        self.next = np.pad(self.next, ((0, 0), (0, pad)))
        self.dep = np.pad(self.dep, ((0, 0), (0, pad)))
        self.lst = np.pad(self.lst, ((0, 0), (0, pad)))
        self.valid = np.pad(self.valid, ((0, 0), (0, pad)))
        self.k += pad

    def refresh(self, vi: int) -> None:
        p, veh, nodes = self.p, self.p.vehicles[vi], self.routes[vi]
        n = len(nodes)
        while n + 1 > self.k:
            self._grow()
        travel, service = p.travel, p.service
        est: list[int] = []
        ready, prev = veh.shift_start, veh.start_node
        for node in nodes:
            st = first_start(p.domains[node], ready + int(travel[prev, node]))
            assert st is not None, "a committed route lost feasibility"
            est.append(st)
            ready, prev = st + int(service[node]), node
        lst = [0] * n
        bound, nxt = veh.latest_end, veh.end_node
        for k in range(n - 1, -1, -1):
            node = nodes[k]
            latest = last_start(p.domains[node], bound - int(travel[node, nxt]) - int(service[node]))
            lst[k] = latest if latest is not None else -INF
            bound, nxt = lst[k], node
        seq = [veh.start_node, *nodes, veh.end_node]
        self.valid[vi, :] = False
        self.valid[vi, : n + 1] = True
        self.prev[vi, : n + 1] = seq[:-1]
        self.next[vi, : n + 1] = seq[1:]
        self.dep[vi, 0] = veh.shift_start
        for k in range(1, n + 1):
            self.dep[vi, k] = est[k - 1] + int(service[nodes[k - 1]])
        for k in range(n):
            self.lst[vi, k] = lst[k]
        self.lst[vi, n] = veh.latest_end


def vehicle_node_costs(problem: Problem, weights: Weights) -> NDArray[np.int64]:
    """Per (vehicle, job) soft cost that does not depend on the sequence: waiting days, missed
    preferred technician, moving a job off its previous technician/day. Shared with the OR-Tools
    model so the warm start and the search price the same thing."""
    p = problem
    scale = 60.0 / p.tick_seconds * COST_PER_TRAVEL_TICK
    n_v, n_j = len(p.vehicles), p.n_jobs
    out = np.zeros((n_v, n_j), dtype=np.int64)
    if n_j == 0 or n_v == 0:
        return out
    day = np.array([v.day for v in p.vehicles], dtype=np.int64)
    tech = np.array([v.technician for v in p.vehicles], dtype=np.int64)
    late_days = np.maximum(day[:, None] - p.earliest_day[None, :], 0)
    urgency = (6 - p.priority)[None, :]
    out += np.rint(late_days * urgency * weights.wait_per_day * scale).astype(np.int64)
    miss = round(weights.preferred_miss * scale)
    move = round(weights.stability_move * scale)
    for j in range(n_j):
        if p.preferred[j] and miss:
            pref = np.array(sorted(p.preferred[j]), dtype=np.int64)
            out[~np.isin(tech, pref), j] += miss
        if j in p.previous and move:
            t_prev, d_prev = p.previous[j]
            out[(tech != t_prev) | (day != d_prev), j] += move
    return out


def construct(problem: Problem, weights: Weights, seed: int = 0) -> list[list[int]]:
    """Routes (job nodes per vehicle) that are feasible by `schedule`; some jobs may stay out."""
    p = problem
    if p.n_jobs == 0 or not p.vehicles:
        return [[] for _ in p.vehicles]
    rng = np.random.default_rng(seed)
    slots = _Slots(p)
    node_cost = vehicle_node_costs(p, weights)
    fixed = round(weights.technician_day_fixed * 60.0 / p.tick_seconds * COST_PER_TRAVEL_TICK)
    sla = weights.sla_late_per_minute * 60.0 / p.tick_seconds * COST_PER_TRAVEL_TICK
    travel_w = weights.travel_per_minute * COST_PER_TRAVEL_TICK
    caps = np.array([v.capacity if v.capacity is not None else 2**40 for v in p.vehicles], dtype=np.int64)
    due_or_horizon = np.where(p.due_start >= 0, p.due_start, INF)
    order = sorted(
        range(p.n_jobs),
        key=lambda j: (
            int(p.priority[j]),
            len(p.allowed[j]),
            int(due_or_horizon[j]),
            p.domains[j][-1][1] - p.domains[j][0][0],
            rng.random(),
        ),
    )
    for j in order:
        allowed = p.allowed[j]
        allowed = allowed[slots.load[allowed] + p.demand[j] <= caps[allowed]]
        if allowed.size == 0:
            continue
        prev, nxt = slots.prev[allowed], slots.next[allowed]
        arrive = slots.dep[allowed] + p.travel[prev, j]
        start = np.full(arrive.shape, INF, dtype=np.int64)
        for lo, hi in p.domains[j]:
            cand = np.maximum(arrive, lo)
            start = np.where((cand <= hi) & (start == INF), cand, start)
        finish = start + int(p.service[j])
        ok = slots.valid[allowed] & (start < INF) & (finish + p.travel[j, nxt] <= slots.lst[allowed])
        if not ok.any():
            continue
        delta = (p.travel[prev, j] + p.travel[j, nxt] - p.travel[prev, nxt]) * travel_w
        delta = delta + node_cost[allowed, j][:, None]
        if fixed:
            empty = np.array([not slots.routes[v] for v in allowed.tolist()])
            delta = delta + np.where(empty, fixed, 0)[:, None]
        if p.due_start[j] >= 0:
            late = np.where(start < INF, np.maximum(start - p.due_start[j], 0), 0)
            delta = delta + np.rint(late * sla).astype(np.int64)
        cost = np.where(ok, delta, INF).ravel()
        for flat in np.argsort(cost, kind="stable")[:12]:
            if cost[flat] >= INF:
                break
            row, k = divmod(int(flat), slots.k)
            vi = int(allowed[row])
            candidate = [*slots.routes[vi][:k], j, *slots.routes[vi][k:]]
            if p.vehicles[vi].lunch is not None and schedule(p, p.vehicles[vi], candidate) is None:
                continue
            slots.routes[vi] = candidate
            slots.load[vi] += p.demand[j]
            slots.refresh(vi)
            break
    return slots.routes
