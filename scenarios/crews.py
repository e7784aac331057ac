"""The shipped crews week: a heat-pump installation by two technicians over two days, its commissioning
visit after it, a crew of three for a commercial boiler, complaint follow-ups that go back to the
technician of the repair (one in this plan, one done last week), amid a week of ordinary field work.

    python -m scenarios.crews --out scenarios/crews-week.json

The ordinary jobs come from the `crews` family (`scenarios.families`); the named jobs are written here
so the README can point at them.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from scenarios.families import family_scenario

START = date(2026, 12, 7)


def crews_week(start: date = START, seed: int = 7) -> dict[str, Any]:
    base = family_scenario("crews", jobs=70, technicians=9, days=5, seed=seed, start=start)
    data = base.model_dump(mode="json", exclude_none=True)
    data["name"] = "crews-week"
    techs = data["technicians"]
    # Two heat-pump fitters at level 3 and an apprentice: the installation's lead and its helpers.
    for tech, skills in zip(
        techs[:3], ({"heat_pump": 4, "electrical": 2}, {"heat_pump": 3}, {"heat_pump": 1}), strict=True
    ):
        tech["skills"] = {**tech["skills"], **skills}
    day = start.isoformat()
    loc = {"lat": 45.571, "lon": 3.262}
    named: list[dict[str, Any]] = [
        {
            "id": "INSTALL-HP-1",
            "kind": "installation",
            "customer_id": "C-HP-1",
            "location": loc,
            "duration_minutes": 480,
            "skills": {"heat_pump": 3},
            "helper_skills": {"heat_pump": 1},
            "crew_size": 2,
            "max_days": 2,
            "min_part_minutes": 120,
            "contract": "premium",
            "notes": "air-to-water heat pump, two technicians over two days",
        },
        {
            "id": "COMMISSION-HP-1",
            "kind": "inspection",
            "customer_id": "C-HP-1",
            "location": loc,
            "duration_minutes": 60,
            "skills": {"heat_pump": 3},
            "after": {"job_id": "INSTALL-HP-1", "min_days": 1, "max_days": 3},
            "same_technician_as": {"job_id": "INSTALL-HP-1", "hard": False},
            "notes": "commissioning 1-3 days after the installation, by its lead if possible",
        },
        {
            "id": "BOILER-LIFT-1",
            "kind": "repair",
            "customer_id": "C-B2B-1",
            "location": {"lat": 45.62, "lon": 3.18},
            "duration_minutes": 150,
            "skills": {"boiler": 2},
            "crew_size": 3,
            "contract": "premium",
            "windows": [{"start": f"{day}T08:00:00", "end": f"{day}T12:00:00"}],
            "notes": "commercial boiler: three people to lift the heat exchanger",
        },
        {
            "id": "REPAIR-7",
            "kind": "repair",
            "customer_id": "C-7",
            "location": {"lat": 45.49, "lon": 3.31},
            "duration_minutes": 90,
            "skills": {"boiler": 1},
            "warranty": True,
        },
        {
            "id": "FOLLOWUP-7",
            "kind": "follow_up",
            "customer_id": "C-7",
            "location": {"lat": 45.49, "lon": 3.31},
            "duration_minutes": 30,
            "skills": {"boiler": 1},
            "after": {"job_id": "REPAIR-7", "min_days": 2},
            "same_technician_as": {"job_id": "REPAIR-7", "hard": True},
            "notes": "complaint follow-up by the technician who did the repair",
        },
        {
            "id": "FOLLOWUP-OLD-3",
            "kind": "follow_up",
            "customer_id": "C-3",
            "location": {"lat": 45.53, "lon": 3.2},
            "duration_minutes": 30,
            "skills": {},
            "after": {"job_id": "REPAIR-OLD-3", "min_days": 7, "max_days": 10, "done_on": "2026-12-01"},
            "same_technician_as": {"job_id": "REPAIR-OLD-3", "hard": True, "technician_id": techs[3]["id"]},
            "notes": "the repair was done last week: 7-10 days after it, by the same technician",
        },
    ]
    data["jobs"] = named + data["jobs"]
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "crews-week.json")
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(crews_week(), indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
