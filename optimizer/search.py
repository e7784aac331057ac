"""The search behind every plan: ruin and recreate over the timing kernel and the cost model.

Each iteration takes a few short strings of consecutive visits out of routes near one job (SISR's
string removal, Christiaens & Vanden Berghe 2020), then puts jobs back one by one at their cheapest
feasible place, skipping a place now and then ("blinks"). Jobs come back in priority order (promises
first), together with jobs left out near the ruined area, so a left-out job gets the room the ruin
made; a job that still finds no place may take the place of one visit of lower priority (VROOM's
"priority replace"), which goes back in the queue. The new plan is kept when it leaves out fewer jobs
at the first priority level that differs, or, with the same counts, by simulated annealing on cost;
the best plan seen is returned. With a `floor` (what-if runs warm-started from a base plan), a plan
that plans fewer jobs than the floor at any priority level counted cumulatively is never kept.

The loop is compiled with numba and run in chunks, so the driver can check the clock, report
progress and stop on any criterion (`optimizer.stop`); with an iteration limit the run is exactly
repeatable (the annealing schedule then follows iterations, not seconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from optimizer import kernel
from optimizer.costs import (
    LEVELS,
    W_FIXED,
    W_TRAVEL,
    Costs,
    better,
    insertion_cost,
    route_cost,
    route_cost_of,
)
from optimizer.kernel import F0, INF, Routes, Timing, hot, insertion, insertion_at, jit, replacement
from optimizer.problem import Problem
from optimizer.stop import Clock, MaxRuntime, Stop, iteration_limit

Progress = Callable[[str, dict[str, float]], None]

NEAREST = 40  # nearest jobs kept per job: strings are taken around them, routes through them tried
IDLE_LOOKUP = 64  # idle technician-days are looked for among a job's this many nearest ones
SNAPSHOTS = 96  # routes one iteration may change


class Params(NamedTuple):
    """The search's knobs (measured on the field benchmark's families, see benchmarks/README.md)."""

    avg_removed: float = 10.0  # jobs taken out per iteration on average (SISR's c-bar)
    max_string: int = 10  # longest string taken out of one route (SISR's L_max)
    blink: float = 0.01  # share of feasible places skipped on recreate
    close: int = 20  # a job goes back through the routes of its `close` nearest jobs first
    home_routes: int = 6  # ... and the routes of the technician-days nearest to it
    empties: int = 2  # ... and this many idle technician-days nearest to it
    seed_unassigned: float = 0.3  # chance a ruin starts at a job left out (when there is one)
    extra_unassigned: int = 8  # jobs left out near the ruin that are offered the room it made
    wide_routes: int = 64  # a job taken out that finds no place nearby tries this many more
    drop_arcs: float = 0.0  # annealing may leave a job out at this many mean arcs (times its urgency)


class Neighbourhood(NamedTuple):
    allowed: NDArray[np.bool_]  # [vehicles, jobs]
    cand_ptr: NDArray[np.int64]  # [jobs + 1]
    cand: NDArray[np.int64]  # the vehicles allowed for each job, nearest (alone) first
    near: NDArray[np.int64]  # [jobs, NEAREST] nearest other jobs, nearest first (-1 pads)
    level: NDArray[np.int64]  # [jobs] 0 promised, 1..5 priority
    demand: NDArray[np.int64]
    capacity: NDArray[np.int64]  # [vehicles]
    home: NDArray[np.int64]  # [jobs] travel from the nearest start location (recreate orders)
    last_hi: NDArray[np.int64]  # [jobs] the latest allowed start


class State(NamedTuple):
    route_of: NDArray[np.int64]  # [jobs] vehicle, or -1 when left out
    load: NDArray[np.int64]  # [vehicles]
    cost: NDArray[np.int64]  # [vehicles] exact route cost
    unserved: NDArray[np.int64]  # [LEVELS] jobs left out per level
    total: NDArray[np.int64]  # [1] sum of route costs
    ua: NDArray[np.int64]  # jobs left out, in ua[:ua_n[0]]
    ua_pos: NDArray[np.int64]  # [jobs] index in ua, -1 when planned
    ua_n: NDArray[np.int64]  # [1]
    rng: NDArray[np.uint64]  # [1] xorshift state
    absence: NDArray[np.int64]  # [jobs] iterations spent left out (fleet minimisation's guide)


class Scratch(NamedTuple):
    starts: NDArray[np.int64]  # [width]
    snap_v: NDArray[np.int64]  # [SNAPSHOTS]
    snap_nodes: NDArray[np.int64]  # [SNAPSHOTS, width]
    snap_size: NDArray[np.int64]
    snap_cost: NDArray[np.int64]
    snap_load: NDArray[np.int64]
    snap_new: NDArray[np.int64]  # the route's cost after the iteration
    slot: NDArray[np.int64]  # [vehicles] snapshot index this iteration, -1 none
    stamp: NDArray[np.int64]  # [vehicles] visit marks for candidate scans
    jstamp: NDArray[np.int64]  # [jobs] iteration that queued the job
    wide: NDArray[np.int64]  # [jobs] iteration that took the job out of a route
    counter: NDArray[np.int64]  # [4] route stamp, snapshots used, iteration, queue length
    queue: NDArray[np.int64]  # [jobs] jobs to put back
    keys: NDArray[np.float64]  # [jobs]
    saved_unserved: NDArray[np.int64]  # [LEVELS]


class Best(NamedTuple):
    nodes: NDArray[np.int64]  # [vehicles, width]
    size: NDArray[np.int64]
    unserved: NDArray[np.int64]
    total: NDArray[np.int64]  # [1]
    dirty: NDArray[np.bool_]  # [vehicles] changed since the best was copied


# --- random numbers (a state of our own: a run is repeatable whatever else uses numba's) --------


@hot
def _next(rng: NDArray[np.uint64]) -> np.uint64:
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(2685821657736338717)


@hot
def _uniform(rng: NDArray[np.uint64]) -> float:
    return float(_next(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@hot
def _below(rng: NDArray[np.uint64], n: int) -> int:
    return int(_uniform(rng) * n) if n > 0 else 0


# --- the left-out set ---------------------------------------------------------------------------


@hot
def _ua_add(ua: NDArray[np.int64], ua_pos: NDArray[np.int64], ua_n: NDArray[np.int64], job: int) -> None:
    if ua_pos[job] < 0:
        k = ua_n[0]
        ua[k] = job
        ua_pos[job] = k
        ua_n[0] = k + 1


@hot
def _ua_remove(ua: NDArray[np.int64], ua_pos: NDArray[np.int64], ua_n: NDArray[np.int64], job: int) -> None:
    k = ua_pos[job]
    if k >= 0:
        last = ua_n[0] - 1
        other = ua[last]
        ua[k] = other
        ua_pos[other] = k
        ua_pos[job] = -1
        ua_n[0] = last


# --- edits that keep the state consistent -------------------------------------------------------


@jit
def _snapshot(st: State, rt: Routes, sc: Scratch, v: int) -> bool:
    """Remember route v before this iteration first changes it; False when out of room."""
    if sc.slot[v] >= 0:
        return True
    k = sc.counter[1]
    if k >= sc.snap_v.shape[0]:
        return False
    sc.slot[v] = k
    sc.snap_v[k] = v
    n = rt.size[v]
    sc.snap_size[k] = n
    for q in range(n + 2):
        sc.snap_nodes[k, q] = rt.nodes[v, q]
    sc.snap_cost[k] = st.cost[v]
    sc.snap_load[k] = st.load[v]
    sc.counter[1] = k + 1
    return True


@jit
def _take_out(
    tm: Timing, nb: Neighbourhood, st: State, rt: Routes, v: int, first: int, count: int, sc: Scratch
) -> None:
    """Jobs out of route v into the queue (they were planned: they may look wide for a place)."""
    qn = sc.counter[3]
    mark = sc.counter[2]
    for q in range(first, first + count):
        job = rt.nodes[v, q]
        st.route_of[job] = -1
        st.unserved[nb.level[job]] += 1
        st.load[v] -= nb.demand[job]
        _ua_add(st.ua, st.ua_pos, st.ua_n, job)
        sc.queue[qn] = job
        sc.jstamp[job] = mark
        sc.wide[job] = mark
        qn += 1
    sc.counter[3] = qn
    kernel.remove(tm, rt, v, first, count)


@jit
def _put_in(tm: Timing, nb: Neighbourhood, st: State, rt: Routes, v: int, p: int, job: int) -> None:
    _insert_job(
        tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend,
        st.route_of, st.unserved, st.load, nb.level, nb.demand, st.ua, st.ua_pos, st.ua_n, v, p, job,
    )  # fmt: skip


@hot
def _insert_job(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    route_of: NDArray[np.int64],
    unserved: NDArray[np.int64],
    load: NDArray[np.int64],
    level: NDArray[np.int64],
    demand: NDArray[np.int64],
    ua: NDArray[np.int64],
    ua_pos: NDArray[np.int64],
    ua_n: NDArray[np.int64],
    v: int,
    p: int,
    job: int,
) -> None:
    """`job` after position p of route v, the route re-timed, and the search's books kept."""
    n = size[v]
    for q in range(n + 1, p, -1):
        nodes[v, q + 1] = nodes[v, q]
    nodes[v, p + 1] = job
    size[v] = n + 1
    kernel.refresh_route(travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, v)
    route_of[job] = v
    unserved[level[job]] -= 1
    load[v] += demand[job]
    _ua_remove(ua, ua_pos, ua_n, job)


