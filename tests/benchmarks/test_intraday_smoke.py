"""The disrupted-day simulation end to end at a toy size (its figures are for the closing note)."""

from __future__ import annotations

from datetime import timedelta
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


def test_technicians_leave_for_the_window_and_the_bounds_hold() -> None:
    """Nobody drives off hours early to wait at a customer's door (they stay free for a re-plan), an
    emergency reached in time was reachable, and a policy is compared with doing nothing on its day."""
    day = intraday.build_day("rural", 1, 8, 28, 60)
    idle = intraday.DaySim(day, "do_nothing")
    nothing = idle.run()
    for tech in idle.techs.values():
        for x in tech.log:  # at most the lunch break taken at the door
            assert x.start - x.arrival <= timedelta(minutes=tech.lunch_minutes), (tech.id, x)
    assert nothing.broken_ids and nothing.promises_broken == len(nothing.broken_ids)
    for name in intraday.POLICIES:
        o = intraday.DaySim(day, name).run()
        assert o.emergencies_in_sla <= o.emergencies_reachable <= o.emergencies
        assert len(o.broken_ids - nothing.broken_ids) <= o.promises_broken


def test_promises_kept_only_past_the_overtime_limit_are_told_apart() -> None:
    """Doing nothing keeps some promises by working on past the overtime limit, which no plan may:
    those are counted apart, each a kept promise whose visit ended too late to get home in time."""
    day = intraday.build_day("rural", 1, 8, 28, 60)
    idle = intraday.DaySim(day, "do_nothing")
    nothing = idle.run()
    assert nothing.over_limit_ids, "the seeded day's overruns push someone past the limit"
    assert not nothing.over_limit_ids & nothing.broken_ids
    limit = {t.id: timedelta(minutes=t.max_overtime_minutes) for t in day.scenario.technicians}
    for tech in idle.techs.values():
        for x in tech.log:
            home = x.end + idle.travel(idle.jobs[x.job_id].location, tech.home)
            late = home > tech.shift_end + limit[tech.id]
            promised = idle.jobs[x.job_id].appointment is not None
            assert (x.job_id in nothing.over_limit_ids) == (
                late and promised and x.job_id not in nothing.broken_ids
            )
