"""The compiled loop of the appointment slots: every (arrival window, technician-day) pair at once.

A slot query asks "where would this job go if the customer were promised this window" for tens of
windows and hundreds of technician-days. Asked from Python, each insertion check pays a call's
overhead (microseconds) for nanoseconds of work; here the windows and vehicles are looped in numba,
with the search's own insertion scan (`search._scan`) and the kernel's O(1) replacement check, so a
slot is priced exactly as the search would price the same placement.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.costs import DAY_TICKS, W_LATE_DAY, W_OVERTIME, W_SLA, W_TRAVEL
from optimizer.kernel import DAY_END, INF, SHIFT_END, end_after, jit, replacement
from optimizer.search import _scan

# Columns of the answer, per window and vehicle.
COST, POSITION, HOW, DISPLACED = range(4)
NONE, INSERT, REPLACE = range(3)


@jit
def scan_windows(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    w: NDArray[np.int64],
    node_cost: NDArray[np.int64],
    due: NDArray[np.int64],
    allowed: NDArray[np.bool_],
    load: NDArray[np.int64],
    demand: NDArray[np.int64],
    capacity: NDArray[np.int64],
    last_hi: NDArray[np.int64],
    level: NDArray[np.int64],
    lost: NDArray[np.int64],
    rng: NDArray[np.uint64],
    job: int,
    vehicles: NDArray[np.int64],
    windows: NDArray[np.int64],
    out: NDArray[np.int64],
) -> None:
    """out[i, x] = the cheapest way to serve `job` starting inside windows[i] on vehicles[x]:
    (cost, position, INSERT or REPLACE, the displaced job). Replacing a visit is tried only where no
    insertion fits, and only visits of a lower level (never a promise, never equal priority).

    The job's start intervals are narrowed to each window in place (its rows are the last of `dom`:
    the caller makes it the last job node) and restored at the end.
    """
    k0 = dom_ptr[job]
    k1 = dom_ptr[job + 1]
    n_orig = k1 - k0
    original = dom[k0:k1].copy()
    saved_last = last_hi[job]
    best = np.empty(3, dtype=np.int64)
    for i in range(windows.shape[0]):
        for x in range(vehicles.shape[0]):
            out[i, x, COST] = INF
            out[i, x, POSITION] = -1
            out[i, x, HOW] = NONE
            out[i, x, DISPLACED] = -1
        lo, hi = windows[i, 0], windows[i, 1]
        m = 0
        for k in range(n_orig):
            a = original[k, 0] if original[k, 0] > lo else lo
            b = original[k, 1] if original[k, 1] < hi else hi
            if a <= b:
                dom[k0 + m, 0] = a
                dom[k0 + m, 1] = b
                m += 1
        if m == 0:
            continue
        dom_ptr[job + 1] = k0 + m
        last_hi[job] = dom[k0 + m - 1, 1]
        for x in range(vehicles.shape[0]):
            v = vehicles[x]
            best[0], best[1], best[2] = INF, -1, -1
            _scan(
                travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, w, node_cost, due,
                allowed, load, demand, capacity, last_hi, rng, v, job, 0.0, best,
            )  # fmt: skip
            if best[0] < INF:
                out[i, x, COST] = best[0]
                out[i, x, POSITION] = best[2]
                out[i, x, HOW] = INSERT
                continue
            if not allowed[v, job]:
                continue
            n = size[v]
            before = vend[v, DAY_END] - veh[v, SHIFT_END]
            if before < 0:
                before = 0
            for q in range(1, n + 1):
                u = nodes[v, q]
                if level[u] <= level[job] or load[v] - demand[u] + demand[job] > capacity[v]:
                    continue
                s, arr = replacement(travel, service, dom_ptr, dom, veh, nodes, cache, v, q, job)
                if s >= INF:
                    continue
                a_, b_ = nodes[v, q - 1], nodes[v, q + 1]
                c = (travel[a_, job] + travel[job, b_] - travel[a_, u] - travel[u, b_]) * w[W_TRAVEL]
                c += node_cost[v, job] + lost[u]
                if due[job] >= 0 and s > due[job]:
                    late = s - due[job]
                    c += late * w[W_SLA] + (late + w[DAY_TICKS] - 1) // w[DAY_TICKS] * w[W_LATE_DAY]
                end = end_after(cache, vend, v, q + 1, arr)
                over = end - veh[v, SHIFT_END]
                if over > before:
                    c += (over - before) * w[W_OVERTIME]
                if c < out[i, x, COST]:
                    out[i, x, COST] = c
                    out[i, x, POSITION] = q
                    out[i, x, HOW] = REPLACE
                    out[i, x, DISPLACED] = u
    for k in range(n_orig):
        dom[k0 + k, 0] = original[k, 0]
        dom[k0 + k, 1] = original[k, 1]
    dom_ptr[job + 1] = k1
    last_hi[job] = saved_last
