"""The newcomer's walk through `fieldplan serve --demo`, in a real process over real HTTP.

The demo starts with its clock at 09:00 on a Monday (`--clock`), so the walk is the same at any hour:
a technician pulls the published route, the dispatcher re-plans the rest of the day (a proposal)
and publishes it, a visit fails, the nightly job plans it again and publishes the day: README's
main-job command, end to end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.cli import app
from tests.api.proc import free_port


def _wait(client: httpx.Client, key: str, run_id: int) -> dict:
    for _ in range(600):
        run = client.get(f"/v1/runs/{run_id}", headers={"Authorization": f"Bearer {key}"}).json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_serve_demo_walkthrough(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FIELDPLAN_SOLVE_SECONDS": "2", "FIELDPLAN_DATABASE_URL": "sqlite:///ignored.db"}
    env.pop("FIELDPLAN_ADMIN_KEY", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--clock",
            "2026-12-07T09:00",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Uvicorn running" in line:
                break
        else:
            pytest.fail("the demo did not start:\n" + "".join(lines))
        text = "".join(lines)
        dispatcher = re.search(r"^dispatcher key: (\S+)$", text, re.M)
        agent = re.search(r"^booking \(call centre\) key: (\S+)$", text, re.M)
        techs = re.findall(r"^technician (\S+) key: (\S+)$", text, re.M)
        assert dispatcher and agent and len(techs) == 2, text
        assert (tmp_path / "fieldplan-demo.db").exists() and not (tmp_path / "ignored.db").exists()
        d = {"Authorization": f"Bearer {dispatcher.group(1)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            # the demo day is today, planned from 09:00 and published: a technician has a route
            tid, tkey = techs[0]
            t = {"Authorization": f"Bearer {tkey}"}
            route = client.get("/v1/me/route", headers=t).json()
            assert route["technician_id"] == tid and route["stops"], route
            assert all(s["start"] >= "2026-12-07T09:00" for s in route["stops"])
            # the dispatcher re-plans the rest of today: a proposal, published after review
            run = _wait(
                client,
                dispatcher.group(1),
                client.post("/v1/plans", json={"days": 1}, headers=d).json()["run_id"],
            )
            assert run["status"] == "succeeded", run
            proposal = client.get("/v1/plans/proposed", headers=d).json()
            assert proposal["plan_version"] == run["plan_version_id"]
            assert client.post("/v1/days/2026-12-07/publish", headers=d).status_code == 200
            route = client.get("/v1/me/route", headers=t).json()
            assert route["plan_version"] == run["plan_version_id"]
            # a customer calls: slots for a new request, one booked, in the plan at once
            a = {"Authorization": f"Bearer {agent.group(1)}"}
            caller = {"kind": "repair", "location": {"lat": 45.76, "lon": 4.84}, "duration_minutes": 45}
            offered = client.post("/v1/appointments/slots", json={"job": caller}, headers=a).json()
            assert offered["slots"] and offered["slots"][0]["cost"]["added_travel_minutes"] >= 0, offered
            chosen = offered["slots"][0]
            booked = client.post("/v1/appointments", json={"slot_token": chosen["slot_token"]}, headers=a)
            assert booked.status_code == 201, booked.text
            caller_id = booked.json()["job_id"]
            shown = client.get(f"/v1/plans/current?date={chosen['date']}", headers=d).json()
            assert caller_id in {v["job_id"] for r in shown["routes"] for v in r["visits"]}
            free = [
                s
                for s in route["stops"]
                if not client.get(f"/v1/requests/{s['job_id']}", headers=d).json()["job"]["windows"]
            ]
            victim = (free or route["stops"])[0]["job_id"]
            failed = client.post(
                f"/v1/visits/{victim}/status", json={"status": "failed", "reason": "no access"}, headers=t
            )
            assert failed.status_code == 200 and failed.json()["status"] == "failed"
            nightly = client.post("/v1/plans/nightly", headers=d)
            assert nightly.status_code == 202
            run = _wait(client, dispatcher.group(1), nightly.json()["run_id"])
            assert run["status"] == "succeeded", run
            plan = client.get(f"/v1/plans/{run['plan_version_id']}", headers=d).json()
            planned = {v["job_id"] for r in plan["routes"] for v in r["visits"]}
            if free:
                assert victim in planned
                req = client.get(f"/v1/requests/{victim}", headers=d).json()
                # the nightly run publishes the first day it plans; later days stay plans
                assert req["status"] == (
                    "dispatched" if req["planned_date"] == "2026-12-07" else "planned"
                ), req
            else:
                assert victim in planned | {u["job_id"] for u in plan["unassigned"]}
            kept = next(v for r in plan["routes"] for v in r["visits"] if v["job_id"] == caller_id)
            assert chosen["start"] <= kept["start"] <= chosen["end"]
            assert client.get("/health").json()["last_nightly"]["id"] == run["id"]
            # the day as it happens: the second technician falls ill, an emergency comes in
            ill, ill_key = techs[1]
            gone = {
                "type": "technician_unavailable",
                "technician_id": ill,
                "from": "2026-12-07T09:00:00+01:00",
            }
            assert client.post("/v1/days/2026-12-07/events", json=gone, headers=d).status_code == 201
            emergency = {
                "type": "emergency",
                "request": {
                    "id": "EM-1",
                    "kind": "repair",
                    "location": {"lat": 45.75, "lon": 4.85},
                    "duration_minutes": 45,
                    "contact": {"name": "Facilities desk", "phone": "+33 4 72 11 00 00"},
                },
            }
            assert client.post("/v1/days/2026-12-07/events", json=emergency, headers=d).status_code == 201
            again = client.post("/v1/days/2026-12-07/reoptimise", json={}, headers=d)
            assert again.status_code == 200, again.text
            body = again.json()
            assert body["diff"] and body["notices"], body
            day = client.get("/v1/plans/current?date=2026-12-07", headers=d).json()
            assert day["plan_version"] == body["plan_version"] and day["published"]
            where = {v["job_id"]: r["technician_id"] for r in day["routes"] for v in r["visits"]}
            assert where.get("EM-1") not in (None, ill), (where, day["unassigned"])
            keys = dict(techs)
            if where["EM-1"] in keys:  # the demo prints two technicians' keys
                taker = {"Authorization": f"Bearer {keys[where['EM-1']]}"}
                stops = client.get("/v1/me/route", headers=taker).json()["stops"]
                assert "EM-1" in [s["job_id"] for s in stops]
            mine = client.get("/v1/me/route", headers={"Authorization": f"Bearer {ill_key}"}).json()
            # nothing after the absence: only what was under way (by report, or by the plan) stays
            assert {s["job_id"] for s in mine["stops"]} <= set(body["frozen"].get(ill, [])), mine
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_without_an_admin_key_refuses_to_start(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.settings import get_settings

    get_settings.cache_clear()
    env = {"FIELDPLAN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "FIELDPLAN_ADMIN_KEY": ""}
    os.environ.pop("FIELDPLAN_ADMIN_KEY", None)
    result = CliRunner().invoke(app, ["serve"], env={k: v for k, v in env.items() if v})
    assert result.exit_code == 2
    assert "FIELDPLAN_ADMIN_KEY" in result.output and "Traceback" not in result.output


def test_keys_create_prints_a_key_bound_to_a_technician(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api import store
    from api.context import Service
    from api.settings import Settings
    from models import Technician
    from tests.conftest import tech

    url = f"sqlite:///{tmp_path / 'k.db'}"
    svc = Service.open(Settings(database_url=url))
    with svc.sessions.begin() as session:
        store.put_technician(session, Technician.model_validate(tech("T7")))
    svc.close()
    from api.settings import get_settings

    get_settings.cache_clear()
    env = {"FIELDPLAN_DATABASE_URL": url}
    ok = CliRunner().invoke(app, ["keys", "create", "--role", "technician", "--technician", "T7"], env=env)
    get_settings.cache_clear()
    assert ok.exit_code == 0, ok.output
    assert re.search(r"technician key for T7 \(id \d+, shown once\): fp_\S{20,}", ok.output.replace("\n", ""))
    missing = CliRunner().invoke(
        app, ["keys", "create", "--role", "technician", "--technician", "T8"], env=env
    )
    get_settings.cache_clear()
    assert missing.exit_code == 2 and "T8" in missing.output
    bad = CliRunner().invoke(app, ["keys", "create", "--role", "dispatcher", "--technician", "T7"], env=env)
    get_settings.cache_clear()
    assert bad.exit_code == 2
