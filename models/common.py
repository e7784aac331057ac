"""Reusable constrained types, so every model states a rule once and errors name the field."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
SkillLevel = Annotated[int, Field(ge=1, le=5, description="1 (trainee) to 5 (expert)")]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_SKILL_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")


def _check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            "must be 1-64 characters of letters, digits, '_', '.', ':' or '-', starting with a "
            "letter or digit"
        )
    return value


def _check_skill(value: str) -> str:
    if not _SKILL_RE.match(value):
        raise ValueError(f"skill name {value!r} must be 1-40 lower-case letters, digits, '_' or '-'")
    return value


def _parse_hhmm(value: object) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
        raise ValueError('must be a wall-clock time "HH:MM"')
    hours, minutes = int(value[:2]), int(value[3:])
    if hours > 23 or minutes > 59:
        raise ValueError(f'"{value}" is not a time of day (00:00 to 23:59)')
    return time(hours, minutes)


# The rules are checked by the validators (readable messages) and published in the JSON schema
# (so API clients and fuzzers see them).
Identifier = Annotated[
    str,
    AfterValidator(_check_id),
    Field(json_schema_extra={"pattern": _ID_RE.pattern, "minLength": 1, "maxLength": 64}),
]
SkillName = Annotated[
    str,
    AfterValidator(_check_skill),
    Field(json_schema_extra={"pattern": _SKILL_RE.pattern, "minLength": 1, "maxLength": 40}),
]
# A wall-clock time written "HH:MM" in files; minutes past midnight is what the optimizer needs.
ClockTime = Annotated[
    time,
    BeforeValidator(_parse_hhmm),
    Field(json_schema_extra={"type": "string", "pattern": r"^\d{2}:\d{2}$", "example": "08:00"}),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
]


def duplicates(ids: list[str]) -> list[str]:
    """The values that occur more than once, sorted: what an error message about duplicate ids lists."""
    seen: set[str] = set()
    twice: set[str] = set()
    for i in ids:
        (twice if i in seen else seen).add(i)
    return sorted(twice)


def minutes_of(t: time) -> int:
    return t.hour * 60 + t.minute


class Strict(BaseModel):
    """Unknown fields are errors: a misspelt `duraton_minutes` must not silently become a default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GeoPoint(Strict):
    lat: Latitude
    lon: Longitude
