"""The nightly re-plan step: previous plan + job pool + statuses + shifts -> new plan.

Pure, like `solve`: the service's nightly job loads these values from its database, calls `replan`
and stores the result; the benchmarks' simulated week calls the very same function. Its inputs are
plain pydantic values, so a re-plan can be shipped to a worker process unchanged.

Promises hold. A published visit promises the customer a day and an arrival window, not a
technician: the service hands it over as `Job.appointment`, a hard window planned before every
priority level, and the re-plan may give it to another qualified technician inside that window (when
its technician loses the shift, say); when no one can keep it, it comes back unassigned as
PROMISE_BROKEN for the dispatcher to renegotiate. A dispatcher's pin (`Job.pinned`) keeps its
technician and day. A visit under way keeps its technician, day and times exactly. Everything else
may move, but only when worth it: the previous plan is the warm start and every move costs the
stability weight.

The clock: with `not_before` (a re-plan during the day), nothing that has not started is placed
before it, promised or pinned visits included; days before it are not planned at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models import (
    Horizon,
    Job,
    JobStatus,
    Pinned,
    Plan,
    ReasonCode,
    Route,
    Scenario,
    Technician,
    TravelSettings,
    Unassigned,
    Window,
    working_days,
)
from optimizer.kpis import compute_kpis
from optimizer.options import SolveOptions
from optimizer.solve import Progress, solve
from optimizer.territories import TerritoryOptions
from optimizer.validate import Violation, validate_plan


class PoolJob(BaseModel):
    """A service request as the re-plan sees it: the job and where it stands in its life cycle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: Job
    status: JobStatus = JobStatus.OPEN


class ReplanInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "re-plan"
    timezone: str
    horizon: Horizon
    travel: TravelSettings = Field(default_factory=TravelSettings)
    technicians: list[Technician]
    pool: list[PoolJob]
    previous: list[Route] = Field(
        default_factory=list, description="the routes now current for the horizon's days"
    )
    not_before: datetime | None = Field(
        None, description="now, for a re-plan during the day: nothing that has not started goes before it"
    )
    mode: Literal["stable", "scratch"] = Field(
        "stable", description="scratch ignores the previous plan except for promises (benchmarks)"
    )
    options: SolveOptions = Field(default_factory=SolveOptions)
    territories: TerritoryOptions | None = Field(
        None, description="split into territories above their threshold (national fleets)"
    )
    explain: bool = Field(
        False, description="propose and verify fixes for every job left out (`optimizer.fixes`)"
    )


def input_of(
    scenario: Scenario,
    previous: list[Route],
    *,
    options: SolveOptions | None = None,
    not_before: datetime | None = None,
) -> ReplanInput:
    """A scenario and the routes of its plan as a re-plan's (or a slot question's) input: every job
    open, the plan its previous routes (the command line, the benchmarks, tests)."""
    return ReplanInput(
        name=scenario.name,
        timezone=scenario.timezone,
        horizon=scenario.horizon,
        travel=scenario.travel,
        technicians=scenario.technicians,
        pool=[PoolJob(job=j) for j in scenario.jobs],
        previous=previous,
        not_before=not_before,
        options=options or SolveOptions(),
    )


class ReplanResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Plan
    scenario: Scenario = Field(description="what was planned: the validator checks the plan against it")
    promised: list[str] = Field(
        description="jobs with a promise: a confirmed window, a pin, a visit under way"
    )
    deferred: list[str] = Field(description="jobs whose windows or release lie after the horizon")
    left: list[str] = Field(description="done and cancelled jobs, no longer planned")
    expired: list[str] = Field(
        default_factory=list, description="jobs whose windows or promise passed: unassigned, not planned"
    )

    def violations(self) -> list[Violation]:
        """The independent validator on the plan and what was planned (expired jobs never reached
        the planner: they are checked to be unassigned, nothing more)."""
        routed = {v.job_id for r in self.plan.routes for v in r.visits}
        out = [
            Violation("EXPIRED_PLANNED", "a job whose window or promise passed is in a route", j)
            for j in self.expired
            if j in routed
        ]
        gone = set(self.expired)
        checked = self.plan.model_copy(
            update={"unassigned": [u for u in self.plan.unassigned if u.job_id not in gone]}
        )
        return out + validate_plan(self.scenario, checked)


def raised_priority(job: Job) -> Job:
    """A failed visit comes back one priority level more urgent (1 stays 1), and loses its pin.

    The customer already waited once; the next plan must not push them to the back again.
    """
    return job.model_copy(update={"priority": max(1, job.effective_priority - 1), "pinned": None})