@hot
def _keep(
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cost: NDArray[np.int64],
    load: NDArray[np.int64],
    snap_v: NDArray[np.int64],
    snap_nodes: NDArray[np.int64],
    snap_size: NDArray[np.int64],
    snap_cost: NDArray[np.int64],
    snap_load: NDArray[np.int64],
    slot: NDArray[np.int64],
    counter: NDArray[np.int64],
    v: int,
) -> bool:
    """`_snapshot` on arrays."""
    if slot[v] >= 0:
        return True
    k = counter[1]
    if k >= snap_v.shape[0]:
        return False
    slot[v] = k
    snap_v[k] = v
    n = size[v]
    snap_size[k] = n
    for q in range(n + 2):
        snap_nodes[k, q] = nodes[v, q]
    snap_cost[k] = cost[v]
    snap_load[k] = load[v]
    counter[1] = k + 1
    return True


# --- insertion ----------------------------------------------------------------------------------


@hot
def _scan(
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
    rng: NDArray[np.uint64],
    v: int,
    job: int,
    blink: float,
    best: NDArray[np.int64],
) -> None:
    """Every place in route v for `job`; best = [cost, vehicle, position] is lowered in place."""
    if not allowed[v, job] or load[v] + demand[job] > capacity[v]:
        return
    n = size[v]
    last = last_hi[job]
    own = node_cost[v, job] + (w[W_FIXED] if n == 0 else 0)
    wt = w[W_TRAVEL]
    for p in range(n + 1):
        if cache[v, p, F0] > last:
            break
        a, b = nodes[v, p], nodes[v, p + 1]
        bound = (travel[a, job] + travel[job, b] - travel[a, b]) * wt + own
        if bound >= best[0]:
            continue
        s, arr = insertion(travel, service, dom_ptr, dom, veh, nodes, cache, v, p, job)
        if s >= INF:
            continue
        c = insertion_cost(travel, veh, nodes, size, cache, vend, w, node_cost, due, v, p, job, s, arr)
        if c < best[0]:
            if blink > 0.0 and _uniform(rng) < blink:
                continue
            best[0], best[1], best[2] = c, v, p


@jit
def _best_place(
    tm: Timing,
    cs: Costs,
    nb: Neighbourhood,
    pr: Params,
    st: State,
    rt: Routes,
    sc: Scratch,
    job: int,
    blink: float,
    reach: int,
    best: NDArray[np.int64],
) -> None:
    """The cheapest place for `job`: see `_place` (this entry unpacks the named tuples once)."""
    _place(
        tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend,
        cs.w, cs.node, cs.due_start, nb.allowed, nb.demand, nb.capacity, nb.last_hi, nb.near,
        nb.cand_ptr, nb.cand, st.load, st.rng, st.route_of, sc.stamp, sc.snap_v, sc.counter,
        pr.close, pr.home_routes, pr.empties, job, blink, reach, best,
    )  # fmt: skip


