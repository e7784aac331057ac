"""Territories: the split's properties, the border repair, the process pool and Ray backends, a
worker that dies. Ray is optional: its tests skip with the reason where it is missing, unless
FIELDPLAN_REQUIRE_RAY=1 (CI)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from models import GeoPoint, Scenario
from optimizer import SolveOptions, validate_plan
from optimizer.parallel import ProcessBackend, serial
from optimizer.territories import (
    MIN_TIME_SHARE,
    Split,
    Territory,
    _time_limits,
    solve_payload,
    solve_territories,
    split,
)
from scenarios.families import family_scenario
from tests.conftest import job, scenario_dict, tech
from tests.optimizer.test_properties import scenarios

OPTIONS = SolveOptions(iterations=60, time_limit_seconds=20, seed=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_job_and_technician_in_exactly_one_territory_with_someone_able(data: dict[str, Any]) -> None:
    scenario = Scenario.model_validate(data)
    parts = split(scenario, jobs_per_territory=3)
    jobs = [j for t in parts.territories for j in t.job_ids]
    techs = [x for t in parts.territories for x in t.technician_ids]
    assert sorted(jobs) == sorted(j.id for j in scenario.jobs)
    assert sorted(techs) == sorted(t.id for t in scenario.technicians)
    by_id = {t.id: t for t in scenario.technicians}
    for territory in parts.territories:
        members = [by_id[x] for x in territory.technician_ids]
        for job_id in territory.job_ids:
            j = next(x for x in scenario.jobs if x.id == job_id)
            able_anywhere = [
                t for t in scenario.technicians if all(t.skills.get(k, 0) >= v for k, v in j.skills.items())
            ]
            if able_anywhere and scenario.technicians:
                # A rare skill is never stranded: the job sits where someone can do it.
                assert any(all(t.skills.get(k, 0) >= v for k, v in j.skills.items()) for t in members) or (
                    j.pinned is not None or j.excluded_technicians
                ), (job_id, territory.name)


def two_towns(extra_west: int = 14) -> Scenario:
    """A western town with one technician and too much work, an eastern one with room to spare,
    25 km apart: the west's overflow can only be planned by the east."""
    techs = [
        tech("W1", lat=45.76, lon=4.60, skills={"hvac": 3}),
        tech("E1", lat=45.76, lon=4.92, skills={"hvac": 3}),
        tech("E2", lat=45.77, lon=4.93, skills={"hvac": 3}),
    ]
    jobs = [job(f"W{i}", lat=45.76 + 0.002 * i, lon=4.61, duration_minutes=60) for i in range(extra_west)]
    jobs += [job(f"E{i}", lat=45.765, lon=4.90 + 0.002 * i, duration_minutes=60) for i in range(3)]
    return Scenario.model_validate(scenario_dict(techs, jobs))


def hand_split(scenario: Scenario) -> Split:
    """`two_towns` in territories drawn by hand: one technician for all of the west's work."""
    return Split(
        territories=[
            Territory(name="T1", center=GeoPoint(lat=45.76, lon=4.61), technician_ids=["W1"],
                      job_ids=[j.id for j in scenario.jobs if j.id.startswith("W")]),
            Territory(name="T2", center=GeoPoint(lat=45.765, lon=4.91), technician_ids=["E1", "E2"],
                      job_ids=[j.id for j in scenario.jobs if j.id.startswith("E")]),
        ]
    )  # fmt: skip


def test_border_repair_gives_a_full_territorys_jobs_to_the_neighbour_that_can_do_them() -> None:
    scenario = two_towns()
    # The split would give the west a second technician (see below): the repair is tested by hand.
    parts = hand_split(scenario)
    plan, stats = solve_territories(scenario, OPTIONS, serial, parts=parts)
    assert validate_plan(scenario, plan) == []
    by_tech = {r.technician_id: {v.job_id for v in r.visits} for r in plan.routes}
    east_took = {j for t in ("E1", "E2") for j in by_tech.get(t, set()) if j.startswith("W")}
    assert east_took, "the east planned some of the west's overflow"
    assert any(r["taken"] for r in stats["repairs"])
    assert any("border repair" in p for p in plan.solver.search_phases)
    planned = [v.job_id for r in plan.routes for v in r.visits]
    assert len(planned) == len(set(planned))
    assert set(planned) | {u.job_id for u in plan.unassigned} == {j.id for j in scenario.jobs}


