"""Seeded maintenance books: technicians on weekly templates, installed assets, service contracts.

A service organisation's preventive work: boilers serviced yearly, heat pumps twice a year, B2B chillers
every quarter, a few monthly inspections; some contracts floating (counted from the last visit), some
premium, some with a preferred technician. Technicians work a weekly template with the region's public
holidays and an absence now and then. The simulation (`benchmarks/simulate.py --contracts`), the demo
and the shipped `maintenance-weeks.json` use it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from models import Scenario
from scenarios.generate import FIRST, LAST, REGIONS, _point

#: (rrule, share, duration range, skill): what a contract book holds.
PLANS: tuple[tuple[str, float, tuple[int, int], str], ...] = (
    ("FREQ=YEARLY", 0.45, (45, 75), "boiler"),
    ("FREQ=MONTHLY;INTERVAL=6", 0.25, (60, 90), "heat_pump"),
    ("FREQ=MONTHLY;INTERVAL=3", 0.2, (60, 120), "hvac"),
    ("FREQ=MONTHLY", 0.1, (30, 45), "electrical"),
)
HOLIDAYS = {"lyon": "FR", "bavaria": "DE-BY", "auvergne": "FR"}


def maintenance_book(
    *,
    region: str = "lyon",
    technicians: int = 6,
    assets: int = 300,
    start: date,
    seed: int = 0,
    before_days: int = 7,
    after_days: int = 7,
    mode: str = "mixed",
) -> dict[str, Any]:
    """Technicians (with availability), assets and contracts as plain JSON-ready dicts.

    Every contract's first nominal date falls in the year before `start`, spread evenly, so a
    horizon anywhere after `start` sees a steady flow of occurrences. `before_days`/`after_days` are
    the due window (0/0 is the fixed-date practice the simulation compares against); `mode` "mixed"
    makes one contract in five floating.
    """
    rng = random.Random(seed)
    reg = REGIONS[region]
    techs: list[dict[str, Any]] = []
    skill_names = [p[3] for p in PLANS]
    for i in range(technicians):
        early = rng.random() < 0.3
        skills = {s: rng.randint(2, 5) for s in rng.sample(skill_names, rng.randint(2, 4))}
        absences = [
            {
                "date": (start + timedelta(days=rng.randint(0, 120))).isoformat(),
                "kind": "absence",
                "note": "leave",
            }
            for _ in range(rng.randint(0, 3))
        ]
        absences = list({a["date"]: a for a in absences}.values())
        techs.append(
            {
                "id": f"T{i + 1:03d}",
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "home": _point(rng, reg),
                "skills": skills,
                "lunch": {"earliest": "11:30", "latest": "14:00", "minutes": 30},
                "max_overtime_minutes": rng.choice([0, 30]),
                "availability": {
                    "weekly": [
                        {
                            "day": d,
                            "start": "07:30" if early else "08:00",
                            "end": "16:00" if early else "17:00",
                        }
                        for d in ("mon", "tue", "wed", "thu", "fri")
                    ],
                    "exceptions": absences,
                    "holidays": HOLIDAYS.get(region, "FR"),
                },
            }
        )
    # Every skill has somebody: a contract book nobody can serve measures nothing.
    for k, skill in enumerate(skill_names):
        if not any(skill in t["skills"] for t in techs):
            techs[k % len(techs)]["skills"][skill] = 3
    asset_list, contracts = [], []
    for a in range(assets):
        rule, _, (dmin, dmax), skill = rng.choices(PLANS, weights=[p[1] for p in PLANS])[0]
        aid = f"A{a + 1:05d}"
        installed = start - timedelta(days=rng.randint(30, 2000))
        asset_list.append(
            {
                "id": aid,
                "customer_id": f"C{a + 1:05d}",
                "location": _point(rng, reg),
                "product": skill.replace("_", " ").title(),
                "serial": f"SN{rng.randint(10**6, 10**7 - 1)}",
                "installed_on": installed.isoformat(),
                "warranty_until": (installed + timedelta(days=730)).isoformat(),
            }
        )
        contract: dict[str, Any] = {
            "id": f"K{a + 1:05d}",
            "asset_ids": [aid],
            "skills": {skill: rng.randint(1, 3)},
            "duration_minutes": rng.randrange(dmin, dmax + 1, 5),
            "rrule": rule,
            "start": (start - timedelta(days=rng.randint(0, 364))).isoformat(),
            "window": {"before_days": before_days, "after_days": after_days},
            "mode": "floating" if mode == "mixed" and rng.random() < 0.2 else "fixed",
            "contract": "premium" if rng.random() < 0.2 else "standard",
        }
        if rng.random() < 0.15:
            contract["preferred_technician_id"] = rng.choice(techs)["id"]
        if rule == "FREQ=MONTHLY":
            contract["start"] = (start - timedelta(days=rng.randint(0, 27))).isoformat()
        contracts.append(contract)
    return {"technicians": techs, "assets": asset_list, "contracts": contracts, "timezone": reg.timezone}


def maintenance_scenario(*, name: str, start: date, days: int = 10, seed: int = 0, **book: Any) -> Scenario:
    """A scenario holding the book itself (templates, assets, contracts), not yet expanded."""
    data = maintenance_book(start=start, seed=seed, **book)
    return Scenario.model_validate(
        {
            "name": name,
            "timezone": data["timezone"],
            "horizon": {"start": start.isoformat(), "days": days},
            "technicians": data["technicians"],
            "assets": data["assets"],
            "contracts": data["contracts"],
            "jobs": [],
        }
    )