@jit
def _place(
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
    demand: NDArray[np.int64],
    capacity: NDArray[np.int64],
    last_hi: NDArray[np.int64],
    near: NDArray[np.int64],
    cand_ptr: NDArray[np.int64],
    cand: NDArray[np.int64],
    load: NDArray[np.int64],
    rng: NDArray[np.uint64],
    route_of: NDArray[np.int64],
    stamp: NDArray[np.int64],
    snap_v: NDArray[np.int64],
    counter: NDArray[np.int64],
    close: int,
    home_routes: int,
    empties: int,
    job: int,
    blink: float,
    reach: int,
    best: NDArray[np.int64],
) -> None:
    """The cheapest place for `job`: routes through its nearest jobs, the routes this iteration
    changed, the technician-days nearest to it (a few idle ones among them); with `reach` > 0 the
    `reach` nearest technician-days whatever they hold too, with `reach` < 0 every allowed one."""
    best[0], best[1], best[2] = INF, -1, -1
    counter[0] += 1
    mark = counter[0]
    for k in range(min(close, near.shape[1])):
        x = near[job, k]
        if x < 0:
            break
        v = route_of[x]
        if v >= 0 and stamp[v] != mark:
            stamp[v] = mark
            _scan(
                travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, w, node_cost, due,
                allowed, load, demand, capacity, last_hi, rng, v, job, blink, best,
            )  # fmt: skip
    for k in range(counter[1]):
        v = snap_v[k]
        if stamp[v] != mark:
            stamp[v] = mark
            _scan(
                travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, w, node_cost, due,
                allowed, load, demand, capacity, last_hi, rng, v, job, blink, best,
            )  # fmt: skip
    lo, hi = cand_ptr[job], cand_ptr[job + 1]
    if reach != 0:
        if reach > 0 and hi > lo + reach:
            hi = lo + reach
        for k in range(lo, hi):
            v = cand[k]
            if stamp[v] != mark:
                stamp[v] = mark
                _scan(
                    travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, w, node_cost, due,
                    allowed, load, demand, capacity, last_hi, rng, v, job, blink, best,
                )  # fmt: skip
        return
    idle = 0
    for k in range(lo, min(hi, lo + IDLE_LOOKUP)):
        v = cand[k]
        if stamp[v] == mark:
            continue
        near_home = k - lo < home_routes
        empty = size[v] == 0
        if not near_home and not (empty and idle < empties):
            if idle >= empties:
                break
            continue
        stamp[v] = mark
        if empty:
            idle += 1
        _scan(
            travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, w, node_cost, due,
            allowed, load, demand, capacity, last_hi, rng, v, job, blink, best,
        )  # fmt: skip


@jit
def _best_replacement(
    tm: Timing,
    cs: Costs,
    nb: Neighbourhood,
    pr: Params,
    st: State,
    rt: Routes,
    sc: Scratch,
    job: int,
    best: NDArray[np.int64],
) -> None:
    """A visit of lower priority whose place `job` can take, in the routes `_best_place` looked at
    last (marked with the current stamp): [its level, vehicle, position]; the lowest priority
    first, then the cheapest."""
    travel, service, dom_ptr, dom, veh = tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh
    nodes, size, cache = rt.nodes, rt.size, rt.cache
    level, demand, capacity = nb.level, nb.demand, nb.capacity
    node_cost, load, stamp = cs.node, st.load, sc.stamp
    wt = cs.w[W_TRAVEL]
    best[0], best[1], best[2] = -1, -1, -1
    lv = level[job]
    mark = sc.counter[0]
    best_cost = INF
    lo, hi = nb.cand_ptr[job], nb.cand_ptr[job + 1]
    room = sc.counter[1] < sc.snap_v.shape[0]
    for k in range(lo, hi):
        v = nb.cand[k]
        n = size[v]
        if n == 0 or stamp[v] != mark or not nb.allowed[v, job]:  # a group's unit: its own day only
            continue
        if sc.slot[v] < 0 and not room:
            continue
        for p in range(1, n + 1):
            x = nodes[v, p]
            if level[x] <= lv or level[x] < best[0]:
                continue
            if load[v] - demand[x] + demand[job] > capacity[v]:
                continue
            s, _arr = replacement(travel, service, dom_ptr, dom, veh, nodes, cache, v, p, job)
            if s >= INF:
                continue
            a, b = nodes[v, p - 1], nodes[v, p + 1]
            c = (travel[a, job] + travel[job, b] - travel[a, x] - travel[x, b]) * wt
            c += node_cost[v, job] - node_cost[v, x]
            if level[x] > best[0] or c < best_cost:
                best[0], best[1], best[2] = level[x], v, p
                best_cost = c


@jit
def _recreate(
    tm: Timing, cs: Costs, nb: Neighbourhood, pr: Params, st: State, rt: Routes, sc: Scratch, blink: float
) -> bool:
    """Put the queued jobs back in order; False when the iteration ran out of snapshot room.

    The named tuples are unpacked once here: the per-job and per-route helpers take arrays.
    """
    travel, service, dom_ptr, dom, veh = tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh
    nodes, size, cache, vend = rt.nodes, rt.size, rt.cache, rt.vend
    w, node_cost, due = cs.w, cs.node, cs.due_start
    allowed, demand, capacity, last_hi, near = nb.allowed, nb.demand, nb.capacity, nb.last_hi, nb.near
    cand_ptr, cand, level = nb.cand_ptr, nb.cand, nb.level
    load, rng, route_of, unserved, cost = st.load, st.rng, st.route_of, st.unserved, st.cost
    ua, ua_pos, ua_n = st.ua, st.ua_pos, st.ua_n
    stamp, snap_v, counter, queue, wide = sc.stamp, sc.snap_v, sc.counter, sc.queue, sc.wide
    snap_nodes, snap_size, snap_cost, snap_load, slot = (
        sc.snap_nodes, sc.snap_size, sc.snap_cost, sc.snap_load, sc.slot
    )  # fmt: skip
    close, home_routes, empties, wide_routes = pr.close, pr.home_routes, pr.empties, pr.wide_routes
    best = np.empty(3, dtype=np.int64)
    mark = counter[2]
    i = 0
    swaps = 0
    while i < counter[3]:
        job = queue[i]
        i += 1
        if route_of[job] >= 0:
            continue
        for attempt in range(2):
            if attempt == 1 and (best[1] >= 0 or wide[job] != mark):
                break
            skip = blink if attempt == 0 else 0.0
            reach = 0 if attempt == 0 else wide_routes
            _place(
                travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, w, node_cost, due, allowed,
                demand, capacity, last_hi, near, cand_ptr, cand, load, rng, route_of, stamp, snap_v,
                counter, close, home_routes, empties, job, skip, reach, best,
            )  # fmt: skip
        if best[1] >= 0:
            v = best[1]
            if not _keep(
                nodes, size, cost, load, snap_v, snap_nodes, snap_size, snap_cost, snap_load, slot, counter, v
            ):
                return False
            _insert_job(
                travel, service, dom_ptr, dom, veh, nodes, size, cache, vend, route_of, unserved, load,
                level, demand, ua, ua_pos, ua_n, v, best[2], job,
            )  # fmt: skip
            continue
        if swaps >= 4 or counter[3] >= queue.shape[0]:
            continue
        _best_replacement(tm, cs, nb, pr, st, rt, sc, job, best)
        if best[1] < 0:
            continue
        v, p = best[1], best[2]
        if not _snapshot(st, rt, sc, v):
            return False
        swaps += 1
        _take_out(tm, nb, st, rt, v, p, 1, sc)
        _put_in(tm, nb, st, rt, v, p - 1, job)
    return True


