"""Wire schemas of the HTTP API. Domain fields come from `models/`; these add what the wire needs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api.security import Role
from models import GeoPoint, Job, JobKind, JobStatus, Kpis, Route, Technician, Unassigned, VisitStatus
from models.common import Identifier, Strict
from optimizer.evaluate import Evaluation
from optimizer.slots import NotOffered, SlotCost
from optimizer.slots import Preferences as SlotPreferences

JOB_EXAMPLE: dict[str, Any] = {
    "id": "R-2026-0042",
    "kind": "repair",
    "address": "12 Rue de la République, 69002 Lyon",
    "duration_minutes": 60,
    "skills": {"boiler": 2},
    "warranty": True,
    "windows": [{"start": "2026-12-08T08:00:00", "end": "2026-12-08T12:00:00"}],
    "notes": "Gate code 4711; dog in the yard.",
}


class Contact(Strict):
    """How to reach the customer about this visit; used only for notices (new ETA, visit moved)."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    phone: Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[0-9+()./ -]+$")] | None = None
    email: Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


class ServiceRequestCreate(Job):
    """A job as a dispatcher sends it: coordinates, or an address the service geocodes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [JOB_EXAMPLE]})

    location: GeoPoint | None = None  # type: ignore[assignment]
    address: Annotated[str, Field(min_length=3, max_length=500)] | None = None
    external_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="the client's own id; a repeated POST with it returns the first result"
    )
    contact: Contact | None = Field(None, description="the customer's contact details, for notices only")

    @model_validator(mode="after")
    def _somewhere(self) -> ServiceRequestCreate:
        if self.location is None and self.address is None:
            raise ValueError("give `location` (lat/lon) or an `address` to geocode")
        return self


class BulkRequestsCreate(Strict):
    requests: Annotated[list[ServiceRequestCreate], Field(min_length=1)]


class BulkItem(BaseModel):
    id: str
    outcome: Literal["created", "existing"]


class BulkResult(BaseModel):
    created: int
    existing: int
    items: list[BulkItem]


class Promise(BaseModel):
    start: datetime
    end: datetime


class ServiceRequestPublic(BaseModel):
    id: str
    external_id: str | None
    status: JobStatus
    job: Job
    address: str | None
    technician_id: str | None
    planned_date: date | None
    reason: str | None = Field(
        None, description="why it is open: the reason code of the plan that left it out"
    )
    reason_detail: str | None = None
    promise: Promise | None = Field(None, description="the arrival window promised to the customer")
    visit_status: VisitStatus | None
    failure_reason: str | None
    failures: int
    contact: Contact | None = None
    created_at: datetime
    updated_at: datetime


class TechnicianPublic(Technician):
    active: bool = True
    replan_run_id: int | None = Field(None, description="the re-plan a (de)activation started")


class TechnicianPatch(Strict):
    active: StrictBool


class PlanRequest(Strict):
    start: date | None = Field(None, description="first day; default today")
    days: Annotated[int, Field(ge=1, le=31)] | None = Field(
        None,
        description="days; default today and the next working days (FIELDPLAN_HORIZON_WORKING_DAYS)",
    )

    from_now: StrictBool = Field(
        True,
        description="nothing that has not started goes before now; false (whole days) only for days that "
        "have not begun",
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"start": "2026-12-08", "days": 2}]}
    )


class RunPublic(BaseModel):
    id: int
    trigger: str
    status: Literal["queued", "running", "succeeded", "failed", "abandoned"]
    phase: str
    progress: float = Field(description="0 to 1; during the solve, the share of its time limit used")
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    horizon_start: date
    horizon_days: int
    error: str | None
    plan_version_id: int | None
    from_now: bool
    summary: dict[str, Any] | None


class RunAccepted(BaseModel):
    run_id: int
    status_url: str


class DayPlan(BaseModel):
    date: date
    plan_version: int
    published: bool = Field(description="technicians see this version")
    published_at: datetime | None
    proposal: int | None = Field(None, description="a newer version of the day, waiting to be published")
    routes: list[Route]
    unassigned: list[Unassigned]
    kpis: Kpis


class PublishResult(BaseModel):
    date: date
    plan_version: int
    published_at: datetime
    dispatched: int = Field(description="requests of the day now dispatched")


class Stop(BaseModel):
    seq: int
    job_id: str
    kind: JobKind
    status: JobStatus
    arrival: datetime
    start: datetime
    end: datetime
    location: GeoPoint
    address: str | None
    skills: dict[str, int]
    customer_id: str | None
    notes: str | None
    maps_url: str
    part: int | None = Field(None, description="a job over several days: which day this is (1..n)")
    role: str | None = Field(None, description="a crew job: lead (reports the visit's status) or helper")
    crew_size: int = 1


class RoutePublic(BaseModel):
    technician_id: str
    date: date
    plan_version: int
    published: bool
    revision: int = Field(0, description="raised by every status change of one of this technician's visits")
    start: datetime | None
    end: datetime | None
    distance_km: float
    break_: dict[str, datetime] | None = Field(None, alias="break", serialization_alias="break")
    stops: list[Stop]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class VisitStatusUpdate(Strict):
    status: VisitStatus
    reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        None, description="required when status is `failed`: why the visit could not be done"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "failed", "reason": "customer not at home"}]},
    )

    @model_validator(mode="after")
    def _reason(self) -> VisitStatusUpdate:
        if self.status == VisitStatus.FAILED and not self.reason:
            raise ValueError("a failed visit needs a `reason`")
        return self


class KeyCreate(Strict):
    role: Role
    technician_id: Identifier | None = None
    label: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _bound(self) -> KeyCreate:
        if (self.role == Role.TECHNICIAN) != (self.technician_id is not None):
            raise ValueError("a technician key needs `technician_id`; other roles take none")
        return self


class KeyPublic(BaseModel):
    id: int
    prefix: str
    role: Role
    technician_id: str | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="shown once; only its hash is stored")


class LastRun(BaseModel):
    id: int
    trigger: str
    status: str
    finished_at: datetime | None
    error: str | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    last_nightly: LastRun | None


class ErrorBody(BaseModel):
    detail: str
    code: str | None = None


def _err(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


#: Answers every protected operation may give besides its own; documented so clients can rely on them.
PROTECTED: dict[int | str, dict[str, Any]] = {
    400: _err("the body is not parseable JSON"),
    401: _err("missing, invalid or revoked API key"),
    403: _err("the key's role may not do this"),
    404: _err("no such resource (or not yours to see)"),
    409: _err("conflicts with the current state (exists, running, done)"),
    413: _err("body over FIELDPLAN_MAX_BODY_BYTES, or a bulk over FIELDPLAN_MAX_BULK_REQUESTS"),
    503: _err("the database is not reachable; retry after the Retry-After seconds"),
}


#: Row ids in paths: positive and within a 32-bit INTEGER column, so no id reaches the database unfit.
RowId = Annotated[int, PathParam(ge=1, le=2_147_483_647)]


# --- appointments ----------------------------------------------------------------------------------


class SlotJob(ServiceRequestCreate):
    """A new job as the scenario format writes it; `id` is optional (one is made for the booking)."""

    id: Identifier | None = None  # type: ignore[assignment]


class SlotsRequest(Strict):
    job: SlotJob | None = Field(None, description="a new job; or `request_id` for an existing request")
    request_id: Identifier | None = None
    window_minutes: Annotated[int, Field(ge=15, le=720)] = Field(
        120, description="length of the arrival window promised to the customer"
    )
    days: Annotated[int, Field(ge=1, le=20)] | None = Field(
        None, description="working days ahead to look; default the planning horizon"
    )
    max_slots: Annotated[int, Field(ge=1, le=50)] = 8
    earliest: date | None = Field(None, description="first date the customer accepts")
    latest: date | None = Field(None, description="last date the customer accepts")
    preferences: SlotPreferences = Field(default_factory=lambda: SlotPreferences())

    @model_validator(mode="after")
    def _one(self) -> SlotsRequest:
        if (self.job is None) == (self.request_id is None):
            raise ValueError("give `job` (a new request) or `request_id` (an existing one), not both")
        if self.earliest and self.latest and self.latest < self.earliest:
            raise ValueError("`latest` is before `earliest`")
        return self


class SlotOffer(BaseModel):
    start: datetime
    end: datetime
    date: date
    grade: int
    technician_id: str = Field(description="who would go now: a candidate, not a promise")
    cost: SlotCost
    robustness: int = Field(description="technician-days that could take the job in this window")
    slot_token: str = Field(description="names this slot: hold it or book it with this")


class SlotsAnswer(BaseModel):
    job_id: str
    request_id: str | None
    slots: list[SlotOffer]
    not_offered: list[NotOffered]
    expires_at: datetime = Field(description="the slot tokens can be held or booked until then")


class HoldCreate(Strict):
    slot_token: Annotated[str, Field(min_length=10, max_length=8000)]


class HoldPublic(BaseModel):
    hold_token: str
    expires_at: datetime
    start: datetime
    end: datetime


class BookingCreate(Strict):
    slot_token: Annotated[str, Field(min_length=10, max_length=8000)] | None = None
    hold_token: Annotated[str, Field(min_length=10, max_length=64)] | None = None

    @model_validator(mode="after")
    def _one(self) -> BookingCreate:
        if (self.slot_token is None) == (self.hold_token is None):
            raise ValueError("give `slot_token` or `hold_token`, not both")
        return self


class BookingPublic(BaseModel):
    request_id: str
    job_id: str
    start: datetime
    end: datetime
    date: date
    plan_version: int
    planned_technician_id: str = Field(description="who goes as planned now; the promise is the window")
    pushed_out: list[str] = Field(description="lower-priority visits that gave way (back in the pool)")


class AppointmentCancelled(BaseModel):
    request_id: str
    status: JobStatus
    plan_version: int | None


# --- the day as it happens -------------------------------------------------------------------------


class TechnicianUnavailable(Strict):
    """Off from `from` (ill, a breakdown), until `until` or the end of the day."""

    type: Literal["technician_unavailable"]
    technician_id: Identifier
    from_: datetime = Field(alias="from")
    until: datetime | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TechnicianUnavailable:
        if self.until is not None and self.until <= self.from_:
            raise ValueError("`until` must be after `from`")
        return self


class Emergency(Strict):
    """A new request, priority 1; `due` defaults to now + FIELDPLAN_EMERGENCY_SLA_HOURS."""

    type: Literal["emergency"]
    request: ServiceRequestCreate


class VisitOverrun(Strict):
    """The visit under way will end later than planned."""

    type: Literal["visit_overrun"]
    job_id: Identifier
    expected_end: datetime


class TechnicianDelay(Strict):
    """Late by this many minutes on everything still to come (traffic, a flat tyre)."""

    type: Literal["technician_delay"]
    technician_id: Identifier
    minutes: Annotated[float, Field(gt=0, le=720, allow_inf_nan=False)]


DayEvent = Annotated[
    TechnicianUnavailable | Emergency | VisitOverrun | TechnicianDelay, Field(discriminator="type")
]


class ReoptimiseBody(Strict):
    max_changed_visits_per_technician: Annotated[int, Field(ge=0, le=1000)] | None = Field(
        None, description="default FIELDPLAN_MAX_CHANGED_VISITS_PER_TECHNICIAN"
    )
    max_eta_shift_minutes: Annotated[float, Field(ge=0, le=1440, allow_inf_nan=False)] | None = Field(
        None,
        description="a start moved more than this counts as a change; "
        "default FIELDPLAN_MAX_ETA_SHIFT_MINUTES",
    )


class DayNotice(BaseModel):
    id: int
    audience: str
    kind: str
    technician_id: str | None
    job_id: str | None
    message: str


class ReoptimisePublic(BaseModel):
    plan_version: int
    diff: list[Any] = Field(description="per technician: visits added, removed, re-ordered, re-timed")
    customers: list[Any] = Field(description="per customer whose visit moved: the ETA before and after")
    notices: list[DayNotice]
    returned: list[Unassigned] = Field(description="visits of the day that went back to the pool")
    frozen: dict[str, list[str]] = Field(description="per technician: the visits that could not move")


class DayEventPublic(BaseModel):
    id: int
    day: date
    type: str
    technician_id: str | None
    job_id: str | None
    payload: dict[str, Any]
    created_by: str
    created_at: datetime
    reoptimised: ReoptimisePublic | None = Field(
        None, description="the re-optimisation it started (FIELDPLAN_AUTO_REOPTIMISE)"
    )


class PositionReport(Strict):
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    at: datetime | None = Field(None, description="when it was measured; default now")


class PositionPublic(BaseModel):
    technician_id: str
    lat: float
    lon: float
    at: datetime


# --- the dispatch board -------------------------------------------------------------------------


class WhoAmI(BaseModel):
    role: Role
    technician_id: str | None = Field(None, description="a technician key's technician")


class BoardJob(BaseModel):
    """What a bar, a marker or a waiting-list row shows of a job (values the page renders as text)."""

    id: str
    kind: JobKind
    priority: int
    status: JobStatus
    visit_status: VisitStatus | None
    location: GeoPoint
    address: str | None
    customer_id: str | None
    duration_minutes: float
    skills: dict[str, int]
    windows: list[dict[str, datetime]]
    due: datetime | None
    warranty: bool
    emergency: bool
    notes: str | None
    pinned: dict[str, Any] | None
    promise: Promise | None
    crew_size: int = 1
    max_days: int = 1
    after: dict[str, Any] | None = Field(None, description="follows another job by some days")
    same_technician_as: dict[str, Any] | None = None


class BoardVisit(BaseModel):
    job_id: str
    arrival: datetime
    start: datetime
    end: datetime
    late: bool = Field(description="ends after the job's `due` (SLA-late)")
    part: int | None = Field(None, description="a multi-day job's day (1..n)")
    role: str | None = Field(None, description="a crew job's member: lead or helper")


class BoardRoute(BaseModel):
    technician_id: str
    start: datetime
    end: datetime
    distance_km: float
    travel_minutes: float
    overtime_minutes: float
    break_: dict[str, datetime] | None = Field(None, alias="break", serialization_alias="break")
    visits: list[BoardVisit]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class BoardTechnician(BaseModel):
    id: str
    name: str
    skills: dict[str, int]
    home: GeoPoint
    shift_start: datetime | None = Field(None, description="none: no shift that day")
    shift_end: datetime | None = None
    overtime_limit_minutes: int


class Waiting(BaseModel):
    job_id: str
    reason: str
    detail: str


class BoardDay(BaseModel):
    """One call gives the board everything it draws for a day: the shown version's routes, the jobs
    on them and waiting, the technicians and their shifts, and the day's KPIs."""

    date: date
    now: datetime = Field(description="the service's clock")
    plan_version: int | None = Field(None, description="the version shown; none: no plan for the day")
    published: bool = Field(description="the shown version is the one technicians see")
    published_version: int | None
    proposal: int | None = Field(None, description="a newer version waiting to be published")
    technicians: list[BoardTechnician]
    routes: list[BoardRoute]
    waiting: list[Waiting] = Field(description="jobs left out that could be done this day, with reasons")
    jobs: dict[str, BoardJob]
    kpis: Kpis | None


