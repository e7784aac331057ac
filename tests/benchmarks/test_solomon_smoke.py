"""Solomon script: reader, checker and a tiny end-to-end run on instances written by the test."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from benchmarks import solomon


def write_instance(folder: Path, name: str, customers: int, seed: int, horizon: int = 230) -> Path:
    """A small instance in the standard Solomon text layout (random, generous windows)."""
    rng = random.Random(seed)
    rows = [f"{0:5d}{35:8d}{35:8d}{0:8d}{0:8d}{horizon:8d}{0:8d}"]
    for c in range(1, customers + 1):
        ready = rng.randint(0, horizon // 2)
        rows.append(
            f"{c:5d}{rng.randint(20, 50):8d}{rng.randint(20, 50):8d}{rng.randint(1, 20):8d}"
            f"{ready:8d}{ready + rng.randint(40, 80):8d}{10:8d}"
        )
    text = "\n".join(
        [
            name,
            "",
            "VEHICLE",
            "NUMBER     CAPACITY",
            "  25         200",
            "",
            "CUSTOMER",
            "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME",
            "",
            *rows,
        ]
    )
    path = folder / f"{name}.txt"
    path.write_text(text + "\n")
    return path


@pytest.fixture
def instances(tmp_path: Path) -> Path:
    folder = tmp_path / "solomon"
    folder.mkdir()
    write_instance(folder, "R901", 12, 1)
    write_instance(folder, "C901", 10, 2, horizon=1236)
    (folder / "bks.csv").write_text("instance,vehicles,distance\nR901,2,200.0\n")
    return folder


def test_reader_and_checker(instances: Path) -> None:
    inst = solomon.read_instance(instances / "R901.txt")
    assert inst.n == 12 and inst.vehicles == 25 and inst.capacity == 200
    d = inst.dist()
    one_each = [[c] for c in range(1, 13)]
    checked = solomon.check(inst, one_each)
    late = [c for c in range(1, 13) if d[0, c] > inst.due[c]]
    assert checked.feasible == (not late)
    assert checked.distance == pytest.approx(sum(2 * d[0, c] for c in range(1, 13)))
    twice = solomon.check(inst, [[1, 1], *one_each[1:]])
    assert not twice.feasible and any("twice" in p for p in twice.problems)
    missing = solomon.check(inst, one_each[1:])
    assert not missing.feasible and any("not served" in p for p in missing.problems)
    heavy = solomon.check(inst.__class__(**{**inst.__dict__, "capacity": 1}), one_each)
    assert not heavy.feasible and any("capacity" in p for p in heavy.problems)


def test_an_instance_maps_to_a_valid_fieldplan_scenario(instances: Path) -> None:
    inst = solomon.read_instance(instances / "C901.txt")
    scenario, minutes = solomon.to_scenario(inst)
    assert minutes == 1.0 and len(scenario.jobs) == 10 and len(scenario.technicians) == 25  # type: ignore[attr-defined]


def test_end_to_end_on_two_instances(instances: Path, tmp_path: Path) -> None:
    out, routes = tmp_path / "out", tmp_path / "routes"
    code = solomon.main(
        [
            "--instances",
            str(instances),
            "--time-limit",
            "1",
            "--solvers",
            "fieldplan,ortools",
            "--out",
            str(out),
            "--routes-out",
            str(routes),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((out / "solomon-1s.csv").open()))
    assert {(r["instance"], r["solver"]) for r in rows} == {
        (i, s) for i in ("R901", "C901") for s in ("fieldplan", "ortools")
    }
    ours = [r for r in rows if r["solver"] == "fieldplan"]
    assert all(r["feasible"] == "True" for r in ours)
    r901 = next(r for r in ours if r["instance"] == "R901")
    assert r901["bks_vehicles"] == "2" and r901["gap_pct"] != ""
    sol = (routes / "fieldplan" / "R901.sol").read_text().splitlines()
    assert sol[0].startswith("Route #1: ") and sol[-1].startswith("Cost ")
    served = sorted(int(c) for line in sol[:-1] for c in line.split(":")[1].split())
    assert served == list(range(1, 13))
    assert "| all | fieldplan |" in (out / "solomon-1s.md").read_text()


def test_bad_arguments_exit_2(instances: Path, tmp_path: Path) -> None:
    assert solomon.main(["--instances", str(tmp_path / "nope")]) == 2
    assert solomon.main(["--instances", str(instances), "--only", "X1"]) == 2
    assert solomon.main(["--instances", str(instances), "--solvers", "gurobi"]) == 2