@jit
def _sort_queue(nb: Neighbourhood, st: State, sc: Scratch) -> None:
    """Promises first, then by priority; inside a level SISR's orders, weights 4:4:2:1: random,
    largest demand first, farthest first, closest first."""
    pick = _uniform(st.rng) * 11.0
    qn = sc.counter[3]
    for i in range(qn):
        job = sc.queue[i]
        if pick < 4.0:
            key = _uniform(st.rng)
        elif pick < 8.0:
            key = -float(nb.demand[job]) + 0.001 * _uniform(st.rng)
        elif pick < 10.0:
            key = -float(nb.home[job])
        else:
            key = float(nb.home[job])
        sc.keys[i] = nb.level[job] * 1e15 + key
    # insertion sort: queues are short
    for i in range(1, qn):
        kj, jj = sc.keys[i], sc.queue[i]
        k = i - 1
        while k >= 0 and sc.keys[k] > kj:
            sc.keys[k + 1] = sc.keys[k]
            sc.queue[k + 1] = sc.queue[k]
            k -= 1
        sc.keys[k + 1] = kj
        sc.queue[k + 1] = jj


# --- one iteration and the loop -----------------------------------------------------------------


@jit
def _ruin(
    tm: Timing,
    nb: Neighbourhood,
    pr: Params,
    st: State,
    rt: Routes,
    sc: Scratch,
    seed_job: int,
    mean_len: float,
) -> None:
    """SISR string removal around `seed_job`, into the queue."""
    longest = float(pr.max_string) if pr.max_string < mean_len else mean_len
    if longest < 1.0:
        longest = 1.0
    k_max = 4.0 * pr.avg_removed / (1.0 + longest) - 1.0
    if k_max < 1.0:
        k_max = 1.0
    strings = int(1.0 + _uniform(st.rng) * k_max)
    ruined = 0
    for k in range(-1, nb.near.shape[1]):
        if ruined >= strings:
            break
        x = seed_job if k < 0 else nb.near[seed_job, k]
        if x < 0:
            break
        v = st.route_of[x]
        if v < 0 or sc.slot[v] >= 0:
            continue
        n = rt.size[v]
        if not _snapshot(st, rt, sc, v):
            break
        ruined += 1
        top = float(n) if n < longest else longest
        length = int(1.0 + _uniform(st.rng) * top)
        if length > n:
            length = n
        at = 1
        while rt.nodes[v, at] != x:
            at += 1
        lo = at - length + 1
        if lo < 1:
            lo = 1
        hi = at if at < n - length + 1 else n - length + 1
        first = lo + _below(st.rng, hi - lo + 1)
        _take_out(tm, nb, st, rt, v, first, length, sc)


@jit
def _restore(tm: Timing, nb: Neighbourhood, st: State, rt: Routes, sc: Scratch) -> None:
    """Undo the iteration: every queued job out, every changed route back as it was."""
    for i in range(sc.counter[3]):
        job = sc.queue[i]
        if st.route_of[job] >= 0:
            st.route_of[job] = -1
            _ua_add(st.ua, st.ua_pos, st.ua_n, job)
    for k in range(sc.counter[1]):
        v = sc.snap_v[k]
        n = sc.snap_size[k]
        for q in range(n + 2):
            rt.nodes[v, q] = sc.snap_nodes[k, q]
        rt.size[v] = n
        kernel.refresh(tm, rt, v)
        st.cost[v] = sc.snap_cost[k]
        st.load[v] = sc.snap_load[k]
        for q in range(1, n + 1):
            job = rt.nodes[v, q]
            st.route_of[job] = v
            _ua_remove(st.ua, st.ua_pos, st.ua_n, job)
    for k in range(LEVELS):
        st.unserved[k] = sc.saved_unserved[k]


@jit
def _end_iteration(sc: Scratch) -> None:
    for k in range(sc.counter[1]):
        sc.slot[sc.snap_v[k]] = -1
    sc.counter[1] = 0
    sc.counter[3] = 0


@jit
def _copy_best(rt: Routes, st: State, bs: Best) -> None:
    for v in range(rt.size.shape[0]):
        if bs.dirty[v]:
            n = rt.size[v]
            for q in range(n + 2):
                bs.nodes[v, q] = rt.nodes[v, q]
            bs.size[v] = n
            bs.dirty[v] = False
    for k in range(LEVELS):
        bs.unserved[k] = st.unserved[k]
    bs.total[0] = st.total[0]


@jit
def _random_planned(nb: Neighbourhood, st: State) -> int:
    n = st.route_of.shape[0]
    for _ in range(64):
        job = _below(st.rng, n)
        if st.route_of[job] >= 0:
            return job
    for job in range(n):
        if st.route_of[job] >= 0:
            return job
    return -1