class DayChange(BaseModel):
    job_id: str
    change: Literal["technician", "day", "time", "new", "dropped"]
    from_technician: str | None = None
    from_date: date | None = None
    from_start: datetime | None = None
    to_technician: str | None = None
    to_date: date | None = None
    to_start: datetime | None = None
    detail: str


class DayDiff(BaseModel):
    date: date
    published_version: int | None
    proposed_version: int | None
    changes: list[DayChange]
    counts: dict[str, int]


class EvaluateRequest(Strict):
    job_id: Annotated[str, Field(min_length=1, max_length=64)]
    technician_id: Annotated[str, Field(min_length=1, max_length=64)]
    date: date
    start: datetime | None = Field(
        None, description="start then (within `tolerance_minutes`); none: best time"
    )
    tolerance_minutes: Annotated[int, Field(ge=0, le=240)] = 15


class PinBody(Strict):
    technician_id: Annotated[str, Field(min_length=1, max_length=64)]
    date: date
    start: datetime | None = Field(
        None,
        description="pin the start too: the first start the route allows from then, within "
        "`tolerance_minutes`",
    )
    tolerance_minutes: Annotated[int, Field(ge=0, le=240)] = 15


class PinResult(BaseModel):
    request: ServiceRequestPublic
    plan_version: int | None = Field(None, description="the version the pinned visit was placed in")
    evaluation: Evaluation | None = Field(None, description="what placing it did")
