"""Independent plan checker: re-derives every rule from the scenario alone.

It deliberately shares no code with the solver (no problem arrays, no ticks, no numpy matrices):
travel comes from geopy (or plain Euclid for planar scenarios) and times from the plan's own
datetimes. A bug in the solver's modelling therefore shows up here instead of being repeated.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from geopy.distance import great_circle

from models import GeoPoint, Job, Plan, Route, Scenario, Technician, TravelMatrix, Visit, point_key

TOLERANCE = timedelta(seconds=0.5)


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    job_id: str | None = None
    technician_id: str | None = None
    day: date | None = None

    def __str__(self) -> str:
        where = " ".join(x for x in (self.technician_id, str(self.day) if self.day else None) if x)
        job = f" job {self.job_id}" if self.job_id else ""
        return f"{self.code}: {where}{job}: {self.message}".replace(": :", ":")


def hhmm(moment: datetime) -> str:
    """10:42, or 10:42:30 when the seconds matter: how a dispatcher reads a time."""
    return f"{moment:%H:%M}" if moment.second == 0 else f"{moment:%H:%M:%S}"


def minutes(span: timedelta) -> str:
    value = span.total_seconds() / 60
    return f"{value:.0f} min" if abs(value - round(value)) < 0.05 else f"{value:.1f} min"


def travel_minutes(scenario: Scenario, a: GeoPoint, b: GeoPoint) -> float:
    t = scenario.travel
    if t.metric == "matrix":
        assert t.matrix is not None
        index = _matrix_index(t.matrix)
        return float(t.matrix.minutes[index[point_key(a)]][index[point_key(b)]])
    if t.metric in ("osm", "osrm"):
        raise ValueError(
            f"travel metric {t.metric!r}: read the roads into a matrix first (api.roads.resolve); "
            "a plan on road times is never checked against crow-flies times"
        )
    if t.metric == "planar":
        km = math.hypot(a.lat - b.lat, a.lon - b.lon) * t.planar_km_per_unit
    else:
        km = great_circle((a.lat, a.lon), (b.lat, b.lon)).km * t.road_factor
    return km / t.speed_kmh * 60.0


_indexes: dict[int, tuple[TravelMatrix, dict[tuple[float, float], int]]] = {}


def _matrix_index(matrix: TravelMatrix) -> dict[tuple[float, float], int]:
    """Places of a given matrix by coordinates (the same data the plan was made with, read here
    without the optimizer's arrays). Kept with the matrix itself, so an id is never reused."""
    found = _indexes.get(id(matrix))
    if found is None or found[0] is not matrix:
        if len(_indexes) > 8:
            _indexes.clear()
        found = (matrix, {point_key(p): i for i, p in enumerate(matrix.locations)})
        _indexes[id(matrix)] = found
    return found[1]


def validate_plan(scenario: Scenario, plan: Plan) -> list[Violation]:
    # Checked against the scenario as planned: templates as dated shifts, contracts as occurrences.
    scenario = scenario.expanded()
    out: list[Violation] = []
    jobs = {j.id: j for j in scenario.jobs}
    techs = {t.id: t for t in scenario.technicians}
    seen: dict[str, str] = {}
    # Crew and multi-day jobs are several visits: checked together by `_check_groups`.
    several = {j.id for j in scenario.jobs if j.crew_size > 1 or j.max_days > 1}

    def mark(job_id: str, where: str) -> None:
        if job_id not in jobs:
            out.append(Violation("UNKNOWN_JOB", f"{where} names a job the scenario does not have", job_id))
        elif job_id in seen and (
            job_id not in several or seen[job_id] == "unassigned" or where == "unassigned"
        ):
            out.append(Violation("DUPLICATE_JOB", f"appears in {seen[job_id]} and in {where}", job_id))
        else:
            seen[job_id] = where

    days: set[tuple[str, date]] = set()
    for route in plan.routes:
        key = (route.technician_id, route.date)
        if key in days:
            out.append(Violation("DUPLICATE_ROUTE", "two routes for one technician-day", None, *key))
        days.add(key)
        for visit in route.visits:
            mark(visit.job_id, f"the route of {route.technician_id} on {route.date}")
        tech = techs.get(route.technician_id)
        if tech is None:
            out.append(Violation("UNKNOWN_TECHNICIAN", "route of an unknown technician", None, *key))
            continue
        out.extend(_check_route(scenario, tech, route, jobs))
    for item in plan.unassigned:
        mark(item.job_id, "unassigned")
    for job_id in jobs:
        if job_id not in seen:
            out.append(Violation("MISSING_JOB", "neither in a route nor in unassigned", job_id))
    out.extend(_check_groups(scenario, plan, jobs, techs))
    return out


def _check_groups(
    scenario: Scenario, plan: Plan, jobs: dict[str, Job], techs: dict[str, Technician]
) -> list[Violation]:
    """Crews arrive together, parts fall on successive working days of the same people, links hold."""
    out: list[Violation] = []
    visits: dict[str, list[tuple[Route, Visit]]] = {}
    for route in plan.routes:
        for visit in route.visits:
            visits.setdefault(visit.job_id, []).append((route, visit))
    for job_id, found in visits.items():
        job = jobs.get(job_id)
        if job is None:
            continue
        if job.crew_size > 1 or job.max_days > 1:  # several visits of any other job: DUPLICATE_JOB said
            out.extend(_check_several(job, found, techs))
    for job in scenario.jobs:
        if job.id in visits:
            out.extend(_check_links(job, visits, techs))
    return out


def _check_several(
    job: Job, found: list[tuple[Route, Visit]], techs: dict[str, Technician]
) -> list[Violation]:
    out: list[Violation] = []

    def bad(code: str, message: str) -> None:
        out.append(Violation(code, message, job.id))

    parts: dict[int, list[tuple[Route, Visit]]] = {}
    for route, visit in found:
        part = visit.part or 1
        if visit.part is None and job.max_days > 1 and len({v.part for _, v in found}) > 1:
            bad("PART", f"a visit on {route.date} has no part number")
        parts.setdefault(part, []).append((route, visit))
    numbers = sorted(parts)
    first = job.first_part
    if numbers != list(range(first, first + len(numbers))):
        bad("PART", f"parts {numbers} are not numbered {first}..{first + len(numbers) - 1}")
    if first - 1 + len(numbers) > job.max_days:
        bad("PART", f"{len(numbers)} days, more than max_days {job.max_days}")
    crews: list[frozenset[str]] = []
    days: list[date] = []
    for number in numbers:
        members = parts[number]
        when = members[0][0].date
        starts = {v.start for _, v in members}
        if len(members) != job.crew_size:
            bad("CREW_SIZE", f"part {number}: {len(members)} technicians, the job needs {job.crew_size}")
        if len({r.date for r, _ in members}) > 1:
            bad("CREW_APART", f"part {number}: crew members on different days")
        if max(starts) - min(starts) > TOLERANCE:
            span = ", ".join(f"{r.technician_id} {hhmm(v.start)}" for r, v in members)
            bad("CREW_APART", f"part {number}: the crew does not start together ({span})")
        names = [r.technician_id for r, _ in members]
        if len(set(names)) != len(names):
            bad("CREW_SIZE", f"part {number}: one technician counted twice in the crew")
        if job.crew_size > 1:
            leads = [r.technician_id for r, v in members if v.role == "lead"]
            if len(leads) != 1:
                bad("CREW_ROLE", f"part {number}: {len(leads)} leads, one is needed")
        lengths = {v.end - v.start for _, v in members}
        if len(lengths) > 1:
            bad("CREW_APART", f"part {number}: crew members stay for different lengths of time")
        crews.append(frozenset(names))
        days.append(when)
    if len(set(crews)) > 1:
        bad("PART_CREW", "the parts are not done by the same technician(s)")
    if days != sorted(set(days)):
        bad("PART_DAYS", "parts are not on successive days in order")
    for a, b in itertools.pairwise(days):
        for tid in crews[0]:
            tech = techs.get(tid)
            skipped = [s.date for s in tech.shifts if a < s.date < b] if tech else []
            if skipped:
                bad("PART_DAYS", f"{tid} works on {skipped[0]} between parts on {a} and {b}")
    for tid in crews[0] if crews else ():
        own = [v for r, v in found if r.technician_id == tid]
        on_site = sum(((v.end - v.start) for v in own), timedelta())
        if abs(on_site - timedelta(minutes=job.duration_minutes)) > TOLERANCE * max(1, len(own)):
            bad(
                "DURATION",
                f"{tid} is on site {minutes(on_site)} in all, the job needs {job.duration_minutes:g} min",
            )
        if len(own) > 1:
            for v in own:
                if v.end - v.start < timedelta(minutes=job.min_part_minutes) - TOLERANCE:
                    bad("PART_LENGTH", f"part {v.part}: {minutes(v.end - v.start)}, under min_part_minutes")
    return out


def _lead(found: list[tuple[Route, Visit]]) -> tuple[str, date, date]:
    """Who leads a job, its first and its last day."""
    lead = next((r.technician_id for r, v in found if v.role in (None, "lead")), found[0][0].technician_id)
    dates = [r.date for r, _ in found]
    return lead, min(dates), max(dates)


def _check_links(
    job: Job, visits: dict[str, list[tuple[Route, Visit]]], techs: dict[str, Technician]
) -> list[Violation]:
    out: list[Violation] = []
    lead, first, _ = _lead(visits[job.id])
    link = job.after
    if link is not None:
        if link.job_id in visits:
            base: date | None = _lead(visits[link.job_id])[2]
        else:
            base = link.done_on
        if base is None:
            out.append(Violation("LINK", f"follows {link.job_id}, which is not planned", job.id))
        else:
            gap = (first - base).days
            if gap < link.min_days or (link.max_days is not None and gap > link.max_days):
                most = f"-{link.max_days}" if link.max_days is not None else "+"
                out.append(
                    Violation(
                        "LINK",
                        f"{gap} days after {link.job_id} ({base}); it must be {link.min_days}{most}",
                        job.id,
                    )
                )
    same = job.same_technician_as
    if same is not None and same.hard:
        other = _lead(visits[same.job_id])[0] if same.job_id in visits else same.technician_id
        if other is None:
            out.append(
                Violation("LINK", f"must go to the technician of {same.job_id}, who is not planned", job.id)
            )
        elif other != lead:
            out.append(Violation("LINK", f"goes to {lead}, not {other}, who has {same.job_id}", job.id))
    return out


def _day(moment: datetime, day: date) -> str:
    return "" if moment.date() == day else f"{moment:%Y-%m-%d} "


def _span(scenario: Scenario, start: datetime, end: datetime, near: datetime) -> str:
    a, b = scenario.local(start), scenario.local(end)
    day = "" if a.date() == near.date() else f"{a:%Y-%m-%d} "
    return f"{day}{hhmm(a)}-{hhmm(b)}"


def _check_route(scenario: Scenario, tech: Technician, route: Route, jobs: dict[str, Job]) -> list[Violation]:
    out: list[Violation] = []
    tid, day = tech.id, route.date

    def bad(code: str, message: str, job_id: str | None = None) -> None:
        out.append(Violation(code, message, job_id, tid, day))

    shift = next((s for s in tech.shifts if s.date == day), None)
    if shift is None:
        bad("NO_SHIFT", "technician has no shift that day")
        return out
    shift_start = scenario.at(day, shift.start)
    shift_end = scenario.at(day, shift.end)
    latest_end = shift_end + timedelta(minutes=tech.max_overtime_minutes)
    if route.start < shift_start - TOLERANCE:
        bad("SHIFT_START", f"leaves at {hhmm(route.start)}, before the shift starts at {hhmm(shift_start)}")
    if route.end > latest_end + TOLERANCE:
        bad(
            "OVERTIME",
            f"returns at {hhmm(route.end)}, after {hhmm(latest_end)} (shift end plus "
            f"{tech.max_overtime_minutes} min of overtime allowed)",
        )

    load = 0
    for visit in route.visits:
        job = jobs.get(visit.job_id)
        if job is None:
            continue
        if visit.role != "helper" and (visit.part or 1) == 1:  # a crew's kit rides in the lead's van, once
            load += job.demand
        needs = job.helper_skills if visit.role == "helper" else job.skills
        for skill, level in needs.items():
            if tech.skills.get(skill, 0) < level:
                bad("SKILL", f"needs {skill}>={level}, has {tech.skills.get(skill, 0)}", job.id)
        if tid in job.excluded_technicians:
            bad("EXCLUDED", "customer excluded this technician", job.id)
        if job.pinned and (job.pinned.technician_id != tid or job.pinned.date != day):
            bad("PINNED", f"promised to {job.pinned.technician_id} on {job.pinned.date}", job.id)
        if (
            job.pinned
            and job.pinned.start
            and abs(visit.start - scenario.local(job.pinned.start)) > TOLERANCE
        ):
            bad("PINNED", f"pinned to start at {hhmm(scenario.local(job.pinned.start))}", job.id)
        length = visit.end - visit.start
        if visit.part is None and abs(length - timedelta(minutes=job.duration_minutes)) > TOLERANCE:
            bad("DURATION", f"on site {minutes(length)}, the job needs {job.duration_minutes:g} min", job.id)
        if visit.arrival > visit.start + TOLERANCE:
            bad(
                "ARRIVAL",
                f"starts {hhmm(visit.start)}, before the technician arrives at {hhmm(visit.arrival)}",
                job.id,
            )
        if job.windows and not any(
            scenario.local(w.start) - TOLERANCE <= visit.start <= scenario.local(w.end) + TOLERANCE
            for w in job.windows
        ):
            spans = ", ".join(_span(scenario, w.start, w.end, visit.start) for w in job.windows)
            bad(
                "WINDOW",
                f"starts {_day(visit.start, route.date)}{hhmm(visit.start)}, outside its window(s) {spans}",
                job.id,
            )
        if job.appointment is not None and not (
            scenario.local(job.appointment.start) - TOLERANCE
            <= visit.start
            <= scenario.local(job.appointment.end) + TOLERANCE
        ):
            promised = _span(scenario, job.appointment.start, job.appointment.end, visit.start)
            bad(
                "PROMISE",
                f"starts {hhmm(visit.start)}, outside the window promised to the customer {promised}",
                job.id,
            )
        if job.release and visit.start < scenario.local(job.release) - TOLERANCE:
            release = scenario.local(job.release)
            bad(
                "RELEASE",
                f"starts {hhmm(visit.start)}, before its release {_day(release, route.date)}{hhmm(release)}",
                job.id,
            )
        if not (route.start - TOLERANCE <= visit.start and visit.end <= route.end + TOLERANCE):
            bad("OUTSIDE_ROUTE", "visit lies outside the route's start and end", job.id)
    if tech.capacity is not None and load > tech.capacity:
        bad("CAPACITY", f"load {load} exceeds van capacity {tech.capacity}")

    lunch = tech.lunch
    brk = route.break_
    need_break = False
    if lunch is not None:
        lo = max(scenario.at(day, lunch.earliest), shift_start)
        hi = min(scenario.at(day, lunch.latest), latest_end)
        need_break = hi - lo >= timedelta(minutes=lunch.minutes)
        if need_break and brk is None:
            bad("BREAK_MISSING", "a lunch break is required and none is planned")
        if brk is not None:
            if abs((brk.end - brk.start) - timedelta(minutes=lunch.minutes)) > TOLERANCE:
                bad("BREAK_LENGTH", f"break lasts {minutes(brk.end - brk.start)}, not {lunch.minutes} min")
            if brk.start < lo - TOLERANCE or brk.end > hi + TOLERANCE:
                bad(
                    "BREAK_WINDOW",
                    f"break {hhmm(brk.start)}-{hhmm(brk.end)} outside its window {hhmm(lo)}-{hhmm(hi)}",
                )
    elif brk is not None:
        bad("BREAK_UNEXPECTED", "technician has no lunch rule but the route has a break")

    # Walk the stops in order: each gap must hold the travel, and the break if it lies there.
    stops: list[tuple[GeoPoint, datetime, datetime, str | None]] = [
        (tech.start_point, route.start, route.start, None)
    ]
    for visit in route.visits:
        job = jobs.get(visit.job_id)
        if job is not None:
            stops.append((job.location, visit.start, visit.end, job.id))
    stops.append((tech.end_point, route.end, route.end, None))
    break_placed = brk is None
    for (a, _, a_end, _), (b, b_start, _, b_job) in itertools.pairwise(stops):
        gap = b_start - a_end
        drive = timedelta(minutes=travel_minutes(scenario, a, b))
        need = drive
        if brk is not None and a_end - TOLERANCE <= brk.start and brk.end <= b_start + TOLERANCE:
            need += brk.end - brk.start
            break_placed = True
        if gap + TOLERANCE < need:
            what = f"to {b_job}" if b_job else "to the end location"
            bad(
                "TRAVEL",
                f"leaves at {hhmm(a_end)} and is due at {hhmm(b_start)} {what}: {minutes(gap)}, "
                f"but the drive{' and the break' if need > drive else ''} take {minutes(need)}",
                b_job,
            )
    if brk is not None and not break_placed:
        after_end = brk.start >= route.end - TOLERANCE
        before_start = brk.end <= route.start + TOLERANCE
        if not (after_end or before_start):
            bad("BREAK_OVERLAP", "break overlaps a visit or the travel it needs")
    return out
