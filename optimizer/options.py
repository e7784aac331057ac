"""Solve options: limits, seed and the documented weights of the soft objectives.

Weights are in *minutes of travel* so a dispatcher can read them: "an overtime minute costs as much
as two minutes of driving", "leaving a priority-3 job unplanned costs as much as 12,000 minutes of
driving". The defaults below are the ones README documents.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonNegative = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


def _default_unserved() -> dict[int, float]:
    # Ten times per level: one higher-priority job outweighs any realistic set of swaps below it.
    return {1: 1_200_000.0, 2: 120_000.0, 3: 12_000.0, 4: 1_200.0, 5: 120.0}


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    travel_per_minute: NonNegative = 1.0
    overtime_per_minute: NonNegative = 2.0
    sla_late_per_day: NonNegative = Field(
        60.0, description="per day, or part of a day, a planned job finishes after its `due`"
    )
    sla_late_per_minute: NonNegative = Field(
        0.0, description="per minute a planned job finishes after its `due`, on top of the days"
    )
    unserved_by_priority: dict[int, NonNegative] = Field(default_factory=_default_unserved)
    preferred_miss: NonNegative = 15.0
    wait_per_day: NonNegative = Field(
        1.0, description="per day later than the job's earliest possible day, times (6 - priority)"
    )
    maintenance_early_per_day: NonNegative = Field(
        2.0, description="per day a maintenance occurrence is visited before its due date"
    )
    maintenance_late_per_day: NonNegative = Field(
        8.0, description="per day a maintenance occurrence is visited after its due date (inside its window)"
    )
    same_technician_miss: NonNegative = Field(
        60.0, description="per visit not given to the technician its `same_technician_as` (soft) names"
    )
    stability_move: NonNegative = Field(
        30.0, description="per job moved off the technician/day the previous plan gave it"
    )
    technician_day_fixed: NonNegative = Field(
        0.0, description="per technician-day used; benchmarks use it to minimise vehicles first"
    )


class SolveOptions(BaseModel):
    """Plain values only: a solve with these options can be shipped to another process unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_limit_seconds: Annotated[float, Field(gt=0, le=24 * 3600)] = 10.0
    iterations: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="stop the search after this many ruin-and-recreate iterations: with it a solve is "
        "repeatable (same scenario, seed and iterations, same plan), whatever the machine's speed",
    )
    no_improvement: Annotated[int, Field(ge=1)] | None = Field(
        None, description="stop the search after this many iterations without a better plan"
    )
    seed: int = 0
    weights: Weights = Field(default_factory=Weights)
    tick_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        1.0, description="time resolution of the search; benchmarks with real-valued data use less"
    )
    local_search: bool = Field(True, description="improve the first plan (False: the first plan only)")
    route_minimisation: bool = Field(
        False, description="extra phase that tries to empty whole technician-days (benchmarks)"
    )
    polish_share: Annotated[float, Field(ge=0, le=0.9)] | None = Field(
        None,
        description="share of the time limit for an OR-Tools guided-local-search polish at the end, "
        "kept only when it beats the plan by the priority order, then cost; None: 0.15 where days "
        "are long (10 or more visits a technician-day on average in the first plan), else none",
    )
    keep_planned: bool = Field(
        False,
        description="never end with fewer jobs planned than the first plan (the warm start) at any "
        "priority level counted cumulatively: what-if runs warm-started from a base plan",
    )
