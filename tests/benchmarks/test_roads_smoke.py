"""The road-times benchmark runs end to end on small cases (its figures come from the full run)."""

from __future__ import annotations

import pytest

pytest.importorskip("pyrosm")

from benchmarks.roads import city, city_scenario, compare, main


def test_a_plan_made_on_road_times_drives_cleanly_on_them() -> None:
    base, roads = city_scenario(city(1), 1, 16)
    result = compare(base, roads)
    assert result["roads_violations"] == 0 and result["roads_late"] == 0 and result["roads_behind"] == 0
    assert result["crow_violations"] > 0  # crow-flies times do not hold on these roads


def test_the_script_prints_its_tables() -> None:
    assert main(["--seeds", "1", "--jobs", "8", "--sizes", "30"]) == 0