@dataclass
class Prepared:
    """What a re-plan (or a slot search) plans: the scenario as of now, and where each job went."""

    scenario: Scenario
    last_plan: Plan | None
    promised: list[str]
    deferred: list[str]
    left: list[str]
    expired: list[Unassigned]


def prepare(data: ReplanInput, extra: Sequence[Job] = ()) -> Prepared:
    """The pool as the planner sees it now: promises, the clock, passed windows (shared by `replan`
    and the appointment slots, so a slot is offered under exactly the rules the re-plans keep).
    `extra` jobs (a slot query's new job, held slots) go through the same rules, after the pool."""
    scenario_days = set(data.horizon.dates())
    probe = Scenario(name=data.name, timezone=data.timezone, horizon=data.horizon, technicians=[], jobs=[])
    h0, h1 = probe.horizon_start, probe.horizon_end
    if data.not_before is not None:
        h0 = max(h0, probe.local(data.not_before))
    tech_ids = {t.id for t in data.technicians}
    last_day = data.horizon.dates()[-1]
    visits = {v.job_id: (r.technician_id, r.date, v) for r in data.previous for v in r.visits}
    last_plan = _as_plan(data)

    jobs: list[Job] = []
    promised: list[str] = []
    deferred: list[str] = []
    left: list[str] = []
    expired: list[Unassigned] = []
    for entry in [*data.pool, *(PoolJob(job=x) for x in extra)]:
        job, status = entry.job, entry.status
        if status.terminal:
            left.append(job.id)
            continue
        job = _drop_unknown_technicians(job, tech_ids)
        under_way = visits.get(job.id) if status == JobStatus.IN_PROGRESS else None
        if under_way is not None and under_way[1] in scenario_days and under_way[0] in tech_ids:
            # Started or en route: this technician, this day, these times, whatever else changes.
            tech, day, visit = under_way
            begin = probe.local(visit.start)
            jobs.append(
                job.model_copy(
                    update={
                        "pinned": Pinned(technician_id=tech, date=day),
                        "appointment": None,
                        "release": None,
                        "windows": [Window(start=begin, end=begin + timedelta(seconds=1))],
                    }
                )
            )
            promised.append(job.id)
            continue
        occ = job.occurrence
        if (
            occ is not None
            and status == JobStatus.OPEN
            and not job.promised
            and job.id not in visits
            and occ.due > last_day
            and occ.latest > last_day
        ):
            # A maintenance visit waits until its due date is in view: planned now it would go on
            # the horizon's last day, days early, only because a later day is not on the board yet.
            deferred.append(job.id)
            continue
        pin = job.pinned
        if pin is not None and pin.date >= data.horizon.start + timedelta(days=data.horizon.days):
            deferred.append(job.id)
            continue
        if pin is not None and (pin.date not in scenario_days or pin.technician_id not in tech_ids):
            pin = None  # a pin for a day already gone, or a technician who left: plan it anew
        if pin is not None and pin.start is not None and probe.local(pin.start) < h0:
            pin = pin.model_copy(update={"start": None})  # a pinned time already gone: the day stays
        release = probe.local(job.release) if job.release else None
        if release is not None and release >= h1:
            deferred.append(job.id)
            continue
        appointment = job.appointment
        if appointment is not None:
            a_start, a_end = probe.local(appointment.start), probe.local(appointment.end)
            if a_start >= h1:
                deferred.append(job.id)
                continue
            if a_end <= h0:
                expired.append(
                    Unassigned(
                        job_id=job.id,
                        reason=ReasonCode.PROMISE_BROKEN,
                        detail=f"the promised window {a_start:%Y-%m-%d %H:%M}-{a_end:%H:%M} has passed "
                        "without a visit; agree a new one with the customer",
                    )
                )
                continue
            appointment = _clip(appointment, probe, h0, h1)
        windows = [w for w in job.windows if probe.local(w.end) > h0 and probe.local(w.start) < h1]
        if job.windows and not windows:
            if any(probe.local(w.start) >= h1 for w in job.windows):
                deferred.append(job.id)
            else:
                last = max(probe.local(w.end) for w in job.windows)
                expired.append(
                    Unassigned(
                        job_id=job.id,
                        reason=ReasonCode.WINDOW_PASSED,
                        detail=f"its last window closed at {last.isoformat()}; agree a new one "
                        "with the customer",
                    )
                )
            continue
        windows = [_clip(w, probe, h0, h1) for w in windows]
        update: dict[str, object] = {"pinned": pin, "windows": windows, "appointment": appointment}
        if h0 > probe.horizon_start and (release is None or release < h0):
            update["release"] = h0
        job = job.model_copy(update=update)
        if job.promised:
            promised.append(job.id)
        jobs.append(job)

    scenario = Scenario(
        name=data.name,
        timezone=data.timezone,
        horizon=data.horizon,
        travel=data.travel,
        technicians=[_within(t, scenario_days) for t in data.technicians],
        jobs=jobs,
    )
    return Prepared(scenario, last_plan, promised, deferred, left, expired)


