"""The pure re-plan step: promises, failed jobs, expired and future windows, churn."""

from __future__ import annotations

from datetime import date, datetime

from models import Job, JobStatus, Plan, ReasonCode, Scenario, Technician
from optimizer import SolveOptions, validate_plan
from optimizer.replan import PoolJob, ReplanInput, raised_priority, replan, working_days_horizon
from tests.conftest import DAY, job, scenario_dict, tech

OPTS = SolveOptions(time_limit_seconds=2, iterations=500)


def _input(jobs: list[dict], statuses: dict[str, JobStatus] | None = None, **extra: object) -> ReplanInput:
    sc = Scenario.model_validate(scenario_dict([tech("A"), tech("B", lat=45.70, lon=4.90)], jobs))
    statuses = statuses or {}
    return ReplanInput(
        timezone=sc.timezone,
        horizon=sc.horizon,
        technicians=sc.technicians,
        pool=[PoolJob(job=j, status=statuses.get(j.id, JobStatus.OPEN)) for j in sc.jobs],
        options=OPTS,
        **extra,  # type: ignore[arg-type]
    )


def _where(plan: Plan) -> dict[str, tuple[str, date]]:
    return {v.job_id: (r.technician_id, r.date) for r in plan.routes for v in r.visits}


JOBS = [job(f"J{i}", lat=45.70 + i / 100, lon=4.84 + (i % 3) / 50, duration_minutes=45) for i in range(8)]


def test_a_promise_is_a_window_not_a_technician() -> None:
    """J1 was promised 10:00-11:00 with A; A lost the shift: B keeps the promise. J2's promise
    (20:00-21:00) no shift can keep: it comes back unassigned for the dispatcher."""
    lost = Technician.model_validate(tech("A", shifts=[]))
    data = _input(
        [
            job("J1", appointment={"start": f"{DAY}T10:00", "end": f"{DAY}T11:00"}),
            job("J2", appointment={"start": f"{DAY}T20:00", "end": f"{DAY}T21:00"}),
            job("NEW", lat=45.74, lon=4.85, duration_minutes=20),
        ],
        {"J1": JobStatus.DISPATCHED, "J2": JobStatus.DISPATCHED},
    )
    data = data.model_copy(update={"technicians": [lost, data.technicians[1]]})
    result = replan(data)
    where = _where(result.plan)
    assert where["J1"] == ("B", date.fromisoformat(DAY))
    visit = next(v for r in result.plan.routes for v in r.visits if v.job_id == "J1")
    assert "10:00" <= visit.start.strftime("%H:%M") <= "11:00"
    assert [(u.job_id, u.reason) for u in result.plan.unassigned] == [("J2", ReasonCode.PROMISE_BROKEN)]
    assert sorted(result.promised) == ["J1", "J2"]
    assert result.violations() == []


def test_a_promise_no_time_is_left_for_names_who_could_keep_it() -> None:
    """Three customers promised the same half hour, an hour's work each, two technicians: one
    promise breaks, and the dispatcher reads who could have kept it alone (whom to call about it)."""
    window = {"start": f"{DAY}T10:00", "end": f"{DAY}T10:30"}
    data = _input([job(f"P{i}", duration_minutes=60, appointment=window) for i in range(3)])
    result = replan(data)
    [broken] = result.plan.unassigned
    assert broken.reason == ReasonCode.PROMISE_BROKEN
    assert "A, B could keep it alone" in broken.detail
    assert "other promises" in broken.detail
    assert result.violations() == []


