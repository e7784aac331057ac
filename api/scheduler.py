"""The nightly re-plan: an APScheduler 3.x cron job, plus one catch-up run at start-up.

APScheduler's in-memory store forgets a night missed while the service was down, so the catch-up
is decided from the database instead: if no nightly run was requested since the last scheduled time,
or a run was abandoned by a dead process, run once now (never once per missed night).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from api import maintenance
from api.context import Service
from api.errors import ReplanInProgress
from api.replan_job import background_priority, nightly_horizon, recover_abandoned, start_run
from api.tables import RunRow

log = logging.getLogger("fieldplan.scheduler")
JOB_ID = "nightly-replan"
NIGHTLY_TRIGGERS = ("nightly", "catch-up")  # runs that count as "the night was re-planned"
REPORTED_TRIGGERS = (*NIGHTLY_TRIGGERS, "nightly-manual")  # what /health reports as the last nightly run
_service: Service | None = None


def nightly_job() -> None:
    """Module-level, so APScheduler can reference it; the service is the one `start` registered."""
    if _service is None:
        return
    background_priority(thread_only=True)  # the scheduler's own thread: request handling goes first
    run_nightly(_service, trigger="nightly", wait=True)


def run_nightly(service: Service, *, trigger: str, wait: bool) -> int | None:
    """Shifts from templates and maintenance occurrences first, then the re-plan."""
    maintenance.before_night(service, actor=trigger)
    try:
        run_id = start_run(service, trigger=trigger, horizon=nightly_horizon(service), wait=wait)
    except ReplanInProgress as exc:
        log.info("%s re-plan skipped: run %s is in progress", trigger, exc.extra.get("run_id"))
        return None
    log.info("%s re-plan: run %s", trigger, run_id)
    return run_id


def last_due(service: Service, now: datetime) -> datetime:
    """The most recent scheduled nightly time at or before `now`."""
    local = now.astimezone(service.tz)
    due = datetime.combine(local.date(), service.settings.nightly_at, tzinfo=service.tz)
    if due > local:
        due = datetime.combine(
            local.date() - timedelta(days=1), service.settings.nightly_at, tzinfo=service.tz
        )
    return due


def missed_night(service: Service) -> bool:
    """True when the last scheduled night passed without a nightly run, on a database older than it.

    A database whose first run came after that night (a fresh install, a new demo) missed nothing.
    """
    due = last_due(service, service.now())
    with service.sessions() as session:
        first = session.scalar(select(func.min(RunRow.requested_at)))
        if first is None or first >= due:
            return False
        latest = session.scalar(
            select(RunRow.requested_at)
            .where(RunRow.trigger.in_(NIGHTLY_TRIGGERS))
            .order_by(RunRow.requested_at.desc())
            .limit(1)
        )
    return latest is None or latest < due


def on_startup(service: Service, *, wait: bool = False) -> int | None:
    """Mark runs of dead processes abandoned, then catch up once if a night (or a run) was lost."""
    abandoned = recover_abandoned(service)
    if abandoned:
        log.warning("%s re-plan run(s) were abandoned by a stopped process; re-planning once", abandoned)
    if abandoned or missed_night(service):
        return run_nightly(service, trigger="catch-up", wait=wait)
    return None


def start(service: Service) -> BackgroundScheduler:
    global _service
    _service = service
    at = service.settings.nightly_at
    scheduler = BackgroundScheduler(timezone=service.tz)
    scheduler.add_job(
        nightly_job,
        CronTrigger(hour=at.hour, minute=at.minute, timezone=service.tz),
        id=JOB_ID,
        replace_existing=True,
        misfire_grace_time=6 * 3600,
        coalesce=True,
        max_instances=1,
    )
    scheduler.start()
    log.info("nightly re-plan scheduled at %s %s", at.strftime("%H:%M"), service.settings.timezone)
    return scheduler
