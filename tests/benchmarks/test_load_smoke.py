"""benchmarks/load.py end to end at toy size on PostgreSQL (the real figures are in the closing note)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import load
from tests.api.conftest import require_postgres


@pytest.mark.postgres
def test_load_script_small(tmp_path: Path) -> None:
    require_postgres("the load script")
    code = load.main(
        [
            "--technicians",
            "20",
            "--duration",
            "6",
            "--think",
            "0.1-0.3",
            "--requests",
            "40",
            "--workers",
            "1",
            # latency is the script's figure on a quiet machine, never a unit test's verdict
            "--p99-ms",
            "1e9",
            "--out",
            str(tmp_path),
        ]
    )
    result = json.loads((tmp_path / "load.json").read_text())
    assert code == 0, result
    pull = result["pull"]
    assert set(pull["status_codes"]) <= {"200", "304"}
    assert pull["server_errors"] == 0 and pull["mixed_or_wrong_responses"] == 0 and pull["requests"] > 50
    assert len(pull["responses_by_version"]) == 2  # the mid-run publish was seen
    assert result["creates"]["stored"] == 40 and result["creates"]["posts"] == 80