def test_the_split_gives_technicians_where_the_work_is() -> None:
    scenario = two_towns()
    parts = split(scenario, jobs_per_territory=9)
    assert len(parts.territories) == 2
    west = next(t for t in parts.territories if any(j.startswith("W") for j in t.job_ids))
    # 14 hours of work in the west, 3 in the east: the west gets two of the three technicians.
    assert len(west.technician_ids) == 2 and "W1" in west.technician_ids


def test_a_job_follows_the_job_it_names_into_its_territory() -> None:
    scenario = family_scenario("crews", jobs=300, technicians=16, days=5, seed=3)
    parts = split(scenario, jobs_per_territory=60)
    assert len(parts.territories) > 2
    where = {j: t.name for t in parts.territories for j in t.job_ids}
    links = [(j.id, link.job_id) for j in scenario.jobs for link in (j.after, j.same_technician_as) if link]
    assert links and all(where[a] == where[b] for a, b in links)


def test_a_two_worker_pool_gives_the_same_kind_of_plan() -> None:
    scenario = family_scenario("urban", jobs=120, technicians=8, days=1, seed=4)
    plan, stats = solve_territories(scenario, OPTIONS, ProcessBackend(2), jobs_per_territory=40)
    assert stats["territories"] >= 2
    assert validate_plan(scenario, plan) == []
    planned = [v.job_id for r in plan.routes for v in r.visits]
    assert len(planned) == len(set(planned))
    assert set(planned) | {u.job_id for u in plan.unassigned} == {j.id for j in scenario.jobs}


def crash_once(data: dict[str, Any]) -> dict[str, Any]:
    """A worker that dies the first time it sees each territory (a killed process), then solves."""
    marker = Path(os.environ["FIELDPLAN_TEST_CRASH_DIR"]) / data["name"]
    if not marker.exists():
        marker.write_text("died once")
        os._exit(1)
    return solve_payload(data)


def test_a_killed_workers_territory_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDPLAN_TEST_CRASH_DIR", str(tmp_path))
    scenario = family_scenario("urban", jobs=80, technicians=6, days=1, seed=5)
    pool = ProcessBackend(2, retries=3)
    plan, _ = solve_territories(scenario, OPTIONS, pool, jobs_per_territory=40, worker=crash_once)
    assert pool.restarts >= 1
    assert validate_plan(scenario, plan) == []
    planned = [v.job_id for r in plan.routes for v in r.visits]
    assert len(planned) == len(set(planned))
    assert set(planned) | {u.job_id for u in plan.unassigned} == {j.id for j in scenario.jobs}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        if os.environ.get("FIELDPLAN_REQUIRE_RAY") == "1":
            pytest.fail("FIELDPLAN_REQUIRE_RAY=1 but Ray is not installed (pip install -e '.[ray]')")
        pytest.skip("Ray tests skipped: Ray is not installed (pip install -e '.[ray]')")
    return ray


