"""The one timing rule: when each visit of a route starts, where the lunch break goes, when the day ends.

Every part of the optimizer that needs a time asks this module: the first plan, every search phase,
insertion evaluation (the board's drag, appointment slots, explanations), and plan assembly. Only the
independent validator (`validate.py`) derives times on its own, on purpose.

The model (all times in integer ticks from the horizon's start):
- a technician-day (a "vehicle") leaves its start location no earlier than the shift start and must
  be back at its end location by the shift end plus the overtime allowed (`latest_end`);
- a visit starts inside one of the job's allowed start intervals (its windows, clipped by the
  release date and the horizon), after the technician arrives; waiting is allowed;
- a lunch break of `lunch_len` ticks, starting in [lunch_lo, lunch_hi], is taken once on every
  used technician-day that has one: in any gap between two stops, during the drive or the wait
  (from ready time r with travel t to the next stop: possible when r <= lunch_hi, and the next stop
  is reached at max(r + t, lunch_lo) + lunch_len), or after arriving at the end location.

Routes are kept as arrays with the start location at position 0 and the end location at position
n + 1. For each position the kernel keeps forward "ready" times (the earliest moment the technician
can leave it, the break not yet taken: F0, or already taken: F1) and backward latest start times
(the suffix feasible without a break in it: L0, with the break in it: L1), Vidal et al.'s
forward/backward idea with the break as a two-state resource. Inserting a job between two positions
is then checked exactly in O(1), whichever gap the break ends up in, and with several windows per job.

Compiled with numba (cached on disk; the first call in a fresh environment compiles for some
seconds, measured by `benchmarks/field.py`). Functions called once per position or per route take
their arrays as arguments: a numba function that reads arrays out of a named tuple pays a reference
count update per array and call (measured: 150-250 ns per insertion check against about 20 ns).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

# Numba's disk cache is keyed by each function's own file: a compiled search loop keeps the copy
# of a cost function it was built with even after costs.py changes. So the cache of all the
# compiled modules goes as soon as any of them changes.
COMPILED = ("kernel.py", "costs.py", "search.py", "slotscan.py", "groupscan.py")


def _drop_stale_cache() -> None:
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join((here / name).read_bytes() for name in COMPILED)).hexdigest()
    cache = here / "__pycache__"
    stamp = cache / "numba-sources.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return
        for name in COMPILED:
            for stale in cache.glob(f"{Path(name).stem}.*.nb[ic]"):
                stale.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # a read-only install: numba keeps its cache elsewhere, and sources do not change
        pass


_drop_stale_cache()

INF = 1 << 60  # "never": larger than any tick, small enough that sums do not overflow int64
NEG = -INF

jit = numba.njit(cache=True, nogil=True)
hot = jit  # functions called per position or route: plain calls with array arguments are cheap

# Columns of Timing.veh: one row per technician-day.
START, END, SHIFT_START, SHIFT_END, LATEST_END, LUNCH_LO, LUNCH_HI, LUNCH_LEN = range(8)
# Columns of Routes.cache, per route and position.
F0, F1, L0, L1, ZARR, VIA = range(6)
# Columns of Routes.vend, per route: the day's end (INF: infeasible) and the break's gap
# (1..n+1: before that position; n+2: after the end; 0: no break).
DAY_END, BREAK_GAP = range(2)


class Timing(NamedTuple):
    """The problem's timing data, frozen: what the kernel needs and nothing else."""

    travel: NDArray[np.int64]  # [nodes, nodes] ticks, jobs first, then start/end locations
    service: NDArray[np.int64]  # [nodes] ticks on site (0 at locations)
    dom_ptr: NDArray[np.int64]  # [jobs + 1] job j's start intervals are dom[ptr[j]:ptr[j+1]]
    dom: NDArray[np.int64]  # [intervals, 2] allowed start intervals [lo, hi], sorted per job
    veh: NDArray[np.int64]  # [vehicles, 8] see the column names above