@jit
def iterate(
    tm: Timing,
    cs: Costs,
    nb: Neighbourhood,
    pr: Params,
    st: State,
    rt: Routes,
    sc: Scratch,
    bs: Best,
    floor: NDArray[np.int64],
    n_iter: int,
    temp_from: float,
    temp_to: float,
    fleet: bool,
    mean_arc: float,
) -> NDArray[np.int64]:
    """`n_iter` ruin-and-recreate iterations; returns counts: [accepted, new bests, fewer jobs left
    out, more jobs left out (rejected), out of snapshot room (rejected)].

    `fleet`: fleet minimisation (SISR's): every job left out is offered a place each iteration,
    and a plan is kept when it leaves out fewer jobs, or as many whose absences (iterations spent
    left out, counted per job) sum lower; the technician-days to empty are banned by the caller.
    """
    out = np.zeros(5, dtype=np.int64)
    n_v = rt.size.shape[0]
    for it in range(n_iter):
        temperature = temp_from * (temp_to / temp_from) ** (it / n_iter) if temp_from > 0 else 0.0
        used = 0
        planned = 0
        for v in range(n_v):
            if rt.size[v] > 0:
                used += 1
                planned += rt.size[v]
        mean_len = planned / used if used else 1.0
        if st.ua_n[0] > 0 and (planned == 0 or _uniform(st.rng) < pr.seed_unassigned):
            seed_job = st.ua[_below(st.rng, st.ua_n[0])]
        else:
            seed_job = _random_planned(nb, st)
        if seed_job < 0:
            break
        for k in range(LEVELS):
            sc.saved_unserved[k] = st.unserved[k]
        total_before = st.total[0]
        absent_before = 0
        if fleet:
            for k in range(st.ua_n[0]):
                absent_before += st.absence[st.ua[k]]
        sc.counter[2] += 1
        mark = sc.counter[2]
        _ruin(tm, nb, pr, st, rt, sc, seed_job, mean_len)
        if fleet:  # every job left out is offered a place
            for k in range(st.ua_n[0]):
                x = st.ua[k]
                qn = sc.counter[3]
                if qn >= sc.queue.shape[0]:
                    break
                if sc.jstamp[x] != mark:
                    sc.jstamp[x] = mark
                    sc.queue[qn] = x
                    sc.counter[3] = qn + 1
        # Jobs left out near the ruin get the room it made.
        extra = 0
        for k in range(-1, nb.near.shape[1]):
            qn = sc.counter[3]
            if extra >= pr.extra_unassigned or qn >= sc.queue.shape[0]:
                break
            x = seed_job if k < 0 else nb.near[seed_job, k]
            if x < 0:
                break
            if st.route_of[x] < 0 and sc.jstamp[x] != mark:
                sc.jstamp[x] = mark
                sc.queue[qn] = x
                sc.counter[3] = qn + 1
                extra += 1
        _sort_queue(nb, st, sc)
        ok = _recreate(tm, cs, nb, pr, st, rt, sc, pr.blink)
        delta = 0
        if ok:
            for k in range(sc.counter[1]):
                v = sc.snap_v[k]
                c = route_cost_of(
                    tm.travel, tm.service, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend, cs.w, cs.node,
                    cs.due_start, v, sc.starts,
                )  # fmt: skip
                if c >= INF:
                    ok = False
                    break
                sc.snap_new[k] = c
                delta += c - st.cost[v]
        accept = False
        if not ok:
            out[4] += 1
        if ok:
            cum = 0
            within = True
            for k in range(LEVELS):
                cum += st.unserved[k]
                if cum > floor[k]:
                    within = False
            if within:
                order = 0
                for k in range(LEVELS):
                    if st.unserved[k] != sc.saved_unserved[k]:
                        order = 1 if st.unserved[k] < sc.saved_unserved[k] else -1
                        break
                if fleet and order == 0:
                    absent = 0
                    for k in range(st.ua_n[0]):
                        absent += st.absence[st.ua[k]]
                    if absent != absent_before:
                        order = 1 if absent < absent_before else -1
                if order < 0:
                    out[3] += 1
                if order > 0:
                    accept = True
                    out[2] += 1
                else:
                    threshold = -temperature * math.log(1.0 - _uniform(st.rng)) if temperature > 0 else 0.0
                    if order == 0:
                        accept = delta < threshold or (delta == 0)
                    elif not fleet and pr.drop_arcs > 0.0:
                        # Fewer jobs planned: only early in the run, at a price per job left out.
                        dropped = 0
                        for k in range(LEVELS):
                            dropped += (st.unserved[k] - sc.saved_unserved[k]) * pr.drop_arcs * (LEVELS - k)
                        accept = delta + dropped * mean_arc < threshold
        if accept:
            for k in range(sc.counter[1]):
                v = sc.snap_v[k]
                st.cost[v] = sc.snap_new[k]
                bs.dirty[v] = True
            st.total[0] = total_before + delta
            out[0] += 1
            if better(st.unserved, st.total[0], bs.unserved, bs.total[0]) > 0:
                _copy_best(rt, st, bs)
                out[1] += 1
        else:
            _restore(tm, nb, st, rt, sc)
        _end_iteration(sc)
        if fleet:
            for k in range(st.ua_n[0]):
                st.absence[st.ua[k]] += 1
    return out


@jit
def construct(
    tm: Timing,
    cs: Costs,
    nb: Neighbourhood,
    pr: Params,
    st: State,
    rt: Routes,
    sc: Scratch,
    order: NDArray[np.int64],
) -> None:
    """The first plan: each job in `order` at its cheapest place over every allowed route."""
    best = np.empty(3, dtype=np.int64)
    for i in range(order.shape[0]):
        job = order[i]
        if st.route_of[job] >= 0:
            continue
        _best_place(tm, cs, nb, pr, st, rt, sc, job, 0.0, -1, best)
        if best[1] >= 0:
            _put_in(tm, nb, st, rt, best[1], best[2], job)
        _end_iteration(sc)
    for v in range(rt.size.shape[0]):
        st.cost[v] = route_cost(tm, cs, rt, v, sc.starts)
    st.total[0] = st.cost.sum()


@jit
def load_routes(tm: Timing, nb: Neighbourhood, st: State, rt: Routes, v: int, jobs: NDArray[np.int64]) -> int:
    """Warm start: route v takes the given jobs in order, each one that still fits; returns how many."""
    taken = 0
    for i in range(jobs.shape[0]):
        job = jobs[i]
        if st.route_of[job] >= 0 or not nb.allowed[v, job]:
            continue
        if st.load[v] + nb.demand[job] > nb.capacity[v]:
            continue
        n = rt.size[v]
        s, _ = insertion_at(tm, rt, v, n, job)
        if s >= INF:
            continue
        _put_in(tm, nb, st, rt, v, n, job)
        taken += 1
    return taken


# --- the Python side ----------------------------------------------------------------------------

