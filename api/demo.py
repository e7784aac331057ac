"""`fieldplan serve --demo`: a fresh SQLite database with a shipped scenario dated from today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path

from api import maintenance, store
from api.context import Service
from api.replan_job import start_run
from api.security import Role, create_key
from api.tables import AssetRow, ContractRow, RequestRow, RunRow
from models import Horizon, JobStatus, ReasonCode, Scenario, Technician, working_days
from models.availability import Availability
from models.maintenance import Asset, MaintenanceContract, nominal_dates
from scenarios import SCENARIO_DIR
from scenarios.dating import dated_from, repeat_shifts
from scenarios.maintenance import maintenance_book

DEMO_SCENARIO = SCENARIO_DIR / "metro-day.json"


@dataclass
class DemoKeys:
    admin: str
    dispatcher: str
    booking: str
    technicians: dict[str, str]


#: Installed equipment under maintenance contracts in the demo (their visits come due over the weeks).
DEMO_ASSETS = 40


def _with_template(tech: Technician) -> Technician:
    """The demo's technicians work Monday to Friday at their first shift's hours, with France's
    public holidays: the weeks after the demo's typed days come from this template."""
    first = tech.shifts[0] if tech.shifts else None
    if first is None:
        return tech
    weekly = [{"day": d, "start": first.start, "end": first.end} for d in ("mon", "tue", "wed", "thu", "fri")]
    return tech.model_copy(
        update={"availability": Availability.model_validate({"weekly": weekly, "holidays": "FR"})}
    )


# After this hour the demo's day would be mostly over: it is dated from the next working day instead.
LATE = time(15, 0)


def demo_day(service: Service) -> date:
    today = service.today()
    if today.weekday() < 5 and service.now().astimezone(service.tz).time() < LATE:
        return today
    return working_days(today + timedelta(days=1), 1)[0]


def seed(service: Service, *, today: date, scenario_file: Path = DEMO_SCENARIO) -> tuple[DemoKeys, RunRow]:
    """Technicians (with shifts from `today` and the next working days), requests, keys, and the
    day planned from the service's clock on and published, so technician keys see their routes."""
    scenario = dated_from(Scenario.model_validate_json(scenario_file.read_text()), today)
    days = [today, *[d for d in working_days(today, 5) if d != today]][:5]
    book = maintenance_book(region="lyon", technicians=1, assets=DEMO_ASSETS, start=today, seed=7)
    tech_ids = {t.id for t in scenario.technicians}
    with service.sessions.begin() as session:
        for tech in scenario.technicians:
            row = store.put_technician(session, _with_template(repeat_shifts(tech, days)))
            session.flush()
            maintenance.derive_shifts(row, today=today, weeks=service.settings.maintenance_weeks)
        for asset in book["assets"]:
            session.add(AssetRow(id=asset["id"], spec=Asset.model_validate(asset).model_dump(mode="json")))
        for contract in book["contracts"]:
            if contract.get("preferred_technician_id") not in tech_ids:
                contract.pop("preferred_technician_id", None)
            model = MaintenanceContract.model_validate(contract)
            # A book kept up to date: the first visit is the rule's next date after today, so the
            # demo's day is the metro-day scenario's and the occurrences come due over the weeks.
            first = nominal_dates(model, since=today + timedelta(days=1), until=today + timedelta(days=800))
            spec = model.model_copy(update={"start": first[0]}).model_dump(mode="json")
            session.add(ContractRow(id=contract["id"], spec=spec, status="active"))
        session.flush()
        maintenance.generate(
            session,
            today=today,
            weeks=service.settings.maintenance_weeks,
            tz=service.tz,
            now=service.now(),
            actor="demo",
        )
        for job in scenario.jobs:
            session.add(
                RequestRow(
                    id=job.id,
                    status=JobStatus.OPEN.value,
                    spec=job.model_dump(mode="json"),
                    reason=ReasonCode.NOT_PLANNED_YET.value,
                    reason_detail="not planned yet",
                    # Made-up contacts, so the demo's customer notices show whom they would reach.
                    contact={"name": f"Customer {job.customer_id or job.id}", "phone": "+33 4 00 00 00 00"},
                )
            )
        _, admin = create_key(session, role=Role.ADMIN, label="demo admin")
        _, dispatcher = create_key(session, role=Role.DISPATCHER, label="demo dispatcher")
        _, booking = create_key(session, role=Role.BOOKING, label="demo call centre")
    begun = today <= service.today()
    run_id = start_run(
        service, trigger="demo", horizon=Horizon(start=today, days=1), wait=True, from_now=begun
    )
    with service.sessions.begin() as session:
        run = session.get(RunRow, run_id)
        assert run is not None
        if run.status == "succeeded":
            store.publish(session, day=today, today=service.today(), now=service.now(), tz=service.tz)
        busy = [r.technician_id for r in store.routes_of(session, version_id=run.plan_version_id or -1)]
        techs = busy[:2] if len(busy) >= 2 else [t.id for t in scenario.technicians[:2]]
        tech_keys = {}
        for tid in techs:
            _, key = create_key(session, role=Role.TECHNICIAN, technician_id=tid, label=f"demo {tid}")
            tech_keys[tid] = key
    return DemoKeys(admin=admin, dispatcher=dispatcher, booking=booking, technicians=tech_keys), run
