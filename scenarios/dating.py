"""Move a shipped scenario to other dates, so a demo or a test has work today, not in 2026."""

from __future__ import annotations

from datetime import date, datetime

from models import Job, Pinned, Scenario, Shift, Technician, Window


def dated_from(scenario: Scenario, start: date) -> Scenario:
    """The same scenario with every date and datetime moved by (start - horizon start) days."""
    delta = start - scenario.horizon.start

    def dt(value: datetime | None) -> datetime | None:
        return None if value is None else value + delta

    def tech(t: Technician) -> Technician:
        return t.model_copy(
            update={"shifts": [s.model_copy(update={"date": s.date + delta}) for s in t.shifts]}
        )

    def job(j: Job) -> Job:
        return j.model_copy(
            update={
                "windows": [Window(start=w.start + delta, end=w.end + delta) for w in j.windows],
                "release": dt(j.release),
                "due": dt(j.due),
                "pinned": None
                if j.pinned is None
                else Pinned(technician_id=j.pinned.technician_id, date=j.pinned.date + delta),
            }
        )

    data = scenario.model_copy(
        update={
            "horizon": scenario.horizon.model_copy(update={"start": start}),
            "technicians": [tech(t) for t in scenario.technicians],
            "jobs": [job(j) for j in scenario.jobs],
        }
    )
    return Scenario.model_validate(data.model_dump())


def repeat_shifts(tech: Technician, days: list[date]) -> Technician:
    """Give a technician the hours of their first shift on each of `days` (demo data)."""
    if not tech.shifts:
        return tech
    first = tech.shifts[0]
    known = {s.date for s in tech.shifts}
    extra = [Shift(date=d, start=first.start, end=first.end) for d in days if d not in known]
    return tech.model_copy(update={"shifts": sorted([*tech.shifts, *extra], key=lambda s: s.date)})
