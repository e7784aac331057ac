"""Scenario families for measuring the search: the shapes of field-service weeks, at any size.

`generate.py` draws jobs around real towns of three regions; these families draw them from simple
distributions instead, each stressing one thing dispatchers meet, so a search tuned here is tuned on
shapes and not on one generator:

- `rural`: jobs spread wide around a centre (about 0.3 degrees), 20-35 km of driving per job;
- `urban`: a dense city, short drives, many half-day windows, slow traffic;
- `scarce`: some skill levels held by one or two technicians only, and wanted often;
- `overload`: more work than hands, explicit priorities 1-5 (priorities must decide);
- `absences`: a multi-day horizon where a quarter of technician-days have no shift;
- `altwindows`: many customers offering two or three windows on different days;
- `crews`: 10 % of jobs need a crew of 2-3, 5 % are installations over 2-3 days (some by a crew),
  each followed by a commissioning visit 1-4 days later, and complaint follow-ups that go to the
  technician of the repair they follow (hard for some).

Every family shares the field's rules: technicians with 1-3 skills at levels 1-5, lunch of 30 min
between 11:30 and 13:30, overtime of 0, 30 or 60 min, half-day windows, spare-part release dates,
warranty and premium SLA due dates, preferred and excluded technicians, and a few jobs nobody can do.
The same family, size and seed always give the same scenario.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from models import Scenario

SKILLS = ("hvac", "boiler", "heat_pump", "electrical", "solar", "appliance")
KINDS = (  # kind, weight, duration range in minutes
    ("maintenance", 0.32, (30, 75)),
    ("repair", 0.30, (30, 120)),
    ("installation", 0.12, (90, 240)),
    ("inspection", 0.10, (20, 45)),
    ("complaint", 0.06, (20, 60)),
    ("training", 0.05, (45, 120)),
    ("follow_up", 0.05, (15, 30)),
)
SHIFTS = (("07:30", "16:00"), ("08:00", "17:00"), ("08:00", "16:30"), ("09:00", "18:00"))


@dataclass(frozen=True)
class Shape:
    """What a family changes; the defaults are the shared field rules."""

    centre: tuple[float, float] = (45.55, 3.25)
    spread_deg: float = 0.15
    speed_kmh: float = 40.0
    day_off: float = 0.10  # share of technician-days without a shift
    half_day: float = 0.35  # share of jobs with one half-day window
    alternatives: float = 0.10  # share of jobs with 2-3 windows on different days
    release: float = 0.08  # share waiting for a spare part
    scarce: float = 0.0  # share of jobs needing a skill level only one or two technicians hold
    duration_scale: float = 1.0
    explicit_priorities: bool = False
    emergency: float = 0.03
    capacity: bool = False
    crews: float = 0.0  # share of jobs needing a crew of 2-3
    multi_day: float = 0.0  # share of jobs that are installations over 2-3 days (each with a commissioning)
    follow_ups: float = 0.0  # share of jobs that are a follow-up of a repair by the same technician


FAMILIES: dict[str, Shape] = {
    "rural": Shape(centre=(45.55, 3.25), spread_deg=0.3, speed_kmh=50.0),
    "urban": Shape(centre=(45.76, 4.84), spread_deg=0.04, speed_kmh=22.0, half_day=0.5, capacity=True),
    "scarce": Shape(spread_deg=0.15, scarce=0.25),
    "overload": Shape(spread_deg=0.12, duration_scale=1.9, explicit_priorities=True, emergency=0.06),
    "absences": Shape(spread_deg=0.15, day_off=0.25),
    "altwindows": Shape(spread_deg=0.15, half_day=0.2, alternatives=0.4),
    "crews": Shape(spread_deg=0.15, duration_scale=0.45, crews=0.10, multi_day=0.05, follow_ups=0.04),
}


def family_scenario(
    family: str,
    *,
    jobs: int,
    technicians: int,
    days: int,
    seed: int = 0,
    start: date | None = None,
    shape: Shape | None = None,
) -> Scenario:
    """A validated scenario of `family` (or of an explicit `shape`); `start` defaults to the next
    Monday, so every day of a 5-day horizon is a working day."""
    base = shape or FAMILIES[family]
    rng = random.Random(f"{family}:{jobs}:{technicians}:{days}:{seed}")
    if start is None:
        today = date.today()
        start = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    dates = [start + timedelta(days=i) for i in range(days)]
    s = base

    def point(spread: float) -> dict[str, float]:
        lat = s.centre[0] + rng.gauss(0, spread)
        lon = s.centre[1] + rng.gauss(0, spread * 1.4)
        return {"lat": round(min(max(lat, -89.0), 89.0), 5), "lon": round(lon, 5)}

    # Technicians: 1-3 skills at levels 1-5; scarce families keep the top levels of two skills rare.
    rare = rng.sample(SKILLS, 2) if s.scarce else []
    techs: list[dict[str, object]] = []
    for i in range(technicians):
        skills = {
            name: rng.choices((1, 2, 3, 4, 5), weights=(1, 3, 4, 3, 1))[0]
            for name in rng.sample(SKILLS, rng.choice((1, 2, 2, 3)))
        }
        for name in rare:
            if skills.get(name, 0) >= 4:
                skills[name] = 3
        begin, end = rng.choice(SHIFTS)
        techs.append(
            {
                "id": f"T{i + 1:04d}",
                "name": f"Technician {i + 1}",
                "home": point(s.spread_deg),
                "skills": skills,
                "shifts": [
                    {"date": d.isoformat(), "start": begin, "end": end}
                    for d in dates
                    if rng.random() >= s.day_off
                ],
                "lunch": {"earliest": "11:30", "latest": "13:30", "minutes": 30},
                "max_overtime_minutes": rng.choice((0, 30, 60)),
                **({"capacity": rng.choice((12, 16, 20))} if s.capacity else {}),
            }
        )
    # The rare levels: one or two technicians each.
    for name in rare:
        for tech in rng.sample(techs, min(rng.choice((1, 2)), len(techs))):
            tech["skills"] = {**tech["skills"], name: 5}  # type: ignore[dict-item]

    def window(day: date, a: time, b: time) -> dict[str, str]:
        return {"start": datetime.combine(day, a).isoformat(), "end": datetime.combine(day, b).isoformat()}

    job_list: list[dict[str, object]] = []
    for j in range(jobs):
        kind, _, (dmin, dmax) = rng.choices(KINDS, weights=[k[1] for k in KINDS])[0]
        duration = min(round(rng.randint(dmin, dmax) * s.duration_scale / 5) * 5, 420) or 15
        if s.scarce and rng.random() < s.scarce:
            skill = {rng.choice(rare): rng.choice((4, 5))}
        else:
            skill = {rng.choice(SKILLS): rng.choices((1, 2, 3, 4), weights=(3, 4, 3, 1))[0]}
        warranty = kind in ("repair", "installation", "complaint") and rng.random() < 0.25
        contract = rng.choices(("none", "standard", "premium"), weights=(50, 35, 15))[0]
        emergency = kind == "repair" and rng.random() < s.emergency * 3
        job: dict[str, object] = {
            "id": f"J{j + 1:05d}",
            "kind": kind,
            "location": point(s.spread_deg),
            "duration_minutes": duration,
            "skills": skill,
            "warranty": warranty,
            "contract": contract,
            "emergency": emergency,
        }
        if s.capacity:
            job["demand"] = rng.randint(2, 6) if kind == "installation" else rng.randint(0, 1)
        if s.explicit_priorities:
            job["priority"] = rng.choices((1, 2, 3, 4, 5), weights=(1, 2, 3, 3, 2))[0]
        day = rng.choice(dates)
        roll = rng.random()
        if emergency:
            job["windows"] = [window(day, time(8), time(15))]
            job["due"] = datetime.combine(day, time(18)).isoformat()
        elif roll < s.alternatives and len(dates) > 1:
            picked = rng.sample(dates, min(len(dates), rng.choice((2, 2, 3))))
            job["windows"] = [
                window(d, *rng.choice(((time(8), time(12)), (time(13), time(17)), (time(8), time(17)))))
                for d in sorted(picked)
            ]
        elif roll < s.alternatives + s.half_day:
            am = rng.random() < 0.5
            job["windows"] = [window(day, time(8) if am else time(13), time(12) if am else time(17))]
        if (warranty or contract == "premium") and "due" not in job:
            job["due"] = datetime.combine(dates[min(len(dates) - 1, rng.randint(1, 2))], time(17)).isoformat()
        if rng.random() < s.release and len(dates) > 1 and "windows" not in job:
            job["release"] = datetime.combine(rng.choice(dates[:2]), time(rng.choice((10, 13)))).isoformat()
        if rng.random() < 0.15:
            job["preferred_technicians"] = [rng.choice(techs)["id"]]
        if rng.random() < 0.03:
            job["excluded_technicians"] = [rng.choice(techs)["id"]]
        job_list.append(job)
    if s.crews or s.multi_day or s.follow_ups:
        _crews_and_links(rng, s, job_list, dates, window)
    for k in range(max(1, jobs // 100)):  # nobody is certified for lifts
        job_list.append(
            {
                "id": f"X{k + 1:04d}",
                "kind": "repair",
                "location": point(s.spread_deg),
                "duration_minutes": 60,
                "skills": {"elevator": 3},
            }
        )
    return Scenario.model_validate(
        {
            "name": f"{family}-{jobs}x{technicians}x{days}-s{seed}",
            "timezone": "Europe/Paris",
            "horizon": {"start": start.isoformat(), "days": days},
            "travel": {"speed_kmh": s.speed_kmh, "road_factor": 1.3},
            "technicians": techs,
            "jobs": job_list,
        }
    )


def _crews_and_links(
    rng: random.Random, s: Shape, jobs: list[dict[str, object]], dates: list[date], window
) -> None:  # type: ignore[no-untyped-def]
    """Turn shares of the drawn jobs into crews, multi-day installations (each with a commissioning
    visit a few days after) and follow-ups of repairs, in place; the job count stays the same."""
    n = len(jobs)
    order = list(range(n))
    rng.shuffle(order)
    n_multi = round(n * s.multi_day)
    n_crew = round(n * s.crews)
    n_follow = round(n * s.follow_ups)
    multi, rest = order[:n_multi], order[n_multi:]
    commissioning, rest = rest[:n_multi], rest[n_multi:]
    crews, rest = rest[:n_crew], rest[n_crew:]
    follow = rest[:n_follow]
    repairs = [i for i in rest[n_follow:] if jobs[i]["kind"] == "repair"]
    for i, c in zip(multi, commissioning, strict=True):
        job = jobs[i]
        job.update(kind="installation", duration_minutes=rng.choice((360, 420, 480, 600)), max_days=3)
        job.pop("windows", None)
        job.pop("due", None)
        job.pop("release", None)
        if rng.random() < 0.4:
            job["crew_size"] = 2
        jobs[c].update(
            kind="inspection",
            duration_minutes=rng.choice((45, 60, 90)),
            skills=job["skills"],
            location=job["location"],
            after={"job_id": job["id"], "min_days": 1, "max_days": 4},
        )
        for key in ("windows", "due", "release"):
            jobs[c].pop(key, None)
    for i in crews:
        job = jobs[i]
        job["crew_size"] = rng.choices((2, 3), weights=(4, 1))[0]
        job["duration_minutes"] = max(int(job["duration_minutes"]), 60)  # type: ignore[call-overload]
        if rng.random() < 0.5:
            name = next(iter(job["skills"]))  # type: ignore[call-overload]
            job["helper_skills"] = {name: 1}
    for i in follow:
        if not repairs:
            break
        target = jobs[repairs.pop()]
        jobs[i].update(
            kind="follow_up",
            duration_minutes=rng.choice((20, 30)),
            skills=target["skills"],
            location=target["location"],
            same_technician_as={"job_id": target["id"], "hard": rng.random() < 0.3},
        )
        for key in ("windows", "due", "release", "preferred_technicians", "excluded_technicians"):
            jobs[i].pop(key, None)


def held_out(family: str, seed: int) -> Shape:
    """A perturbed shape of `family`: what tuning checks against, so no knob fits one generator."""
    rng = random.Random(f"held-out:{family}:{seed}")
    base = FAMILIES[family]
    return replace(
        base,
        spread_deg=base.spread_deg * rng.uniform(0.6, 1.6),
        speed_kmh=base.speed_kmh * rng.uniform(0.8, 1.25),
        day_off=min(0.4, base.day_off * rng.uniform(0.5, 1.8)),
        half_day=min(0.7, base.half_day * rng.uniform(0.6, 1.5)),
        duration_scale=base.duration_scale * rng.uniform(0.8, 1.3),
    )
