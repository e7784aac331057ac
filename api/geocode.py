"""Addresses to coordinates through geopy, looked up once and cached in the database.

One rate-limited client per configuration and process, so the provider's usage policy (Nominatim:
one request a second) holds across concurrent requests.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from geopy.adapters import RequestsAdapter
from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim
from sqlalchemy.orm import Session

from api.errors import GeocoderUnavailable, GeocodingFailed
from api.settings import Settings
from api.tables import GeocodeRow
from models import GeoPoint

_guard = threading.Lock()
log = logging.getLogger("fieldplan.geocode")
logging.getLogger("geopy").setLevel(logging.ERROR)  # one line of ours per failure is enough


def normalise(address: str) -> str:
    return re.sub(r"\s+", " ", address).strip().casefold()


@lru_cache(maxsize=8)
def _client(
    domain: str, scheme: str, user_agent: str, timeout: float, min_delay: float
) -> Callable[..., Any]:
    geolocator = Nominatim(
        user_agent=user_agent,
        domain=domain,
        scheme=scheme,
        timeout=timeout,
        adapter_factory=partial(RequestsAdapter, max_retries=0),
    )
    # No retries here: a provider that does not answer is one 503 for the client to retry, not
    # several stalled attempts each logged with a traceback.
    return RateLimiter(
        geolocator.geocode, min_delay_seconds=min_delay, max_retries=0, swallow_exceptions=False
    )


def geocode(session: Session, settings: Settings, address: str, loc: list[str | int]) -> GeoPoint:
    key = normalise(address)
    cached = session.get(GeocodeRow, key)
    if cached is not None:
        return GeoPoint(lat=cached.lat, lon=cached.lon)
    lookup = _client(
        settings.geocoder_domain,
        settings.geocoder_scheme,
        settings.geocoder_user_agent,
        settings.geocoder_timeout_seconds,
        settings.geocoder_min_delay_seconds,
    )
    try:
        with _guard:
            found = lookup(address, exactly_one=True)
    except GeopyError as exc:
        log.warning("geocoder %s did not answer: %s", settings.geocoder_domain, type(exc).__name__)
        raise GeocoderUnavailable(
            f"the {settings.geocoder} geocoder did not answer; send `location` instead, or retry later",
            retry_after=30,
        ) from None
    if found is None:
        raise GeocodingFailed(loc, f"address {address!r} was not found; check it or send `location`")
    point = GeoPoint(lat=float(found.latitude), lon=float(found.longitude))
    session.merge(
        GeocodeRow(
            query=key, lat=point.lat, lon=point.lon, provider=settings.geocoder, display_name=found.address
        )
    )
    return point
