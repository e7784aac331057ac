"""The booking benchmark runs end to end on a small call centre (its figures come from the full run)."""

from __future__ import annotations

from benchmarks.booking import callcentre, main


def test_a_small_call_centre_books_keeps_every_promise_and_compares_with_batch() -> None:
    result = callcentre("urban", 1, 25)
    assert result["booked"] >= 20 and result["first_call"] >= 0.8
    assert result["kept"] == 1.0
    assert result["batch_travel"] > 0 and result["same_windows_travel"] > 0


def test_the_script_prints_its_tables() -> None:
    assert main(["--skip-latency", "--families", "rural", "--seeds", "1", "--customers", "12"]) == 0