class Routes(NamedTuple):
    """Mutable routes with the timing caches that make insertion checks O(1).

    Row v is technician-day v; `nodes[v, 0]` is its start location, `nodes[v, 1..size]` its jobs,
    `nodes[v, size + 1]` its end location.
    """

    nodes: NDArray[np.int64]  # [vehicles, width]
    size: NDArray[np.int64]  # [vehicles] jobs on the route
    cache: NDArray[np.int64]  # [vehicles, width, 6] F0, F1, L0, L1, ZARR, VIA per position
    vend: NDArray[np.int64]  # [vehicles, 2] DAY_END, BREAK_GAP


def empty_routes(timing: Timing, width: int) -> Routes:
    """Every technician-day idle; `width` is the most jobs one route can ever hold, plus two."""
    n_vehicles = len(timing.veh)
    routes = Routes(
        nodes=np.zeros((n_vehicles, width), dtype=np.int64),
        size=np.zeros(n_vehicles, dtype=np.int64),
        cache=np.zeros((n_vehicles, width, 6), dtype=np.int64),
        vend=np.zeros((n_vehicles, 2), dtype=np.int64),
    )
    for v in range(n_vehicles):
        routes.nodes[v, 0] = timing.veh[v, START]
        routes.nodes[v, 1] = timing.veh[v, END]
        refresh(timing, routes, v)
    return routes


# --- windows ------------------------------------------------------------------------------------


@hot
def first_start(dom_ptr: NDArray[np.int64], dom: NDArray[np.int64], job: int, t: int) -> int:
    """Earliest allowed start of `job` at or after t; INF when every interval has closed."""
    if t >= INF:
        return INF
    for k in range(dom_ptr[job], dom_ptr[job + 1]):
        if t <= dom[k, 1]:
            lo = dom[k, 0]
            return t if t > lo else lo
    return INF


@hot
def last_start(dom_ptr: NDArray[np.int64], dom: NDArray[np.int64], job: int, t: int) -> int:
    """Latest allowed start of `job` at or before t; NEG when no interval opens by then."""
    if t <= NEG:
        return NEG
    for k in range(dom_ptr[job + 1] - 1, dom_ptr[job] - 1, -1):
        if t >= dom[k, 0]:
            hi = dom[k, 1]
            return t if t < hi else hi
    return NEG


# --- whole-route timing -------------------------------------------------------------------------


@jit
def refresh(tm: Timing, rt: Routes, v: int) -> None:
    """Recompute every cache of route v from its nodes: O(route length)."""
    refresh_route(tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend, v)


@jit
def refresh_route(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    v: int,
) -> None:
    n = size[v]
    m = veh[v, LUNCH_LEN]
    lo, hi = veh[v, LUNCH_LO], veh[v, LUNCH_HI]
    latest = veh[v, LATEST_END]
    # Forward: the earliest moment each position can be left, without and with the break taken.
    cache[v, 0, F0] = veh[v, SHIFT_START]
    cache[v, 0, F1] = INF
    cache[v, 0, VIA] = 0
    for p in range(1, n + 2):
        prev, node = nodes[v, p - 1], nodes[v, p]
        t = travel[prev, node]
        s = service[node]
        r0 = cache[v, p - 1, F0]
        a0 = r0 + t if r0 < INF else INF
        st0 = first_start(dom_ptr, dom, node, a0) if p <= n else a0
        cache[v, p, F0] = st0 + s if st0 < INF else INF
        cache[v, p, F1] = INF
        cache[v, p, VIA] = 0
        if m > 0:
            r1 = cache[v, p - 1, F1]
            a1 = r1 + t if r1 < INF else INF
            if r0 <= hi:  # the break fits in this gap
                ab = (a0 if a0 > lo else lo) + m
                if ab < a1:
                    a1 = ab
                    cache[v, p, VIA] = 1
            st1 = first_start(dom_ptr, dom, node, a1) if p <= n else a1
            cache[v, p, F1] = st1 + s if st1 < INF else INF
    # Backward: the latest start at each position that keeps the rest of the day feasible.
    cache[v, n + 1, L0] = latest
    cache[v, n + 1, L1] = NEG
    if m > 0:
        cache[v, n + 1, L1] = hi if hi < latest else latest  # the break after the day's end
    for p in range(n, -1, -1):
        node, nxt = nodes[v, p], nodes[v, p + 1]
        t = travel[node, nxt]
        s = service[node] if p > 0 else 0
        b0, b1 = cache[v, p + 1, L0], cache[v, p + 1, L1]
        r0 = b0 - t if b0 > NEG else NEG
        r1 = b1 - t if b1 > NEG else NEG
        if m > 0 and b0 > NEG and lo + m <= b0:
            rb = b0 - t - m  # the break in the gap after p
            if rb > hi:
                rb = hi
            if rb > r1:
                r1 = rb
        if p == 0:
            cache[v, 0, L0], cache[v, 0, L1] = r0, r1
        else:
            cache[v, p, L0] = last_start(dom_ptr, dom, node, r0 - s) if r0 > NEG else NEG
            cache[v, p, L1] = last_start(dom_ptr, dom, node, r1 - s) if r1 > NEG else NEG
    # The day's end and the break's gap.
    end = INF
    gap = 0
    if n > 0:
        if m == 0:
            end = cache[v, n + 1, F0]
        else:
            end = cache[v, n + 1, F1]
            plain = cache[v, n + 1, F0]
            if plain <= hi and plain <= end:
                end = plain
                gap = n + 2
            elif end < INF:
                gap = n + 1
                while cache[v, gap, VIA] == 0:
                    gap -= 1
        if end > latest:
            end = INF
    else:
        end = veh[v, SHIFT_START]
    vend[v, DAY_END] = end
    vend[v, BREAK_GAP] = gap if end < INF else 0
    _latest_arrivals(travel, service, veh, nodes, cache, vend, v, n)


