"""The command line as a user runs it: real files, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from models import Plan, Scenario
from optimizer import validate_plan
from scenarios import shipped

runner = CliRunner()


def test_generate_is_seeded(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    args = [
        "generate",
        "--name",
        "s",
        "--jobs",
        "20",
        "--technicians",
        "3",
        "--start",
        "2026-12-07",
        "--impossible",
        "4",
    ]
    assert runner.invoke(app, [*args, "--seed", "5", "--out", str(a)]).exit_code == 0
    assert runner.invoke(app, [*args, "--seed", "5", "--out", str(b)]).exit_code == 0
    assert runner.invoke(app, [*args, "--seed", "6", "--out", str(c)]).exit_code == 0
    assert a.read_text() == b.read_text() != c.read_text()
    Scenario.model_validate_json(a.read_text())


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.stem)
def test_every_shipped_scenario_solves_to_a_valid_plan(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["solve", str(path), "--time-limit", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "validator: plan OK" in result.output
    scenario = Scenario.model_validate_json(path.read_text())
    if scenario.travel.metric == "osm":  # helsinki-day: checked on the same road times
        from api.roads import resolve

        scenario, _ = resolve(scenario)
    plan = Plan.model_validate_json(out.read_text())
    assert validate_plan(scenario, plan) == []
    assert plan.unassigned, "shipped scenarios include impossible jobs, so reasons show"
    assert runner.invoke(app, ["validate", str(path), str(out)]).exit_code == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (json.dumps({"name": "x"}).encode(), "timezone"),
        (b"[" * 5000 + b"]" * 5000, "error"),
    ],
)
def test_bad_scenario_file_exits_2_with_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "solve", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", str(tmp_path / "nope.json")])
    assert result.exit_code == 2


def test_validate_exits_1_on_a_tampered_plan(tmp_path: Path) -> None:
    scenario_path = next(p for p in shipped() if p.stem == "metro-day")
    out = tmp_path / "plan.json"
    assert (
        runner.invoke(app, ["solve", str(scenario_path), "--time-limit", "2", "--out", str(out)]).exit_code
        == 0
    )
    data = json.loads(out.read_text())
    data["routes"][0]["visits"].append(data["routes"][1]["visits"][0])  # one job twice
    out.write_text(json.dumps(data))
    result = runner.invoke(app, ["validate", str(scenario_path), str(out)])
    assert result.exit_code == 1
    assert "DUPLICATE_JOB" in result.output


def _scenario_with(**job_extra: object) -> bytes:
    from tests.conftest import job, scenario_dict, tech

    return json.dumps(scenario_dict([tech("A")], [{**job("J1"), **job_extra}])).encode()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_scenario_with().replace(b'"lat": 45.77', b'"lat": NaN'), "lat"),  # NaN coordinate
        (_scenario_with(location={"lat": 95, "lon": 4}), "lat"),  # off the globe
        (_scenario_with(windows=[{"start": "2026-12-07T12:00", "end": "2026-12-07T09:00"}]), "window"),
        (
            _scenario_with(windows=[{"start": "2027-03-01T08:00", "end": "2027-03-01T09:00"}]),
            "outside the horizon",
        ),
        (_scenario_with(duration_minutes=0), "duration_minutes"),
        (_scenario_with(duration_minutes=10_000), "duration_minutes"),
        (_scenario_with(kind="alchemy"), "kind"),
        (_scenario_with(skills={"HVAC!": 2}), "skill"),
        (_scenario_with(id="J1\x00"), "id"),
        (_scenario_with(id="J1'; DROP TABLE x;--"), "id"),
        (b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "error"),
    ],
)
def test_hostile_scenario_files_exit_2_with_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "hostile.json"
    bad.write_bytes(content)
    result = runner.invoke(app, ["solve", str(bad)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0].lower(), result.output
    assert "Traceback" not in result.output


def test_explain_shows_verified_fixes_and_keeps_the_exit_codes(tmp_path: Path) -> None:
    scenario = next(p for p in shipped() if p.stem == "overloaded-day")
    plan_file = tmp_path / "plan.json"
    solved = runner.invoke(app, ["solve", str(scenario), "--iterations", "500", "--out", str(plan_file)])
    assert solved.exit_code == 0, solved.output
    shown = runner.invoke(app, ["explain", str(scenario), str(plan_file)])
    assert shown.exit_code == 0, shown.output
    assert "verified" in shown.output
    rows = json.loads(runner.invoke(app, ["explain", str(scenario), str(plan_file), "--json"]).output)
    assert rows and any(f["verified"] for r in rows for f in r["fixes"])
    assert all(
        r["fixes"] == sorted(r["fixes"], key=lambda f: (not f["verified"], f["cost_delta"])) for r in rows
    )
    bad = runner.invoke(app, ["explain", str(scenario), str(plan_file), "--job", "NOPE"])
    assert bad.exit_code == 2 and "--job" in bad.output
    plan = json.loads(plan_file.read_text())
    route = plan["routes"][0]
    route["visits"].append(dict(route["visits"][0]))  # the same job twice: the validator refuses
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(plan))
    assert runner.invoke(app, ["explain", str(scenario), str(broken)]).exit_code == 1
    assert runner.invoke(app, ["explain", str(tmp_path / "missing.json"), str(plan_file)]).exit_code == 2


def test_slots_offers_graded_windows_and_says_why_not_the_others(tmp_path: Path) -> None:
    scenario = next(p for p in shipped() if p.stem == "metro-day")
    plan_file, job_file = tmp_path / "plan.json", tmp_path / "job.json"
    solved = runner.invoke(app, ["solve", str(scenario), "--iterations", "100", "--out", str(plan_file)])
    assert solved.exit_code == 0, solved.output
    job = {"id": "NEW-1", "kind": "repair", "location": {"lat": 45.76, "lon": 4.85}, "duration_minutes": 60}
    job_file.write_text(json.dumps(job))
    shown = runner.invoke(app, ["slots", str(scenario), str(plan_file), "--job", str(job_file)])
    assert shown.exit_code == 0, shown.output
    assert "slots for NEW-1" in shown.output and "100" in shown.output
    answer = json.loads(
        runner.invoke(app, ["slots", str(scenario), str(plan_file), "--job", str(job_file), "--json"]).output
    )
    assert answer["slots"] and answer["slots"][0]["grade"] == 100
    job_file.write_text(json.dumps({**job, "duration_minutes": -5}))
    bad = runner.invoke(app, ["slots", str(scenario), str(plan_file), "--job", str(job_file)])
    assert bad.exit_code == 2 and "duration_minutes" in bad.output
    taken = Scenario.model_validate_json(scenario.read_text()).jobs[0].id
    job_file.write_text(json.dumps({**job, "id": taken}))
    assert runner.invoke(app, ["slots", str(scenario), str(plan_file), "--job", str(job_file)]).exit_code == 2


def test_solve_in_territories_on_a_process_pool(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    path = next(p for p in shipped() if p.stem == "regional-week")
    args = ["solve", str(path), "--time-limit", "1", "--parallel", "2", "--territory-jobs", "80"]
    args += ["--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "validator: plan OK" in result.output
    plan = Plan.model_validate_json(out.read_text())
    assert any(p.startswith("territory T1") for p in plan.solver.search_phases)
    assert validate_plan(Scenario.model_validate_json(path.read_text()), plan) == []
    bad = runner.invoke(app, ["solve", str(path), "--backend", "spark"])
    assert bad.exit_code == 2 and "--backend" in bad.output
