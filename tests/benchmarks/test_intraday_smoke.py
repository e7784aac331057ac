"""The disrupted-day simulation end to end at a toy size (its figures are for the closing note)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import intraday, simulate


def test_a_disrupted_day_is_simulated_for_every_policy(tmp_path: Path) -> None:
    code = simulate.main(
        [
            "--intraday",
            "--families",
            "urban",
            "--seeds",
            "1",
            "--technicians",
            "6",
            "--jobs",
            "20",
            "--iterations",
            "60",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    table = (tmp_path / "intraday-6t.md").read_text()
    for policy in intraday.POLICIES:
        assert f"| {policy} |" in table
    assert simulate.main(["--intraday", "--families", "lunar"]) == 2


def test_the_policies_see_the_same_day_and_re_planning_reaches_emergencies() -> None:
    day = intraday.build_day("urban", 2, 8, 28, 60)
    outcomes = {name: intraday.DaySim(day, name).run() for name in intraday.POLICIES}
    assert len({o.promised for o in outcomes.values()}) == 1
    assert outcomes["do_nothing"].emergencies_in_sla == 0  # nobody is sent
    assert outcomes["budgeted"].emergencies_in_sla >= 1
    assert all(o.emergencies == len(day.emergencies) for o in outcomes.values())
