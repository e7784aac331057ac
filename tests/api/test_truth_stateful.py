"""Random sequences of what a service lives through, with the service's promises checked after every step.

Steps: new requests, re-plans (from the clock on), publications, visit reports, a technician's shift
removed, cancellations, the clock moving on. After every step:
1. every request's status, technician and day agree with the plan technicians see (an active request
   in no such plan is open with a reason);
2. a re-plan never placed a visit that had not started before its clock;
3. a promised window is kept by every plan that places the visit;
4. a technician's route is the last published version of the day, nothing newer;
5. every stored plan passes the independent validator (checked right after each re-plan).
Runs on SQLite and PostgreSQL, a fresh database per example.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from api.app import create_app
from api.context import Service
from models import Plan, Scenario
from optimizer import validate_plan
from tests.api.conftest import Clock, Keys, _postgres_schema, bearer, require_postgres, settings_for, wait_run
from tests.conftest import DAY, tech

PARIS = ZoneInfo("Europe/Paris")
DAYS = [date.fromisoformat(DAY), date.fromisoformat(DAY) + timedelta(days=1)]
TECHS = ["T1", "T2", "T3"]


class Truth(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self._schema = None
        if self.backend == "sqlite":
            self._dir = tempfile.TemporaryDirectory()
            url = f"sqlite:///{Path(self._dir.name) / 'truth.db'}"
        else:
            self._schema = _postgres_schema()
            url = self._schema.__enter__()
        self.clock = Clock(datetime.fromisoformat(f"{DAY}T06:00").replace(tzinfo=PARIS).astimezone(UTC))
        self.service = Service.open(settings_for(url, solve_seconds=0.5), clock=self.clock)
        self.client = TestClient(create_app(self.service))
        self.client.__enter__()
        self.keys = Keys(self.service)
        self.h = bearer(self.keys.dispatcher)
        self.n = 0
        self.planned_at: dict[int, datetime] = {}  # plan version -> the clock of its re-plan

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)
        self.service.close()
        if self._schema is not None:
            self._schema.__exit__(None, None, None)
        else:
            self._dir.cleanup()

    # --- steps ---------------------------------------------------------------------------------

    @initialize(first=st.integers(2, 8), seed=st.integers(0, 1000))
    def technicians(self, first: int, seed: int) -> None:
        shifts = [{"date": d.isoformat(), "start": "08:00", "end": "17:00"} for d in DAYS]
        lunch = {"earliest": "12:00", "latest": "14:00", "minutes": 30}
        for i, tid in enumerate(TECHS):
            body = tech(tid, lat=45.72 + i * 0.03, lon=4.82 + i * 0.02, shifts=shifts, lunch=lunch)
            assert self.client.post("/v1/technicians", json=body, headers=self.h).status_code == 201
        rng = random.Random(seed)  # a morning's backlog, so that every sequence has work to plan
        for _ in range(first):
            self._request(
                45.68 + 0.14 * rng.random(),
                4.78 + 0.17 * rng.random(),
                rng.choice([20, 45, 90]),
                rng.choice([None, ("08:00", "12:00"), ("13:00", "17:00")]),
                rng.choice(DAYS),
                rng.randint(1, 5),
            )

    @rule(
        lat=st.floats(45.68, 45.82),
        lon=st.floats(4.78, 4.95),
        minutes=st.sampled_from([20, 45, 90]),
        window=st.sampled_from([None, ("08:00", "12:00"), ("13:00", "17:00")]),
        day=st.sampled_from(DAYS),
        priority=st.integers(1, 5),
    )
    def new_request(
        self, lat: float, lon: float, minutes: int, window: Any, day: date, priority: int
    ) -> None:
        self._request(lat, lon, minutes, window, day, priority)
        event("new request")

    def _request(self, lat: float, lon: float, minutes: int, window: Any, day: date, priority: int) -> None:
        self.n += 1
        body: dict[str, Any] = {
            "id": f"R{self.n}",
            "kind": "repair",
            "location": {"lat": lat, "lon": lon},
            "duration_minutes": minutes,
            "skills": {"hvac": 2},
            "priority": priority,
        }
        if window:
            body["windows"] = [{"start": f"{day}T{window[0]}", "end": f"{day}T{window[1]}"}]
        assert self.client.post("/v1/requests", json=body, headers=self.h).status_code == 201

    @rule(then_publish=st.booleans())
    def replan(self, then_publish: bool) -> None:
        today = self.service.today()
        if today > DAYS[-1]:
            return
        answer = self.client.post("/v1/plans", json={"start": today.isoformat(), "days": 1}, headers=self.h)
        assert answer.status_code == 202, answer.text
        event("re-plan")
        run = wait_run(self.client, self.keys.dispatcher, answer.json()["run_id"])
        assert run["status"] == "succeeded", run
        self.planned_at[run["plan_version_id"]] = self.service.now()
        self._validate(run["plan_version_id"])
        if then_publish:  # what a dispatcher usually does next (the nightly run does it itself)
            self.publish(today)

    @rule(day=st.sampled_from(DAYS))
    def publish(self, day: date) -> None:
        answer = self.client.post(f"/v1/days/{day}/publish", headers=self.h)
        assert answer.status_code in (200, 404, 422), answer.text
        event(f"publish {answer.status_code}")

    @rule(pick=st.integers(0, 1000), report=st.sampled_from(["en_route", "started", "completed", "failed"]))
    def visit_report(self, pick: int, report: str) -> None:
        mine = [
            r for r in self._requests() if r["status"] in ("dispatched", "in_progress") and r["technician_id"]
        ]
        if not mine:
            event("visit report: nothing dispatched")
            return
        req = mine[pick % len(mine)]
        body = {"status": report, **({"reason": "not at home"} if report == "failed" else {})}
        answer = self.client.post(
            f"/v1/visits/{req['id']}/status",
            json=body,
            headers=bearer(self.keys.technician(req["technician_id"])),
        )
        assert answer.status_code in (200, 409), answer.text
        event(f"visit {report} {answer.status_code}")

    @rule(tid=st.sampled_from(TECHS), day=st.sampled_from(DAYS))
    def remove_shift(self, tid: str, day: date) -> None:
        answer = self.client.delete(f"/v1/technicians/{tid}/shifts/{day}", headers=self.h)
        assert answer.status_code in (200, 404)
        event(f"remove shift {answer.status_code}")

    @rule(pick=st.integers(0, 1000))
    def cancel(self, pick: int) -> None:
        reqs = self._requests()
        if reqs:
            answer = self.client.post(f"/v1/requests/{reqs[pick % len(reqs)]['id']}/cancel", headers=self.h)
            assert answer.status_code in (200, 409)
            event(f"cancel {answer.status_code}")

    @rule(hours=st.integers(1, 5))
    def time_passes(self, hours: int) -> None:
        self.clock.at = self.clock.at + timedelta(hours=hours)
        event("time passes")

    # --- what must hold --------------------------------------------------------------------------

    @invariant()
    def statuses_agree_with_the_plans_shown(self) -> None:
        today = self.service.today()
        shown: dict[str, tuple[str, str, bool]] = {}  # today and later
        past: dict[str, tuple[str, str, bool]] = {}  # days that are over
        for day in DAYS:
            plan = self.client.get("/v1/plans/current", params={"date": day.isoformat()}, headers=self.h)
            if plan.status_code == 404:
                continue
            body = plan.json()
            into = past if day < today else shown
            for r in body["routes"]:
                for v in r["visits"]:
                    old = into.get(v["job_id"])
                    if old is None or (body["published"] and not old[2]):
                        into[v["job_id"]] = (r["technician_id"], day.isoformat(), body["published"])
        for req in self._requests():
            if req["status"] in ("done", "cancelled", "in_progress", "failed"):
                continue
            where = shown.get(req["id"])
            if where is None and req["id"] in past:
                where = past[req["id"]]
                # A day that is over keeps the plan it had; the request says so until the next
                # re-plan, publication or report moves it back to the pool (open, with a reason).
                said = (req["status"], req["technician_id"], req["planned_date"])
                was = ("dispatched" if where[2] else "planned", where[0], where[1])
                assert said == was or (req["status"] == "open" and req["reason"]), (req, where)
                continue
            if where is None:
                assert req["status"] == "open" and req["reason"], req
            else:
                expected = "dispatched" if where[2] else "planned"
                assert (req["status"], req["technician_id"], req["planned_date"]) == (
                    expected,
                    where[0],
                    where[1],
                ), (req, where)

    @invariant()
    def replans_keep_the_clock_and_the_promises(self) -> None:
        promises = {r["id"]: r["promise"] for r in self._requests() if r["promise"]}
        for version, now in self.planned_at.items():
            plan = self.client.get(f"/v1/plans/{version}", headers=self.h).json()
            for route in plan["routes"]:
                for v in route["visits"]:
                    start = datetime.fromisoformat(v["start"])
                    promise = promises.get(v["job_id"])
                    if promise and version == max(self.planned_at):
                        opens = datetime.fromisoformat(promise["start"])
                        closes = datetime.fromisoformat(promise["end"])
                        assert opens <= start <= closes, (v, promise)
                    if start < now:
                        # only a visit under way when the re-plan ran may start before its clock
                        req = self.client.get(f"/v1/requests/{v['job_id']}", headers=self.h).json()
                        assert req["visit_status"] in ("en_route", "started", "completed", "failed"), (v, now)

    @invariant()
    def technicians_see_the_published_version(self) -> None:
        for day in DAYS:
            plan = self.client.get("/v1/plans/current", params={"date": day.isoformat()}, headers=self.h)
            if plan.status_code == 404 or not plan.json()["published"]:
                continue
            for route in plan.json()["routes"][:1]:
                key = bearer(self.keys.technician(route["technician_id"]))
                seen = self.client.get("/v1/me/route", params={"date": day.isoformat()}, headers=key)
                if seen.status_code == 200:
                    assert seen.json()["plan_version"] == plan.json()["plan_version"]

    # --- helpers ---------------------------------------------------------------------------------

    def _requests(self) -> list[dict[str, Any]]:
        return self.client.get("/v1/requests", params={"limit": 1000}, headers=self.h).json()  # type: ignore[no-any-return]

    def _validate(self, version: int) -> None:
        plan = Plan.model_validate(self.client.get(f"/v1/plans/{version}", headers=self.h).json())
        techs = self.client.get("/v1/technicians", headers=self.h).json()
        planned = {v.job_id for r in plan.routes for v in r.visits}
        jobs = []
        for req in self._requests():
            if req["id"] in planned:
                job = dict(req["job"])
                if req["promise"]:
                    job["appointment"] = req["promise"]
                jobs.append(job)
        first = plan.horizon_start
        last = first + timedelta(days=plan.horizon_days - 1)
        scenario = Scenario.model_validate(
            {
                "name": "check",
                "timezone": "Europe/Paris",
                "horizon": {"start": plan.horizon_start.isoformat(), "days": plan.horizon_days},
                "technicians": [
                    {
                        **{k: v for k, v in t.items() if k not in ("active", "replan_run_id")},
                        "shifts": [s for s in t["shifts"] if first <= date.fromisoformat(s["date"]) <= last],
                    }
                    for t in techs
                ],
                "jobs": jobs,
            }
        )
        only_routes = plan.model_copy(update={"unassigned": []})
        problems = [v for v in validate_plan(scenario, only_routes) if v.code != "MISSING_JOB"]
        assert problems == [], [str(p) for p in problems]


SETTINGS = settings(
    max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)


def test_the_service_tells_the_truth_on_sqlite() -> None:
    run_state_machine_as_test(Truth, settings=SETTINGS)


@pytest.mark.postgres
def test_the_service_tells_the_truth_on_postgres() -> None:
    require_postgres("the stateful truth test on PostgreSQL")

    class OnPostgres(Truth):
        backend = "postgres"

    run_state_machine_as_test(OnPostgres, settings=SETTINGS)