TEMP_START = 10.0  # annealing temperature, in mean arcs
TEMP_END = 0.05
FIXED_CHUNK = 64  # iterations between clock checks when an iteration limit makes the run repeatable


@dataclass
class SearchStats:
    iterations: int = 0
    accepted: int = 0
    improvements: int = 0
    seconds: float = 0.0
    fewer_out: int = 0
    more_out: int = 0
    no_room: int = 0


def route_width(problem: Problem, allowed: NDArray[np.bool_]) -> int:
    """The most jobs any one technician-day could hold (shortest visits first), plus room for the
    two ends and one more during an edit."""
    if problem.n_jobs == 0 or not problem.vehicles:
        return 3
    service = problem.service[: problem.n_jobs]
    order = np.argsort(service, kind="stable")
    widest = 0
    for vi, v in enumerate(problem.vehicles):
        durations = service[order][allowed[vi, order]]
        if durations.size:
            span = v.latest_end - v.shift_start
            widest = max(widest, int(np.searchsorted(np.cumsum(durations), span, side="right")))
    return min(widest, problem.n_jobs) + 3


def nearest_jobs(travel: NDArray[np.int64], allowed: NDArray[np.bool_], k: int) -> NDArray[np.int64]:
    """Each job's k nearest other jobs (travel both ways) that some technician-day could visit
    together with it, nearest first; -1 pads.

    A job that must be done on Wednesday gains nothing from the routes of its Monday neighbours:
    strings are ruined, and routes tried, among jobs that can share a route.
    """
    n_jobs = allowed.shape[1]
    out = np.full((n_jobs, max(k, 1)), -1, dtype=np.int64)
    if n_jobs < 2 or k < 1:
        return out
    # job -> bitset of its allowed technician-days, as 64-bit words
    packed = np.packbits(allowed.T, axis=1, bitorder="little")
    pad = (-packed.shape[1]) % 8
    bits = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, pad)))).view(np.uint64)
    wide = min(n_jobs, max(8 * k, 256))  # most jobs find k compatible ones among their nearest few
    for lo in range(0, n_jobs, 256):  # in blocks: a 5,000-job square of floats is 200 MB
        hi = min(lo + 256, n_jobs)
        both = (travel[lo:hi, :n_jobs] + travel[:n_jobs, lo:hi].T).astype(np.float64)
        if wide < n_jobs:
            part = np.argpartition(both, wide - 1, axis=1)[:, :wide]
            rows = np.arange(hi - lo)[:, None]
            order = part[rows, np.argsort(both[rows, part], axis=1, kind="stable")].astype(np.int64)
        else:
            order = np.argsort(both, axis=1, kind="stable").astype(np.int64)
        _compatible_prefix(order, bits, lo, out)
        short = np.flatnonzero(out[lo:hi, k - 1] < 0)
        if short.size and wide < n_jobs:  # rare skills: look at every job
            full = np.argsort(both[short], axis=1, kind="stable").astype(np.int64)
            out[lo + short] = -1
            _compatible_rows(full, bits, lo + short, out)
    return out


@jit
def _compatible_rows(
    order: NDArray[np.int64], bits: NDArray[np.uint64], rows: NDArray[np.int64], out: NDArray[np.int64]
) -> None:
    for r in range(order.shape[0]):
        _compatible_one(order[r], bits, rows[r], out)


@jit
def _compatible_one(
    order: NDArray[np.int64], bits: NDArray[np.uint64], j: int, out: NDArray[np.int64]
) -> None:
    k = out.shape[1]
    words = bits.shape[1]
    taken = 0
    for c in range(order.shape[0]):
        i = order[c]
        if i == j:
            continue
        for w in range(words):
            if bits[i, w] & bits[j, w]:
                out[j, taken] = i
                taken += 1
                break
        if taken == k:
            break


@jit
def _compatible_prefix(
    order: NDArray[np.int64], bits: NDArray[np.uint64], first: int, out: NDArray[np.int64]
) -> None:
    for r in range(order.shape[0]):
        _compatible_one(order[r], bits, first + r, out)


