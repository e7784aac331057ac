"""`benchmarks/simulate.py --contracts` end to end at a toy size (its figures are for the README)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import simulate


def test_contract_simulation_runs_both_policies_validator_clean(tmp_path: Path, capsys: object) -> None:
    code = simulate.main(
        [
            "--contracts",
            "--weeks",
            "2",
            "--technicians",
            "2",
            "--assets",
            "120",
            "--time-limit",
            "0.3",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0  # 1 would mean a validator violation in some night's plan
    table = (tmp_path / "maintenance-2w-2t-120a.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| fixed") or line.startswith("| router")]
    assert len(rows) == 2
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in rows}
    assert int(cells["router"][3]) > 0 and int(cells["fixed"][3]) > 0  # visits done
    assert cells["router"][8] == "0" and cells["fixed"][8] == "0"  # violations
    assert simulate.main(["--contracts", "--weeks", "1"]) == 2
