"""Stand-ins for the re-plan step, importable by the worker process: one fails, one hangs."""

from __future__ import annotations

import time

from models import Route
from optimizer.intraday import IntradayInput, IntradayResult
from optimizer.replan import ReplanInput, ReplanResult


def explode(data: ReplanInput) -> ReplanResult:
    raise RuntimeError("solver blew up (injected)")


def hang(data: ReplanInput) -> ReplanResult:
    time.sleep(600)
    raise AssertionError("unreachable")


def overlapping(data: ReplanInput) -> ReplanResult:
    """A real re-plan whose plan is then broken: the second visit of a route moved onto the first."""
    from optimizer.replan import replan

    result = replan(data)
    _overlap(result.plan.routes)
    return result


def slow(data: ReplanInput) -> ReplanResult:
    """A real re-plan that takes a few seconds: writes made meanwhile must reach the stored plan."""
    from optimizer.replan import replan

    time.sleep(3.0)
    return replan(data)


def overlapping_day(data: IntradayInput) -> IntradayResult:
    """A real in-day re-optimisation whose rest of the day is then broken the same way."""
    from optimizer.intraday import reoptimise

    result = reoptimise(data)
    _overlap(result.rest.routes)
    return result


def explode_day(data: IntradayInput) -> IntradayResult:
    raise RuntimeError("in-day solver blew up (injected)")


def _overlap(routes: list[Route]) -> None:
    """Move the second visit of the first route with two onto the first: a plan the validator refuses."""
    for route in routes:
        if len(route.visits) >= 2:
            first, second = route.visits[0], route.visits[1]
            length = second.end - second.start
            route.visits[1] = second.model_copy(
                update={"arrival": first.start, "start": first.start, "end": first.start + length}
            )
            return