def test_during_the_day_nothing_that_has_not_started_moves_before_now() -> None:
    """At 11:00: the visit under way keeps its exact times; every other visit, promised or not,
    starts after now; a promise whose window has passed is reported, not planned."""
    first = replan(_input(JOBS)).plan
    started = first.routes[0].visits[0]
    now = f"{DAY}T11:00:00+01:00"
    jobs = [
        *JOBS,
        job("GONE", appointment={"start": f"{DAY}T08:00", "end": f"{DAY}T09:00"}),
        job("LATE", appointment={"start": f"{DAY}T10:30", "end": f"{DAY}T12:30"}),
    ]
    statuses = {v.job_id: JobStatus.DISPATCHED for r in first.routes for v in r.visits}
    statuses[started.job_id] = JobStatus.IN_PROGRESS
    result = replan(_input(jobs, statuses, previous=first.routes, not_before=now))
    visits = {v.job_id: v for r in result.plan.routes for v in r.visits}
    assert visits[started.job_id].start == started.start
    assert all(v.start >= datetime.fromisoformat(now) for j, v in visits.items() if j != started.job_id)
    assert "LATE" in visits and visits["LATE"].start.strftime("%H:%M") <= "12:30"
    assert ("GONE", ReasonCode.PROMISE_BROKEN) in [(u.job_id, u.reason) for u in result.plan.unassigned]
    assert result.expired == ["GONE"]
    assert result.violations() == []


def test_done_and_cancelled_leave_failed_come_back_first() -> None:
    statuses = {"J0": JobStatus.DONE, "J1": JobStatus.CANCELLED, "J2": JobStatus.FAILED}
    result = replan(_input(JOBS, statuses))
    assert sorted(result.left) == ["J0", "J1"]
    ids = set(_where(result.plan)) | {u.job_id for u in result.plan.unassigned}
    assert "J0" not in ids and "J1" not in ids and "J2" in ids
    failed = Job.model_validate(job("F", priority=3, pinned={"technician_id": "A", "date": DAY}))
    again = raised_priority(failed)
    assert again.priority == 2 and again.pinned is None
    assert raised_priority(Job.model_validate(job("E", emergency=True))).priority == 1


def test_windows_already_closed_are_explained_and_later_ones_deferred() -> None:
    jobs = [
        job("PAST", windows=[{"start": f"{DAY}T08:00", "end": f"{DAY}T09:00"}]),
        job("LATER", windows=[{"start": "2026-12-20T08:00", "end": "2026-12-20T12:00"}]),
        job("SOON", release="2026-12-30T08:00"),
        job("NOW"),
    ]
    # the windows of PAST/LATER lie outside the horizon: the raw scenario would reject them
    data = _input([job("NOW")], not_before=f"{DAY}T10:00:00+01:00").model_copy(
        update={"pool": [PoolJob(job=Job.model_validate(j)) for j in jobs]}
    )
    result = replan(data)
    assert sorted(result.deferred) == ["LATER", "SOON"]
    reasons = {u.job_id: u.reason for u in result.plan.unassigned}
    assert reasons["PAST"] == ReasonCode.WINDOW_PASSED
    now = {v.job_id: v for r in result.plan.routes for v in r.visits}
    assert "NOW" in now and now["NOW"].start.isoformat() >= f"{DAY}T10:00:00+01:00"
    assert result.plan.kpis.jobs_total == 2


def test_scratch_mode_ignores_the_previous_plan_but_reports_its_churn() -> None:
    first = replan(_input(JOBS)).plan
    swapped = [
        r.model_copy(update={"technician_id": "B" if r.technician_id == "A" else "A"}) for r in first.routes
    ]
    stable = replan(_input(JOBS, previous=swapped)).plan
    scratch = replan(_input(JOBS, previous=swapped, mode="scratch")).plan
    assert stable.kpis.churn is not None and scratch.kpis.churn is not None
    assert stable.kpis.churn <= scratch.kpis.churn


def test_the_replanned_plan_passes_the_validator() -> None:
    data = _input(JOBS, {"J3": JobStatus.FAILED})
    result = replan(data)
    sc = Scenario(
        name="check",
        timezone=data.timezone,
        horizon=data.horizon,
        technicians=[Technician.model_validate(t.model_dump()) for t in data.technicians],
        jobs=[p.job for p in data.pool],
    )
    assert validate_plan(sc, result.plan) == [] and result.violations() == []


def test_working_days_horizon_skips_the_weekend() -> None:
    friday = date(2026, 12, 11)
    h = working_days_horizon(friday, 5)
    assert h.start == friday and h.days == 7  # Fri + Mon..Thu, spanning the weekend
    assert working_days_horizon(date(2026, 12, 7), 5).days == 5
