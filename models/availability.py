"""Availability calendars: a weekly shift template, dated exceptions and a region's public holidays.

Anything planned weeks ahead (maintenance occurrences, forecasts, appointment slots) needs to know who
works on a date nobody has typed a shift for. A technician's `availability` answers that; the dated
shifts the optimizer reads are derived from it (`Technician.with_derived_shifts`), so the kernel never
learns what a template is. The order of precedence, highest first: a dated exception (absence, holiday
or a changed shift), a shift typed for that date, a public holiday of the region (no work), the
weekly template.

Public holidays come from the `holidays` package (kept up to date by its maintainers, with regional
subdivisions such as `DE-BY`), never from a hand-written list.
"""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from models.common import ClockTime, Strict

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WeeklyShift(Strict):
    """One day of the week's shift in a template, e.g. `{"day": "mon", "start": "08:00", "end": "17:00"}`."""

    day: Weekday
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _ordered(self) -> WeeklyShift:
        if self.end <= self.start:
            raise ValueError(f"{self.day}: ends at {self.end:%H:%M}, not after its start {self.start:%H:%M}")
        return self


class ShiftException(Strict):
    """A dated change to the template: `absence` (sickness, training, leave), `holiday` (a day off
    the region's calendar does not know), or `shift` (an extra or changed shift: `start` and `end`)."""

    date: date
    kind: Literal["absence", "holiday", "shift"]
    start: ClockTime | None = None
    end: ClockTime | None = None
    note: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> ShiftException:
        if self.kind == "shift":
            if self.start is None or self.end is None:
                raise ValueError(f"a changed shift on {self.date} needs `start` and `end`")
            if self.end <= self.start:
                raise ValueError(f"the shift on {self.date} ends at {self.end:%H:%M}, not after its start")
        elif self.start is not None or self.end is not None:
            raise ValueError(f"an {self.kind} on {self.date} has no `start` or `end`")
        return self


def _check_region(value: str) -> str:
    country, _, subdiv = value.partition("-")
    try:
        _holidays(country, subdiv or None, 2000)
    except NotImplementedError as exc:
        raise ValueError(f"{value!r} is not a region the holidays calendar knows ({exc})") from None
    return value


class Availability(Strict):
    weekly: list[WeeklyShift] = Field(default_factory=list, description="at most one shift per weekday")
    exceptions: list[ShiftException] = Field(default_factory=list, description="at most one per date")
    holidays: Annotated[str, Field(min_length=2, max_length=12)] | None = Field(
        None,
        description="public holidays of this region are days off: an ISO country code with an optional "
        "subdivision, e.g. 'FR', 'DE-BY', 'US-CA'",
    )
    valid_from: date | None = Field(None, description="the template applies from this date on")
    valid_until: date | None = Field(None, description="... and up to this date (leaving, a contract end)")

    @field_validator("holidays")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        return None if value is None else _check_region(value)

    @field_validator("weekly")
    @classmethod
    def _one_per_weekday(cls, weekly: list[WeeklyShift]) -> list[WeeklyShift]:
        days = [w.day for w in weekly]
        if twice := sorted({d for d in days if days.count(d) > 1}):
            raise ValueError(f"two shifts on {', '.join(twice)}; give one shift per weekday")
        return sorted(weekly, key=lambda w: WEEKDAYS.index(w.day))

    @field_validator("exceptions")
    @classmethod
    def _one_per_date(cls, exceptions: list[ShiftException]) -> list[ShiftException]:
        dates = [e.date for e in exceptions]
        if twice := sorted({d for d in dates if dates.count(d) > 1}):
            raise ValueError(f"two exceptions on {', '.join(map(str, twice))}; give one per date")
        return sorted(exceptions, key=lambda e: e.date)

    def holiday(self, day: date) -> str | None:
        """The name of the region's public holiday on `day`, if it is one."""
        if self.holidays is None:
            return None
        country, _, subdiv = self.holidays.partition("-")
        return _holidays(country, subdiv or None, day.year).get(day)

    def shift_on(self, day: date, typed: tuple[time, time] | None = None) -> tuple[time, time] | None:
        """The (start, end) worked on `day`, or None for a day off; `typed` is a shift typed for that
        date, which beats the template and the holiday calendar but not a dated exception."""
        for exc in self.exceptions:
            if exc.date == day:
                if exc.kind == "shift":
                    assert exc.start is not None and exc.end is not None
                    return (exc.start, exc.end)
                return None
        if typed is not None:
            return typed
        if (self.valid_from and day < self.valid_from) or (self.valid_until and day > self.valid_until):
            return None
        if self.holiday(day) is not None:
            return None
        name = WEEKDAYS[day.weekday()]
        for w in self.weekly:
            if w.day == name:
                return (w.start, w.end)
        return None


@lru_cache(maxsize=256)
def _holidays(country: str, subdiv: str | None, year: int) -> dict[date, str]:
    import holidays

    return dict(holidays.country_holidays(country, subdiv=subdiv, years=year).items())
