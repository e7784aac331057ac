"""Plan format v1: who goes where, when, and why a job was not planned.

Datetimes carry the UTC offset of the scenario's time zone, so a plan read on another machine or
in another zone still means the same instants.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from models.common import Strict


class ReasonCode(StrEnum):
    """Why a job is in `unassigned`. Worded for dispatchers; README lists what each means."""

    NO_QUALIFIED_TECHNICIAN = "NO_QUALIFIED_TECHNICIAN"
    ALL_EXCLUDED = "ALL_EXCLUDED"
    PINNED_CONFLICT = "PINNED_CONFLICT"
    TOO_LONG = "TOO_LONG"
    NO_SHIFT_IN_WINDOW = "NO_SHIFT_IN_WINDOW"
    DEMAND_EXCEEDS_VAN = "DEMAND_EXCEEDS_VAN"
    CAPACITY = "CAPACITY"
    WINDOW_PASSED = "WINDOW_PASSED"
    PROMISE_BROKEN = "PROMISE_BROKEN"
    NOT_PLANNED_YET = "NOT_PLANNED_YET"
    DAY_DISRUPTED = "DAY_DISRUPTED"
    CREW_UNAVAILABLE = "CREW_UNAVAILABLE"
    PARTS_DO_NOT_FIT = "PARTS_DO_NOT_FIT"
    LINKED_JOB_NOT_PLANNED = "LINKED_JOB_NOT_PLANNED"


class Visit(Strict):
    job_id: str
    arrival: datetime
    start: datetime
    end: datetime
    part: Annotated[int, Field(ge=1)] | None = Field(
        None, description="a multi-day job's day: 1..n, one visit per day (none: a one-day job)"
    )
    role: Literal["lead", "helper"] | None = Field(
        None, description="a crew job's member: one lead (the job's skills) and helpers (helper_skills)"
    )


class Break(Strict):
    start: datetime
    end: datetime


class Route(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    technician_id: str
    date: date
    start: datetime = Field(description="departure from the start location")
    end: datetime = Field(description="arrival at the end location")
    distance_km: float
    travel_minutes: float
    overtime_minutes: float = 0.0
    visits: list[Visit]
    break_: Break | None = Field(None, alias="break")


Day = date  # a field named `date` hides the type inside a class body

FixKind = Literal[
    "insert",
    "overtime",
    "longer_shift",
    "other_day",
    "wider_window",
    "displace",
    "skill",
    "extra_day",
    "lunch",
]


class Fix(Strict):
    """One change that would let a job left out in: what it changes, what it costs, and whether the
    optimizer checked it (re-planned the affected routes with the change, validator-clean)."""

    kind: FixKind
    detail: str
    technician_id: str | None = None
    date: Day | None = None
    minutes: int | None = Field(None, description="overtime, shift extension or window widening")
    displaced_job_ids: list[str] = Field(default_factory=list)
    cost_delta: float = Field(
        description="what the change costs, in minutes of travel (`Weights`' unit), before the gain "
        "of planning the job: added travel, overtime, lateness, moves, the displaced jobs' weights"
    )
    verified: bool = False


class Unassigned(Strict):
    job_id: str
    reason: ReasonCode
    detail: str
    fixes: list[Fix] = Field(default_factory=list, description="filled by `optimizer.fixes` on request")


class PriorityCount(Strict):
    planned: int
    total: int


class Kpis(Strict):
    jobs_total: int
    jobs_planned: int
    jobs_unassigned: int
    planned_by_priority: dict[str, PriorityCount]
    planned_by_kind: dict[str, PriorityCount]
    travel_km: float
    travel_minutes: float
    travel_km_per_job: float
    overtime_minutes: float
    sla_late_jobs: int = Field(description="planned jobs that finish after their `due`")
    sla_late_minutes: float
    preferred_technician_rate: float | None = Field(
        None, description="share of planned jobs with preferences that got a preferred technician"
    )
    utilisation: dict[str, float] = Field(
        description="technician id -> (service + travel) / shift minutes over the horizon"
    )
    technician_days_used: int
    churn: float | None = Field(
        None, description="share of jobs planned before that changed technician or day"
    )


class SolverStats(Strict):
    """How the plan was found. `status` is one of SUCCESS (the search ran to its stopping
    criterion), FIRST_PLAN (only the first plan was asked for), NO_SEARCH (nothing to search) and
    DEGRADED (a search phase failed; the best plan found before it is returned, and
    `search_phases` says which phase failed)."""

    status: str
    wall_seconds: float
    first_solution_seconds: float | None = None
    objective: int | None = None
    seed: int
    time_limit_seconds: float
    solutions: int = Field(0, description="search iterations run")
    search_phases: list[str] = Field(default_factory=list)


class Plan(Strict):
    version: Literal[1] = 1
    scenario: str
    timezone: str
    horizon_start: date
    horizon_days: Annotated[int, Field(ge=1)]
    routes: list[Route]
    unassigned: list[Unassigned]
    kpis: Kpis
    solver: SolverStats

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True)
