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

from models import TravelSettings

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


def provider_for(settings: TravelSettings) -> TravelProvider:
    if settings.metric == "planar":
        return PlanarEuclidean(km_per_unit=settings.planar_km_per_unit, speed_kmh=settings.speed_kmh)
    return GreatCircle(speed_kmh=settings.speed_kmh, road_factor=settings.road_factor)