@hot
def _latest_arrivals(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    v: int,
    n: int,
) -> None:
    """ZARR[p]: arrival at p plus all the waiting the schedule has after that arrival.

    A later arrival at p moves the day's end by max(0, arrival - ZARR[p]) at most (waits absorb
    delays: a window opening later, or waiting for the break's earliest start). Prices the overtime
    an insertion causes in O(1); the exact end is recomputed whenever the route changes.
    """
    end = vend[v, DAY_END]
    if end >= INF or n == 0:
        for p in range(n + 2):
            cache[v, p, ZARR] = end if end < INF else NEG
        return
    gap = vend[v, BREAK_GAP]
    m = veh[v, LUNCH_LEN]
    lo = veh[v, LUNCH_LO]
    carry = 0  # waiting after the arrival at p + 1, including the break's wait in the gap before it
    for p in range(n + 1, 0, -1):
        taken = m > 0 and 0 < gap <= p  # the break is behind the technician at p
        before = m > 0 and 0 < gap <= p - 1
        prev_ready = cache[v, p - 1, F1] if before else cache[v, p - 1, F0]
        arrive = prev_ready + travel[nodes[v, p - 1], nodes[v, p]]
        break_wait = 0
        if m > 0 and gap == p:
            if arrive < lo:
                break_wait = lo - arrive
                arrive = lo
            arrive += m
        ready = cache[v, p, F1] if taken else cache[v, p, F0]
        start = end if p == n + 1 else ready - service[nodes[v, p]]
        slack = (start - arrive) + carry
        cache[v, p, ZARR] = arrive + slack
        carry = slack + break_wait
    cache[v, 0, ZARR] = NEG


@jit
def route_starts(tm: Timing, rt: Routes, v: int, out: NDArray[np.int64]) -> int:
    """Service start per job of route v in its earliest-end schedule into out[1..n]; returns the
    break start (NEG without a break)."""
    return starts_of(tm.service, tm.veh, rt.nodes, rt.size, rt.cache, rt.vend, v, out)


@hot
def starts_of(
    service: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    size: NDArray[np.int64],
    cache: NDArray[np.int64],
    vend: NDArray[np.int64],
    v: int,
    out: NDArray[np.int64],
) -> int:
    n = size[v]
    gap = vend[v, BREAK_GAP]
    m = veh[v, LUNCH_LEN]
    for p in range(1, n + 1):
        after = m > 0 and 0 < gap <= p
        ready = cache[v, p, F1] if after else cache[v, p, F0]
        out[p] = ready - service[nodes[v, p]]
    if m == 0 or gap == 0:
        return NEG
    ready = cache[v, n + 1, F0] if gap == n + 2 else cache[v, gap - 1, F0]
    lo = veh[v, LUNCH_LO]
    return ready if ready > lo else lo


