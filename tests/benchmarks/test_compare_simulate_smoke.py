"""compare.py and simulate.py end to end at toy sizes (their figures are for the closing note)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks import compare, simulate
from models import Scenario
from scenarios import SCENARIO_DIR


def test_variants_change_what_they_say(tmp_path: Path) -> None:
    base = Scenario.model_validate_json((SCENARIO_DIR / "metro-day.json").read_text())
    more = compare.apply(base, compare.parse_variant("+2=add-technicians:hvac:2"))
    assert len(more.technicians) == len(base.technicians) + 2
    assert all(t.skills == {"hvac": t.skills["hvac"]} for t in more.technicians[-2:])
    slow = compare.apply(base, compare.parse_variant("slow=speed:30;overtime:45"))
    assert slow.travel.speed_kmh == 30 and {t.max_overtime_minutes for t in slow.technicians} == {45}
    wide = compare.apply(base, compare.parse_variant("lunch=lunch-window:30"))
    assert next(t.lunch.earliest for t in wide.technicians if t.lunch) < next(
        t.lunch.earliest for t in base.technicians if t.lunch
    )
    for bad in ("nope", "x=teleport:3", "x=add-technicians:underwater:2", "x=speed:fast"):
        with pytest.raises(compare.BadVariant):
            compare.apply(base, compare.parse_variant(bad))


def test_compare_writes_table_and_html(tmp_path: Path) -> None:
    code = compare.main(
        [
            str(SCENARIO_DIR / "metro-day.json"),
            "--variant",
            "30 km/h=speed:30",
            "--seeds",
            "2",
            "--time-limit",
            "0.5",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "compare-metro-day.csv").open()))
    assert {(r["variant"], r["seed"]) for r in rows} == {
        (v, s) for v in ("base", "30 km/h") for s in ("0", "1")
    }
    assert all(float(r["violations"]) == 0 for r in rows)
    html = (tmp_path / "compare-metro-day.html").read_text()
    assert html.count("data:image/png;base64,") == len(compare.METRICS) and "30 km/h" in html
    assert compare.main([str(tmp_path / "missing.json")]) == 2


def test_relaxed_what_ifs_never_plan_fewer_at_any_priority_level(tmp_path: Path) -> None:
    """Warm-started from the base plan, iteration-bound: more hands, overtime or wider windows
    never leave fewer jobs planned at priority 1, 1-2, ... 1-5 (the issue's what-if sanity)."""
    code = compare.main(
        [
            str(SCENARIO_DIR / "overloaded-day.json"),
            "--variant",
            "+1 boiler=add-technicians:boiler:1",
            "--variant",
            "overtime=overtime:60",
            "--variant",
            "wide=widen-windows:60",
            "--seeds",
            "2",
            "--iterations",
            "300",
            "--time-limit",
            "60",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "compare-overloaded-day.csv").open()))
    base = {r["seed"]: [int(x) for x in r["cumulative"].split("/")] for r in rows if r["variant"] == "base"}
    for r in rows:
        counts = [int(x) for x in r["cumulative"].split("/")]
        assert all(a >= b for a, b in zip(counts, base[r["seed"]], strict=True)), r
    assert any(r["cumulative"] != "/".join(map(str, base[r["seed"]])) for r in rows if r["variant"] != "base")


def test_simulation_runs_every_policy_through_the_replan_function(tmp_path: Path) -> None:
    code = simulate.main(
        ["--days", "2", "--technicians", "3", "--per-day", "8", "--time-limit", "0.5", "--out", str(tmp_path)]
    )
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "simulate-2d-3t.csv").open()))
    assert {r["policy"] for r in rows} == {"greedy", "scratch", "stable"} and len(rows) == 6
    assert all(
        int(r["served"]) + int(r["failed"]) + int(r["missed"]) == int(r["planned_today"]) for r in rows
    )
    assert "| stable |" in (tmp_path / "simulate-2d-3t.md").read_text()
    assert simulate.main(["--policies", "random"]) == 2
