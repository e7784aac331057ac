"""The pipeline: Scenario -> Problem -> first plan -> ruin and recreate -> Plan.

Pure: values in, values out, no files or network, so the CLI, the service, the nightly re-plan, the
simulations and the benchmarks all call this one function, and a solve can run in a worker process
from plain inputs. A phase that fails keeps the best plan found before it and says so: the status
becomes DEGRADED and `search_phases` names what failed (never a silent FAIL while a plan exists).

Statuses (`SolverStats.status`):
- `SUCCESS`: the search ran until its stopping criterion;
- `FIRST_PLAN`: only the first plan was asked for (`local_search=False`);
- `NO_SEARCH`: nothing to search (no job reaches it, or no technician works);
- `DEGRADED`: a phase failed; the best plan found before it is returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from models import Plan, Scenario, SolverStats
from optimizer.assemble import assemble, raw_routes
from optimizer.costs import better, cost_model, to_minutes
from optimizer.groups import Group, GroupLayer, needs_groups, split
from optimizer.options import SolveOptions
from optimizer.problem import Problem, build_problem
from optimizer.routing_model import polish
from optimizer.search import Engine
from optimizer.stop import FirstOf, MaxIterations, MaxRuntime, NoImprovement, Stop
from optimizer.travel import TravelProvider

Progress = Callable[[str, dict[str, float]], None]
log = logging.getLogger("fieldplan.optimizer")

SUCCESS, FIRST_PLAN, NO_SEARCH, DEGRADED = "SUCCESS", "FIRST_PLAN", "NO_SEARCH", "DEGRADED"
STATUSES = (SUCCESS, FIRST_PLAN, NO_SEARCH, DEGRADED)
# Kept for assembling the plan (reasons for what is left out, KPIs): a share of the time limit.
ASSEMBLY_SHARE = 0.03
# With route minimisation (benchmarks that count vehicles first), the fleet phase may run until
# MINIMISE_UNTIL of the time limit; an attempt at one technician-day fewer gives up after PATIENCE.
MINIMISE_UNTIL = 0.6
PATIENCE = 0.25


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
    scenario = scenario.expanded()  # availability calendars and contracts: see `Scenario.expanded`

    def phase(name: str, **info: float) -> None:
        if progress is not None:
            progress(name, {"seconds": time.monotonic() - began, **info})

    whole = scenario
    groups: dict[str, Group] = {}
    if needs_groups(scenario):  # crews, multi-day and linked jobs: units the group moves place together
        scenario, groups = split(scenario)
    problem = build_problem(scenario, options, travel=travel, previous=previous)
    phase("problem", jobs=problem.n_jobs, rejected=len(problem.rejected), vehicles=len(problem.vehicles))
    engine = Engine(problem, cost_model(problem, options.weights), seed=options.seed)
    layer = GroupLayer(problem, engine, groups, options.weights) if groups else None
    phases: list[str] = []
    if previous is not None:
        kept = engine.warm_start(previous_routes(problem, previous))
        phases.append(f"warm start: {kept} visits of the previous plan kept")
    if layer is not None:
        placed = layer.construct()
        phases.append(f"first plan of crews, multi-day and linked jobs: {placed} of {len(groups)} placed")
    engine.construct()
    first_seconds = time.monotonic() - began
    planned = problem.n_jobs - sum(engine.unserved)
    phases.append(f"first plan (insertion by priority): {planned} of {problem.n_jobs} jobs")
    phase("first plan", planned=planned)

    status = SUCCESS
    iterations = 0
    if problem.n_jobs == 0 or not problem.vehicles:
        status = NO_SEARCH
    elif not options.local_search:
        status = FIRST_PLAN
    else:
        first = engine.routes()
        floor = _planned_per_level(problem, engine) if options.keep_planned else None
        options = options.model_copy(update={"polish_share": polish_share(options, first)})
        try:
            if options.route_minimisation and layer is None:
                span = options.time_limit_seconds
                phases += engine.minimise_fleet(began + span * MINIMISE_UNTIL, span * PATIENCE, progress)
            if layer is not None:
                left = options.time_limit_seconds * (1 - ASSEMBLY_SHARE) - (time.monotonic() - began)
                stats = layer.improve(max(left, 0.0), options.iterations, floor, progress)
            else:
                stats = engine.improve(search_stop(options, began), floor=floor, progress=progress)
            iterations = stats.iterations
            phases.append(
                f"ruin and recreate: {stats.iterations} iterations in {stats.seconds:.1f} s, "
                f"{stats.improvements} better plans, {problem.n_jobs - sum(engine.unserved)} jobs planned"
            )
            if layer is not None:
                phases.append(layer.stats())
            elif options.polish_share:
                phases += _polish(problem, options, engine, began)
        except Exception as exc:  # a failed phase keeps the plan it started from
            log.exception("ruin and recreate failed")
            status = DEGRADED
            phases.append(f"ruin and recreate failed ({type(exc).__name__}: {exc}); the first plan is kept")
            engine.reset()
            engine.warm_start(first)
            if layer is not None:
                layer.check()
    plan = assemble(problem, raw_routes(engine.tm, engine.rt), previous)
    if layer is not None:
        plan = layer.collapse(plan, whole, previous)
    phase("done", planned=plan.kpis.jobs_planned)
    plan.solver = SolverStats(
        status=status,
        wall_seconds=round(time.monotonic() - began, 3),
        first_solution_seconds=round(first_seconds, 3),
        objective=round(to_minutes(problem, engine.cost)),
        seed=options.seed,
        time_limit_seconds=options.time_limit_seconds,
        solutions=iterations,
        search_phases=phases,
    )
    return plan


# OR-Tools' polish pays on long days (Solomon R2 and RC2, 30-50 visits a route: mean gap to the
# best known 2.10 % without, 1.52 % with 15 % of the time), not on field days of 4-8 visits
# (benchmarks/README.md).
LONG_DAYS = 10
POLISH_SHARE = 0.15


def polish_share(options: SolveOptions, routes: list[list[int]]) -> float:
    if options.polish_share is not None:
        return options.polish_share
    used = [r for r in routes if r]
    return POLISH_SHARE if used and sum(map(len, used)) / len(used) >= LONG_DAYS else 0.0


def _polish(problem: Problem, options: SolveOptions, engine: Engine, began: float) -> list[str]:
    """OR-Tools' guided local search from the plan, kept only when it is better by `costs.better`."""
    deadline = began + options.time_limit_seconds * (1 - ASSEMBLY_SHARE)
    answer = polish(problem, options, engine.routes(), deadline)
    if answer is None:
        return ["OR-Tools polish skipped: too many technician-days with breaks for its model"]
    routes, notes = answer
    other = Engine(problem, engine.costs, engine.params, seed=options.seed)
    other.warm_start(routes)
    if better(np.array(other.unserved), other.cost, np.array(engine.unserved), engine.cost) > 0:
        engine.reset()
        engine.warm_start(routes)
        return [*notes, "polish kept: better plan"]
    return [*notes, "polish not kept: no better than the plan it started from"]


