"""The OR-Tools routing model: one vehicle per technician-day, matrices registered natively.

Priced by the one cost model (`optimizer.costs`): travel (arc cost), overtime (soft upper bound on
the end time), SLA lateness (soft upper bound on the job's start), jobs left out (disjunction
penalties by priority, capped: `costs.capped_unserved_penalties`), and the per technician-day job
costs (waiting days, preferred technician, stability), carried by a "soft" dimension whose
per-vehicle unary transits sum up along the route and cost by span. No Python callback is called
inside the search loop except the once-per-solution progress hook.

Its answers are node sequences: the kernel times them, and `costs.better` decides whether they beat
the plan fieldplan's own search holds (the capped penalties do not hold the strict priority order).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from optimizer.costs import (
    DAY_TICKS,
    W_LATE_DAY,
    W_OVERTIME,
    W_SLA,
    capped_unserved_penalties,
    cost_model,
    vehicle_job_costs,
)
from optimizer.options import SolveOptions
from optimizer.problem import Problem, Vehicle

ProgressHook = Callable[[str, dict[str, float]], None]


@dataclass
class SearchResult:
    routes: list[tuple[int, list[int]]]  # (vehicle, job nodes) per used technician-day
    status: str
    objective: int | None
    solutions: int
    first_solution_seconds: float | None
    phases: list[str] = field(default_factory=list)


@dataclass
class Model:
    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    time_dim: pywrapcp.RoutingDimension
    breaks: dict[int, pywrapcp.IntervalVar]


def build_model(problem: Problem, options: SolveOptions) -> Model:
    p, w = problem, options.weights
    costs = cost_model(p, w)
    vehicles = p.vehicles
    manager = pywrapcp.RoutingIndexManager(
        p.n_nodes, len(vehicles), [v.start_node for v in vehicles], [v.end_node for v in vehicles]
    )
    routing = pywrapcp.RoutingModel(manager)

    cost = p.travel * costs.travel_w
    cost_cb = routing.RegisterTransitMatrix(cost.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    if costs.fixed:
        routing.SetFixedCostOfAllVehicles(costs.fixed)

    # Time: transit i->j is service at i plus travel; slack is waiting.
    timed = p.travel + p.service[:, None]
    # Windows too: a model restricted to some technician-days may hold jobs none of them can reach.
    horizon = max([v.latest_end for v in vehicles] + [dom[-1][1] for dom in p.domains]) + 1
    time_cb = routing.RegisterTransitMatrix(timed.tolist())
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    overtime = int(costs.w[W_OVERTIME])
    for v in vehicles:
        start, end = routing.Start(v.index), routing.End(v.index)
        time_dim.CumulVar(start).SetRange(v.shift_start, v.shift_end)
        time_dim.CumulVar(end).SetRange(v.shift_start, v.latest_end)
        if v.latest_end > v.shift_end and overtime:
            time_dim.SetCumulVarSoftUpperBound(end, v.shift_end, overtime)
        routing.AddVariableMaximizedByFinalizer(time_dim.CumulVar(start))
        routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(end))

    # OR-Tools prices lateness per tick only: the per-day price spread over the day's ticks.
    sla = int(costs.w[W_SLA]) + -(-int(costs.w[W_LATE_DAY]) // int(costs.w[DAY_TICKS]))
    penalties = capped_unserved_penalties(p, w)
    for j in range(p.n_jobs):
        index = manager.NodeToIndex(j)
        dom = p.domains[j]
        cumul = time_dim.CumulVar(index)
        cumul.SetRange(dom[0][0], dom[-1][1])
        for (_, hi), (lo, _) in itertools.pairwise(dom):
            cumul.RemoveInterval(hi + 1, lo - 1)
        if p.due_start[j] >= 0 and sla:
            time_dim.SetCumulVarSoftUpperBound(index, max(int(p.due_start[j]), 0), sla)
        # SetAllowedVehiclesForIndex is broken in the 9.15 wrapper; -1 keeps the job droppable.
        routing.VehicleVar(index).SetValues([-1, *p.allowed[j].tolist()])
        routing.AddDisjunction([index], penalties[j])
        routing.AddVariableMinimizedByFinalizer(cumul)

    if np.any(p.demand > 0) and any(v.capacity is not None for v in vehicles):
        demand = np.zeros(p.n_nodes, dtype=np.int64)
        demand[: p.n_jobs] = p.demand
        demand_cb = routing.RegisterUnaryTransitVector(demand.tolist())
        caps = [v.capacity if v.capacity is not None else int(demand.sum()) + 1 for v in vehicles]
        routing.AddDimensionWithVehicleCapacity(demand_cb, 0, caps, True, "load")

    node_cost = vehicle_job_costs(p, w)
    if node_cost.any():
        callbacks: dict[bytes, int] = {}
        per_vehicle: list[int] = []
        total = 0
        for v in vehicles:
            row = np.zeros(p.n_nodes, dtype=np.int64)
            row[: p.n_jobs] = node_cost[v.index]
            key = row.tobytes()
            if key not in callbacks:
                callbacks[key] = routing.RegisterUnaryTransitVector(row.tolist())
            per_vehicle.append(callbacks[key])
            total = max(total, int(row.sum()))
        routing.AddDimensionWithVehicleTransits(per_vehicle, 0, total + 1, True, "soft")
        routing.GetDimensionOrDie("soft").SetSpanCostCoefficientForAllVehicles(1)

    breaks: dict[int, pywrapcp.IntervalVar] = {}
    if any(v.lunch for v in vehicles):
        solver = routing.solver()
        visit = [0] * routing.Size()
        for index in range(routing.Size()):
            visit[index] = int(p.service[manager.IndexToNode(index)])
        for v in vehicles:
            if v.lunch is None:
                continue
            lo, hi, minutes = v.lunch
            # Optional and tied to the day being used: mandatory breaks on idle technician-days make
            # the search fail fast once there are many of them (or-tools issue #1243).
            interval = solver.FixedDurationIntervalVar(lo, hi, minutes, True, f"lunch {v.index}")
            solver.Add(interval.PerformedExpr() == routing.ActiveVehicleVar(v.index))
            time_dim.SetBreakIntervalsOfVehicle([interval], v.index, visit)
            routing.AddIntervalToAssignment(interval)
            breaks[v.index] = interval
    return Model(manager=manager, routing=routing, time_dim=time_dim, breaks=breaks)


def search(
    problem: Problem,
    options: SolveOptions,
    initial: list[list[int]] | None,
    progress: ProgressHook | None = None,
    deadline: float | None = None,
    penalty_weight: float | None = None,
) -> SearchResult:
    """Warm-started guided local search, bounded by the time and solution limits.

    `penalty_weight` is guided local search's lambda (OR-Tools' default 0.1).
    """
    began = time.monotonic()
    model = build_model(problem, options)
    routing, manager = model.routing, model.manager
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    if penalty_weight is not None:
        params.guided_local_search_lambda_coefficient = penalty_weight
    remaining = (deadline - time.monotonic()) if deadline else options.time_limit_seconds
    params.time_limit.FromMilliseconds(max(int(remaining * 1000), 100))
    if not options.local_search:
        params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
        params.solution_limit = 1
    routing.CloseModelWithParameters(params)

    solutions = 0
    first: float | None = None

    def on_solution() -> None:
        nonlocal solutions, first
        solutions += 1
        elapsed = time.monotonic() - began
        if first is None:
            first = elapsed
        if progress is not None:
            progress(
                "search",
                {"solutions": solutions, "objective": routing.CostVar().Value(), "seconds": elapsed},
            )

    routing.AddAtSolutionCallback(on_solution)
    phases: list[str] = []
    start_assignment = None
    if initial is not None and any(initial):
        index_routes = [[manager.NodeToIndex(n) for n in nodes] for nodes in initial]
        start_assignment = routing.ReadAssignmentFromRoutes(index_routes, True)
        phases.append("warm start accepted" if start_assignment else "warm start rejected")
    if start_assignment is not None:
        solution = routing.SolveFromAssignmentWithParameters(start_assignment, params)
        phases.append("guided local search from warm start")
    else:
        solution = routing.SolveWithParameters(params)
        phases.append("parallel cheapest insertion + guided local search")
    status = _status_name(routing.status())
    if solution is None:
        return SearchResult([], status, None, solutions, first, phases)
    return SearchResult(
        routes=_read_routes(problem, model, solution),
        status=status,
        objective=int(solution.ObjectiveValue()),
        solutions=solutions,
        first_solution_seconds=first,
        phases=phases,
    )


def _status_name(code: int) -> str:
    names = {
        0: "NOT_SOLVED",
        1: "SUCCESS",
        2: "PARTIAL_SUCCESS_LOCAL_OPTIMUM_NOT_REACHED",
        3: "FAIL",
        4: "FAIL_TIMEOUT",
        5: "INVALID",
        6: "INFEASIBLE",
        7: "OPTIMAL",
    }
    return names.get(int(code), str(code))


def _read_routes(
    problem: Problem, model: Model, solution: pywrapcp.Assignment
) -> list[tuple[int, list[int]]]:
    routing, manager = model.routing, model.manager
    out: list[tuple[int, list[int]]] = []
    for v in problem.vehicles:
        index = solution.Value(routing.NextVar(routing.Start(v.index)))
        nodes: list[int] = []
        while not routing.IsEnd(index):
            nodes.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        if nodes:
            out.append((v.index, nodes))
    return out


# Above this many technician-days with lunch breaks OR-Tools 9.15 rejects warm starts and plans
# nothing (measured on this project's scenarios; related to or-tools issue #1243).
MAX_VEHICLES_WITH_BREAKS = 100


def polish(
    problem: Problem, options: SolveOptions, routes: list[list[int]], deadline: float
) -> tuple[list[list[int]], list[str]] | None:
    """Guided local search on the technician-days `routes` use, warm-started from them; None when
    the model would be too large. The caller times the answer with the kernel and keeps it only
    if `costs.better` says so."""
    used = [v for v, nodes in enumerate(routes) if nodes]
    with_breaks = any(problem.vehicles[v].lunch for v in used)
    if not used or (with_breaks and len(used) > MAX_VEHICLES_WITH_BREAKS):
        return None
    sub = restrict(problem, used, list(range(problem.n_jobs)))
    warm = [routes[v] for v in used]
    result = search(sub, options, warm, deadline=deadline, penalty_weight=POLISH_LAMBDA)
    if not result.routes:
        return None
    out: list[list[int]] = [[] for _ in problem.vehicles]
    for local, nodes in result.routes:
        out[used[local]] = nodes
    return out, [f"OR-Tools guided local search polish: {result.solutions} solutions, {result.status}"]


# Guided local search's penalty weight for the polish: on tight plans OR-Tools' default 0.1 stalls
# (Solomon RC207 at 3 routes: 1,204 at 0.1, 1,135 at 0.5; measured in an earlier stop).
POLISH_LAMBDA = 0.5


def restrict(problem: Problem, vehicles: list[int], nodes: list[int]) -> Problem:
    """The same problem limited to some vehicles and job nodes, re-indexed from zero."""
    p = problem
    locs = sorted({p.vehicles[v].start_node for v in vehicles} | {p.vehicles[v].end_node for v in vehicles})
    select = np.array(nodes + locs, dtype=np.int64)
    new_of = {old: new for new, old in enumerate(select.tolist())}
    veh_new = {old: new for new, old in enumerate(vehicles)}
    sub_vehicles: list[Vehicle] = [
        replace(
            p.vehicles[old],
            index=new,
            start_node=new_of[p.vehicles[old].start_node],
            end_node=new_of[p.vehicles[old].end_node],
        )
        for new, old in enumerate(vehicles)
    ]
    allowed = []
    for n in nodes:
        kept = [veh_new[v] for v in p.allowed[n].tolist() if v in veh_new]
        allowed.append(np.array(kept, dtype=np.int64))
    idx = np.array(nodes, dtype=np.int64)
    return replace(
        p,
        jobs=[p.jobs[n] for n in nodes],
        job_index=[p.job_index[n] for n in nodes],
        n_nodes=len(select),
        points=p.points[select],
        km=p.km[np.ix_(select, select)],
        travel=p.travel[np.ix_(select, select)],
        service=p.service[select],
        domains=[p.domains[n] for n in nodes],
        due_start=p.due_start[idx] if nodes else p.due_start[:0],
        priority=p.priority[idx] if nodes else p.priority[:0],
        level=p.level[idx] if nodes else p.level[:0],
        demand=p.demand[idx] if nodes else p.demand[:0],
        vehicles=sub_vehicles,
        allowed=allowed,
        preferred=[p.preferred[n] for n in nodes],
        earliest_day=p.earliest_day[idx] if nodes else p.earliest_day[:0],
        due_day=p.due_day[idx] if nodes else p.due_day[:0],
        previous={new_of[n]: p.previous[n] for n in nodes if n in p.previous},
        rejected=[],
    )