@pytest.fixture(scope="module")
def ray_backend(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ray = _ray()
    from optimizer.parallel import RayBackend

    # Ray's workers take the environment they start with: the crash marker folder is set first.
    crash = tmp_path_factory.mktemp("ray-crash")
    os.environ["FIELDPLAN_TEST_CRASH_DIR"] = str(crash)
    backend = RayBackend(num_cpus=2)
    yield backend, crash
    ray.shutdown()
    os.environ.pop("FIELDPLAN_TEST_CRASH_DIR", None)


def test_territories_on_a_local_ray(ray_backend: Any) -> None:
    backend, crash = ray_backend
    scenario = family_scenario("urban", jobs=120, technicians=8, days=1, seed=4)
    plan, stats = solve_territories(scenario, OPTIONS, backend, jobs_per_territory=40)
    assert stats["territories"] >= 2 and validate_plan(scenario, plan) == []
    # A Ray worker that dies has its task retried by Ray.
    again, _ = solve_territories(scenario, OPTIONS, backend, jobs_per_territory=40, worker=crash_once)
    assert validate_plan(scenario, again) == []
    crashed = {p.name for p in crash.iterdir()}  # every task crashed once: territories, polish pairs
    territories = {f"T{i + 1}" for i in range(stats["territories"])}
    assert territories <= crashed and all("+" in name for name in crashed - territories)


def recorder(
    read: Callable[[SolveOptions], float],
) -> tuple[list[tuple[str, float]], Callable[[dict[str, Any]], dict[str, Any]]]:
    """A worker that solves as the real one does, noting each payload's name and `read` of its options."""
    seen: list[tuple[str, float]] = []

    def recording(data: dict[str, Any]) -> dict[str, Any]:
        seen.append((data["name"], read(SolveOptions.model_validate(data["options"]))))
        return solve_payload(data)

    return seen, recording


def test_repairs_and_polish_move_jobs_freely_unless_the_caller_gave_a_plan() -> None:
    """The territories' own plans are a warm start for the repairs and the polish, not a promise: a job
    moved off the technician they gave it costs nothing (the stability weight would charge half an
    hour each and keep the routes across a border as they were). A caller's previous plan (the
    nightly re-plan's) keeps its weight all the way."""
    scenario = two_towns()
    parts = hand_split(scenario)
    seen, recording = recorder(lambda o: o.weights.stability_move)

    default = SolveOptions().weights.stability_move
    assert default > 0
    first, _ = solve_territories(scenario, OPTIONS, serial, parts=parts, worker=recording)
    later = seen[len(parts.territories) :]
    assert any("+" in name for name, _ in later), "a polish ran"
    assert later and all(weight == 0 for _, weight in later)
    seen.clear()
    again, _ = solve_territories(scenario, OPTIONS, serial, parts=parts, worker=recording, previous=first)
    assert len(seen) > len(parts.territories) and all(weight == default for _, weight in seen)
    assert validate_plan(scenario, again) == []


def test_each_territory_searches_in_proportion_to_its_work_largest_first() -> None:
    """A dense city clustered into one territory holds several times a rural territory's jobs: with
    one time limit for all, its jobs got a fraction of the search the others' got. The limit is a
    territory's of average size; the largest goes first so the workers' waves end together."""
    sizes = {"city": 2500, "north": 625, "south": 625, "east": 625, "west": 625, "hamlet": 40}
    territories = [
        Territory(
            name=n,
            center=GeoPoint(lat=45.0, lon=4.0),
            technician_ids=[],
            job_ids=[f"{n}{i}" for i in range(k)],
        )
        for n, k in sizes.items()
    ]
    ranked = _time_limits(territories, 30.0)
    assert ranked[0][0].name == "city"
    limits = {t.name: s for t, s in ranked}
    mean = sum(sizes.values()) / len(sizes)
    assert limits["city"] == pytest.approx(30.0 * 2500 / mean)
    assert limits["north"] == pytest.approx(30.0 * 625 / mean) and limits["north"] < limits["city"] / 3
    assert limits["hamlet"] == pytest.approx(30.0 * MIN_TIME_SHARE)  # not starved below the floor
    # And solve_territories passes them on: the larger town's territory first, with the longer limit.
    scenario = two_towns()
    parts = hand_split(scenario)
    seen, recording = recorder(lambda o: o.time_limit_seconds)

    # (The border repair moves jobs between the territories it is given: sizes are read before.)
    by_size = sorted(((len(t.job_ids), t.name) for t in parts.territories), key=lambda x: -x[0])
    assert by_size[0][0] > by_size[1][0], "the two towns' territories differ in size"
    solve_territories(scenario, OPTIONS, serial, parts=parts, worker=recording)
    first = seen[: len(parts.territories)]
    assert [name for name, _ in first] == [name for _, name in by_size]
    n = [k for k, _ in by_size]
    expected = [OPTIONS.time_limit_seconds * max(MIN_TIME_SHARE, k / (sum(n) / len(n))) for k in n]
    assert [s for _, s in first] == pytest.approx([max(1.0, e) for e in expected])