# --- insertion ----------------------------------------------------------------------------------


@hot
def _via_gap(
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    job: int,
    sj: int,
    r0: int,
    r1: int,
    t_in: int,
    t_out: int,
    l0b: int,
    l1b: int,
    m: int,
    lo: int,
    hi: int,
) -> tuple[int, int]:
    """`job` between a stop left at r0 (r1 with the break taken) and one that must be reached by
    l0b (l1b if the break is still to come): its start and the next arrival, INF when it cannot."""
    best_st, best_arr = INF, INF
    st = first_start(dom_ptr, dom, job, r0 + t_in) if r0 < INF else INF
    if m == 0:
        if st < INF and st + sj + t_out <= l0b:
            return st, st + sj + t_out
        return INF, INF
    if st < INF:
        arr = st + sj + t_out
        if arr <= l1b:  # the break later in the day
            best_st, best_arr = st, arr
        if st + sj <= hi:  # the break between the job and the next stop
            arr2 = (arr if arr > lo else lo) + m
            if arr2 <= l0b and (st < best_st or (st == best_st and arr2 < best_arr)):
                best_st, best_arr = st, arr2
    if r1 < INF:  # the break already taken
        st1 = first_start(dom_ptr, dom, job, r1 + t_in)
        if st1 < INF:
            arr = st1 + sj + t_out
            if arr <= l0b and (st1 < best_st or (st1 == best_st and arr < best_arr)):
                best_st, best_arr = st1, arr
    if r0 <= hi:  # the break between the previous stop and the job
        a = r0 + t_in
        st2 = first_start(dom_ptr, dom, job, (a if a > lo else lo) + m)
        if st2 < INF:
            arr = st2 + sj + t_out
            if arr <= l0b and (st2 < best_st or (st2 == best_st and arr < best_arr)):
                best_st, best_arr = st2, arr
    return best_st, best_arr


@hot
def insertion(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    cache: NDArray[np.int64],
    v: int,
    p: int,
    job: int,
) -> tuple[int, int]:
    """Insert `job` between positions p and p + 1 of route v: (start of the job, arrival at the
    position after it), both INF when infeasible. O(1), exact for windows, shift and break."""
    a, b = nodes[v, p], nodes[v, p + 1]
    return _via_gap(
        dom_ptr, dom, job, service[job], cache[v, p, F0], cache[v, p, F1], travel[a, job],
        travel[job, b], cache[v, p + 1, L0], cache[v, p + 1, L1], veh[v, LUNCH_LEN],
        veh[v, LUNCH_LO], veh[v, LUNCH_HI],
    )  # fmt: skip


@hot
def replacement(
    travel: NDArray[np.int64],
    service: NDArray[np.int64],
    dom_ptr: NDArray[np.int64],
    dom: NDArray[np.int64],
    veh: NDArray[np.int64],
    nodes: NDArray[np.int64],
    cache: NDArray[np.int64],
    v: int,
    p: int,
    job: int,
) -> tuple[int, int]:
    """Put `job` in place of the job at position p (1..n) of route v: O(1), as `insertion`."""
    a, b = nodes[v, p - 1], nodes[v, p + 1]
    return _via_gap(
        dom_ptr, dom, job, service[job], cache[v, p - 1, F0], cache[v, p - 1, F1], travel[a, job],
        travel[job, b], cache[v, p + 1, L0], cache[v, p + 1, L1], veh[v, LUNCH_LEN],
        veh[v, LUNCH_LO], veh[v, LUNCH_HI],
    )  # fmt: skip


@hot
def end_after(cache: NDArray[np.int64], vend: NDArray[np.int64], v: int, p: int, arrival: int) -> int:
    """The day's end (at most) when position p is reached at `arrival` instead: O(1)."""
    z = cache[v, p, ZARR]
    end = vend[v, DAY_END]
    if arrival > z:
        return end + (arrival - z)
    return end


