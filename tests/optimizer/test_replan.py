"""The pure re-plan step: promises, failed jobs, expired and future windows, churn."""

from __future__ import annotations

from datetime import date

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


def test_published_visits_stay_with_their_technician_and_new_jobs_are_added() -> None:
    first = replan(_input(JOBS)).plan
    before = _where(first)
    moved = {jid: ("B" if t == "A" else "A", d) for jid, (t, d) in before.items()}
    # Pretend the dispatcher's published plan had every job on the *other* technician: a promise.
    routes = [
        r.model_copy(update={"technician_id": "B" if r.technician_id == "A" else "A"}) for r in first.routes
    ]
    data = _input(
        [*JOBS, job("NEW", lat=45.74, lon=4.85, duration_minutes=20)],
        {jid: JobStatus.DISPATCHED for jid in before},
        previous=routes,
        published_days=[date.fromisoformat(DAY)],
    )
    result = replan(data)
    after = _where(result.plan)
    assert sorted(result.promised) == sorted(before)
    for jid, where in moved.items():
        assert after[jid] == where
    assert "NEW" in after or any(u.job_id == "NEW" for u in result.plan.unassigned)
    assert result.plan.kpis.churn == 0.0


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
    assert validate_plan(sc, result.plan) == []


def test_working_days_horizon_skips_the_weekend() -> None:
    friday = date(2026, 12, 11)
    h = working_days_horizon(friday, 5)
    assert h.start == friday and h.days == 7  # Fri + Mon..Thu, spanning the weekend
    assert working_days_horizon(date(2026, 12, 7), 5).days == 5
