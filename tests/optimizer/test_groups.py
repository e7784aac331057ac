"""Crews, multi-day jobs and linked visits: planned together by the group moves, checked by the validator."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Plan, ReasonCode, Scenario
from optimizer import SolveOptions, solve, validate_plan
from optimizer.groups import part_minutes, split
from tests.conftest import DAY, job, scenario_dict, tech

OPTIONS = SolveOptions(time_limit_seconds=60, iterations=300)
SHIPPED = Path(__file__).parents[2] / "scenarios" / "crews-week.json"
LUNCH = {"earliest": "12:00", "latest": "14:00", "minutes": 30}


def week_techs(n: int, **extra: Any) -> list[dict[str, Any]]:
    days = [(date.fromisoformat(DAY) + timedelta(days=d)).isoformat() for d in range(5)]
    return [
        tech(
            f"T{i}",
            lat=45.76 + i / 200,
            shifts=[{"date": d, "start": "08:00", "end": "17:00"} for d in days],
            lunch=LUNCH,
            **extra,
        )
        for i in range(n)
    ]


def visits_of(plan: Plan, job_id: str) -> list[tuple[str, date, Any]]:
    return sorted((r.technician_id, r.date, v) for r in plan.routes for v in r.visits if v.job_id == job_id)  # type: ignore[return-value]


def reason(plan: Plan, job_id: str) -> ReasonCode | None:
    return next((u.reason for u in plan.unassigned if u.job_id == job_id), None)


def test_a_crew_starts_together_and_each_route_carries_the_visit() -> None:
    techs = week_techs(3)
    techs[2]["skills"] = {"hvac": 1}
    sc = Scenario.model_validate(
        scenario_dict(
            techs,
            [
                job("LIFT", duration_minutes=120, crew_size=3, skills={"hvac": 3}, helper_skills={"hvac": 1}),
                job("A", lat=45.70),
                job("B", lat=45.80, lon=4.80),
            ],
            days=5,
        )
    )
    plan = solve(sc, OPTIONS)
    assert validate_plan(sc, plan) == []
    crew = visits_of(plan, "LIFT")
    assert len(crew) == 3 and len({t for t, _, _ in crew}) == 3
    assert len({v.start for _, _, v in crew}) == 1 and len({d for _, d, _ in crew}) == 1
    assert sorted(v.role for _, _, v in crew) == ["helper", "helper", "lead"]
    lead = next(t for t, _, v in crew if v.role == "lead")
    assert lead != "T2"  # the lead needs hvac 3; T2 only helps


def test_a_two_day_installation_goes_to_one_crew_on_successive_days_then_its_commissioning() -> None:
    sc = Scenario.model_validate(
        scenario_dict(
            week_techs(3),
            [
                job("HP", kind="installation", duration_minutes=480, crew_size=2, max_days=3),
                job("COM", kind="inspection", after={"job_id": "HP", "min_days": 2, "max_days": 3}),
            ],
            days=5,
        )
    )
    plan = solve(sc, OPTIONS)
    assert validate_plan(sc, plan) == []
    parts = visits_of(plan, "HP")
    assert len(parts) == 4  # two days, two technicians
    days = sorted({d for _, d, _ in parts})
    assert len(days) == 2 and (days[1] - days[0]).days == 1
    assert {v.part for _, _, v in parts} == {1, 2}
    for part in (1, 2):
        crew = [(t, v) for t, _, v in parts if v.part == part]
        assert len({v.start for _, v in crew}) == 1
    by_tech: dict[str, float] = {}
    for t, _, v in parts:
        by_tech[t] = by_tech.get(t, 0.0) + (v.end - v.start).total_seconds() / 60
    assert set(by_tech.values()) == {480.0}
    ((_, com_day, _),) = visits_of(plan, "COM")
    assert 2 <= (com_day - days[-1]).days <= 3


def test_a_follow_up_goes_to_the_technician_of_the_repair() -> None:
    sc = Scenario.model_validate(
        scenario_dict(
            week_techs(3),
            [
                job("REP", kind="repair", lat=45.70),
                job("FU", kind="follow_up", lat=45.81, same_technician_as={"job_id": "REP", "hard": True},
                    after={"job_id": "REP", "min_days": 1}),
                job("OLD-FU", kind="follow_up",
                    after={"job_id": "GONE", "min_days": 3, "max_days": 3, "done_on": DAY},
                    same_technician_as={"job_id": "GONE", "hard": True, "technician_id": "T1"}),
            ],
            days=5,
        )
    )  # fmt: skip
    plan = solve(sc, OPTIONS)
    assert validate_plan(sc, plan) == []
    ((rep_tech, rep_day, _),) = visits_of(plan, "REP")
    ((fu_tech, fu_day, _),) = visits_of(plan, "FU")
    assert fu_tech == rep_tech and fu_day > rep_day
    ((old_tech, old_day, _),) = visits_of(plan, "OLD-FU")
    assert old_tech == "T1" and (old_day - date.fromisoformat(DAY)).days == 3


def test_reasons_say_what_cannot_be_planned() -> None:
    techs = week_techs(2)
    techs[1]["skills"] = {"boiler": 1}
    sc = Scenario.model_validate(
        scenario_dict(
            techs,
            [
                job("CREW3", crew_size=3, skills={}),  # only two technicians exist
                job("CREW2", crew_size=2, helper_skills={"hvac": 1}),  # one has hvac
                job("LONG", duration_minutes=2000, max_days=2),
                job("NEXT", after={"job_id": "CREW2", "min_days": 1}),
                job("LATE", after={"job_id": "DONE", "min_days": 30, "done_on": DAY}),
            ],
            days=5,
        )
    )
    plan = solve(sc, OPTIONS)
    assert validate_plan(sc, plan) == []
    assert reason(plan, "CREW3") == ReasonCode.CREW_UNAVAILABLE
    assert reason(plan, "CREW2") == ReasonCode.CREW_UNAVAILABLE
    assert reason(plan, "LONG") == ReasonCode.TOO_LONG
    assert reason(plan, "NEXT") == ReasonCode.LINKED_JOB_NOT_PLANNED
    assert reason(plan, "LATE") == ReasonCode.NO_SHIFT_IN_WINDOW


def test_parts_are_whole_minutes_that_add_up() -> None:
    assert part_minutes(600, 1) == [600]
    assert part_minutes(601, 3) == [200, 200, 201]
    assert sum(part_minutes(1000.5, 4)) == 1000.5


def test_split_gives_one_unit_per_member_and_day() -> None:
    sc = Scenario.model_validate(
        scenario_dict(
            week_techs(3), [job("X", duration_minutes=700, crew_size=2, max_days=3), job("Y")], days=5
        )
    )
    units, groups = split(sc)
    assert [j.id for j in units.jobs if j.id.startswith("Y")] == ["Y"]
    g = groups["X"]
    assert g.parts == 3 and g.crew == 2
    ids = [j.id for j in units.jobs if j.id.startswith("X")]
    assert ids == [f"X~{d}.{m}" for d in (1, 2, 3) for m in (1, 2)]
    helpers = [j for j in units.jobs if j.id.endswith(".2")]
    assert all(j.skills == {} and j.demand == 0 for j in helpers)


# --- the validator rejects what breaks the rules ------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> tuple[Scenario, Plan]:
    sc = Scenario.model_validate(json.loads(SHIPPED.read_text()))
    return sc, solve(sc, SolveOptions(time_limit_seconds=60, iterations=400))


def test_the_shipped_crews_week_plans_its_crews_installation_and_links(
    shipped: tuple[Scenario, Plan],
) -> None:
    sc, plan = shipped
    assert validate_plan(sc, plan) == []
    install = visits_of(plan, "INSTALL-HP-1")
    assert len(install) == 4 and {v.part for _, _, v in install} == {1, 2}
    assert len(visits_of(plan, "BOILER-LIFT-1")) == 3
    assert visits_of(plan, "COMMISSION-HP-1") and visits_of(plan, "FOLLOWUP-7")
    ((fu_tech, _, _),) = visits_of(plan, "FOLLOWUP-7")
    ((rep_tech, _, _),) = visits_of(plan, "REPAIR-7")
    assert fu_tech == rep_tech


def _moved(plan: Plan, job_id: str, minutes: int, which: int = 0) -> Plan:
    """The plan with one visit of `job_id` started (and ended) later, routes otherwise untouched."""
    routes, seen = [], 0
    for r in plan.routes:
        visits = []
        for v in r.visits:
            if v.job_id == job_id:
                if seen == which:
                    shift = timedelta(minutes=minutes)
                    v = v.model_copy(update={"start": v.start + shift, "end": v.end + shift})
                seen += 1
            visits.append(v)
        routes.append(r.model_copy(update={"visits": visits}))
    return plan.model_copy(update={"routes": routes})


def test_the_validator_rejects_a_crew_that_arrives_apart(shipped: tuple[Scenario, Plan]) -> None:
    sc, plan = shipped
    codes = {v.code for v in validate_plan(sc, _moved(plan, "BOILER-LIFT-1", 20, which=1))}
    assert "CREW_APART" in codes


def test_the_validator_rejects_a_missing_crew_member_and_a_broken_link(
    shipped: tuple[Scenario, Plan],
) -> None:
    sc, plan = shipped
    lead = next(t for t, _, v in visits_of(plan, "INSTALL-HP-1") if v.role == "lead")
    short = plan.model_copy(
        update={
            "routes": [
                r.model_copy(
                    update={
                        "visits": [
                            v for v in r.visits if not (v.job_id == "BOILER-LIFT-1" and v.role == "helper")
                        ]
                    }
                )
                for r in plan.routes
            ]
        }
    )
    assert "CREW_SIZE" in {v.code for v in validate_plan(sc, short)}
    ((fu_tech, fu_day, _),) = visits_of(plan, "FOLLOWUP-7")
    other = next(r for r in plan.routes if r.technician_id != fu_tech and r.date == fu_day)
    swapped = plan.model_copy(
        update={
            "routes": [
                r.model_copy(update={"visits": [v for v in r.visits if v.job_id != "FOLLOWUP-7"]})
                if r.technician_id == fu_tech and r.date == fu_day
                else r.model_copy(
                    update={"visits": [*r.visits, *[v for _, _, v in visits_of(plan, "FOLLOWUP-7")]]}
                )
                if r is other
                else r
                for r in plan.routes
            ]
        }
    )
    assert any(v.code == "LINK" and v.job_id == "FOLLOWUP-7" for v in validate_plan(sc, swapped))
    assert lead  # the installation has a lead


def test_the_validator_rejects_parts_on_days_that_are_not_successive(shipped: tuple[Scenario, Plan]) -> None:
    sc, plan = shipped
    parts = visits_of(plan, "INSTALL-HP-1")
    day2 = max(d for _, d, _ in parts)
    later = plan.model_copy(
        update={
            "routes": [
                r.model_copy(update={"date": r.date + timedelta(days=2)})
                if r.date == day2 and any(v.job_id == "INSTALL-HP-1" for v in r.visits)
                else r
                for r in plan.routes
            ]
        }
    )
    codes = {v.code for v in validate_plan(sc, later)}
    assert "PART_DAYS" in codes or "NO_SHIFT" in codes


# --- property: any scenario with crews, long jobs and links gives a valid, complete plan ----------


@st.composite
def group_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n_tech = draw(st.integers(1, 4))
    techs = week_techs(n_tech)
    for t in techs:
        t["skills"] = {"hvac": draw(st.integers(1, 4))}
        if draw(st.booleans()):
            t["shifts"] = [s for s in t["shifts"] if draw(st.integers(0, 4))]
    jobs: list[dict[str, Any]] = []
    for j in range(draw(st.integers(1, 9))):
        item = job(
            f"J{j}",
            lat=draw(st.floats(45.6, 45.9)),
            lon=draw(st.floats(4.7, 5.0)),
            duration_minutes=draw(st.integers(20, 200)),
            skills={"hvac": draw(st.integers(1, 3))},
        )
        shape = draw(st.sampled_from(["plain", "crew", "long", "after", "same"]))
        if shape == "crew":
            item["crew_size"] = draw(st.integers(2, 3))
        elif shape == "long":
            item.update(duration_minutes=draw(st.integers(300, 900)), max_days=draw(st.integers(2, 3)))
            item["crew_size"] = draw(st.sampled_from([1, 1, 2]))
        elif shape in ("after", "same") and jobs:
            target = draw(st.sampled_from(jobs))["id"]
            if shape == "after":
                item["after"] = {"job_id": target, "min_days": draw(st.integers(0, 2)), "max_days": 3}
            else:
                item["same_technician_as"] = {"job_id": target, "hard": draw(st.booleans())}
        jobs.append(item)
    return scenario_dict(techs, jobs, days=5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group_scenarios())
def test_any_scenario_with_groups_gives_a_valid_complete_plan(data: dict[str, Any]) -> None:
    sc = Scenario.model_validate(data)
    plan = solve(sc, SolveOptions(time_limit_seconds=60, iterations=60))
    assert validate_plan(sc, plan) == []
    planned = {v.job_id for r in plan.routes for v in r.visits}
    left = [u.job_id for u in plan.unassigned]
    assert len(left) == len(set(left)) and not planned & set(left)
    assert planned | set(left) == {j.id for j in sc.jobs}
