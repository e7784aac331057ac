"""The national-fleet benchmark end to end at a toy size (its figures are for benchmarks/README.md)."""

from __future__ import annotations

import re

import pytest

from benchmarks import territories


def test_a_small_national_week_is_split_solved_and_compared_with_its_regions_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = territories.main(
        ["--jobs", "240", "--technicians", "16", "--backends", "process", "--parallel", "2",
         "--time-limit", "2", "--territory-jobs", "80", "--compare", "0", "--regions-alone", "2"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 240 jobs | process x2 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert int(cells[2]) >= 2, "split into territories"
    assert cells[-1] == "0", "no validator violation"
    whole = re.search(r"each region solved whole: (\d+) planned", out)
    share = re.search(r"planned = ([\d.]+)% of the (\d+) its regions plan", out)
    assert whole and share and share.group(2) == whole.group(1)
    assert 0 < float(share.group(1)) <= 110
