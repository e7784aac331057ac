"""The pipeline: Scenario -> Problem -> first plan -> OR-Tools search -> Plan.

Pure: values in, values out, no files or network, so the CLI, the service and the benchmarks all
call this one function, and a solve can run in a worker process from plain inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from models import Break, Plan, Route, Scenario, SolverStats, Unassigned, Visit
from optimizer.construct import construct, schedule
from optimizer.decompose import needs_split, restrict, vehicle_groups
from optimizer.explain import dropped_reason
from optimizer.kpis import compute_kpis
from optimizer.options import SolveOptions
from optimizer.problem import Problem, build_problem
from optimizer.route_min import minimise_routes
from optimizer.routing_model import RawRoute, SearchResult, search
from optimizer.ruin_recreate import shorten_routes
from optimizer.travel import TravelProvider

Progress = Callable[[str, dict[str, float]], None]

# With route minimisation, shares of the time limit (measured on Solomon at 10 s, see
# benchmarks/README.md): guided local search to a first plan until FIRST_SHARE (0.15: 46 best-known
# vehicle counts, mean gap 0.88 %; 0.08: 48, 0.83 %; 0.04: 48, 1.07 %); the ejection pool until
# MINIMISE_UNTIL at most, an attempt at one route fewer given up after PATIENCE (attempts that
# succeed mostly do so within a second or two; giving up after 1.2 s instead of 2.5 s lost two of
# twelve R1/RC1/RC2 vehicle counts); ruin and recreate and the polish share the rest.
FIRST_SHARE = 0.08
MINIMISE_UNTIL = 0.6
PATIENCE = 0.25
# Ruin and recreate shortens the routes kept until SHORTEN_UNTIL; guided local search finishes
# (twelve hard R/RC instances at 10 s: mean gap 6.2 % handing over at 0.9, 5.0-5.5 % at 0.98).
SHORTEN_UNTIL = 0.97
# Guided local search's penalty weight for the polish: at the fewest routes the plan is tight and
# OR-Tools' default 0.1 stalls (Solomon RC207 at 3 routes: 1,204 at 0.1, 1,135 at 0.5).
POLISH_LAMBDA = 0.5


def solve(
    scenario: Scenario,
    options: SolveOptions | None = None,
    *,
    previous: Plan | None = None,
    travel: TravelProvider | None = None,
    progress: Progress | None = None,
) -> Plan:
    options = options or SolveOptions()
    began = time.monotonic()
    deadline = began + options.time_limit_seconds

    def phase(name: str, **info: float) -> None:
        if progress is not None:
            progress(name, {"seconds": time.monotonic() - began, **info})

    problem = build_problem(scenario, options, travel=travel, previous=previous)
    phase("problem", jobs=problem.n_jobs, rejected=len(problem.rejected), vehicles=len(problem.vehicles))
    initial = construct(problem, options.weights, seed=options.seed)
    if previous is not None:
        initial = _prefer_previous(problem, initial, previous)
    phase("first plan", planned=sum(len(r) for r in initial))
    first_seconds = time.monotonic() - began

    raw: list[RawRoute] = []
    status, objective, solutions, phases = "NO_SEARCH", None, 0, ["insertion heuristic"]
    if problem.n_jobs and problem.vehicles:
        result = None
        if not needs_split(problem):
            if options.route_minimisation and options.local_search:
                result = _search_with_route_minimisation(problem, options, initial, progress, began, deadline)
            else:
                result = search(problem, options, initial, progress=progress, deadline=deadline)
            phases += result.phases
        if result is None or (not result.routes and any(initial)):
            result = _search_by_groups(problem, options, initial, progress, deadline)
            phases += result.phases
        status, objective, solutions = result.status, result.objective, result.solutions
        raw = result.routes
        if not raw and any(initial):
            raw = _raw_from_initial(problem, initial)
            phases.append("search found nothing; kept the first plan")
    plan = assemble(problem, raw, previous)
    phase("done", planned=plan.kpis.jobs_planned)
    plan.solver = SolverStats(
        status=status,
        wall_seconds=round(time.monotonic() - began, 3),
        first_solution_seconds=round(first_seconds, 3),
        objective=objective,
        seed=options.seed,
        time_limit_seconds=options.time_limit_seconds,
        solutions=solutions,
        search_phases=phases,
    )
    return plan


def _search_with_route_minimisation(
    problem: Problem,
    options: SolveOptions,
    initial: list[list[int]],
    progress: Progress | None,
    began: float,
    deadline: float,
) -> SearchResult:
    """A good plan first, then empty routes (`route_min`), shorten them (`ruin_recreate`), and
    polish travel on the days kept.

    After the first phase the fixed cost per technician-day is dropped and the model restricted to
    the technician-days in use: guided local search scales its penalties by arc costs, and a fixed
    cost folded into every first arc of a route swamps the travel it should be polishing.
    """
    span = deadline - began
    first = search(problem, options, initial, progress=progress, deadline=began + span * FIRST_SHARE)
    if not first.routes:
        return first
    plain = options.model_copy(
        update={"weights": options.weights.model_copy(update={"technician_day_fixed": 0.0})}
    )
    kept, notes = minimise_routes(
        problem,
        {r.vehicle: r.nodes for r in first.routes},
        began + span * MINIMISE_UNTIL,
        options.seed,
        progress,
        patience=span * PATIENCE,
    )
    if progress is not None:
        progress("route minimisation", {"technician_days": len(kept), "seconds": time.monotonic() - began})
    kept, shortened = shorten_routes(
        problem, kept, began + span * SHORTEN_UNTIL, plain.weights, options.seed, progress
    )
    notes += shortened
    routes = _raw_from_initial(problem, [kept.get(v.index, []) for v in problem.vehicles])
    used = [r.vehicle for r in routes if r.nodes]
    nodes = list(range(problem.n_jobs))
    sub = restrict(problem, used, nodes)
    local_of = {v: i for i, v in enumerate(used)}
    warm: list[list[int]] = [[] for _ in used]
    for rr in routes:
        if rr.nodes:
            warm[local_of[rr.vehicle]] = rr.nodes
    final = search(sub, plain, warm, progress=progress, deadline=deadline, penalty_weight=POLISH_LAMBDA)
    polished = [
        RawRoute(used[rr.vehicle], rr.nodes, rr.starts, rr.depart, rr.end, rr.break_start)
        for rr in final.routes
    ]
    if sum(len(r.nodes) for r in polished) < sum(len(r.nodes) for r in routes):
        polished = routes
    return SearchResult(
        routes=polished,
        status=final.status,
        objective=final.objective,
        solutions=first.solutions + final.solutions,
        first_solution_seconds=first.first_solution_seconds,
        phases=[*first.phases, *notes, "guided local search polish on the technician-days kept"],
    )


def _search_by_groups(
    problem: Problem,
    options: SolveOptions,
    initial: list[list[int]],
    progress: Progress | None,
    deadline: float,
) -> SearchResult:
    """Improve group by group (see `decompose`); jobs a group leaves out go on to the next."""
    groups = vehicle_groups(problem)
    routed = {n for nodes in initial for n in nodes}
    waiting = [n for n in range(problem.n_jobs) if n not in routed]
    raw: list[RawRoute] = []
    solutions, objective = 0, 0
    statuses: set[str] = set()
    for gi, group in enumerate(groups):
        members = set(group)
        own = [n for vi in group for n in initial[vi]]
        extra = [n for n in waiting if members.intersection(problem.allowed[n].tolist())]
        nodes = own + extra
        if not nodes:
            continue
        local = {n: i for i, n in enumerate(nodes)}
        sub = restrict(problem, group, nodes)
        sub_initial = [[local[n] for n in initial[vi]] for vi in group]
        budget = max(deadline - time.monotonic(), 0.2) / (len(groups) - gi)
        result = search(sub, options, sub_initial, progress=progress, deadline=time.monotonic() + budget)
        statuses.add(result.status)
        solutions += result.solutions
        objective += result.objective or 0
        got = result.routes or _raw_from_initial(sub, sub_initial)
        served: set[int] = set()
        for rr in got:
            mapped = [nodes[i] for i in rr.nodes]
            served.update(mapped)
            raw.append(RawRoute(group[rr.vehicle], mapped, rr.starts, rr.depart, rr.end, rr.break_start))
        waiting = [n for n in waiting if n not in served] + [n for n in own if n not in served]
    return SearchResult(
        routes=raw,
        status="+".join(sorted(statuses)) or "NO_SEARCH",
        objective=objective,
        solutions=solutions,
        first_solution_seconds=None,
        phases=[f"decomposed into {len(groups)} groups of at most 100 technician-days"],
    )


def _prefer_previous(problem: Problem, initial: list[list[int]], previous: Plan) -> list[list[int]]:
    """Warm start from the previous plan where its routes are still feasible as they stand."""
    by_key = {(v.technician_id, v.date): v.index for v in problem.vehicles}
    node_of = {job.id: n for n, job in enumerate(problem.jobs)}
    routes: list[list[int]] = [[] for _ in problem.vehicles]
    used: set[int] = set()
    for route in previous.routes:
        vi = by_key.get((route.technician_id, route.date))
        if vi is None:
            continue
        nodes = [node_of[v.job_id] for v in route.visits if v.job_id in node_of]
        nodes = [n for n in nodes if vi in set(problem.allowed[n].tolist())]
        if nodes and schedule(problem, problem.vehicles[vi], nodes) is not None:
            routes[vi] = nodes
            used.update(nodes)
    if not used:
        return initial
    # Keep the constructor's routes for technician-days the previous plan did not use.
    for vi, nodes in enumerate(initial):
        if not routes[vi]:
            rest = [n for n in nodes if n not in used]
            if rest and schedule(problem, problem.vehicles[vi], rest) is not None:
                routes[vi] = rest
                used.update(rest)
    return routes


def _raw_from_initial(problem: Problem, initial: list[list[int]]) -> list[RawRoute]:
    out: list[RawRoute] = []
    for vi, nodes in enumerate(initial):
        if not nodes:
            continue
        sched = schedule(problem, problem.vehicles[vi], nodes)
        if sched is not None:
            out.append(RawRoute(vi, nodes, sched.starts, sched.start, sched.end, sched.break_start))
    return out


def assemble(problem: Problem, raw: list[RawRoute], previous: Plan | None) -> Plan:
    p, scenario = problem, problem.scenario
    routes: list[Route] = []
    served: set[int] = set()
    for rr in raw:
        v = p.vehicles[rr.vehicle]
        lunch = v.lunch
        brk = (rr.break_start, rr.break_start + lunch[2]) if (rr.break_start is not None and lunch) else None
        visits: list[Visit] = []
        ready, prev = rr.depart, v.start_node
        km = 0.0
        travel_ticks = 0
        for node, start in zip(rr.nodes, rr.starts, strict=True):
            tr = int(p.travel[prev, node])
            arrival = ready + tr
            if brk and ready <= brk[0] and brk[1] <= start and brk[0] < arrival:
                arrival += brk[1] - brk[0]  # lunch taken on the way
            visits.append(
                Visit(
                    job_id=p.jobs[node].id,
                    arrival=p.moment(min(arrival, start)),
                    start=p.moment(start),
                    end=p.moment(start + int(p.service[node])),
                )
            )
            km += float(p.km[prev, node])
            travel_ticks += tr
            ready, prev = start + int(p.service[node]), node
            served.add(node)
        km += float(p.km[prev, v.end_node])
        travel_ticks += int(p.travel[prev, v.end_node])
        routes.append(
            Route(
                technician_id=v.technician_id,
                date=v.date,
                start=p.moment(rr.depart),
                end=p.moment(rr.end),
                distance_km=round(km, 3),
                travel_minutes=round(p.minutes(travel_ticks), 2),
                overtime_minutes=round(p.minutes(max(0, rr.end - v.shift_end)), 2),
                visits=visits,
                break_=Break(start=p.moment(brk[0]), end=p.moment(brk[1])) if brk else None,
            )
        )
    routes.sort(key=lambda r: (r.date, r.technician_id))
    unassigned = [
        Unassigned(job_id=scenario.jobs[ji].id, reason=reason, detail=detail)
        for ji, reason, detail in p.rejected
    ]
    for node in range(p.n_jobs):
        if node not in served:
            reason, detail = dropped_reason(p, node)
            unassigned.append(Unassigned(job_id=p.jobs[node].id, reason=reason, detail=detail))
    order = {j.id: i for i, j in enumerate(scenario.jobs)}
    unassigned.sort(key=lambda u: order[u.job_id])
    return Plan(
        scenario=scenario.name,
        timezone=scenario.timezone,
        horizon_start=scenario.horizon.start,
        horizon_days=scenario.horizon.days,
        routes=routes,
        unassigned=unassigned,
        kpis=compute_kpis(scenario, routes, unassigned, previous),
        solver=SolverStats(status="", wall_seconds=0.0, seed=0, time_limit_seconds=0.0),
    )