def replan(data: ReplanInput, *, progress: Progress | None = None) -> ReplanResult:
    prep = prepare(data)
    scenario, last_plan, expired = prep.scenario, prep.last_plan, prep.expired
    warm = last_plan if data.mode == "stable" else _promises_only(last_plan, prep.promised)
    if data.territories is not None and len(scenario.jobs) > data.territories.threshold:
        from optimizer.territories import solve_large

        def said(text: str) -> None:
            if progress is not None:
                progress(text.split(":")[0], {})

        plan = solve_large(scenario, data.options, data.territories, previous=warm, log=said)
    else:
        plan = solve(scenario, data.options, previous=warm, progress=progress)
    if data.mode == "scratch" and last_plan is not None:
        # Churn is still worth reporting for the policy that ignores it.
        plan.kpis = compute_kpis(scenario, plan.routes, plan.unassigned, last_plan)
    if data.explain and plan.unassigned:
        from optimizer.fixes import explain_plan

        plan = explain_plan(scenario, plan, data.options)
    if expired:
        plan.unassigned.extend(expired)
        plan.kpis.jobs_unassigned += len(expired)
        plan.kpis.jobs_total += len(expired)
    return ReplanResult(
        plan=plan,
        scenario=scenario,
        promised=prep.promised,
        deferred=prep.deferred,
        left=prep.left,
        expired=[u.job_id for u in expired],
    )


def _promises_only(plan: Plan | None, promised: list[str]) -> Plan | None:
    """The previous plan's promised visits alone: a scratch re-plan starts from them, so a set of
    promises that fitted still fits (a search from nothing may not find that arrangement again);
    everything else is planned anew."""
    if plan is None or not promised:
        return None
    keep = set(promised)
    routes = [r.model_copy(update={"visits": [v for v in r.visits if v.job_id in keep]}) for r in plan.routes]
    return plan.model_copy(update={"routes": [r for r in routes if r.visits]})


def _as_plan(data: ReplanInput) -> Plan | None:
    """`solve` reads only the routes of a previous plan; they may come from several plan versions."""
    if not data.previous:
        return None
    return Plan.model_construct(  # type: ignore[call-arg]  # no KPIs or stats: never serialised
        scenario=data.name,
        timezone=data.timezone,
        horizon_start=data.horizon.start,
        horizon_days=data.horizon.days,
        routes=list(data.previous),
        unassigned=[],
    )


def _drop_unknown_technicians(job: Job, known: set[str]) -> Job:
    """A preference for a technician who has left the company is no longer a reference error."""
    update: dict[str, object] = {}
    if any(t not in known for t in job.preferred_technicians):
        update["preferred_technicians"] = [t for t in job.preferred_technicians if t in known]
    if any(t not in known for t in job.excluded_technicians):
        update["excluded_technicians"] = [t for t in job.excluded_technicians if t in known]
    return job.model_copy(update=update) if update else job


def _clip(window: Window, probe: Scenario, h0: datetime, h1: datetime) -> Window:
    start, end = probe.local(window.start), probe.local(window.end)
    if start >= h0 and end <= h1:
        return window
    return Window(start=max(start, h0), end=min(end, h1))


def _within(tech: Technician, days: set[date]) -> Technician:
    """Shifts outside the horizon are not an error here: the database holds every future shift."""
    shifts = [s for s in tech.shifts if s.date in days]
    if len(shifts) == len(tech.shifts):
        return tech
    return tech.model_copy(update={"shifts": shifts})


def working_days_horizon(today: date, count: int, works: Collection[date] | None = None) -> Horizon:
    """Today and the following `count` working days as one contiguous horizon. A working day is one
    in `works` (the service passes the days somebody has a shift, typed or from a template, so a
    Saturday crew or a holiday week counts right); without it, Monday to Friday (generated data)."""
    if works is not None:
        ahead = sorted(d for d in works if d >= today)[:count]
        end = ahead[-1] if ahead else today
    else:
        end = working_days(today, count)[-1]
    return Horizon(start=today, days=min((end - today).days + 1, 31))
