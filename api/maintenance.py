"""Maintenance for the service: assets, contracts, their occurrences as service requests, shifts
derived from availability templates, compliance and the capacity forecast.

Occurrences are generated over a rolling horizon (`maintenance_weeks`) by the nightly job before it
re-plans, and at once when a contract is created or changed. Each becomes a service request whose id
is the occurrence key, with the window [earliest, latest] and the due date, so the re-plan picks the
day. Generation is idempotent (a key that exists is never created again) and touches only the future:
an occurrence already planned, done or under way is never rewritten; an open one whose date the
contract no longer gives (its rule changed, a floating contract was done late or early) is withdrawn.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, lifecycle, store
from api.context import Service
from api.tables import AssetRow, ContractRow, OccurrenceRow, RequestRow, ShiftRow, TechnicianRow
from models import Job, JobStatus, ReasonCode, Shift, Technician
from models.common import minutes_of
from models.expand import occurrence_job
from models.maintenance import Asset, MaintenanceContract, nominal_dates, occurrences

log = logging.getLogger("fieldplan.maintenance")
#: Request statuses of an occurrence nobody has planned yet: generation may withdraw or rewrite it.
UNPLANNED = (JobStatus.OPEN.value,)
#: Statuses that still may be cancelled when a contract ends.
NOT_STARTED = (
    JobStatus.OPEN.value,
    JobStatus.PLANNED.value,
    JobStatus.DISPATCHED.value,
    JobStatus.FAILED.value,
)


def asset_model(row: AssetRow) -> Asset:
    return Asset.model_validate(row.spec)


def contract_model(row: ContractRow) -> MaintenanceContract:
    return MaintenanceContract.model_validate(row.spec)


# --- availability --------------------------------------------------------------------------------


def derive_shifts(row: TechnicianRow, *, today: date, weeks: int) -> int:
    """Write the technician's shifts from today for `weeks` from their availability calendar
    (`source = template`); typed shifts stay unless a dated exception overrides them. Returns the
    number of days whose shift changed. Past days are never touched."""
    tech = store.technician_model(row, with_availability=True)
    if tech.availability is None:
        return 0
    days = [today + timedelta(days=i) for i in range(weeks * 7)]
    typed = [
        Shift(date=s.date, start=s.start, end=s.end)  # type: ignore[arg-type]
        for s in row.shifts
        if s.source == "typed"
    ]
    wanted = {s.date: s for s in tech.model_copy(update={"shifts": typed}).with_derived_shifts(days).shifts}
    typed_on = {s.date: s for s in typed}
    changed = 0
    for shift_row in list(row.shifts):
        if shift_row.date < today or shift_row.date > days[-1]:
            continue
        want = wanted.pop(shift_row.date, None)
        if want is None:
            row.shifts.remove(shift_row)
            changed += 1
        elif (shift_row.start, shift_row.end) != (f"{want.start:%H:%M}", f"{want.end:%H:%M}"):
            shift_row.start, shift_row.end = f"{want.start:%H:%M}", f"{want.end:%H:%M}"
            shift_row.source = "typed" if typed_on.get(want.date) == want else "template"
            changed += 1
    for day, want in wanted.items():
        if today <= day <= days[-1]:
            row.shifts.append(
                ShiftRow(date=day, start=f"{want.start:%H:%M}", end=f"{want.end:%H:%M}", source="template")
            )
            changed += 1
    return changed


def derive_all_shifts(session: Session, *, today: date, weeks: int) -> int:
    return sum(derive_shifts(row, today=today, weeks=weeks) for row in store.technicians(session))


# --- generation ----------------------------------------------------------------------------------


@dataclass
class Generated:
    created: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "withdrawn": self.withdrawn, "updated": self.updated}


def generate(
    session: Session,
    *,
    today: date,
    weeks: int,
    tz: ZoneInfo,
    now: Any,
    actor: str,
    only: Iterable[str] | None = None,
) -> Generated:
    """Create the occurrences due in the next `weeks` (and those whose window is still open) for every
    active contract (or the ones in `only`); withdraw open ones the contracts no longer give."""
    out = Generated()
    query = select(ContractRow).where(ContractRow.status == "active")
    if only is not None:
        query = query.where(ContractRow.id.in_(list(only)))
    until = today + timedelta(days=7 * weeks)
    for crow in session.scalars(query.order_by(ContractRow.id)):
        contract = contract_model(crow)
        asset_row = session.get(AssetRow, contract.asset_ids[0])
        if asset_row is None:
            continue
        site = asset_model(asset_row)
        wanted = {
            o.key: o for o in occurrences(contract, until=until, last_done=crow.last_done, open_on=today)
        }
        existing = {
            o.key: o
            for o in session.scalars(select(OccurrenceRow).where(OccurrenceRow.contract_id == crow.id))
        }
        for key, occ_row in existing.items():
            if occ_row.status != "generated" or key in wanted or occ_row.nominal < today:
                continue
            req = session.get(RequestRow, key)
            if req is not None and req.status in UNPLANNED:
                lifecycle.move(req, JobStatus.CANCELLED)
                req.reason_detail = "withdrawn: the contract no longer gives this date"
                occ_row.status = "withdrawn"
                out.withdrawn.append(key)
        for key, occ in wanted.items():
            spec = occurrence_job(contract, site, occ, tz).model_dump(mode="json")
            if key in existing:
                req = session.get(RequestRow, key)
                # The contract's terms changed (duration, skills, tier): an unplanned visit follows.
                if (
                    req is not None
                    and req.status in UNPLANNED
                    and existing[key].status == "generated"
                    and req.spec != spec
                ):
                    req.spec = spec
                    out.updated.append(key)
                continue
            if session.get(RequestRow, key) is not None:
                continue  # a request typed by hand with that id: never overwritten
            session.add(
                OccurrenceRow(
                    key=key,
                    contract_id=crow.id,
                    asset_id=site.id,
                    nominal=occ.nominal,
                    earliest=occ.earliest,
                    due=occ.due,
                    latest=occ.latest,
                    status="generated",
                )
            )
            session.add(
                RequestRow(
                    id=key,
                    status=JobStatus.OPEN.value,
                    spec=spec,
                    address=asset_row.address,
                    reason=ReasonCode.NOT_PLANNED_YET.value,
                    reason_detail=lifecycle.waiting_detail(spec),
                )
            )
            out.created.append(key)
    if out.created or out.withdrawn or out.updated:
        audit.record(
            session,
            now=now,
            actor=actor,
            action="occurrences.generated",
            subject=f"{len(out.created)} created, {len(out.withdrawn)} withdrawn, {len(out.updated)} updated",
            created=out.created[:100],
            withdrawn=out.withdrawn[:100],
        )
    return out


def withdraw_future(session: Session, contract_id: str, *, today: date) -> list[str]:
    """A cancelled contract: its visits not yet started, from today on, are cancelled."""
    out = []
    for occ_row in session.scalars(
        select(OccurrenceRow).where(
            OccurrenceRow.contract_id == contract_id, OccurrenceRow.status == "generated"
        )
    ):
        req = session.get(RequestRow, occ_row.key)
        if req is None or req.status not in NOT_STARTED:
            continue
        if req.planned_date is not None and req.planned_date < today:
            continue
        lifecycle.move(req, JobStatus.CANCELLED)
        req.reason_detail = "withdrawn: the contract was cancelled"
        occ_row.status = "withdrawn"
        out.append(occ_row.key)
    return out


def completed(
    session: Session, req: RequestRow, *, done_on: date, today: date, weeks: int, tz: ZoneInfo, now: Any
) -> None:
    """A maintenance visit was done: record it; a floating contract's next dates count from it."""
    occ = Job.model_validate(req.spec).occurrence
    if occ is None:
        return
    occ_row = session.get(OccurrenceRow, req.id)
    if occ_row is not None:
        occ_row.done_on = done_on
    crow = session.get(ContractRow, occ.contract_id)
    if crow is None:
        return
    if crow.last_done is None or done_on > crow.last_done:
        crow.last_done = done_on
    session.flush()
    if crow.status == "active" and contract_model(crow).mode == "floating":
        generate(
            session, today=today, weeks=weeks, tz=tz, now=now, actor=f"visit {req.id} done", only=[crow.id]
        )


