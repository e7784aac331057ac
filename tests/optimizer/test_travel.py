from __future__ import annotations

import numpy as np
from geopy.distance import geodesic, great_circle
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.travel import GreatCircle, PlanarEuclidean, haversine_km

coords = st.tuples(st.floats(-80, 80), st.floats(-179, 179))


@settings(max_examples=60, deadline=None)
@given(st.lists(coords, min_size=2, max_size=6))
def test_vectorised_haversine_matches_geopy(points: list[tuple[float, float]]) -> None:
    km = haversine_km(np.array(points))
    for i, a in enumerate(points):
        for j, b in enumerate(points):
            assert abs(km[i, j] - great_circle(a, b).km) < 1e-6 * max(1.0, km[i, j])


def test_haversine_is_close_to_the_ellipsoid_for_real_cities() -> None:
    lyon, munich, clermont = (45.764, 4.836), (48.137, 11.575), (45.778, 3.087)
    km = haversine_km(np.array([lyon, munich, clermont]))
    for (i, a), (j, b) in [((0, lyon), (1, munich)), ((0, lyon), (2, clermont))]:
        assert abs(km[i, j] - geodesic(a, b).km) / geodesic(a, b).km < 0.005


def test_great_circle_provider_applies_road_factor_and_speed() -> None:
    km, minutes = GreatCircle(speed_kmh=60, road_factor=1.5).matrices(np.array([[45.0, 4.0], [45.1, 4.0]]))
    crow = great_circle((45.0, 4.0), (45.1, 4.0)).km
    assert abs(km[0, 1] - 1.5 * crow) < 1e-6
    assert abs(minutes[0, 1] - km[0, 1]) < 1e-6  # 60 km/h: one km per minute


def test_planar_provider_is_euclidean() -> None:
    km, minutes = PlanarEuclidean(km_per_unit=10, speed_kmh=600).matrices(np.array([[0.0, 0.0], [0.3, 0.4]]))
    assert abs(km[0, 1] - 5.0) < 1e-9
    assert abs(minutes[0, 1] - 0.5) < 1e-9
