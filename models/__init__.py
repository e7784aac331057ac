"""Domain types of fieldplan: what a dispatcher would recognise, with no framework imports.

Everything here is a pydantic v2 model that validates at construction and serialises to the public
JSON formats (scenario v1, plan v1). Nothing in this package imports the optimizer or the service.
"""

from models.common import GeoPoint, Latitude, Longitude, SkillLevel
from models.plan import (
    Break,
    Fix,
    Kpis,
    Plan,
    ReasonCode,
    Route,
    SolverStats,
    Unassigned,
    Visit,
)
from models.scenario import (
    Contract,
    Horizon,
    Job,
    JobKind,
    Lunch,
    Pinned,
    Scenario,
    Shift,
    Technician,
    TravelMatrix,
    TravelSettings,
    Window,
    derive_priority,
    point_key,
    working_days,
)
from models.status import VISIT_TO_JOB, JobStatus, VisitStatus

__all__ = [
    "VISIT_TO_JOB",
    "Break",
    "Contract",
    "Fix",
    "GeoPoint",
    "Horizon",
    "Job",
    "JobKind",
    "JobStatus",
    "Kpis",
    "Latitude",
    "Longitude",
    "Lunch",
    "Pinned",
    "Plan",
    "ReasonCode",
    "Route",
    "Scenario",
    "Shift",
    "SkillLevel",
    "SolverStats",
    "Technician",
    "TravelMatrix",
    "TravelSettings",
    "Unassigned",
    "Visit",
    "VisitStatus",
    "Window",
    "derive_priority",
    "point_key",
    "working_days",
]
