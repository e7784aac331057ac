"""The scale script runs end to end on a tiny grid (figures are for the closing note, not asserted)."""

from __future__ import annotations

import csv
from pathlib import Path

from benchmarks import scale


def test_scale_script_writes_a_table_of_valid_plans(tmp_path: Path) -> None:
    assert (
        scale.main(
            [
                "--jobs",
                "20",
                "40",
                "--days",
                "1",
                "--time-limit",
                "1",
                "--repeats",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "scale.csv").open()))
    assert [int(r["jobs"]) for r in rows] == [20, 40]
    assert all(int(r["violations"]) == 0 and float(r["planned_share"]) > 0 for r in rows)
    assert (tmp_path / "scale.png").stat().st_size > 0
