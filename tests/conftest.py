"""Tiny named scenarios shared by the tests; each docstring says what makes it interesting."""

from __future__ import annotations

import copy
from typing import Any

import pytest

DAY = "2026-12-07"  # a Monday


def tech(tid: str, lat: float = 45.76, lon: float = 4.84, **extra: Any) -> dict[str, Any]:
    base = {
        "id": tid,
        "name": f"Tech {tid}",
        "home": {"lat": lat, "lon": lon},
        "skills": {"hvac": 3},
        "shifts": [{"date": DAY, "start": "08:00", "end": "17:00"}],
    }
    base.update(extra)
    return base


def job(jid: str, lat: float = 45.77, lon: float = 4.85, **extra: Any) -> dict[str, Any]:
    base = {
        "id": jid,
        "kind": "maintenance",
        "location": {"lat": lat, "lon": lon},
        "duration_minutes": 60,
        "skills": {"hvac": 2},
    }
    base.update(extra)
    return base


def scenario_dict(techs: list[dict], jobs: list[dict], days: int = 1, **extra: Any) -> dict[str, Any]:
    base = {
        "name": "test",
        "timezone": "Europe/Paris",
        "horizon": {"start": DAY, "days": days},
        "technicians": techs,
        "jobs": jobs,
    }
    base.update(extra)
    return copy.deepcopy(base)


@pytest.fixture
def two_techs_six_jobs() -> dict[str, Any]:
    """Two technicians of different skill levels, lunch and windows: the everyday small case."""
    lunch = {"earliest": "12:00", "latest": "14:00", "minutes": 30}
    techs = [
        tech("A", skills={"hvac": 4, "electrical": 2}, lunch=lunch),
        tech("B", lat=45.70, lon=4.90, skills={"hvac": 2}, lunch=lunch, max_overtime_minutes=30),
    ]
    jobs = [
        job("J1", skills={"hvac": 4}, kind="repair", warranty=True),
        job("J2", lat=45.71, lon=4.89, windows=[{"start": f"{DAY}T13:00", "end": f"{DAY}T15:00"}]),
        job("J3", lat=45.75, lon=4.80, duration_minutes=90),
        job("J4", lat=45.72, lon=4.86, preferred_technicians=["B"]),
        job("J5", lat=45.78, lon=4.83, skills={"electrical": 2}, kind="installation"),
        job("J6", lat=45.69, lon=4.92, excluded_technicians=["A"]),
    ]
    return scenario_dict(techs, jobs)
