from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from models import Plan, ReasonCode, Scenario
from optimizer import SolveOptions, solve, validate_plan
from tests.conftest import DAY, job, scenario_dict, tech

FAST = SolveOptions(time_limit_seconds=5, iterations=300)


def planned(plan: Plan) -> dict[str, str]:
    return {v.job_id: r.technician_id for r in plan.routes for v in r.visits}


def solve_checked(data: dict[str, Any], options: SolveOptions = FAST, **kw: Any) -> tuple[Scenario, Plan]:
    scenario = Scenario.model_validate(data)
    plan = solve(scenario, options, **kw)
    assert validate_plan(scenario, plan) == []
    accounted = set(planned(plan)) | {u.job_id for u in plan.unassigned}
    assert accounted == {j.id for j in scenario.jobs}
    return scenario, plan


def test_small_day_plans_everything_within_the_rules(two_techs_six_jobs: dict[str, Any]) -> None:
    _, plan = solve_checked(two_techs_six_jobs)
    who = planned(plan)
    assert set(who) == {f"J{i}" for i in range(1, 7)}
    assert who["J1"] == "A"  # only A has hvac 4
    assert who["J5"] == "A"  # only A has electrical
    assert who["J6"] == "B"  # the customer excluded A
    assert all(r.break_ is not None for r in plan.routes)  # lunch planned for every working day
    assert plan.kpis.jobs_planned == 6
    assert plan.routes[0].start.utcoffset() is not None  # ISO with the zone's offset


@pytest.mark.parametrize(
    ("bad_job", "reason"),
    [
        (job("X", skills={"elevator": 3}), ReasonCode.NO_QUALIFIED_TECHNICIAN),
        (job("X", excluded_technicians=["A", "B"]), ReasonCode.ALL_EXCLUDED),
        (job("X", duration_minutes=700), ReasonCode.TOO_LONG),
        (job("X", windows=[{"start": f"{DAY}T20:00", "end": f"{DAY}T22:00"}]), ReasonCode.NO_SHIFT_IN_WINDOW),
        (
            job("X", pinned={"technician_id": "B", "date": DAY}, skills={"hvac": 4}),
            ReasonCode.PINNED_CONFLICT,
        ),
        (job("X", demand=50), ReasonCode.DEMAND_EXCEEDS_VAN),
    ],
)
def test_impossible_jobs_get_a_reason(bad_job: dict[str, Any], reason: ReasonCode) -> None:
    data = scenario_dict(
        [tech("A", skills={"hvac": 5}, capacity=10), tech("B", capacity=10)], [job("J1"), bad_job]
    )
    _, plan = solve_checked(data)
    assert [(u.job_id, u.reason) for u in plan.unassigned] == [("X", reason)]
    assert plan.unassigned[0].detail


def test_overload_leaves_out_the_lowest_priority_with_capacity_reason() -> None:
    """One technician, four hours of shift, three 2-hour jobs: only two fit, the emergency stays."""
    techs = [tech("A", shifts=[{"date": DAY, "start": "08:00", "end": "12:30"}])]
    jobs = [
        job("LOW", kind="training", duration_minutes=120),
        job("HIGH", kind="repair", emergency=True, duration_minutes=120),
        job("MID", kind="repair", duration_minutes=120),
    ]
    _, plan = solve_checked(scenario_dict(techs, jobs))
    assert set(planned(plan)) == {"HIGH", "MID"}
    assert [(u.job_id, u.reason) for u in plan.unassigned] == [("LOW", ReasonCode.CAPACITY)]


def test_pinned_job_stays_with_its_technician_and_day() -> None:
    techs = [tech("A"), tech("B", lat=45.77, lon=4.85)]  # B lives next to the job
    jobs = [job("J1", pinned={"technician_id": "A", "date": DAY})]
    _, plan = solve_checked(scenario_dict(techs, jobs))
    assert planned(plan) == {"J1": "A"}