def before_night(service: Service, *, actor: str = "nightly") -> Generated | None:
    """What the nightly job does before it plans: shifts derived from templates over the rolling
    horizon, then the occurrences coming due. A failure here is logged; the re-plan still runs."""
    weeks = service.settings.maintenance_weeks
    try:
        with service.sessions.begin() as session:
            derive_all_shifts(session, today=service.today(), weeks=weeks)
            return generate(
                session, today=service.today(), weeks=weeks, tz=service.tz, now=service.now(), actor=actor
            )
    except Exception:
        log.exception("maintenance generation before the night's re-plan failed; planning without it")
        return None


# --- reading -------------------------------------------------------------------------------------


def _requests_of(session: Session, rows: Iterable[OccurrenceRow]) -> dict[str, RequestRow]:
    """The service requests of these occurrences (same ids), in one query."""
    keys = [o.key for o in rows]
    return {r.id: r for r in session.scalars(select(RequestRow).where(RequestRow.id.in_(keys)))}


def occurrence_status(occ_row: OccurrenceRow, req: RequestRow | None) -> str:
    if occ_row.status == "withdrawn" or req is None:
        return "withdrawn"
    return req.status


def occurrence_list(session: Session, contract_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(OccurrenceRow).where(OccurrenceRow.contract_id == contract_id).order_by(OccurrenceRow.nominal)
    ).all()
    reqs = _requests_of(session, rows)
    out = []
    for o in rows:
        req = reqs.get(o.key)
        out.append(
            {
                "key": o.key,
                "nominal": o.nominal,
                "earliest": o.earliest,
                "due": o.due,
                "latest": o.latest,
                "job_id": o.key,
                "status": occurrence_status(o, req),
                "technician_id": req.technician_id if req is not None else None,
                "planned_date": req.planned_date if req is not None else None,
                "done_on": o.done_on,
            }
        )
    return out


