"""A technician's day as iCalendar (one event per visit) and as GeoJSON (stops and legs)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any, Literal

from icalendar import Calendar, Event, vGeo
from pydantic import BaseModel

from api.schemas import RoutePublic
from models import GeoPoint


def maps_url(point: GeoPoint) -> str:
    return f"https://www.openstreetmap.org/?mlat={point.lat:.6f}&mlon={point.lon:.6f}#map=17/{point.lat:.6f}/{point.lon:.6f}"


def to_ics(routes: list[RoutePublic], *, sequences: dict[str, int], now: datetime, name: str) -> bytes:
    """A technician's days as an iCalendar that calendar apps keep in step with the plan.

    Each visit is one event whose UID stays the same across plan versions; its SEQUENCE is the plan
    version in which its current times first appeared, so a re-plan that moves it updates the event
    instead of adding a second one. The lunch break is an event of its own. Times carry a VTIMEZONE.
    """
    cal = Calendar()
    cal.add("prodid", "-//fieldplan//route//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for route in routes:
        for stop in route.stops:
            event = Event()
            event.add("uid", f"visit-{stop.job_id}@fieldplan")
            event.add("sequence", sequences.get(stop.job_id, route.plan_version))
            event.add("dtstamp", now)
            event.add("dtstart", stop.start)
            event.add("dtend", stop.end)
            event.add("summary", f"{stop.seq + 1}. {stop.kind.value.replace('_', ' ')} {stop.job_id}")
            event.add("location", stop.address or f"{stop.location.lat:.6f}, {stop.location.lon:.6f}")
            event.add("geo", vGeo((stop.location.lat, stop.location.lon)))
            lines = [f"Arrive {stop.arrival:%H:%M}", f"Skills: {', '.join(sorted(stop.skills)) or '-'}"]
            if stop.notes:
                lines.append(f"Notes: {stop.notes}")
            lines.append(stop.maps_url)
            event.add("description", "\n".join(lines))
            event.add("url", stop.maps_url)
            if stop.status.value == "cancelled":
                event.add("status", "CANCELLED")
            cal.add_component(event)
        if route.break_:
            lunch = Event()
            lunch.add("uid", f"break-{route.technician_id}-{route.date.isoformat()}@fieldplan")
            lunch.add("sequence", route.plan_version)
            lunch.add("dtstamp", now)
            lunch.add("dtstart", route.break_["start"])
            lunch.add("dtend", route.break_["end"])
            lunch.add("summary", "Lunch break")
            lunch.add("transp", "OPAQUE")
            cal.add_component(lunch)
    cal.add_missing_timezones()
    return cal.to_ical()


class Geometry(BaseModel):
    type: Literal["Point", "LineString"]
    coordinates: list[float] | list[list[float]]


class Feature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: Geometry
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    properties: dict[str, Any]


def to_geojson(route: RoutePublic, start: GeoPoint, end: GeoPoint) -> FeatureCollection:
    """Positions are [lon, lat] as RFC 7946 requires."""
    points = [("start", start, None), *[(s.job_id, s.location, s) for s in route.stops], ("end", end, None)]
    features: list[Feature] = []
    for name, point, stop in points:
        props: dict[str, Any] = {"role": "stop" if stop else name}
        if stop is not None:
            props.update(
                seq=stop.seq,
                job_id=stop.job_id,
                kind=stop.kind.value,
                start=stop.start.isoformat(),
                end=stop.end.isoformat(),
                address=stop.address,
            )
        features.append(
            Feature(geometry=Geometry(type="Point", coordinates=[point.lon, point.lat]), properties=props)
        )
    for (a, pa, _), (b, pb, _) in itertools.pairwise(points):
        features.append(
            Feature(
                geometry=Geometry(type="LineString", coordinates=[[pa.lon, pa.lat], [pb.lon, pb.lat]]),
                properties={"role": "leg", "from": a, "to": b},
            )
        )
    return FeatureCollection(
        features=features,
        properties={
            "technician_id": route.technician_id,
            "date": route.date.isoformat(),
            "plan_version": route.plan_version,
        },
    )
