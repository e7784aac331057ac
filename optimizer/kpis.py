"""Plan KPIs, computed from the finished plan and the scenario, so any plan can be scored alike."""

from __future__ import annotations

from collections import Counter, defaultdict

from models import Kpis, Plan, Route, Scenario, Unassigned
from models.common import minutes_of
from models.plan import PriorityCount


def compute_kpis(
    scenario: Scenario,
    routes: list[Route],
    unassigned: list[Unassigned],
    previous: Plan | None = None,
) -> Kpis:
    jobs = {j.id: j for j in scenario.jobs}
    planned = [v for r in routes for v in r.visits]
    planned_ids = {v.job_id for v in planned}
    by_prio_total = Counter(str(j.effective_priority) for j in scenario.jobs)
    by_prio_done = Counter(str(jobs[i].effective_priority) for i in planned_ids)
    by_kind_total = Counter(j.kind.value for j in scenario.jobs)
    by_kind_done = Counter(jobs[i].kind.value for i in planned_ids)
    travel_km = sum(r.distance_km for r in routes)
    travel_min = sum(r.travel_minutes for r in routes)
    late_jobs, late_minutes = 0, 0.0
    for v in planned:
        due = jobs[v.job_id].due
        if due is not None and v.end > scenario.local(due):
            late_jobs += 1
            late_minutes += (v.end - scenario.local(due)).total_seconds() / 60
    with_pref = hits = 0
    for r in routes:
        for v in r.visits:
            pref = jobs[v.job_id].preferred_technicians
            if pref:
                with_pref += 1
                hits += r.technician_id in pref
    busy: dict[str, float] = defaultdict(float)
    for r in routes:
        service = sum((v.end - v.start).total_seconds() / 60 for v in r.visits)
        busy[r.technician_id] += service + r.travel_minutes
    utilisation: dict[str, float] = {}
    days = set(scenario.horizon.dates())
    for tech in scenario.technicians:
        shift_minutes = sum(minutes_of(s.end) - minutes_of(s.start) for s in tech.shifts if s.date in days)
        if shift_minutes:
            utilisation[tech.id] = round(busy[tech.id] / shift_minutes, 4)
    churn = None
    if previous is not None:
        before = {v.job_id: (r.technician_id, r.date) for r in previous.routes for v in r.visits}
        now = {v.job_id: (r.technician_id, r.date) for r in routes for v in r.visits}
        still = [j for j in before if j in jobs]
        if still:
            churn = round(sum(now.get(j) != before[j] for j in still) / len(still), 4)
    return Kpis(
        jobs_total=len(scenario.jobs),
        jobs_planned=len(planned_ids),
        jobs_unassigned=len(unassigned),
        planned_by_priority={
            k: PriorityCount(planned=by_prio_done[k], total=by_prio_total[k]) for k in sorted(by_prio_total)
        },
        planned_by_kind={
            k: PriorityCount(planned=by_kind_done[k], total=by_kind_total[k]) for k in sorted(by_kind_total)
        },
        travel_km=round(travel_km, 3),
        travel_minutes=round(travel_min, 2),
        travel_km_per_job=round(travel_km / len(planned_ids), 3) if planned_ids else 0.0,
        overtime_minutes=round(sum(r.overtime_minutes for r in routes), 2),
        sla_late_jobs=late_jobs,
        sla_late_minutes=round(late_minutes, 1),
        preferred_technician_rate=round(hits / with_pref, 4) if with_pref else None,
        utilisation=utilisation,
        technician_days_used=len(routes),
        churn=churn,
    )
