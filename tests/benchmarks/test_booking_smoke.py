"""The booking benchmark runs end to end on a small call centre (its figures come from the full run)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from benchmarks.booking import _around, callcentre, customer_job, main
from optimizer.slots import Preferences, SlotQuery
from scenarios.families import family_scenario


def test_a_small_call_centre_books_keeps_every_promise_and_compares_with_batch() -> None:
    result = callcentre("urban", 1, 25)
    assert result["booked"] >= 20 and result["first_call"] >= 0.8
    assert result["kept"] == 1.0
    assert result["batch_travel"] > 0 and result["same_windows_travel"] > 0


def test_the_script_prints_its_tables() -> None:
    assert main(["--skip-latency", "--families", "rural", "--seeds", "1", "--customers", "12"]) == 0


def test_the_clairvoyant_experiment_books_every_caller_it_can_and_keeps_every_promise() -> None:
    result = callcentre("urban", 1, 25, clairvoyant=True)
    assert result["booked"] >= 20 and result["kept"] == 1.0


def test_a_clairvoyant_caller_is_offered_only_windows_holding_the_foreseen_arrival() -> None:
    job = customer_job(family_scenario("urban", jobs=1, technicians=1, days=1, seed=1).jobs[0], 0)
    start = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Europe/Paris"))
    mornings = SlotQuery(job=job, preferences=Preferences(until_time=time(12, 0)))  # type: ignore[arg-type]
    told = _around(mornings, start, 120)
    assert (told.earliest, told.latest) == (start.date(), start.date())
    assert (told.preferences.from_time, told.preferences.until_time) == (time(8, 30), time(12, 0))
    late = _around(SlotQuery(job=job), start.replace(hour=23), 120)
    assert (late.preferences.from_time, late.preferences.until_time) == (time(21, 30), time(23, 59))