class Engine:
    """The compiled search's data for one problem: built once, then asked to plan and improve."""

    def __init__(self, problem: Problem, costs: Costs, params: Params | None = None, seed: int = 0) -> None:
        p = problem
        self.problem = p
        self.costs = costs
        # Same types as the defaults, always: numba compiles once per combination of types.
        given = params or Params()
        self.params = Params._make(type(d)(x) for d, x in zip(Params(), given, strict=True))
        self.tm = p.timing
        self.seed = seed
        n_j, n_v = p.n_jobs, len(p.vehicles)
        allowed = np.zeros((n_v, n_j), dtype=np.bool_)
        cand: list[NDArray[np.int64]] = []
        travel = p.travel
        v_start = np.array([v.start_node for v in p.vehicles], dtype=np.int64)
        v_end = np.array([v.end_node for v in p.vehicles], dtype=np.int64)
        for j in range(n_j):
            vs = p.allowed[j].astype(np.int64)
            allowed[vs, j] = True
            alone = travel[v_start[vs], j] + travel[j, v_end[vs]]
            cand.append(vs[np.argsort(alone, kind="stable")])
        self.width = route_width(p, allowed)
        ptr = np.zeros(n_j + 1, dtype=np.int64)
        if n_j:
            ptr[1:] = np.cumsum([len(c) for c in cand])
        starts = sorted(set(v_start.tolist()))
        home = travel[np.ix_(starts, range(n_j))].min(axis=0) if starts and n_j else np.zeros(n_j)
        self.nb = Neighbourhood(
            allowed=allowed,
            cand_ptr=ptr,
            cand=np.concatenate(cand) if cand else np.zeros(0, dtype=np.int64),
            near=nearest_jobs(travel, allowed, NEAREST),
            level=p.level.astype(np.int64),
            demand=p.demand.astype(np.int64),
            capacity=np.array(
                [v.capacity if v.capacity is not None else 1 << 40 for v in p.vehicles], dtype=np.int64
            ),
            home=np.asarray(home, dtype=np.int64),
            last_hi=np.array([d[-1][1] for d in p.domains], dtype=np.int64),
        )
        self.reset()

    def reset(self) -> None:
        """Every job left out, every technician-day idle."""
        p, n_j, n_v, width = self.problem, self.problem.n_jobs, len(self.problem.vehicles), self.width
        self.rt = kernel.empty_routes(self.tm, width)
        unserved = np.zeros(LEVELS, dtype=np.int64)
        for lv in p.level.tolist():
            unserved[lv] += 1
        self.st = State(
            route_of=np.full(n_j, -1, dtype=np.int64),
            load=np.zeros(n_v, dtype=np.int64),
            cost=np.zeros(n_v, dtype=np.int64),
            unserved=unserved,
            total=np.zeros(1, dtype=np.int64),
            ua=np.arange(max(n_j, 1), dtype=np.int64),
            ua_pos=np.arange(n_j, dtype=np.int64),
            ua_n=np.array([n_j], dtype=np.int64),
            rng=np.array(
                [(self.seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) % (1 << 64) or 1], dtype=np.uint64
            ),
            absence=np.zeros(max(n_j, 1), dtype=np.int64),
        )
        self.sc = Scratch(
            starts=np.zeros(width, dtype=np.int64),
            snap_v=np.zeros(SNAPSHOTS, dtype=np.int64),
            snap_nodes=np.zeros((SNAPSHOTS, width), dtype=np.int64),
            snap_size=np.zeros(SNAPSHOTS, dtype=np.int64),
            snap_cost=np.zeros(SNAPSHOTS, dtype=np.int64),
            snap_load=np.zeros(SNAPSHOTS, dtype=np.int64),
            snap_new=np.zeros(SNAPSHOTS, dtype=np.int64),
            slot=np.full(n_v, -1, dtype=np.int64),
            stamp=np.zeros(n_v, dtype=np.int64),
            jstamp=np.zeros(max(n_j, 1), dtype=np.int64),
            wide=np.zeros(max(n_j, 1), dtype=np.int64),
            counter=np.zeros(4, dtype=np.int64),
            queue=np.zeros(max(n_j, 1), dtype=np.int64),
            keys=np.zeros(max(n_j, 1), dtype=np.float64),
            saved_unserved=np.zeros(LEVELS, dtype=np.int64),
        )

    # --- building a plan --------------------------------------------------------------------

    def warm_start(self, routes: list[list[int]]) -> int:
        """Take over routes (job nodes per vehicle), each job that still fits in order; returns
        how many jobs were kept."""
        kept = 0
        for v, nodes in enumerate(routes):
            if nodes:
                jobs = np.array(nodes, dtype=np.int64)
                kept += int(load_routes(self.tm, self.nb, self.st, self.rt, v, jobs))
        self._rebuild()
        return kept

    def construct(self, order: list[int] | None = None) -> None:
        """Insert every job left out, hardest first, at its cheapest place over all routes."""
        if order is None:
            order = first_plan_order(self.problem, self.seed)
        jobs = np.array(order, dtype=np.int64)
        construct(self.tm, self.costs, self.nb, self.params, self.st, self.rt, self.sc, jobs)

    def routes(self) -> list[list[int]]:
        rt = self.rt
        return [rt.nodes[v, 1 : rt.size[v] + 1].tolist() for v in range(len(rt.size))]

    def unserved_jobs(self) -> list[int]:
        return self.st.ua[: self.st.ua_n[0]].tolist()

    @property
    def unserved(self) -> list[int]:
        return [int(x) for x in self.st.unserved]

    @property
    def cost(self) -> int:
        return int(self.st.total[0])

    def improve(
        self,
        stop: Stop,
        floor: list[int] | None = None,
        progress: Progress | None = None,
        fleet: bool = False,
    ) -> SearchStats:
        """Ruin and recreate from the current plan until `stop`; the plan becomes the best seen.

        `floor`: jobs planned per level in a plan this one must not fall below, cumulatively.
        `fleet`: fleet minimisation (see `iterate`); `minimise_fleet` drives it.
        """
        p = self.problem
        stats = SearchStats()
        n_v = len(p.vehicles)
        if p.n_jobs == 0 or n_v == 0:
            return stats
        bs = Best(
            nodes=self.rt.nodes.copy(),
            size=self.rt.size.copy(),
            unserved=self.st.unserved.copy(),
            total=self.st.total.copy(),
            dirty=np.zeros(n_v, dtype=np.bool_),
        )
        cap = np.full(LEVELS, 1 << 60, dtype=np.int64)
        if floor is not None:
            totals = np.zeros(LEVELS, dtype=np.int64)
            for lv in p.level.tolist():
                totals[lv] += 1
            # most jobs left out, cumulatively, that keeps at least `floor` planned at every level
            cap = np.cumsum(totals) - np.cumsum(np.asarray(floor, dtype=np.int64))
        mean_arc = self._mean_arc()
        limit = iteration_limit(stop)
        began = time.monotonic()
        chunk = FIXED_CHUNK if limit is not None else 32
        best_at = 0
        last_report = began
        rate = 0.0
        while True:
            elapsed = time.monotonic() - began
            clock = Clock(stats.iterations, elapsed, stats.iterations - best_at)
            if stop.done(clock):
                break
            n = chunk if limit is None else min(chunk, limit - stats.iterations)
            if n <= 0:
                break
            frac = stop.fraction(clock) or 0.0
            if limit is not None:
                frac_to = stop.fraction(Clock(stats.iterations + n, elapsed, 0)) or frac
            else:
                ahead = n / rate if rate > 0 else 0.0
                frac_to = stop.fraction(Clock(stats.iterations + n, elapsed + ahead, 0)) or frac
            t0 = time.monotonic()
            out = iterate(
                self.tm,
                self.costs,
                self.nb,
                self.params,
                self.st,
                self.rt,
                self.sc,
                bs,
                cap,
                n,
                annealing_temperature(mean_arc, frac),
                annealing_temperature(mean_arc, frac_to),
                fleet,
                mean_arc,
            )
            dt = time.monotonic() - t0
            stats.iterations += n
            stats.accepted += int(out[0])
            stats.fewer_out += int(out[2])
            stats.more_out += int(out[3])
            stats.no_room += int(out[4])
            if out[1]:
                stats.improvements += int(out[1])
                best_at = stats.iterations
            if fleet and int(bs.unserved.sum()) == 0:
                break
            if limit is None:
                rate = n / max(dt, 1e-6)
                chunk = max(8, min(int(rate * 0.05), 20_000))  # about 20 clock checks a second
            now = time.monotonic()
            if progress is not None and now - last_report > 0.25:
                last_report = now
                planned = p.n_jobs - int(bs.unserved.sum())
                progress(
                    "search", {"iterations": stats.iterations, "planned": planned, "seconds": now - began}
                )
        stats.seconds = time.monotonic() - began
        self.rt.nodes[:] = bs.nodes
        self.rt.size[:] = bs.size
        self._rebuild()
        return stats

    def minimise_fleet(self, deadline: float, patience: float, progress: Progress | None = None) -> list[str]:
        """Empty whole technician-days, one at a time, while every job stays planned.

        The smallest route is taken away (its technician-day banned, as every idle one), its jobs
        left out, and ruin and recreate in fleet mode puts them back elsewhere; when every job is
        back the plan has one technician-day fewer and the next is tried. An attempt that has not
        succeeded after `patience` seconds (or three times what the successful ones took) gives up
        and restores the last plan that served everyone. For benchmarks that count vehicles first.
        """
        p = self.problem
        began = time.monotonic()
        start_days = int((self.rt.size > 0).sum())
        if sum(self.unserved) or start_days < 2:
            return []
        allowed = self.nb.allowed.copy()
        attempts = 0
        while time.monotonic() < deadline:
            used = [v for v in range(len(p.vehicles)) if self.rt.size[v] > 0]
            if len(used) < 2:
                break
            saved = self.routes()
            victim = min(used, key=lambda v: (int(self.rt.size[v]), v))
            self.rt.size[victim] = 0
            self.rt.nodes[victim, 1] = self.tm.veh[victim, kernel.END]
            self._rebuild()
            for v in range(len(p.vehicles)):
                if self.rt.size[v] == 0:
                    self.nb.allowed[v, :] = False
            self.st.absence[:] = 0
            now = time.monotonic()
            give_up = min(deadline, now + max(patience, 3 * (now - began)))
            attempts += 1
            self.improve(MaxRuntime(give_up - now), fleet=True)
            self.nb.allowed[:] = allowed
            if sum(self.unserved):
                self.reset()
                self.warm_start(saved)
                break
            if progress is not None:
                progress("route minimisation", {"technician_days": len(used) - 1, "seconds": now - began})
        self._rebuild()
        ended = int((self.rt.size > 0).sum())
        return [
            f"route minimisation (fleet mode): {start_days} -> {ended} technician-days, {attempts} attempts"
        ]

    def _mean_arc(self) -> float:
        """The plan's mean travel cost per arc: the temperature's scale (fixed or job costs would
        make it a random walk on plans with a fixed cost per technician-day)."""
        rt, travel = self.rt, self.tm.travel
        used = np.flatnonzero(rt.size > 0)
        if used.size == 0:
            return float(self.costs.travel_w) * float(np.median(travel[: self.problem.n_jobs]) or 1.0)
        ticks = 0
        for v in used.tolist():
            seq = rt.nodes[v, : rt.size[v] + 2]
            ticks += int(travel[seq[:-1], seq[1:]].sum())
        arcs = int(rt.size[used].sum()) + used.size
        return max(ticks * self.costs.travel_w / arcs, float(self.costs.travel_w))

    def _rebuild(self) -> None:
        """Recompute every cache and the state from the routes' nodes."""
        p, st, rt = self.problem, self.st, self.rt
        st.route_of[:] = -1
        st.load[:] = 0
        st.ua_pos[:] = -1
        st.ua_n[0] = 0
        st.unserved[:] = 0
        for v in range(len(rt.size)):
            kernel.refresh(self.tm, rt, v)
            for job in rt.nodes[v, 1 : rt.size[v] + 1].tolist():
                st.route_of[job] = v
                st.load[v] += int(self.nb.demand[job])
        for job in range(p.n_jobs):
            if st.route_of[job] < 0:
                _ua_add(st.ua, st.ua_pos, st.ua_n, job)
                st.unserved[int(self.nb.level[job])] += 1
        for v in range(len(rt.size)):
            st.cost[v] = route_cost(self.tm, self.costs, rt, v, self.sc.starts)
        st.total[0] = int(st.cost.sum())


