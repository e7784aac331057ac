"""Appointment slots: every slot offered can be booked cleanly, and the reasons for the others are right."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Job, Plan, Scenario, Window
from optimizer import SolveOptions, solve, validate_plan
from optimizer.replan import ReplanInput, input_of, replan
from optimizer.slots import (
    Hold,
    NotOfferedReason,
    Preferences,
    SlotInput,
    SlotQuery,
    apply_placement,
    board_for,
    find_slots,
    place,
)
from tests.conftest import DAY, job, scenario_dict, tech
from tests.optimizer.test_properties import SKILLS, START, scenarios

OPTIONS = SolveOptions(iterations=40, time_limit_seconds=10)


def base_of(scenario: Scenario, plan: Plan, not_before: datetime | None = None) -> ReplanInput:
    return input_of(scenario, plan.routes, options=OPTIONS, not_before=not_before)


def with_job(scenario: Scenario, extra: Job) -> Scenario:
    return Scenario.model_validate({**scenario.model_dump(mode="json"), "jobs": [
        *scenario.model_dump(mode="json")["jobs"], extra.model_dump(mode="json")
    ]})  # fmt: skip


@st.composite
def new_jobs(draw: st.DrawFn, days: int = 3) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "NEW",
        "kind": draw(st.sampled_from(["repair", "maintenance", "installation"])),
        "location": {"lat": draw(st.floats(45.6, 45.9)), "lon": draw(st.floats(4.7, 5.0))},
        "duration_minutes": draw(st.integers(10, 240)),
        "skills": {draw(st.sampled_from(SKILLS)): draw(st.integers(1, 4))},
        "warranty": draw(st.booleans()),
    }
    if draw(st.booleans()):
        item["priority"] = draw(st.integers(1, 5))
    if draw(st.integers(0, 3)) == 0:
        day = START + timedelta(days=draw(st.integers(0, days - 1)))
        item["release"] = f"{day}T{draw(st.integers(7, 15)):02d}:00"
    return item


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    scenarios().filter(lambda d: any(t["shifts"] for t in d["technicians"])),
    new_jobs(),
    st.sampled_from([60, 120, 240]),
)
def test_every_offered_slot_books_into_a_valid_plan(
    data: dict[str, Any], new: dict[str, Any], width: int
) -> None:
    scenario = Scenario.model_validate(data)
    plan = solve(scenario, OPTIONS)
    ask = Job.model_validate(new)
    query = SlotInput(
        base=base_of(scenario, plan), query=SlotQuery(job=ask, window_minutes=width, max_slots=5)
    )
    board = board_for(query)
    answer = find_slots(query, board)
    # The board's probe, overwritten per question, answers as a board built for this job alone.
    assert answer == find_slots(query)
    totals = [s.cost.total for s in answer.slots]
    assert totals == sorted(totals)
    assert [s.grade for s in answer.slots] == sorted((s.grade for s in answer.slots), reverse=True)
    jobs = {j.id: j for j in scenario.jobs}
    for slot in answer.slots:
        assert slot.robustness >= 1 and 0 <= slot.grade <= 100
        assert slot.end - slot.start == timedelta(minutes=width)
        placement = place(query, slot.start, slot.end, slot.technician_id, board)
        booked = ask.model_copy(update={"appointment": Window(start=slot.start, end=slot.end)})
        after = apply_placement(plan, placement, ask.id)
        assert validate_plan(with_job(scenario, booked), after) == []
        visit = next(v for v in placement.route.visits if v.job_id == ask.id)
        assert slot.start <= visit.start <= slot.end
        for gone in placement.pushed_out:  # only lower priority, never a promise, gives way
            assert jobs[gone].effective_priority > ask.effective_priority and not jobs[gone].promised


@st.composite
def callers(draw: st.DrawFn) -> list[tuple[dict[str, Any], int, int]]:
    """A stream of callers: the job, the slot they take among those offered, the window length."""
    out = []
    for k in range(draw(st.integers(8, 16))):
        item = job(
            f"B{k}",
            lat=draw(st.floats(45.64, 45.80)),
            lon=draw(st.floats(4.74, 4.90)),
            duration_minutes=draw(st.integers(20, 120)),
            kind=draw(st.sampled_from(["repair", "maintenance", "installation"])),
            skills={"hvac": draw(st.integers(1, 3))},
        )
        out.append((item, draw(st.integers(0, 2)), draw(st.sampled_from([60, 120, 240]))))
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(callers())
def test_a_stream_of_bookings_stays_valid_and_the_nightly_replan_keeps_every_window(
    stream: list[tuple[dict[str, Any], int, int]],
) -> None:
    lunch = {"earliest": "12:00", "latest": "14:00", "minutes": 30}
    days = [(date.fromisoformat(DAY) + timedelta(days=d)).isoformat() for d in range(3)]
    techs = [
        tech(t, lat=45.70 + 0.03 * i, lon=4.80 + 0.03 * i, lunch=lunch,
             shifts=[{"date": d, "start": "08:00", "end": "17:00"} for d in days])
        for i, t in enumerate("ABC")
    ]  # fmt: skip
    jobs = [
        job(
            f"J{i}",
            lat=45.68 + 0.01 * (i % 9),
            lon=4.78 + 0.013 * (i % 7),
            duration_minutes=45 + 15 * (i % 4),
        )
        for i in range(18)
    ]
    scenario = Scenario.model_validate(scenario_dict(techs, jobs, days=3))
    plan = solve(scenario, OPTIONS)
    booked: dict[str, Window] = {}
    for item, pick, width in stream:
        ask = Job.model_validate(item)
        query = SlotInput(
            base=base_of(scenario, plan), query=SlotQuery(job=ask, max_slots=3, window_minutes=width)
        )
        answer = find_slots(query)
        if not answer.slots:
            assert answer.not_offered  # a full week says why
            continue
        slot = answer.slots[pick % len(answer.slots)]
        placement = place(query, slot.start, slot.end, slot.technician_id)
        window = Window(start=slot.start, end=slot.end)
        plan = apply_placement(plan, placement, ask.id)
        scenario = with_job(scenario, ask.model_copy(update={"appointment": window}))
        booked[ask.id] = window
        assert validate_plan(scenario, plan) == []
    assert booked
    for mode in ("stable", "scratch"):  # scratch re-plans start from the promises that fitted
        nightly = replan(base_of(scenario, plan).model_copy(update={"mode": mode}))
        assert nightly.violations() == []
        starts = {v.job_id: v.start for r in nightly.plan.routes for v in r.visits}
        for job_id, window in booked.items():
            assert window.start <= starts[job_id] <= window.end, (mode, job_id)


def _one_tech_day(**extra: Any) -> Scenario:
    return Scenario.model_validate(scenario_dict([tech("A", **extra)], []))


def test_a_held_slot_is_not_offered_to_another_customer_and_says_why() -> None:
    scenario = _one_tech_day(shifts=[{"date": DAY, "start": "08:00", "end": "10:00"}])
    plan = solve(scenario, OPTIONS)
    first = Job.model_validate(job("FIRST", duration_minutes=90))
    query = SlotInput(base=base_of(scenario, plan), query=SlotQuery(job=first, window_minutes=60))
    offered = find_slots(query).slots
    assert offered
    held = first.model_copy(update={"appointment": Window(start=offered[0].start, end=offered[0].end)})
    second = Job.model_validate(job("SECOND", duration_minutes=60))
    ask = SlotInput(
        base=base_of(scenario, plan),
        query=SlotQuery(job=second, window_minutes=60),
        holds=[Hold(job=held, technician_id="A")],
    )
    answer = find_slots(ask)
    assert answer.slots == []
    reasons = {n.reason for n in answer.not_offered}
    # 08:00-09:00 is held; a visit arriving after 09:00 would end past the 10:00 shift end.
    assert NotOfferedReason.HELD in reasons
    assert reasons <= {NotOfferedReason.HELD, NotOfferedReason.OVERTIME_LIMIT}
    without = find_slots(ask.model_copy(update={"holds": []}))
    assert without.slots


def test_reasons_for_windows_not_offered() -> None:
    lunch = {"earliest": "12:00", "latest": "12:30", "minutes": 30}
    scenario = _one_tech_day(lunch=lunch)
    plan = solve(scenario, OPTIONS)

    def ask(**fields: Any) -> list[tuple[str, NotOfferedReason]]:
        query = SlotQuery(
            job=Job.model_validate(job("NEW", **fields)), window_minutes=30, step_minutes=30, max_slots=40
        )
        answer = find_slots(SlotInput(base=base_of(scenario, plan), query=query))
        return [(f"{n.start:%H:%M}", n.reason) for n in answer.not_offered]

    # A 60-minute visit arriving 11:30-12:00 collides with a lunch that must be taken 12:00-12:30.
    assert ("11:30", NotOfferedReason.LUNCH) in ask(duration_minutes=60)
    assert all(r is NotOfferedReason.NO_QUALIFIED_TECHNICIAN for _, r in ask(skills={"plumbing": 1}))
    assert ask(skills={"plumbing": 1})
    released = ask(release=f"{DAY}T14:00")
    assert ("09:00", NotOfferedReason.BEFORE_RELEASE) in released


def test_customer_preferences_and_dates_bound_the_windows() -> None:
    days = [(date.fromisoformat(DAY) + timedelta(days=d)).isoformat() for d in range(3)]
    scenario = Scenario.model_validate(
        scenario_dict(
            [tech("A", shifts=[{"date": d, "start": "08:00", "end": "17:00"} for d in days])], [], days=3
        )
    )
    plan = solve(scenario, OPTIONS)
    second = date.fromisoformat(days[1])
    query = SlotQuery(
        job=Job.model_validate(job("NEW")),
        max_slots=50,
        preferences=Preferences(until_time="12:00", excluded_dates=[second]),  # type: ignore[arg-type]
    )
    answer = find_slots(SlotInput(base=base_of(scenario, plan), query=query))
    assert answer.slots
    assert all(s.end.hour * 60 + s.end.minute <= 12 * 60 for s in answer.slots)
    assert second not in {s.date for s in answer.slots}
    later = find_slots(
        SlotInput(
            base=base_of(scenario, plan),
            query=query.model_copy(update={"earliest": date.fromisoformat(days[2])}),
        )
    )
    assert {s.date for s in later.slots} == {date.fromisoformat(days[2])}
    # The earliest day costs least (days waited are priced), so it comes first.
    assert answer.slots[0].date == date.fromisoformat(days[0])


def test_nothing_is_offered_before_the_clock() -> None:
    scenario = _one_tech_day()
    plan = solve(scenario, OPTIONS)
    now = scenario.at(date.fromisoformat(DAY), datetime.strptime("13:10", "%H:%M").time())
    query = SlotInput(
        base=base_of(scenario, plan, not_before=now), query=SlotQuery(job=Job.model_validate(job("N")))
    )
    answer = find_slots(query)
    assert answer.slots and all(s.start >= now for s in answer.slots)


def test_only_lower_priority_visits_give_way_and_the_slot_names_them() -> None:
    full = [job(f"T{i}", kind="training", duration_minutes=100, lat=45.76 + 0.002 * i) for i in range(5)]
    scenario = Scenario.model_validate(scenario_dict([tech("A")], full))
    plan = solve(scenario, OPTIONS)
    assert sum(len(r.visits) for r in plan.routes) == 5  # 8 h 20 of visits: the day is full
    urgent = Job.model_validate(job("URGENT", kind="repair", warranty=True, duration_minutes=60))
    query = SlotInput(base=base_of(scenario, plan), query=SlotQuery(job=urgent, max_slots=3))
    answer = find_slots(query)
    assert answer.slots
    for slot in answer.slots:
        assert len(slot.cost.pushed_out) == 1 and slot.cost.pushed_out[0].startswith("T")
        assert slot.cost.pushed_out_cost > 0
        placement = place(query, slot.start, slot.end, slot.technician_id)
        after = apply_placement(plan, placement, urgent.id)
        booked = urgent.model_copy(update={"appointment": Window(start=slot.start, end=slot.end)})
        assert validate_plan(with_job(scenario, booked), after) == []
        assert {u.job_id for u in after.unassigned} == set(placement.pushed_out)
    # The same job at the trainings' own priority takes no one's place.
    equal = urgent.model_copy(update={"priority": 5, "warranty": False})
    same = find_slots(query.model_copy(update={"query": SlotQuery(job=equal)}))
    assert same.slots == [] and {n.reason for n in same.not_offered} <= {
        NotOfferedReason.CAPACITY,
        NotOfferedReason.OVERTIME_LIMIT,
        NotOfferedReason.NO_SHIFT,
    }
