"""The timing kernel against a brute-force recomputation (every break position tried in turn).

The O(1) insertion and replacement checks, and the whole-route caches, must agree exactly with
re-timing the whole new route from scratch, with lunch breaks, several windows per job and release
dates (which are the first window clipped) in the generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.kernel import (
    DAY_END,
    INF,
    Checker,
    Timing,
    empty_routes,
    insert,
    insertion_at,
    remove,
    replacement,
    set_route,
)


@dataclass
class Case:
    timing: Timing
    n_jobs: int
    domains: list[list[tuple[int, int]]]


def reference(case: Case, v: int, seq: list[int]) -> tuple[int, list[int]]:
    """(day's end, starts) of the earliest-ending schedule of `seq` on vehicle v; (INF, []) if none.

    Independent of the kernel: simulates the day once per break position (each gap, after the end).
    """
    tm = case.timing
    start_node, end_node, shift_start, _, latest, lo, hi, m = (int(x) for x in tm.veh[v])
    travel, service = tm.travel, tm.service
    gaps: list[int | None] = [None] if m == 0 or not seq else [*range(1, len(seq) + 2), len(seq) + 2]
    best: tuple[int, list[int]] = (INF, [])
    for gap in gaps:
        ready, prev, starts, ok = shift_start, start_node, [], True
        for k, node in enumerate([*seq, end_node]):
            pos = k + 1
            arrive = ready + int(travel[prev, node])
            if gap == pos:
                if ready > hi:
                    ok = False
                    break
                arrive = max(ready + int(travel[prev, node]), lo) + m
            if pos <= len(seq):
                begin = next((max(arrive, a) for a, b in case.domains[node] if arrive <= b), None)
                if begin is None:
                    ok = False
                    break
                starts.append(begin)
                ready, prev = begin + int(service[node]), node
            else:
                ready = arrive
        if not ok or ready > latest:
            continue
        if gap == len(seq) + 2 and ready > hi:
            continue
        if ready < best[0]:
            best = (ready, starts)
    return best


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_jobs = draw(st.integers(1, 6))
    n_veh = draw(st.integers(1, 2))
    n_nodes = n_jobs + 1
    travel = np.array(
        [[0 if i == j else draw(st.integers(1, 40)) for j in range(n_nodes)] for i in range(n_nodes)],
        dtype=np.int64,
    )
    service = np.array([draw(st.integers(5, 60)) for _ in range(n_jobs)] + [0], dtype=np.int64)
    domains: list[list[tuple[int, int]]] = []
    for _ in range(n_jobs):
        cuts = sorted(draw(st.lists(st.integers(0, 600), min_size=2, max_size=6, unique=True)))
        intervals = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
        release = draw(st.integers(0, 200))  # a spare part: nothing starts before it
        clipped = [(max(a, release), b) for a, b in intervals if b >= release]
        domains.append(clipped or [(0, 600)])
    veh = []
    for _ in range(n_veh):
        shift_start = draw(st.integers(0, 100))
        shift_end = shift_start + draw(st.integers(60, 400))
        latest = shift_end + draw(st.sampled_from([0, 30, 60]))
        if draw(st.booleans()):
            m = draw(st.integers(10, 40))
            lo = draw(st.integers(shift_start, shift_start + 200))
            hi = lo + draw(st.integers(0, 120))
            hi = min(hi, latest - m)
            if hi < lo:
                lo = hi = m = 0
        else:
            lo = hi = m = 0
        veh.append((n_jobs, n_jobs, shift_start, shift_end, latest, lo, hi, m))
    ptr = np.cumsum([0] + [len(d) for d in domains]).astype(np.int64)
    timing = Timing(
        travel=travel,
        service=service,
        dom_ptr=ptr,
        dom=np.array([iv for d in domains for iv in d], dtype=np.int64).reshape(-1, 2),
        veh=np.array(veh, dtype=np.int64),
    )
    return Case(timing, n_jobs, domains)


def _sequence(draw: st.DrawFn, case: Case) -> list[int]:
    return draw(st.permutations(list(range(case.n_jobs))))[: draw(st.integers(0, case.n_jobs))]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_route_end_equals_the_brute_force_schedule(data: st.DataObject) -> None:
    case = data.draw(cases())
    v = data.draw(st.integers(0, len(case.timing.veh) - 1))
    seq = _sequence(data.draw, case)
    expected, _ = reference(case, v, seq)
    got = Checker(case.timing, case.n_jobs + 3).end(v, seq)
    assert got == (expected if seq else int(case.timing.veh[v, 2]))


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_o1_insertion_equals_recomputing_the_route(data: st.DataObject) -> None:
    case = data.draw(cases())
    tm = case.timing
    v = data.draw(st.integers(0, len(tm.veh) - 1))
    seq = _sequence(data.draw, case)
    if reference(case, v, seq)[0] >= INF:
        return  # insertion is asked of feasible routes only
    rt = empty_routes(tm, case.n_jobs + 3)
    assert set_route(tm, rt, v, np.array(seq, dtype=np.int64), len(seq))
    for job in [j for j in range(case.n_jobs) if j not in seq]:
        for p in range(len(seq) + 1):
            new = [*seq[:p], job, *seq[p:]]
            start, _ = insertion_at(tm, rt, v, p, job)
            best_start = min(
                (s[p] for g in _break_options(case, v, new) if (s := _starts_with_gap(case, v, new, g))),
                default=INF,
            )
            assert (start < INF) == (reference(case, v, new)[0] < INF), (seq, job, p)
            assert start == best_start, (seq, job, p)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_o1_replacement_equals_recomputing_the_route(data: st.DataObject) -> None:
    case = data.draw(cases())
    tm = case.timing
    v = data.draw(st.integers(0, len(tm.veh) - 1))
    seq = _sequence(data.draw, case)
    if not seq or reference(case, v, seq)[0] >= INF:
        return
    rt = empty_routes(tm, case.n_jobs + 3)
    set_route(tm, rt, v, np.array(seq, dtype=np.int64), len(seq))
    for job in [j for j in range(case.n_jobs) if j not in seq]:
        for p in range(1, len(seq) + 1):
            new = [*seq[: p - 1], job, *seq[p:]]
            start, _ = replacement(
                tm.travel, tm.service, tm.dom_ptr, tm.dom, tm.veh, rt.nodes, rt.cache, v, p, job
            )
            assert (start < INF) == (reference(case, v, new)[0] < INF), (seq, job, p)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_edits_in_place_equal_a_fresh_route(data: st.DataObject) -> None:
    """Insert and remove in place, then compare every cache with the route built from scratch."""
    case = data.draw(cases())
    tm = case.timing
    v = data.draw(st.integers(0, len(tm.veh) - 1))
    rt = empty_routes(tm, case.n_jobs + 3)
    seq: list[int] = []
    for job in data.draw(st.permutations(list(range(case.n_jobs)))):
        p = data.draw(st.integers(0, len(seq)))
        if insertion_at(tm, rt, v, p, job)[0] < INF:
            insert(tm, rt, v, p, job)
            seq.insert(p, job)
    if seq and data.draw(st.booleans()):
        first = data.draw(st.integers(1, len(seq)))
        count = data.draw(st.integers(1, len(seq) - first + 1))
        remove(tm, rt, v, first, count)
        del seq[first - 1 : first - 1 + count]
    fresh = empty_routes(tm, case.n_jobs + 3)
    set_route(tm, fresh, v, np.array(seq, dtype=np.int64), len(seq))
    n = len(seq)
    assert rt.nodes[v, : n + 2].tolist() == fresh.nodes[v, : n + 2].tolist()
    assert (rt.cache[v, : n + 2] == fresh.cache[v, : n + 2]).all()
    assert rt.vend[v].tolist() == fresh.vend[v].tolist()
    assert int(rt.vend[v, DAY_END]) == (reference(case, v, seq)[0] if seq else int(tm.veh[v, 2]))


def _break_options(case: Case, v: int, seq: list[int]) -> list[int | None]:
    if int(case.timing.veh[v, 7]) == 0:
        return [None]
    return [*range(1, len(seq) + 2), len(seq) + 2]


def _starts_with_gap(case: Case, v: int, seq: list[int], gap: int | None) -> list[int] | None:
    """Earliest starts with the break in one given gap; None when that day is infeasible."""
    tm = case.timing
    start_node, end_node, shift_start, _, latest, lo, hi, m = (int(x) for x in tm.veh[v])
    ready, prev, starts = shift_start, start_node, []
    for k, node in enumerate([*seq, end_node]):
        arrive = ready + int(tm.travel[prev, node])
        if gap == k + 1:
            if ready > hi:
                return None
            arrive = max(arrive, lo) + m
        if k < len(seq):
            begin = next((max(arrive, a) for a, b in case.domains[node] if arrive <= b), None)
            if begin is None:
                return None
            starts.append(begin)
            ready, prev = begin + int(tm.service[node]), node
        else:
            ready = arrive
    if ready > latest or (gap == len(seq) + 2 and ready > hi):
        return None
    return starts
