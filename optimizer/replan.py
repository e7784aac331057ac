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
    Visit,
    Window,
    working_days,
)
from optimizer.groups import Thaw, freeze_jobs
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
    done_on: date | None = Field(None, description="the day a done job was done: a follow-up counts from it")
    done_by: str | None = Field(None, description="who did a done job: `same_technician_as` names them")


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
    thaw: Thaw | None = None  # crews and multi-day jobs held as they were published (`_hold`)


def prepare(data: ReplanInput, extra: Sequence[Job] = ()) -> Prepared:
    """The pool as the planner sees it now: promises, the clock, passed windows (shared by `replan`
    and the appointment slots, so a slot is offered under exactly the rules the re-plans keep).
    `extra` jobs (a slot query's new job, held slots) go through the same rules, after the pool."""
    data, thaw = _hold(data)
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

    jobs = _resolve_links(jobs, data.pool, visits, deferred)
    scenario = Scenario(
        name=data.name,
        timezone=data.timezone,
        horizon=data.horizon,
        travel=data.travel,
        technicians=[_within(t, scenario_days) for t in data.technicians],
        jobs=jobs,
    )
    return Prepared(scenario, last_plan, promised, deferred, left, expired, thaw)


def _hold(data: ReplanInput) -> tuple[ReplanInput, Thaw | None]:
    """A crew or a multi-day job under way, or a multi-day job published, keeps its visits as they
    are: stand-ins pinned at their times (`groups.freeze_jobs`), turned back by `replan`."""
    days = set(data.horizon.dates())
    on_days = {v.job_id for r in data.previous if r.date in days for v in r.visits}
    hold = {
        e.job.id: e
        for e in data.pool
        if e.job.id in on_days
        and (e.job.crew_size > 1 or e.job.max_days > 1)
        and (e.status == JobStatus.IN_PROGRESS or (e.status == JobStatus.DISPATCHED and e.job.max_days > 1))
    }
    if not hold:
        return data, None
    routes = [r for r in data.previous if r.date in days]
    jobs, renamed, thaw = freeze_jobs([e.job for e in hold.values()], routes, keep_unplanned=True)
    pool = [e for e in data.pool if e.job.id not in hold]
    pool += [hold[thaw.id(j.id)].model_copy(update={"job": j}) for j in jobs]
    previous = renamed + [r for r in data.previous if r.date not in days]
    return data.model_copy(update={"pool": pool, "previous": previous}), thaw


def _thawed(scenario: Scenario, thaw: Thaw) -> Scenario:
    """The scenario with each held job back in place of its stand-ins: a multi-day job begun before
    the horizon starts at its first part in it, with the minutes those parts take."""
    parts: dict[str, list[tuple[int | None, str | None, float]]] = {}
    for job in scenario.jobs:
        if job.id in thaw.back:
            original, part, role = thaw.back[job.id]
            parts.setdefault(original.id, []).append((part, role, job.duration_minutes))
    jobs: list[Job] = []
    done: set[str] = set()
    for job in scenario.jobs:
        if job.id not in thaw.back:
            jobs.append(job)
            continue
        original = thaw.back[job.id][0]
        if original.id in done:
            continue
        done.add(original.id)
        mine = [p for p in parts[original.id] if p[1] != "helper"]
        first = min((p[0] or 1) for p in mine)
        # Its visits are where they were published: the promise and windows of its first day are kept.
        update: dict[str, object] = {"appointment": None, "windows": [], "release": None, "pinned": None}
        if first > 1:
            update.update(first_part=first, duration_minutes=sum(p[2] for p in mine))
        jobs.append(original.model_copy(update=update))
    return scenario.model_copy(update={"jobs": jobs})


def _resolve_links(
    jobs: list[Job],
    pool: Sequence[PoolJob],
    visits: dict[str, tuple[str, date, Visit]],
    deferred: list[str],
) -> list[Job]:
    """Links to jobs this re-plan does not plan: a done one's day and technician are written into
    the link (`after.done_on`, `same_technician_as.technician_id`); a follow-up of a job that waits
    past the horizon waits too; a link to a cancelled, expired or unknown job no longer binds."""
    entries = {e.job.id: e for e in pool}
    while True:
        ids = {j.id for j in jobs}
        out: list[Job] = []
        for job in jobs:
            update: dict[str, object] = {}
            after, same = job.after, job.same_technician_as
            if after is not None and after.job_id not in ids and after.done_on is None:
                if after.job_id in deferred:
                    deferred.append(job.id)
                    continue
                day, _ = _done(entries.get(after.job_id), visits.get(after.job_id))
                update["after"] = after.model_copy(update={"done_on": day}) if day is not None else None
            if same is not None and same.job_id not in ids and same.technician_id is None:
                _, who = _done(entries.get(same.job_id), visits.get(same.job_id))
                update["same_technician_as"] = (
                    same.model_copy(update={"technician_id": who}) if who is not None else None
                )
            out.append(job.model_copy(update=update) if update else job)
        if len(out) == len(jobs):
            return out
        jobs = out  # a job deferred: its own followers are looked at again


def _done(entry: PoolJob | None, visit: tuple[str, date, Visit] | None) -> tuple[date | None, str | None]:
    """When and by whom a job no longer planned was done (None, None when it was not)."""
    if entry is None or entry.status != JobStatus.DONE:
        return None, None
    day = entry.done_on or (visit[1] if visit else None)
    return day, entry.done_by or (visit[0] if visit else None)


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
    if prep.thaw is not None:
        plan, _ = prep.thaw.plan(plan, "its crew or its days could not be kept as they were published")
        scenario = _thawed(scenario, prep.thaw)
        last_plan = prep.thaw.plan(last_plan, "")[0] if last_plan is not None else None
        plan.kpis = compute_kpis(scenario, plan.routes, plan.unassigned, last_plan)
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
