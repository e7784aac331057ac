"""Seeded generator of realistic after-sales scenarios on real geography.

Jobs cluster around real towns of a region (Lyon metro, Upper Bavaria, Auvergne), with the mix of
kinds, skills, warranty and contract shares, appointment windows and SLA deadlines that a service
organisation sees. `profile` shapes the day: `normal`, `overloaded` (more work than hands, so
priorities decide) or `recall` (a warranty-recall surge whose spare parts arrive during the week).
The same arguments and seed always give the same scenario.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from models import Scenario

Profile = Literal["normal", "overloaded", "recall"]


@dataclass(frozen=True)
class Region:
    name: str
    timezone: str
    towns: tuple[tuple[str, float, float, float], ...]  # name, lat, lon, weight
    spread_deg: float


REGIONS: dict[str, Region] = {
    "lyon": Region(
        "Lyon metropolitan area",
        "Europe/Paris",
        (
            ("Lyon", 45.764, 4.836, 5),
            ("Villeurbanne", 45.767, 4.880, 3),
            ("Vénissieux", 45.697, 4.886, 2),
            ("Caluire-et-Cuire", 45.795, 4.846, 1),
            ("Bron", 45.738, 4.913, 1),
            ("Saint-Priest", 45.696, 4.944, 1),
            ("Vaulx-en-Velin", 45.778, 4.921, 1),
            ("Écully", 45.774, 4.777, 1),
            ("Oullins", 45.714, 4.808, 1),
            ("Décines-Charpieu", 45.769, 4.959, 1),
            ("Meyzieu", 45.767, 5.003, 1),
            ("Rillieux-la-Pape", 45.820, 4.899, 1),
            ("Givors", 45.590, 4.769, 0.5),
            ("Limonest", 45.837, 4.772, 0.5),
        ),
        0.012,
    ),
    "bavaria": Region(
        "Upper Bavaria and surroundings",
        "Europe/Berlin",
        (
            ("München", 48.137, 11.575, 8),
            ("Augsburg", 48.371, 10.898, 3),
            ("Ingolstadt", 48.766, 11.426, 2),
            ("Regensburg", 49.013, 12.101, 2),
            ("Landshut", 48.537, 12.152, 1.5),
            ("Rosenheim", 47.857, 12.118, 1.5),
            ("Freising", 48.403, 11.749, 1),
            ("Erding", 48.306, 11.907, 1),
            ("Dachau", 48.260, 11.434, 1),
            ("Fürstenfeldbruck", 48.178, 11.255, 1),
            ("Starnberg", 47.998, 11.340, 1),
            ("Weilheim", 47.840, 11.139, 0.7),
            ("Garmisch-Partenkirchen", 47.492, 11.095, 0.5),
            ("Landsberg am Lech", 48.048, 10.883, 0.7),
            ("Mühldorf am Inn", 48.247, 12.523, 0.6),
            ("Straubing", 48.881, 12.573, 0.8),
            ("Pfaffenhofen", 48.531, 11.505, 0.6),
        ),
        0.03,
    ),
    "auvergne": Region(
        "Auvergne (rural)",
        "Europe/Paris",
        (
            ("Clermont-Ferrand", 45.778, 3.087, 4),
            ("Riom", 45.894, 3.113, 1),
            ("Issoire", 45.544, 3.249, 1),
            ("Thiers", 45.856, 3.548, 1),
            ("Ambert", 45.550, 3.742, 0.6),
            ("Aurillac", 44.926, 2.440, 1.5),
            ("Saint-Flour", 45.034, 3.093, 0.6),
            ("Le Puy-en-Velay", 45.043, 3.885, 1.2),
            ("Brioude", 45.294, 3.384, 0.6),
            ("Mauriac", 45.219, 2.333, 0.4),
            ("Vichy", 46.128, 3.426, 1.2),
            ("Murat", 45.110, 2.869, 0.3),
            ("Ussel", 45.548, 2.309, 0.4),
            ("Montluçon", 46.340, 2.603, 1),
        ),
        0.04,
    ),
}

SKILLS = ("hvac", "boiler", "heat_pump", "electrical", "solar", "appliance")
KINDS = (
    ("maintenance", 0.34, (30, 60)),
    ("repair", 0.30, (30, 90)),
    ("installation", 0.12, (90, 180)),
    ("inspection", 0.08, (20, 45)),
    ("complaint", 0.06, (20, 45)),
    ("training", 0.05, (45, 90)),
    ("follow_up", 0.05, (15, 30)),
)
MIN_LEVEL = {
    "installation": (3, 4),
    "repair": (2, 4),
    "maintenance": (1, 3),
    "inspection": (1, 2),
    "complaint": (2, 3),
    "training": (3, 4),
    "follow_up": (1, 2),
}
FIRST = ("Anna", "Luc", "Marie", "Jonas", "Sofia", "Karim", "Lea", "Paul", "Nina", "Tomas", "Ines", "Hugo")
LAST = ("Martin", "Bauer", "Dubois", "Huber", "Moreau", "Wagner", "Girard", "Schmid", "Roux", "Keller")


def _point(rng: random.Random, region: Region) -> dict[str, float]:
    towns = region.towns
    _, lat, lon, _ = rng.choices(towns, weights=[t[3] for t in towns])[0]
    return {
        "lat": round(lat + rng.gauss(0, region.spread_deg), 5),
        "lon": round(lon + rng.gauss(0, region.spread_deg * 1.4), 5),
    }


def _working_days(start: date, days: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(days) if (start + timedelta(days=i)).weekday() < 5]


def generate(
    *,
    name: str,
    region: str = "lyon",
    technicians: int = 8,
    jobs: int = 60,
    days: int = 1,
    start: date | None = None,
    seed: int = 0,
    profile: Profile = "normal",
    impossible: int = 0,
) -> Scenario:
    """A validated Scenario; `impossible` adds that many jobs nobody can do (each for a reason)."""
    rng = random.Random(seed)
    reg = REGIONS[region]
    start = start or date.today()
    work_days = _working_days(start, days) or [start]
    techs = []
    for i in range(technicians):
        skills = rng.sample(SKILLS, rng.randint(2, 4))
        early = rng.random() < 0.3
        techs.append(
            {
                "id": f"T{i + 1:03d}",
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "home": _point(rng, reg),
                "skills": {s: rng.randint(2, 5) for s in skills},
                "shifts": [
                    {
                        "date": d.isoformat(),
                        "start": "07:30" if early else "08:00",
                        "end": "16:00" if early else "17:00",
                    }
                    for d in work_days
                    if rng.random() > 0.05  # a day off now and then
                ],
                "lunch": {"earliest": "11:30", "latest": "14:00", "minutes": 30},
                "max_overtime_minutes": rng.choice([0, 30, 60]),
                "capacity": rng.choice([12, 16, 20]),
            }
        )
    job_list = []
    for j in range(jobs):
        kind, _, (dmin, dmax) = rng.choices(KINDS, weights=[k[1] for k in KINDS])[0]
        warranty = kind in ("repair", "installation", "complaint") and rng.random() < 0.25
        if profile == "recall" and rng.random() < 0.6:
            kind, warranty, (dmin, dmax) = "repair", True, (45, 90)
        contract = rng.choices(["none", "standard", "premium"], weights=[50, 35, 15])[0]
        emergency = kind == "repair" and rng.random() < (0.12 if profile == "overloaded" else 0.05)
        skill = rng.choice(SKILLS)
        lo, hi = MIN_LEVEL[kind]
        job: dict[str, object] = {
            "id": f"J{j + 1:04d}",
            "customer_id": f"C{rng.randint(1, max(jobs, 2) * 3):05d}",
            "kind": kind,
            "location": _point(rng, reg),
            "duration_minutes": rng.randrange(dmin, dmax + 1, 5),
            "skills": {skill: rng.randint(lo, hi)},
            "warranty": warranty,
            "contract": contract,
            "emergency": emergency,
            "demand": rng.randint(2, 6) if kind == "installation" else rng.randint(0, 1),
        }
        day = rng.choice(work_days)
        if emergency:
            job["windows"] = [_window(day, time(8), time(15))]
            job["due"] = datetime.combine(day, time(18)).isoformat()
        elif rng.random() < 0.4:
            am = rng.random() < 0.5
            job["windows"] = [_window(day, time(8) if am else time(13), time(11) if am else time(16))]
            if rng.random() < 0.3 and len(work_days) > 1:  # the customer offers a second slot
                other = rng.choice([d for d in work_days if d != day])
                job["windows"].append(_window(other, time(8), time(16)))  # type: ignore[attr-defined]
        if warranty or contract == "premium":
            job["due"] = (
                job.get("due")
                or datetime.combine(work_days[0] + timedelta(days=rng.randint(1, 2)), time(17)).isoformat()
            )
        if (
            profile == "recall"
            and warranty
            and kind == "repair"
            and rng.random() < 0.5
            and len(work_days) > 1
        ):
            job["release"] = datetime.combine(rng.choice(work_days[1:]), time(10)).isoformat()
            job.pop("windows", None)
        if kind == "maintenance" and rng.random() < 0.2:
            job["preferred_technicians"] = [rng.choice(techs)["id"]]
        if rng.random() < 0.03:
            job["excluded_technicians"] = [rng.choice(techs)["id"]]
        job_list.append(job)
    for k in range(impossible):
        job_list.append(_impossible(k, rng, reg, techs, work_days))
    return Scenario.model_validate(
        {
            "name": name,
            "timezone": reg.timezone,
            "horizon": {"start": start.isoformat(), "days": days},
            "technicians": techs,
            "jobs": job_list,
        }
    )


def _window(day: date, a: time, b: time) -> dict[str, str]:
    return {"start": datetime.combine(day, a).isoformat(), "end": datetime.combine(day, b).isoformat()}


def _impossible(k: int, rng: random.Random, reg: Region, techs: list[dict], days: list[date]) -> dict:
    """Jobs that cannot be planned, one flavour each, so every reason code shows in examples."""
    base: dict[str, object] = {
        "id": f"X{k + 1:03d}",
        "kind": "repair",
        "location": _point(rng, reg),
        "duration_minutes": 60,
        "skills": {"hvac": 1},
    }
    flavour = k % 4
    if flavour == 0:  # nobody is certified for lifts
        base["skills"] = {"elevator": 4}
        base["notes"] = "lift controller; needs a certified lift technician"
    elif flavour == 1:  # longer than any shift
        base["kind"] = "installation"
        base["duration_minutes"] = 720
    elif flavour == 2:  # the customer is only home late in the evening, after every shift
        base["windows"] = [_window(days[0], time(20), time(22))]
    else:  # the customer refuses every technician with the skill
        base["skills"] = {"solar": 2}
        base["excluded_technicians"] = [t["id"] for t in techs if t["skills"].get("solar", 0) >= 2]
    return base


PRESETS: dict[str, dict[str, object]] = {
    "metro-day": {"region": "lyon", "technicians": 8, "jobs": 60, "days": 1, "impossible": 3},
    "regional-week": {"region": "bavaria", "technicians": 40, "jobs": 800, "days": 5, "impossible": 4},
    "overloaded-day": {
        "region": "lyon",
        "technicians": 6,
        "jobs": 95,
        "days": 1,
        "profile": "overloaded",
        "impossible": 2,
    },
    "recall-surge": {
        "region": "auvergne",
        "technicians": 14,
        "jobs": 220,
        "days": 5,
        "profile": "recall",
        "impossible": 4,
    },
}
