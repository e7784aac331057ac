"""From what a service organisation keeps (templates, contracts, assets) to what is planned (dated
shifts, jobs): one function, used by the command line and, piece by piece, by the service."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from models.maintenance import Asset, MaintenanceContract, Occurrence, occurrences

if TYPE_CHECKING:
    from models.scenario import Job, Scenario


def occurrence_job(contract: MaintenanceContract, asset: Asset, occ: Occurrence, tz: ZoneInfo) -> Job:
    """An occurrence as a job: any start from its earliest day to its latest, due on its due date
    (finished by that day's end), the contract's tier, the preferred technician for continuity."""
    from models.scenario import Job, Window

    return Job(
        id=occ.key,
        customer_id=asset.customer_id,
        kind=contract.kind,
        location=asset.location,
        duration_minutes=contract.duration_minutes,
        skills=dict(contract.skills),
        windows=[
            Window(
                start=datetime.combine(occ.earliest, time(0), tzinfo=tz),
                end=datetime.combine(occ.latest, time(23, 59), tzinfo=tz),
            )
        ],
        due=datetime.combine(occ.due + timedelta(days=1), time(0), tzinfo=tz),
        contract=contract.contract,
        warranty=asset.under_warranty(occ.nominal),
        preferred_technicians=[contract.preferred_technician_id] if contract.preferred_technician_id else [],
        asset_id=asset.id,
        occurrence=occ.ref(),
    )


def with_asset_warranty(job: Job, asset: Asset, on: date) -> Job:
    """A repair naming an asset is under warranty exactly when the asset is, whatever was typed."""
    warranty = asset.under_warranty(on)
    return job if job.warranty == warranty else job.model_copy(update={"warranty": warranty})


def expand(scenario: Scenario) -> Scenario:
    days = scenario.horizon.dates()
    first, last = days[0], days[-1]
    assets = {a.id: a for a in scenario.assets}
    # Consumed: the calendars become dated shifts and the contracts jobs, so a scenario cut from
    # this one (a territory, one technician-day) never derives or generates anything again.
    technicians = [
        t.with_derived_shifts(days).model_copy(update={"availability": None}) if t.availability else t
        for t in scenario.technicians
    ]
    jobs = [
        with_asset_warranty(j, assets[j.asset_id], first)
        if j.asset_id in assets and j.occurrence is None
        else j
        for j in scenario.jobs
    ]
    known = {j.id for j in jobs}
    for contract in scenario.contracts:
        site = assets[contract.asset_ids[0]]
        for occ in occurrences(contract, until=last, open_on=first):
            # Due inside the horizon (as the nightly re-plan takes them): one due later waits for a
            # horizon that shows its due date, rather than being pushed to this one's last days.
            if occ.key in known or occ.latest < first:
                continue
            jobs.append(occurrence_job(contract, site, occ, scenario.tz))
            known.add(occ.key)
    if technicians == scenario.technicians and jobs == scenario.jobs and not scenario.contracts:
        return scenario
    return scenario.model_copy(update={"technicians": technicians, "jobs": jobs, "contracts": []})