@jit
def insertion_at(tm: Timing, rt: Routes, v: int, p: int, job: int) -> tuple[int, int]:
    """`insertion` for callers holding the named tuples (once per question, not in a hot loop)."""
    return insertion(tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, p, job)


# --- editing ------------------------------------------------------------------------------------


@jit
def insert(tm: Timing, rt: Routes, v: int, p: int, job: int) -> None:
    """Put `job` after position p of route v and refresh the route."""
    n = rt.size[v]
    for q in range(n + 1, p, -1):
        rt.nodes[v, q + 1] = rt.nodes[v, q]
    rt.nodes[v, p + 1] = job
    rt.size[v] = n + 1
    refresh(tm, rt, v)


@jit
def remove(tm: Timing, rt: Routes, v: int, first: int, count: int) -> None:
    """Take `count` jobs out of route v from position `first` (1-based) on, and refresh it."""
    n = rt.size[v]
    for q in range(first, n + 2 - count):
        rt.nodes[v, q] = rt.nodes[v, q + count]
    rt.size[v] = n - count
    refresh(tm, rt, v)


@jit
def set_route(tm: Timing, rt: Routes, v: int, jobs: NDArray[np.int64], n: int) -> bool:
    """Replace route v by jobs[:n]; False (and the route left empty) when that is infeasible."""
    for q in range(n):
        rt.nodes[v, q + 1] = jobs[q]
    rt.nodes[v, n + 1] = tm.veh[v, END]
    rt.size[v] = n
    refresh(tm, rt, v)
    if rt.vend[v, DAY_END] >= INF:
        rt.nodes[v, 1] = tm.veh[v, END]
        rt.size[v] = 0
        refresh(tm, rt, v)
        return False
    return True


@jit
def schedule(
    tm: Timing, rt: Routes, v: int, starts: NDArray[np.int64], arrivals: NDArray[np.int64]
) -> tuple[int, int]:
    """Route v's plan as it is shown: service start and arrival per job (out[1..n]), the departure
    (as late as the first visit allows) and the break start (NEG without one).

    The arrival is when the technician reaches the door: after a break taken on the way, before a
    break taken on site while waiting for the next visit.
    """
    n = rt.size[v]
    brk = route_starts(tm, rt, v, starts)
    m = tm.veh[v, LUNCH_LEN]
    gap = rt.vend[v, BREAK_GAP] if m > 0 else 0
    depart = tm.veh[v, SHIFT_START]
    if n > 0 and gap != 1:
        leave = starts[1] - tm.travel[rt.nodes[v, 0], rt.nodes[v, 1]]
        if leave > depart:
            depart = leave
    lo = tm.veh[v, LUNCH_LO]
    for p in range(1, n + 1):
        ready = depart if p == 1 else starts[p - 1] + tm.service[rt.nodes[v, p - 1]]
        t = tm.travel[rt.nodes[v, p - 1], rt.nodes[v, p]]
        arrive = ready + t
        if gap == p:
            b = ready if ready > lo else lo
            if b <= ready + t:
                arrive += m
        arrivals[p] = arrive
    return depart, brk


class Checker:
    """Exact feasibility of whole sequences, on a scratch copy of the routes (explanations, warm
    starts): the same rule as everything else, with nothing of the search's state touched."""

    def __init__(self, timing: Timing, width: int) -> None:
        self.tm = timing
        self.rt = empty_routes(timing, width)

    def end(self, vehicle: int, jobs: list[int]) -> int:
        """The day's end for `jobs` in that order on `vehicle`; INF when infeasible."""
        if len(jobs) + 2 > self.rt.nodes.shape[1]:
            return INF
        ok = set_route(self.tm, self.rt, vehicle, np.array(jobs, dtype=np.int64), len(jobs))
        end = int(self.rt.vend[vehicle, DAY_END]) if ok else INF
        set_route(self.tm, self.rt, vehicle, np.zeros(0, dtype=np.int64), 0)
        return end

    def feasible(self, vehicle: int, jobs: list[int]) -> bool:
        return self.end(vehicle, jobs) < INF
