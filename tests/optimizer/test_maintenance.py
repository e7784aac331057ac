"""Maintenance occurrences in the search: inside their window, near their due date, grouped when a
trip is saved (what fixed-date generation cannot do)."""

from __future__ import annotations

from datetime import date

from models import Scenario
from optimizer import SolveOptions, solve, validate_plan
from tests.conftest import tech

OPTS = SolveOptions(time_limit_seconds=5, iterations=300)
WEEK = [{"day": d, "start": "08:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]
MONDAY = "2026-12-07"


def _scenario(contracts: list[dict], assets: list[dict]) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "maintenance",
            "timezone": "Europe/Paris",
            "horizon": {"start": MONDAY, "days": 8},
            "technicians": [tech("A", shifts=[], availability={"weekly": WEEK})],
            "jobs": [],
            "assets": assets,
            "contracts": contracts,
        }
    ).expanded()


def _asset(aid: str, lat: float, lon: float) -> dict:
    return {"id": aid, "location": {"lat": lat, "lon": lon}}


def _contract(cid: str, aid: str, nominal: str, before: int, after: int) -> dict:
    return {
        "id": cid,
        "asset_ids": [aid],
        "skills": {"hvac": 2},
        "duration_minutes": 60,
        "rrule": "FREQ=YEARLY",
        "start": nominal,
        "window": {"before_days": before, "after_days": after},
    }


def _days(sc: Scenario) -> dict[str, date]:
    plan = solve(sc, OPTS)
    assert list(validate_plan(sc, plan)) == []
    assert not plan.unassigned
    return {v.job_id.split(":")[0]: r.date for r in plan.routes for v in r.visits}


def test_an_occurrence_goes_on_its_due_date_when_nothing_argues_otherwise() -> None:
    sc = _scenario([_contract("K1", "A1", "2026-12-09", 2, 2)], [_asset("A1", 45.77, 4.85)])
    assert _days(sc) == {"K1": date(2026, 12, 9)}


def test_late_costs_more_than_early() -> None:
    """Due on Saturday, nobody works then: Friday (a day early) beats Monday (two days late)."""
    sc = _scenario([_contract("K1", "A1", "2026-12-12", 3, 3)], [_asset("A1", 45.77, 4.85)])
    assert _days(sc) == {"K1": date(2026, 12, 11)}


def test_two_visits_far_away_share_one_trip() -> None:
    """Two assets 40 km out, due Tuesday and Thursday: one trip on a day inside both windows saves
    an 80-minute round trip, which is worth a day off each due date."""
    assets = [_asset("A1", 46.10, 4.85), _asset("A2", 46.101, 4.851)]
    sc = _scenario(
        [_contract("K1", "A1", "2026-12-08", 3, 3), _contract("K2", "A2", "2026-12-10", 3, 3)], assets
    )
    days = _days(sc)
    assert days["K1"] == days["K2"]
    assert date(2026, 12, 8) <= days["K1"] <= date(2026, 12, 10)
    # With fixed dates (a one-day window) the same book needs two trips.
    fixed = _scenario(
        [_contract("K1", "A1", "2026-12-08", 0, 0), _contract("K2", "A2", "2026-12-10", 0, 0)], assets
    )
    assert _days(fixed) == {"K1": date(2026, 12, 8), "K2": date(2026, 12, 10)}