def test_release_and_windows_are_respected_over_days() -> None:
    shifts = [{"date": f"2026-12-0{d}", "start": "08:00", "end": "17:00"} for d in (7, 8, 9)]
    techs = [tech("A", shifts=shifts)]
    jobs = [
        job("PART", release="2026-12-08T14:00"),
        job(
            "TWO",
            windows=[
                {"start": "2026-12-07T06:00", "end": "2026-12-07T07:00"},
                {"start": "2026-12-09T15:00", "end": "2026-12-09T15:30"},
            ],
        ),
    ]
    _, plan = solve_checked(scenario_dict(techs, jobs, days=3))
    starts = {v.job_id: v.start for r in plan.routes for v in r.visits}
    assert starts["PART"] >= datetime.fromisoformat("2026-12-08T14:00+01:00")
    assert starts["TWO"].date().isoformat() == "2026-12-09"


def test_daylight_saving_change_inside_the_horizon() -> None:
    """Paris leaves summer time on 2026-10-25: offsets in the plan must follow the zone."""
    shifts = [{"date": d, "start": "08:00", "end": "17:00"} for d in ("2026-10-24", "2026-10-26")]
    data = scenario_dict(
        [tech("A", shifts=shifts)],
        [
            job("SAT", windows=[{"start": "2026-10-24T09:00", "end": "2026-10-24T09:30"}]),
            job("MON", windows=[{"start": "2026-10-26T09:00", "end": "2026-10-26T09:30"}]),
        ],
        days=3,
    )
    data["horizon"]["start"] = "2026-10-24"
    _, plan = solve_checked(data)
    starts = {v.job_id: v.start for r in plan.routes for v in r.visits}
    assert starts["SAT"].utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert starts["MON"].utcoffset().total_seconds() == 3600  # type: ignore[union-attr]
    assert "09:00" <= starts["MON"].strftime("%H:%M") <= "09:30"


def test_van_capacity_splits_heavy_jobs() -> None:
    techs = [tech("A", capacity=5), tech("B", capacity=5)]
    jobs = [job(f"J{i}", demand=3) for i in range(3)]
    _, plan = solve_checked(scenario_dict(techs, jobs))
    assert all(len(r.visits) <= 1 for r in plan.routes)
    assert len(planned(plan)) == 2


def test_same_seed_and_iterations_give_the_same_plan(two_techs_six_jobs: dict[str, Any]) -> None:
    scenario = Scenario.model_validate(two_techs_six_jobs)
    options = SolveOptions(time_limit_seconds=60, iterations=200, seed=3)
    a, b = solve(scenario, options), solve(scenario, options)
    assert a.routes == b.routes and a.unassigned == b.unassigned


def test_previous_plan_keeps_jobs_in_place(two_techs_six_jobs: dict[str, Any]) -> None:
    _, first = solve_checked(two_techs_six_jobs)
    data = dict(two_techs_six_jobs)
    data["jobs"] = [*data["jobs"], job("NEW", lat=45.74, lon=4.85, duration_minutes=30)]
    _, second = solve_checked(data, previous=first)
    assert second.kpis.churn is not None and second.kpis.churn <= 0.2
    assert "NEW" in planned(second)


def test_progress_reports_each_phase(two_techs_six_jobs: dict[str, Any]) -> None:
    seen: list[str] = []
    solve(Scenario.model_validate(two_techs_six_jobs), FAST, progress=lambda name, _: seen.append(name))
    assert seen[0] == "problem" and "first plan" in seen and seen[-1] == "done"


def test_no_technicians_at_all_still_accounts_for_every_job() -> None:
    _, plan = solve_checked(scenario_dict([], [job("J1"), job("J2")]))
    assert {u.reason for u in plan.unassigned} == {ReasonCode.NO_QUALIFIED_TECHNICIAN}


def test_technician_without_shifts_is_no_stop_on_anyones_route() -> None:
    """Regression: an idle technician's home must not become a node someone has to visit."""
    _, plan = solve_checked(
        scenario_dict([tech("A"), tech("OFF", lat=45.9, shifts=[])], [job("J1"), job("J2")])
    )
    assert {r.technician_id for r in plan.routes} == {"A"}
    assert len(planned(plan)) == 2
