"""Compiled loops of the group moves (crews, multi-day jobs, linked visits): where one unit of a group
could go on each of a set of technician-days, at its own times or at one start shared by a crew.

The same insertion check and price as every other move (`kernel.insertion`, `costs.insertion_cost`);
a crew's shared start is asked of the kernel by narrowing the unit's start intervals to that one
tick for the duration of the question, so the break, the windows and the rest of the route are
handled exactly as anywhere else.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.costs import insertion_cost
from optimizer.kernel import INF, insertion, jit


@jit
def unit_places(
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
    due_start: NDArray[np.int64],
    load: NDArray[np.int64],
    demand: NDArray[np.int64],
    capacity: NDArray[np.int64],
    vehs: NDArray[np.int64],
    job: int,
    at: int,
    cost: NDArray[np.int64],
    pos: NDArray[np.int64],
    start: NDArray[np.int64],
    ready: NDArray[np.int64],
) -> None:
    """Cheapest insertion of `job` on each technician-day of `vehs`: cost (INF: nowhere), position,
    start, and the earliest it could start there on its own windows (`start - ready` is a crew
    member's wait at the door). `at` >= 0: the visit must start exactly then (a crew's shared start)."""
    lo, hi = dom_ptr[job], dom_ptr[job + 1]
    saved = dom[lo:hi].copy()
    if at >= 0:
        for k in range(lo, hi):
            dom[k, 0] = at
            dom[k, 1] = at
    for i in range(vehs.shape[0]):
        v = vehs[i]
        cost[i] = INF
        pos[i] = -1
        start[i] = INF
        if load[v] + demand[job] > capacity[v]:
            continue
        for p in range(size[v] + 1):
            st, arr = insertion(travel, service, dom_ptr, dom, veh, nodes, cache, v, p, job)
            if st >= INF:
                continue
            c = insertion_cost(
                travel, veh, nodes, size, cache, vend, w, node_cost, due_start, v, p, job, st, arr
            )
            if c < cost[i]:
                cost[i] = c
                pos[i] = p
                start[i] = st
    for k in range(lo, hi):
        dom[k, 0] = saved[k - lo, 0]
        dom[k, 1] = saved[k - lo, 1]
    for i in range(vehs.shape[0]):
        ready[i] = start[i]
        if at >= 0 and pos[i] >= 0:
            st, _ = insertion(travel, service, dom_ptr, dom, veh, nodes, cache, vehs[i], pos[i], job)
            if st < ready[i]:
                ready[i] = st


@jit
def earliest_starts(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vehs: NDArray[np.int64],
    job: int,
    out: NDArray[np.int64],
) -> int:
    """Every start at which `job` could begin in some gap of the technician-days `vehs` (its earliest
    there): the times at which a crew member becomes available, so the candidates for a shared start."""
    n = 0
    for i in range(vehs.shape[0]):
        v = vehs[i]
        for p in range(size[v] + 1):
            st, _ = insertion(travel, service, dom_ptr, dom, veh, nodes, cache, v, p, job)
            if st < INF and n < out.shape[0]:
                out[n] = st
                n += 1
    return n
