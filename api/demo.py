"""`fieldplan serve --demo`: a fresh SQLite database with a shipped scenario dated from today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path

from api import store
from api.context import Service
from api.replan_job import start_run
from api.security import Role, create_key
from api.tables import RequestRow, RunRow
from models import Horizon, JobStatus, ReasonCode, Scenario, working_days
from scenarios import SCENARIO_DIR
from scenarios.dating import dated_from, repeat_shifts

DEMO_SCENARIO = SCENARIO_DIR / "metro-day.json"


@dataclass
class DemoKeys:
    admin: str
    dispatcher: str
    booking: str
    technicians: dict[str, str]


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
    with service.sessions.begin() as session:
        for tech in scenario.technicians:
            store.put_technician(session, repeat_shifts(tech, days))
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
