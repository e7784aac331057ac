"""Travel-matrix providers: coordinates in, distance (km) and driving time (minutes) matrices out.

The optimizer only sees the `TravelProvider` protocol, so a planar Euclidean matrix (benchmarks) or a
road-network matrix plugs in unchanged. Providers are small frozen dataclasses: picklable, so a solve
can be shipped to a worker process as plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from models import TravelMatrix, TravelSettings, point_key

# geopy's great_circle uses this mean radius; the validator checks against geopy, so they agree.
EARTH_RADIUS_KM = 6371.009


class TravelProvider(Protocol):
    def matrices(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """`points` is an (n, 2) array of (lat, lon); returns (km, minutes), each (n, n)."""
        ...

    def between(
        self, points: NDArray[np.float64], others: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """From each of `points` to each of `others`: (km, minutes), each (n, m)."""
        ...


def haversine_km(
    points: NDArray[np.float64], others: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """All-pairs great-circle distances, vectorised (no Python loop over pairs), a block of rows at
    a time so a 5,000-point matrix needs no gigabyte of temporaries."""
    a = np.radians(np.asarray(points, dtype=np.float64))
    b = a if others is None else np.radians(np.asarray(others, dtype=np.float64))
    out = np.empty((len(a), len(b)), dtype=np.float64)
    lat2, lon2 = b[None, :, 0], b[None, :, 1]
    cos2 = np.cos(lat2)
    for lo in range(0, len(a), 512):
        lat1, lon1 = a[lo : lo + 512, 0:1], a[lo : lo + 512, 1:2]
        h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * cos2 * np.sin((lon2 - lon1) / 2) ** 2
        out[lo : lo + 512] = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return out


@dataclass(frozen=True)
class GreatCircle:
    """Crow-flies distance stretched by a road factor, driven at a constant speed."""

    speed_kmh: float = 40.0
    road_factor: float = 1.3

    def matrices(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        km = haversine_km(points)
        km *= self.road_factor
        return km, km * (60.0 / self.speed_kmh)

    def between(
        self, points: NDArray[np.float64], others: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """From each of `points` to each of `others`: one new location against a built matrix."""
        km = haversine_km(points, others) * self.road_factor
        return km, km * (60.0 / self.speed_kmh)


@dataclass(frozen=True)
class PlanarEuclidean:
    """Coordinates are plain (y, x) numbers; distance is Euclidean, scaled to km per unit."""

    km_per_unit: float = 1.0
    speed_kmh: float = 60.0

    def matrices(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        p = np.asarray(points, dtype=np.float64)
        diff = p[:, None, :] - p[None, :, :]
        km = np.sqrt((diff**2).sum(axis=2)) * self.km_per_unit
        return km, km / self.speed_kmh * 60.0

    def between(
        self, points: NDArray[np.float64], others: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        a, b = np.asarray(points, dtype=np.float64), np.asarray(others, dtype=np.float64)
        km = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)) * self.km_per_unit
        return km, km / self.speed_kmh * 60.0


class GivenMatrix:
    """Times (and distances) given as data, by place: a user's matrix, or road times read from an
    OSM extract or an OSRM server by the command line or the service. Without distances, kilometres
    are great-circle times the road factor (reported only; times come from the matrix)."""

    def __init__(self, matrix: TravelMatrix, road_factor: float = 1.3) -> None:
        self.index = {point_key(p): i for i, p in enumerate(matrix.locations)}
        self.minutes = np.asarray(matrix.minutes, dtype=np.float64)
        self.km = np.asarray(matrix.km, dtype=np.float64) if matrix.km is not None else None
        self.road_factor = road_factor

    def rows(self, points: NDArray[np.float64]) -> NDArray[np.int64]:
        out = np.empty(len(points), dtype=np.int64)
        for i, (lat, lon) in enumerate(np.asarray(points, dtype=np.float64).tolist()):
            k = self.index.get((round(lat, 6), round(lon, 6)))
            if k is None:
                raise ValueError(f"the travel matrix has no place at ({lat:.6f}, {lon:.6f})")
            out[i] = k
        return out

    def between(
        self, points: NDArray[np.float64], others: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        a, b = self.rows(points), self.rows(others)
        minutes = self.minutes[np.ix_(a, b)]
        km = self.km[np.ix_(a, b)] if self.km is not None else haversine_km(points, others) * self.road_factor
        return km, minutes

    def matrices(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self.between(points, points)


def provider_for(settings: TravelSettings) -> TravelProvider:
    if settings.metric == "planar":
        return PlanarEuclidean(km_per_unit=settings.planar_km_per_unit, speed_kmh=settings.speed_kmh)
    if settings.metric == "matrix":
        assert settings.matrix is not None  # TravelSettings requires it
        return GivenMatrix(settings.matrix, settings.road_factor)
    if settings.metric in ("osm", "osrm"):
        raise ValueError(
            f"travel metric {settings.metric!r} is read into a matrix before planning "
            "(the command line and the service do it: api.roads.resolve)"
        )
    return GreatCircle(speed_kmh=settings.speed_kmh, road_factor=settings.road_factor)
