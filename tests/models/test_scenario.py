from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from models import Contract, JobKind, Plan, Scenario, derive_priority
from tests.conftest import DAY, job, scenario_dict, tech


def _with(mutate: Any) -> dict[str, Any]:
    data = scenario_dict([tech("A"), tech("B")], [job("J1"), job("J2")])
    mutate(data)
    return data


def _set(path: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = data
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return mutate


INVALID = [
    # latitude out of range
    (_set("jobs.0.location.lat", 95.0), "jobs.0.location.lat"),
    # NaN coordinates are never a place
    (_set("jobs.0.location.lon", math.nan), "jobs.0.location.lon"),
    # a window that ends before it starts
    (_set("jobs.0.windows", [{"start": f"{DAY}T12:00", "end": f"{DAY}T10:00"}]), "windows"),
    # a window wholly outside the horizon
    (
        _set("jobs.0.windows", [{"start": "2027-01-05T08:00", "end": "2027-01-05T10:00"}]),
        "outside the horizon",
    ),
    # a shift ending before it starts
    (_set("technicians.0.shifts", [{"date": DAY, "start": "17:00", "end": "08:00"}]), "shifts"),
    # duplicate technician ids
    (_set("technicians.1.id", "A"), "duplicate id"),
    # duplicate job ids
    (_set("jobs.1.id", "J1"), "duplicate id"),
    # pinned to a technician who does not exist
    (_set("jobs.0.pinned", {"technician_id": "Z", "date": DAY}), "pinned.technician_id"),
    # preferred technician who does not exist
    (_set("jobs.0.preferred_technicians", ["Z"]), "preferred_technicians"),
    # negative duration
    (_set("jobs.0.duration_minutes", -5), "jobs.0.duration_minutes"),
    # zero duration: a visit takes time
    (_set("jobs.0.duration_minutes", 0), "jobs.0.duration_minutes"),
    # 10,000 minutes is not one visit
    (_set("jobs.0.duration_minutes", 10_000), "jobs.0.duration_minutes"),
    # unknown job kind
    (_set("jobs.0.kind", "teleportation"), "jobs.0.kind"),
    # malformed skill level
    (_set("jobs.0.skills", {"hvac": 9}), "jobs.0.skills.hvac"),
    # malformed skill name
    (_set("jobs.0.skills", {"HVAC repair!": 2}), "jobs.0.skills"),
    # unknown time zone
    (_set("timezone", "Mars/Olympus"), "timezone"),
    # a typo in a field name must not pass silently
    (_set("jobs.0.duraton_minutes", 30), "duraton_minutes"),
    # clock times must be HH:MM
    (_set("technicians.0.shifts", [{"date": DAY, "start": "8am", "end": "17:00"}]), "start"),
    # a lunch window shorter than the lunch
    (_set("technicians.0.lunch", {"earliest": "12:00", "latest": "12:20", "minutes": 30}), "lunch"),
    # shift outside the horizon
    (_set("technicians.0.shifts", [{"date": "2027-03-01", "start": "08:00", "end": "17:00"}]), "outside"),
]


@pytest.mark.parametrize(("mutate", "expected"), INVALID)
def test_invalid_scenarios_name_the_field(mutate: Any, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(_with(mutate))
    assert expected in str(info.value)


def test_valid_scenario_round_trips_through_json(two_techs_six_jobs: dict[str, Any]) -> None:
    scenario = Scenario.model_validate(two_techs_six_jobs)
    again = Scenario.model_validate_json(scenario.model_dump_json())
    assert again == scenario
    assert again.technicians[0].start_point == again.technicians[0].home


@pytest.mark.parametrize(
    ("kind", "warranty", "contract", "emergency", "expected"),
    [
        (JobKind.REPAIR, True, Contract.NONE, False, 1),  # warranty repair
        (JobKind.MAINTENANCE, False, Contract.NONE, True, 1),  # any emergency
        (JobKind.MAINTENANCE, False, Contract.PREMIUM, False, 2),  # premium contract
        (JobKind.INSTALLATION, True, Contract.NONE, False, 2),  # other warranty work
        (JobKind.INSPECTION, False, Contract.STANDARD, False, 3),  # standard contract
        (JobKind.REPAIR, False, Contract.NONE, False, 3),  # paid repair
        (JobKind.MAINTENANCE, False, Contract.NONE, False, 4),  # routine, no contract
        (JobKind.TRAINING, False, Contract.NONE, False, 5),  # training last
        (JobKind.FOLLOW_UP, False, Contract.NONE, False, 5),  # follow-up last
    ],
)
def test_priority_rule(
    kind: JobKind, warranty: bool, contract: Contract, emergency: bool, expected: int
) -> None:
    assert derive_priority(kind, warranty, contract, emergency) == expected


def test_explicit_priority_wins() -> None:
    data = scenario_dict([tech("A")], [job("J1", kind="training", priority=1)])
    assert Scenario.model_validate(data).jobs[0].effective_priority == 1


def test_naive_and_offset_datetimes_mean_the_same_instant() -> None:
    naive = scenario_dict([tech("A")], [job("J1", release=f"{DAY}T10:00")])
    aware = scenario_dict([tech("A")], [job("J1", release=f"{DAY}T09:00:00+00:00")])
    a, b = Scenario.model_validate(naive), Scenario.model_validate(aware)
    assert a.local(a.jobs[0].release) == b.local(b.jobs[0].release)  # type: ignore[arg-type]


def test_plan_schema_uses_break_as_field_name() -> None:
    schema = Plan.model_json_schema()
    assert "break" in schema["$defs"]["Route"]["properties"]
