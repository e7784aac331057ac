"""The one cost model: every soft objective in one integer unit, and the strict priority order.

Weights (`options.Weights`) are written in minutes of travel so a dispatcher can read them. Here they
become integers once, in `COST_PER_TRAVEL_TICK` units per tick of travel: travel, overtime, SLA
lateness (per tick), and a per (technician-day, job) cost for what does not depend on the order of
visits (days waited, a missed preferred technician, a move off the previous plan). The first plan,
ruin and recreate, insertion evaluation and the OR-Tools model all price with these numbers.

Jobs left out are not a cost in our own search: plans are compared by the number of jobs left out
per level (promises first, then priority 1 to 5), in turn, and only then by cost (`better`). A sum
of weights cannot hold that order over thousands of jobs in int64, so OR-Tools gets capped
penalties (`capped_unserved_penalties`) and its plans are checked against the order afterwards.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from optimizer.kernel import DAY_END, INF, SHIFT_END, Routes, Timing, end_after, hot, jit, starts_of
from optimizer.options import Weights
from optimizer.problem import COST_PER_TRAVEL_TICK, NO_DUE_DAY, Problem, per_tick

LEVELS = 6  # 0: promised (pinned or a confirmed appointment), then priorities 1..5


# Columns of Costs.w: integer weights per tick (travel, overtime, lateness), per technician-day used,
# per day (or part of a day) a job finishes late, and the length of a day in ticks.
W_TRAVEL, W_OVERTIME, W_SLA, W_FIXED, W_LATE_DAY, DAY_TICKS = range(6)


class Costs(NamedTuple):
    w: NDArray[np.int64]  # [6] see the column names above
    node: NDArray[np.int64]  # [vehicles, jobs] waiting days, preferred technician, stability
    due_start: NDArray[np.int64]  # [jobs] latest start that finishes by `due`; -1 without one

    @property
    def travel_w(self) -> int:
        return int(self.w[W_TRAVEL])

    @property
    def fixed(self) -> int:
        return int(self.w[W_FIXED])


def per_minute(problem: Problem, minutes: float) -> int:
    """A lump cost written in minutes of travel, in cost units."""
    return round(minutes * 60.0 / problem.tick_seconds * COST_PER_TRAVEL_TICK)


def to_minutes(problem: Problem, cost: float) -> float:
    """Cost units back to minutes of travel (what `Weights` documents)."""
    return float(cost) * problem.tick_seconds / 60.0 / COST_PER_TRAVEL_TICK


def vehicle_job_costs(problem: Problem, weights: Weights) -> NDArray[np.int64]:
    """Per (technician-day, job) cost that does not depend on the order of visits."""
    p = problem
    n_v, n_j = len(p.vehicles), p.n_jobs
    out = np.zeros((n_v, n_j), dtype=np.int64)
    if n_j == 0 or n_v == 0:
        return out
    day = np.array([v.day for v in p.vehicles], dtype=np.int64)
    tech = np.array([v.technician for v in p.vehicles], dtype=np.int64)
    late_days = np.maximum(day[:, None] - p.earliest_day[None, :], 0)
    urgency = (6 - p.priority)[None, :]
    occurrence = (p.due_day != NO_DUE_DAY)[None, :]
    waited = np.rint(late_days * urgency * per_minute(p, weights.wait_per_day)).astype(np.int64)
    # A maintenance occurrence is not waiting: it is best on its due date; earlier days cost a little
    # (a visit too soon shortens the service interval), later ones more (the customer is owed it).
    off_due = day[:, None] - p.due_day[None, :]
    due_cost = np.maximum(-off_due, 0) * per_minute(p, weights.maintenance_early_per_day) + np.maximum(
        off_due, 0
    ) * per_minute(p, weights.maintenance_late_per_day)
    out += np.where(occurrence, due_cost, waited)
    miss = per_minute(p, weights.preferred_miss)
    move = per_minute(p, weights.stability_move)
    for j in range(n_j):
        if p.preferred[j] and miss:
            pref = np.array(sorted(p.preferred[j]), dtype=np.int64)
            out[~np.isin(tech, pref), j] += miss
        if j in p.previous and move:
            t_prev, d_prev = p.previous[j]
            out[(tech != t_prev) | (day != d_prev), j] += move
    return out


def cost_model(problem: Problem, weights: Weights) -> Costs:
    w = np.array(
        [
            per_tick(weights.travel_per_minute),
            per_tick(weights.overtime_per_minute),
            per_tick(weights.sla_late_per_minute),
            per_minute(problem, weights.technician_day_fixed),
            per_minute(problem, weights.sla_late_per_day),
            max(round(86400 / problem.tick_seconds), 1),
        ],
        dtype=np.int64,
    )
    return Costs(w=w, node=vehicle_job_costs(problem, weights), due_start=problem.due_start.astype(np.int64))


def capped_unserved_penalties(problem: Problem, weights: Weights) -> list[int]:
    """Per job, its priority's unserved weight for OR-Tools, capped so the sum stays in int64.

    The order is checked by `better` on whatever OR-Tools returns, so the cap only costs OR-Tools
    some guidance on plans with very many jobs.
    """
    cap = (1 << 62) // max(problem.n_jobs + 1, 1) // 4
    out = []
    for j in range(problem.n_jobs):
        w = weights.unserved_by_priority.get(int(problem.priority[j]), 120.0)
        if problem.level[j] == 0:
            w = max(weights.unserved_by_priority.values()) * 10
        out.append(max(1, min(per_minute(problem, w), cap)))
    return out


# --- numba: the prices the search asks for ------------------------------------------------------


@jit
def route_cost(tm: Timing, cs: Costs, rt: Routes, v: int, starts: NDArray[np.int64]) -> int:
    """The exact cost of route v as it stands (0 when idle; INF when infeasible)."""
    return route_cost_of(
        tm.travel, tm.service, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend, cs.w, cs.node, cs.due_start, v,
        starts,
    )  # fmt: skip


@jit
def route_cost_of(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    w: NDArray[np.int64],
    node_cost: NDArray[np.int64],
    due_start: NDArray[np.int64],
    v: int,
    starts: NDArray[np.int64],
) -> int:
    n = size[v]
    if n == 0:
        return 0
    end = vend[v, DAY_END]
    if end >= INF:
        return INF
    starts_of(service, veh, nodes, size, cache, vend, v, starts)
    travelled = 0
    late = 0
    late_days = 0
    own = 0
    for p in range(1, n + 2):
        travelled += travel[nodes[v, p - 1], nodes[v, p]]
    for p in range(1, n + 1):
        job = nodes[v, p]
        own += node_cost[v, job]
        due = due_start[job]
        if due >= 0 and starts[p] > due:
            late += starts[p] - due
            late_days += (starts[p] - due + w[DAY_TICKS] - 1) // w[DAY_TICKS]
    overtime = end - veh[v, SHIFT_END]
    if overtime < 0:
        overtime = 0
    sla = late * w[W_SLA] + late_days * w[W_LATE_DAY]
    return w[W_FIXED] + travelled * w[W_TRAVEL] + overtime * w[W_OVERTIME] + sla + own


@hot
def insertion_cost(
    travel: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    w: NDArray[np.int64],
    node_cost: NDArray[np.int64],
    due_start: NDArray[np.int64],
    v: int,
    p: int,
    job: int,
    st: int,
    arr: int,
) -> int:
    """What inserting `job` after position p costs, given the start and next arrival `insertion`
    found: travel, the job's own costs and lateness, and the overtime it causes (an upper bound)."""
    a, b = nodes[v, p], nodes[v, p + 1]
    delta = (travel[a, job] + travel[job, b] - travel[a, b]) * w[W_TRAVEL] + node_cost[v, job]
    due = due_start[job]
    if due >= 0 and st > due:
        delta += (st - due) * w[W_SLA] + (st - due + w[DAY_TICKS] - 1) // w[DAY_TICKS] * w[W_LATE_DAY]
    shift_end = veh[v, SHIFT_END]
    if size[v] == 0:
        delta += w[W_FIXED]
        end = arr
        before = 0
    else:
        end = end_after(cache, vend, v, p + 1, arr)
        before = vend[v, DAY_END] - shift_end
        if before < 0:
            before = 0
    if end > shift_end:
        delta += (end - shift_end - before) * w[W_OVERTIME]
    return delta


@jit
def better(cand: NDArray[np.int64], cand_cost: int, cur: NDArray[np.int64], cur_cost: int) -> int:
    """1 if cand is better than cur (fewer left out at the first level that differs, then cheaper),
    -1 if worse, 0 if the same counts and cost."""
    for k in range(cand.shape[0]):
        if cand[k] < cur[k]:
            return 1
        if cand[k] > cur[k]:
            return -1
    if cand_cost < cur_cost:
        return 1
    if cand_cost > cur_cost:
        return -1
    return 0


def lexicographic_key(unserved: list[int] | NDArray[np.int64], cost: float) -> tuple[float, ...]:
    """The same order as `better`, as a Python sort key (smaller is better)."""
    return (*[float(x) for x in unserved], float(cost))
