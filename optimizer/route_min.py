"""Route minimisation: empty whole technician-days with an ejection pool (Nagata & Bräysy, 2009).

Guided local search with a fixed cost per technician-day rarely closes a route: every job of the
route must move at once, and each single move looks like a loss. The ejection-pool heuristic does it
the other way round: take one route away, put its jobs in a pool, and insert them one by one; a job
that fits nowhere goes in anyway by ejecting the cheapest set of at most `MAX_EJECTED` jobs from one
route (cheap = rarely ejected before, a counter that grows each time a job is hard to place), and a
burst of random feasible moves between insertions keeps the search from cycling. When the pool is
empty the plan has one technician-day fewer; when time runs out first, the last plan that served
everything stands. Benchmarks (fewest vehicles first) and field service (a technician-day freed for
other work) both gain from it.

Plain Python over the problem's arrays: every check is O(1) (earliest starts forward, latest starts
backward, as in `construct`) or one pass over a route, so a 100-job plan sees thousands of ejections
a second. Routes of technicians with a lunch break are re-checked exactly by `construct.schedule`,
so whatever this returns is feasible by the same rule as the first plan.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from optimizer.construct import first_start, last_start, schedule
from optimizer.problem import Problem

MAX_EJECTED = 3  # jobs one ejection may take out of a route (the paper uses 5; Python pays per level)
PERTURB_MOVES = 100  # random feasible moves after each ejection
NEIGHBOURS = 20  # a perturbation move pairs a job with one of its nearest jobs
_UNSET = -(1 << 62)  # a start time not computed yet
# A route's jobs, earliest and latest starts and load (None: the route was not in use).
Snapshot = tuple[list[int], list[int], list[int], int] | None


class RouteSet:
    """Routes of the technician-days in use, with the timing data that makes insertion checks O(1).

    Shared by the ejection pool here and by ruin-and-recreate (`optimizer.ruin_recreate`).
    """

    def __init__(
        self, problem: Problem, routes: dict[int, list[int]], seed: int, neighbours: int = NEIGHBOURS
    ) -> None:
        p = problem
        self.p = p
        self.rng = random.Random(seed)
        self.travel: list[list[int]] = p.travel.tolist()
        self.travel_to: list[list[int]] = p.travel.T.tolist()  # travel_to[j][i]: from i to j
        self.service: list[int] = p.service.tolist()
        self.demand: list[int] = p.demand.tolist()
        self.lo = [d[0][0] for d in p.domains]
        self.hi = [d[-1][1] for d in p.domains]
        self.multi = [len(d) > 1 for d in p.domains]
        self.allowed = [frozenset(a.tolist()) for a in p.allowed]
        self.cap = [v.capacity if v.capacity is not None else 1 << 60 for v in p.vehicles]
        self.routes = {v: list(nodes) for v, nodes in routes.items() if nodes}
        self.est: dict[int, list[int]] = {}
        self.lst: dict[int, list[int]] = {}
        self.load: dict[int, int] = {}
        self.route_of: dict[int, int] = {}
        for v in self.routes:
            self.refresh(v)
        both_ways = p.travel[: p.n_jobs, : p.n_jobs] + p.travel[: p.n_jobs, : p.n_jobs].T
        np.fill_diagonal(both_ways, np.iinfo(np.int64).max)
        # Each job's `neighbours` nearest other jobs, nearest first.
        self.near: list[list[int]] = np.argsort(both_ways, axis=1, kind="stable")[:, :neighbours].tolist()

    # --- timing ------------------------------------------------------------------------------

    def start(self, node: int, arrive: int) -> int | None:
        """Earliest service start at or after `arrive`, None if every window has closed."""
        if self.multi[node]:
            return first_start(self.p.domains[node], arrive)
        st = arrive if arrive > self.lo[node] else self.lo[node]
        return st if st <= self.hi[node] else None

    def latest(self, node: int, bound: int) -> int | None:
        """Latest service start at or before `bound`, None if no window opens by then."""
        if self.multi[node]:
            return last_start(self.p.domains[node], bound)
        if bound < self.lo[node]:
            return None
        return bound if bound < self.hi[node] else self.hi[node]

    def refresh(self, v: int) -> None:
        """All start times, the load and the job -> route index of route v, from scratch."""
        nodes = self.routes[v]
        self.est[v] = [_UNSET] * len(nodes)
        self.lst[v] = [_UNSET] * len(nodes)
        if nodes:
            self._forward(v, 0)
            self._backward(v, len(nodes) - 1)
        for node in nodes:
            self.route_of[node] = v
        self.load[v] = sum(self.demand[n] for n in nodes)

    def feasible(self, v: int, nodes: Sequence[int]) -> bool:
        """Whole-route check for technician-day v (capacity, skills, windows, shift, lunch)."""
        if not nodes:
            return True
        allowed, demand = self.allowed, self.demand
        if any(v not in allowed[n] for n in nodes) or sum(demand[n] for n in nodes) > self.cap[v]:
            return False
        veh = self.p.vehicles[v]
        if veh.lunch is not None:
            return schedule(self.p, veh, list(nodes)) is not None
        travel, service = self.travel, self.service
        ready, prev = veh.shift_start, veh.start_node
        for node in nodes:
            st = self.start(node, ready + travel[prev][node])
            if st is None:
                return False
            ready, prev = st + service[node], node
        return ready + travel[prev][veh.end_node] <= veh.latest_end

    def set_route(self, v: int, nodes: list[int]) -> None:
        if nodes:
            self.routes[v] = nodes
            self.refresh(v)
        else:
            self.routes.pop(v, None)
            self.est.pop(v, None)
            self.lst.pop(v, None)
            self.load.pop(v, None)

    # --- insertion ---------------------------------------------------------------------------

    def best_insertion(
        self, job: int, blink: float = 0.0, among: Iterable[int] | None = None
    ) -> tuple[int, int] | None:
        """The cheapest feasible (route, position) for `job` in the routes in use, or None.

        `blink`: the share of feasible positions skipped at random (ruin-and-recreate's "blinks",
        which keep the recreate from rebuilding the same plan every time). `among`: only these
        routes (those in use).
        """
        travel, service, lo, hi = self.travel, self.service, self.lo[job], self.hi[job]
        single = not self.multi[job]
        from_job, to_job = travel[job], self.travel_to[job]
        allowed, need = self.allowed[job], self.demand[job]
        rand = self.rng.random
        best: tuple[int, int, int] | None = None
        routes = self.routes
        for v in routes if among is None else among:
            nodes = routes[v]
            if v not in allowed or self.load[v] + need > self.cap[v]:
                continue
            veh = self.p.vehicles[v]
            est, lst = self.est[v], self.lst[v]
            n, end_node, latest_end = len(nodes), veh.end_node, veh.latest_end
            prev, ready = veh.start_node, veh.shift_start
            for k in range(n + 1):
                if k:
                    prev = nodes[k - 1]
                    ready = est[k - 1] + service[prev]
                if ready > hi:
                    break
                t_in = to_job[prev]
                a = ready + t_in
                if single:
                    st = a if a > lo else lo
                    if st > hi:
                        continue
                else:
                    found = self.start(job, a)
                    if found is None:
                        continue
                    st = found
                if k < n:
                    nxt = nodes[k]
                    t_out = from_job[nxt]
                    if st + service[job] + t_out > lst[k]:
                        continue
                else:
                    nxt = end_node
                    t_out = from_job[nxt]
                    if st + service[job] + t_out > latest_end:
                        continue
                delta = t_in + t_out - travel[prev][nxt]
                if best is not None and delta >= best[0]:
                    continue
                if blink and rand() < blink:
                    continue
                if veh.lunch is not None and not self.feasible(v, [*nodes[:k], job, *nodes[k:]]):
                    continue
                best = (delta, v, k)
        return None if best is None else (best[1], best[2])

    def insert(self, job: int, v: int, k: int) -> None:
        """Insert `job` before position k of route v, updating only the start times that change."""
        self.routes[v].insert(k, job)
        self.est[v].insert(k, _UNSET)
        self.lst[v].insert(k, _UNSET)
        self._forward(v, k)
        self._backward(v, k)
        self.load[v] += self.demand[job]
        self.route_of[job] = v

    def remove_string(self, v: int, first: int, length: int) -> list[int]:
        """Take `length` consecutive jobs out of route v from position `first`; returns them."""
        nodes = self.routes[v]
        out = nodes[first : first + length]
        for x in out:
            self.route_of.pop(x, None)
        if length >= len(nodes):
            self.set_route(v, [])
            return out
        del nodes[first : first + length]
        del self.est[v][first : first + length]
        del self.lst[v][first : first + length]
        if first < len(nodes):
            self._forward(v, first)
        if first:
            self._backward(v, first - 1)
        self.load[v] -= sum(self.demand[x] for x in out)
        return out

    def snapshot(self, v: int) -> Snapshot:
        if v not in self.routes:
            return None
        return list(self.routes[v]), list(self.est[v]), list(self.lst[v]), self.load[v]

    def restore(self, v: int, snap: Snapshot) -> None:
        if snap is None:
            self.set_route(v, [])
            return
        nodes, self.est[v], self.lst[v], self.load[v] = snap
        self.routes[v] = nodes
        for x in nodes:
            self.route_of[x] = v

    def _forward(self, v: int, k: int) -> None:
        """Earliest starts from position k on, until one comes out as it was (the rest follow it)."""
        nodes, est, veh = self.routes[v], self.est[v], self.p.vehicles[v]
        travel, service, lo, hi, multi = self.travel, self.service, self.lo, self.hi, self.multi
        if k:
            prev = nodes[k - 1]
            ready = est[k - 1] + service[prev]
        else:
            prev, ready = veh.start_node, veh.shift_start
        for i in range(k, len(nodes)):
            node = nodes[i]
            a = ready + travel[prev][node]
            st = self.start(node, a) if multi[node] else (a if a > lo[node] else lo[node])
            assert st is not None and st <= hi[node], "a route lost feasibility"
            if st == est[i]:
                break
            est[i] = st
            ready, prev = st + service[node], node

    def _backward(self, v: int, k: int) -> None:
        """Latest starts from position k down, until one comes out as it was."""
        nodes, lst, veh = self.routes[v], self.lst[v], self.p.vehicles[v]
        travel, service = self.travel, self.service
        if k + 1 < len(nodes):
            nxt, bound = nodes[k + 1], lst[k + 1]
        else:
            nxt, bound = veh.end_node, veh.latest_end
        for i in range(k, -1, -1):
            node = nodes[i]
            latest = self.latest(node, bound - travel[node][nxt] - service[node])
            assert latest is not None, "a route lost feasibility"
            if latest == lst[i]:
                break
            lst[i] = bound = latest
            nxt = node

    # --- ejection ----------------------------------------------------------------------------

    def best_ejection(self, job: int, weight: list[int]) -> tuple[int, int, list[int]] | None:
        """Insert `job` into some route by ejecting the lightest set of at most MAX_EJECTED jobs.

        Depth-first over each route in order, keeping or ejecting each job and placing `job` in one
        gap; a branch dies when its weight reaches the best found or a kept job can no longer start
        in its window. Returns (route, position in the original route, ejected positions).
        """
        self._best: tuple[int, float, tuple[int, int, list[int]] | None] = (1 << 62, 0.0, None)
        for v in self.routes:
            if v in self.allowed[job]:
                self._search_route(job, weight, v)
        return self._best[2]

    def _record(self, job: int, v: int, w: int, pos: int, out: list[int]) -> None:
        tie = self.rng.random()  # equal weights: a random one, so repeated ejections do not cycle
        if w > self._best[0] or (w == self._best[0] and tie >= self._best[1]):
            return
        if self.p.vehicles[v].lunch is not None and not self.feasible(v, self._ejected(v, job, pos, out)):
            return
        self._best = (w, tie, (v, pos, list(out)))

    def _search_route(self, job: int, weight: list[int], v: int) -> None:
        """Depth-first search over route v (the hot loop: locals only, windows checked inline)."""
        travel, service, demand = self.travel, self.service, self.demand
        lo, hi, multi, domains = self.lo, self.hi, self.multi, self.p.domains
        nodes, lst, n = self.routes[v], self.lst[v], len(self.routes[v])
        veh = self.p.vehicles[v]
        end_node, latest_end = veh.end_node, veh.latest_end
        excess = self.load[v] + demand[job] - self.cap[v]  # demand that must leave the route
        hi_job, service_job, to_job = hi[job], service[job], [row[job] for row in travel]
        out: list[int] = []
        record = self._record

        def dfs(i: int, ready: int, prev: int, pos: int, w: int, freed: int) -> None:
            # From the route's i-th job on, ready at `ready` after `prev`; pos < 0: `job` not placed.
            while w < self._best[0]:
                if pos < 0:
                    if ready > hi_job:
                        return
                    a = ready + to_job[prev]
                    if multi[job]:
                        st = first_start(domains[job], a)
                        if st is not None:
                            dfs(i, st + service_job, job, i, w, freed)
                    else:
                        st = a if a > lo[job] else lo[job]
                        if st <= hi_job:
                            dfs(i, st + service_job, job, i, w, freed)
                if i == n:
                    if pos >= 0 and freed >= excess and ready + travel[prev][end_node] <= latest_end:
                        record(job, v, w, pos, out)
                    return
                node = nodes[i]
                if len(out) < MAX_EJECTED and w + weight[node] < self._best[0]:
                    out.append(i)
                    dfs(i + 1, ready, prev, pos, w + weight[node], freed + demand[node])
                    out.pop()
                a = ready + travel[prev][node]
                if multi[node]:
                    found = first_start(domains[node], a)
                    if found is None:
                        return
                    st = found
                else:
                    st = a if a > lo[node] else lo[node]
                    if st > hi[node]:
                        return
                if pos >= 0 and freed >= excess and st <= lst[i]:
                    record(job, v, w, pos, out)  # the rest of the route is as before: feasible
                    return
                ready, prev, i = st + service[node], node, i + 1

        dfs(0, veh.shift_start, veh.start_node, -1, 0, 0)

    def _ejected(self, v: int, job: int, pos: int, out: list[int]) -> list[int]:
        """Route v with the jobs at positions `out` taken out and `job` placed before position pos."""
        nodes, gone = self.routes[v], set(out)
        kept = [x for i, x in enumerate(nodes) if i not in gone]
        at = pos - sum(1 for i in out if i < pos)
        return [*kept[:at], job, *kept[at:]]

    def eject_and_insert(self, job: int, v: int, pos: int, out: list[int]) -> list[int]:
        ejected = [self.routes[v][i] for i in out]
        self.routes[v] = self._ejected(v, job, pos, out)
        self.refresh(v)
        for x in ejected:
            self.route_of.pop(x, None)
        return ejected

    # --- perturbation ------------------------------------------------------------------------

    def perturb(self, moves: int) -> None:
        """Random feasible relocations, swaps and tail exchanges between neighbouring routes.

        Nagata and Bräysy accept any feasible move here; accepting only those that do not lengthen
        the plan empties as many routes on Solomon's R1 and RC1 and leaves a plan the travel polish
        can finish (measured: a random walk left R105 at 1,717 distance units, this at 1,655).
        """
        rng, travel, vehicles = self.rng, self.travel, self.p.vehicles
        served = list(self.route_of)
        if not served:
            return
        for _ in range(moves):
            a = served[int(rng.random() * len(served))]
            near = self.near[a]
            b = near[int(rng.random() * len(near))]
            va, vb = self.route_of.get(a), self.route_of.get(b)
            if va is None or vb is None or va == vb:
                continue
            ra, rb = self.routes[va], self.routes[vb]
            i, j = ra.index(a), rb.index(b)
            pa = ra[i - 1] if i else vehicles[va].start_node
            na = ra[i + 1] if i + 1 < len(ra) else vehicles[va].end_node
            pb = rb[j - 1] if j else vehicles[vb].start_node
            nb = rb[j + 1] if j + 1 < len(rb) else vehicles[vb].end_node
            kind = int(rng.random() * 3)
            if kind == 0:  # move a behind b
                if len(ra) == 1:
                    continue  # a perturbation never closes a route
                delta = travel[pa][na] - travel[pa][a] - travel[a][na]
                delta += travel[b][a] + travel[a][nb] - travel[b][nb]
                new_a, new_b = ra[:i] + ra[i + 1 :], [*rb[: j + 1], a, *rb[j + 1 :]]
            elif kind == 1:  # swap a and b
                delta = travel[pa][b] + travel[b][na] - travel[pa][a] - travel[a][na]
                delta += travel[pb][a] + travel[a][nb] - travel[pb][b] - travel[b][nb]
                new_a, new_b = [*ra[:i], b, *ra[i + 1 :]], [*rb[:j], a, *rb[j + 1 :]]
            else:  # 2-opt*: exchange the tails after a and after b
                if vehicles[va].end_node != vehicles[vb].end_node:
                    continue  # the tails' last leg would change too; rare, not worth pricing
                delta = travel[a][nb] + travel[b][na] - travel[a][na] - travel[b][nb]
                new_a, new_b = ra[: i + 1] + rb[j + 1 :], rb[: j + 1] + ra[i + 1 :]
            if delta > 0:
                continue  # only moves that do not lengthen the plan: its shape survives for the polish
            if self.feasible(va, new_a) and self.feasible(vb, new_b):
                self.set_route(va, new_a)
                self.set_route(vb, new_b)


def minimise_routes(
    problem: Problem,
    routes: dict[int, list[int]],
    deadline: float,
    seed: int = 0,
    progress: Callable[[str, dict[str, float]], None] | None = None,
    patience: float = 0.0,
) -> tuple[dict[int, list[int]], list[str]]:
    """Fewer technician-days serving the same jobs; every route returned passes `schedule`.

    An attempt to empty one more route gives up after `patience` seconds or three times as long
    as all the routes emptied before it took, whichever is longer: attempts either succeed fast or
    hardly at all, and the time left is better spent shortening the routes kept.
    """
    began = time.monotonic()
    state = RouteSet(problem, routes, seed)
    rng = state.rng
    began_with = len(state.routes)
    best = {v: list(nodes) for v, nodes in state.routes.items()}
    ejections = 0
    while len(state.routes) > 1 and time.monotonic() < deadline:
        victim = rng.choice(sorted(state.routes))
        pool = list(state.routes[victim])
        state.set_route(victim, [])
        for node in pool:
            state.route_of.pop(node, None)
        weight = [1] * problem.n_jobs
        now = time.monotonic()
        give_up = min(deadline, now + max(patience, 3 * (now - began)))
        while pool and time.monotonic() < give_up:
            job = pool.pop()
            spot = state.best_insertion(job)
            if spot is not None:
                state.insert(job, *spot)
                continue
            weight[job] += 1
            found = state.best_ejection(job, weight)
            if found is None:
                pool.insert(0, job)
            else:
                ejections += 1
                pool.extend(state.eject_and_insert(job, *found))
            state.perturb(PERTURB_MOVES)
        if pool:
            break
        best = {v: list(nodes) for v, nodes in state.routes.items()}
        if progress is not None:
            progress("route minimisation", {"technician_days": len(best), "ejections": ejections})
    for v, nodes in best.items():
        assert schedule(problem, problem.vehicles[v], nodes) is not None, "route minimisation broke a route"
    note = (
        f"route minimisation (ejection pool): {began_with} -> {len(best)} technician-days, "
        f"{ejections} ejections"
    )
    return best, [note]