def search_stop(options: SolveOptions, began: float) -> Stop:
    """The time left (less a share kept for assembling the plan and the polish), and the options'
    limits."""
    share = 1 - ASSEMBLY_SHARE - (options.polish_share or 0.0)
    left = options.time_limit_seconds * share - (time.monotonic() - began)
    criteria: list[Stop] = [MaxRuntime(max(left, 0.0))]
    if options.iterations is not None:
        criteria.append(MaxIterations(options.iterations))
    if options.no_improvement is not None:
        criteria.append(NoImprovement(options.no_improvement))
    return FirstOf(*criteria)


def previous_routes(problem: Problem, previous: Plan) -> list[list[int]]:
    """The previous plan's routes as job nodes per technician-day of this problem."""
    by_key = {(v.technician_id, v.date): v.index for v in problem.vehicles}
    node_of = {job.id: n for n, job in enumerate(problem.jobs)}
    routes: list[list[int]] = [[] for _ in problem.vehicles]
    for route in previous.routes:
        vi = by_key.get((route.technician_id, route.date))
        if vi is not None:
            routes[vi] = [node_of[v.job_id] for v in route.visits if v.job_id in node_of]
    return routes


def _planned_per_level(problem: Problem, engine: Engine) -> list[int]:
    totals = [0] * len(engine.unserved)
    for lv in problem.level.tolist():
        totals[lv] += 1
    return [t - u for t, u in zip(totals, engine.unserved, strict=True)]