def compliance(session: Session, *, today: date, risk_days: int = 14) -> dict[str, Any]:
    """How maintenance promises are kept: of the occurrences that are settled (done, or whose window
    has closed), the share done inside their window; days off the due date of those done; and the
    at-risk list (window closing within `risk_days`, not planned, or planned after it closes)."""
    rows = session.scalars(select(OccurrenceRow).where(OccurrenceRow.status == "generated")).all()
    reqs = _requests_of(session, rows)
    done_in = done_out = missed = 0
    off_due: dict[int, int] = defaultdict(int)
    at_risk = []
    for o in rows:
        req = reqs.get(o.key)
        status = occurrence_status(o, req)
        if status == JobStatus.CANCELLED.value:
            continue
        if status == JobStatus.DONE.value and o.done_on is not None:
            if o.earliest <= o.done_on <= o.latest:
                done_in += 1
            else:
                done_out += 1
            off_due[(o.done_on - o.due).days] += 1
        elif o.latest < today:
            missed += 1
        elif o.latest <= today + timedelta(days=risk_days):
            planned = req.planned_date if req is not None else None
            if planned is None or planned > o.latest:
                at_risk.append(
                    {
                        "key": o.key,
                        "contract_id": o.contract_id,
                        "due": o.due,
                        "latest": o.latest,
                        "status": status,
                        "reason": (req.reason if req is not None else None) or "NOT_PLANNED_YET",
                        "days_left": (o.latest - today).days,
                    }
                )
    settled = done_in + done_out + missed
    days = sorted(off_due)
    return {
        "today": today,
        "settled": settled,
        "done_in_window": done_in,
        "done_outside_window": done_out,
        "missed": missed,
        "in_window_share": round(done_in / settled, 4) if settled else None,
        "days_off_due": {str(d): off_due[d] for d in days},
        "median_days_off_due": _median([d for d in days for _ in range(off_due[d])]),
        "at_risk": sorted(at_risk, key=lambda r: (r["latest"], r["key"])),
    }


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    n = len(values)
    return float(values[n // 2]) if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def forecast(session: Session, *, today: date, weeks: int, generated_weeks: int) -> dict[str, Any]:
    """Maintenance hours per skill per week against the shift hours of the technicians holding it.

    Inside the generation horizon the hours are the generated occurrences' (on their due week); beyond
    it they are projected from each active contract's rule, creating nothing. Capacity is every
    active technician's shift hours (typed, or from their template with exceptions and holidays),
    counted for each skill they hold: a technician with two skills counts for both.
    """
    start = today - timedelta(days=today.weekday())
    weeks_list = [start + timedelta(days=7 * w) for w in range(weeks)]
    end = weeks_list[-1] + timedelta(days=6)
    generated_until = today + timedelta(days=7 * generated_weeks)
    demand: dict[date, dict[str, float]] = {w: defaultdict(float) for w in weeks_list}

    def add(due: date, contract: MaintenanceContract) -> None:
        week = due - timedelta(days=due.weekday())
        if week in demand:
            for skill in contract.skills or {"general": 1}:
                demand[week][skill] += contract.duration_minutes / 60

    contracts = {c.id: c for c in session.scalars(select(ContractRow).where(ContractRow.status == "active"))}
    models = {cid: contract_model(c) for cid, c in contracts.items()}
    for o in session.scalars(
        select(OccurrenceRow).where(
            OccurrenceRow.status == "generated", OccurrenceRow.due >= start, OccurrenceRow.due <= end
        )
    ):
        if o.contract_id in models:
            add(o.due, models[o.contract_id])
    for cid, contract in models.items():
        beyond = generated_until + timedelta(days=1)
        if beyond > end:
            continue
        for nominal in nominal_dates(contract, until=end, last_done=contracts[cid].last_done, since=beyond):
            add(nominal, contract)
    capacity: dict[date, dict[str, float]] = {w: defaultdict(float) for w in weeks_list}
    days = [start + timedelta(days=i) for i in range(7 * weeks)]
    for trow in store.technicians(session):
        tech = store.technician_model(trow, with_availability=True)
        hours = _shift_hours(tech, days)
        for day, h in hours.items():
            week = day - timedelta(days=day.weekday())
            for skill in tech.skills:
                capacity[week][skill] += h
    skills = sorted({s for w in weeks_list for s in demand[w]} | {s for w in weeks_list for s in capacity[w]})
    return {
        "from": start,
        "weeks": [
            {
                "week": w,
                "projected": w + timedelta(days=6) > generated_until,  # at least partly
                "demand_hours": {s: round(demand[w].get(s, 0.0), 2) for s in skills},
                "capacity_hours": {s: round(capacity[w].get(s, 0.0), 2) for s in skills},
            }
            for w in weeks_list
        ],
        "skills": skills,
        "generated_until": generated_until,
    }


def _shift_hours(tech: Technician, days: list[date]) -> dict[date, float]:
    typed = {s.date: (s.start, s.end) for s in tech.shifts}
    out = {}
    for day in days:
        worked = tech.availability.shift_on(day, typed.get(day)) if tech.availability else typed.get(day)
        if worked is not None:
            out[day] = (minutes_of(worked[1]) - minutes_of(worked[0])) / 60
    return out


def forecast_png(data: dict[str, Any]) -> bytes:
    """One panel per skill: maintenance hours per week (hatched where projected from the contracts)
    against the shift hours of the technicians holding that skill."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = data["weeks"]
    skills = data["skills"] or ["none"]
    labels = [f"{w['week']:%d %b}" if isinstance(w["week"], date) else str(w["week"]) for w in weeks]
    cols = 2 if len(skills) > 1 else 1
    rows = math.ceil(len(skills) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.6 * rows + 0.6), dpi=100, squeeze=False)
    for k, skill in enumerate(skills):
        ax = axes[k // cols][k % cols]
        demand = [w["demand_hours"].get(skill, 0.0) for w in weeks]
        capacity = [w["capacity_hours"].get(skill, 0.0) for w in weeks]
        bars = ax.bar(labels, demand, color="#4C78A8", label="maintenance hours")
        for bar, w in zip(bars, weeks, strict=True):
            if w["projected"]:
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        ax.plot(labels, capacity, color="#E45756", marker="o", label="shift hours (technicians with it)")
        share = [d / c for d, c in zip(demand, capacity, strict=True) if c]
        peak = f", peak {max(share):.0%} of shift hours" if share else ", nobody holds it"
        ax.set_title(f"{skill}{peak}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.set_ylabel("hours / week", fontsize=8)
        if k == 0:
            ax.legend(fontsize=7, loc="upper left")
    for k in range(len(skills), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("Maintenance demand against capacity per skill (hatched: projected from contract rules)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