def annealing_temperature(mean_arc: float, fraction: float) -> float:
    """Geometric cooling from TEMP_START to TEMP_END mean arc costs as the run goes."""
    return TEMP_START * mean_arc * (TEMP_END / TEMP_START) ** min(max(fraction, 0.0), 1.0)


def first_plan_order(problem: Problem, seed: int = 0) -> list[int]:
    """Promises first, then by priority; inside a level the hardest to place first: fewest allowed
    technician-days, earliest due, narrowest windows."""
    p = problem
    noise = np.random.default_rng(seed).random(p.n_jobs)
    big = 1 << 50

    def key(j: int) -> tuple[int, int, int, int, float]:
        due = int(p.due_start[j]) if p.due_start[j] >= 0 else big
        spread = sum(b - a for a, b in p.domains[j])
        return (int(p.level[j]), len(p.allowed[j]), due, spread, float(noise[j]))

    return sorted(range(p.n_jobs), key=key)


def warm_up() -> float:
    """Compile (or load from numba's cache) every search function on a toy problem; returns the
    seconds it took. Benchmarks call it before timing anything; services at start-up."""
    from models import Scenario
    from optimizer.costs import cost_model
    from optimizer.options import SolveOptions
    from optimizer.problem import build_problem
    from optimizer.stop import MaxIterations

    began = time.monotonic()
    day = "2026-01-05"
    scenario = Scenario.model_validate(
        {
            "name": "warm-up",
            "timezone": "UTC",
            "horizon": {"start": day, "days": 1},
            "technicians": [
                {
                    "id": f"T{k}",
                    "name": f"T{k}",
                    "home": {"lat": 45.0, "lon": 4.0 + k / 100},
                    "shifts": [{"date": day, "start": "08:00", "end": "17:00"}],
                    "lunch": {"earliest": "12:00", "latest": "13:00", "minutes": 30},
                }
                for k in range(2)
            ],
            "jobs": [
                {
                    "id": f"J{k}",
                    "kind": "repair",
                    "location": {"lat": 45.0 + k / 200, "lon": 4.0},
                    "duration_minutes": 30,
                }
                for k in range(6)
            ],
        }
    )
    options = SolveOptions()
    problem = build_problem(scenario, options)
    engine = Engine(problem, cost_model(problem, options.weights))
    engine.construct()
    engine.improve(MaxIterations(3))
    engine.minimise_fleet(time.monotonic() + 0.05, 0.05)
    return time.monotonic() - began
