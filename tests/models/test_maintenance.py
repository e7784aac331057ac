"""Contracts, occurrences and availability calendars: recurrence edge cases, templates, expansion."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models import Scenario, Technician
from models.availability import Availability
from models.maintenance import MaintenanceContract, nominal_dates, occurrences
from tests.conftest import DAY, job, scenario_dict, tech

ASSET = {
    "id": "A1",
    "customer_id": "C1",
    "location": {"lat": 45.77, "lon": 4.85},
    "warranty_until": "2027-06-30",
}


def contract(rrule: str, start: str = "2026-01-31", **extra: object) -> MaintenanceContract:
    return MaintenanceContract.model_validate(
        {"id": "K1", "asset_ids": ["A1"], "duration_minutes": 60, "rrule": rrule, "start": start, **extra}
    )


def dates(c: MaintenanceContract, until: str, **kw: object) -> list[str]:
    return [d.isoformat() for d in nominal_dates(c, until=date.fromisoformat(until), **kw)]  # type: ignore[arg-type]


def test_month_ends_follow_the_rfc() -> None:
    """BYMONTHDAY=31 skips the months without a 31st (RFC 5545); BYMONTHDAY=-1 is every month's last day."""
    assert dates(contract("FREQ=MONTHLY;BYMONTHDAY=31"), "2026-06-30") == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
    ]
    assert dates(contract("FREQ=MONTHLY;BYMONTHDAY=-1"), "2026-04-30") == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
    ]


def test_leap_day_count_and_until() -> None:
    leap = contract("FREQ=YEARLY;COUNT=3", start="2028-02-29")
    assert dates(leap, "2040-01-01") == ["2028-02-29", "2032-02-29", "2036-02-29"]
    assert dates(contract("FREQ=WEEKLY;UNTIL=20260221", start="2026-02-01"), "2026-12-31") == [
        "2026-02-01",
        "2026-02-08",
        "2026-02-15",
    ]
    # The contract's own end caps the rule.
    assert dates(contract("FREQ=MONTHLY", start="2026-01-15", until="2026-03-20"), "2027-01-01") == [
        "2026-01-15",
        "2026-02-15",
        "2026-03-15",
    ]


def test_a_window_across_the_dst_change_keeps_local_midnight() -> None:
    """29 March 2026 has 23 hours in Paris: the window still opens at local midnight and closes at
    23:59 local, whatever the offset that day."""
    sc = Scenario.model_validate(
        scenario_dict(
            [tech("A")],
            [],
            days=7,
            assets=[ASSET],
            contracts=[
                {
                    "id": "K1",
                    "asset_ids": ["A1"],
                    "duration_minutes": 60,
                    "rrule": "FREQ=MONTHLY",
                    "start": "2026-03-29",
                    "window": {"before_days": 1, "after_days": 0},
                }
            ],
        )
        | {"horizon": {"start": "2026-03-27", "days": 7}}
        | {"technicians": [tech("A", shifts=[])]}
    ).expanded()
    (occ,) = sc.jobs
    (window,) = occ.windows
    assert window.start.isoformat() == "2026-03-28T00:00:00+01:00"
    assert window.end.isoformat() == "2026-03-29T23:59:00+02:00"
    assert occ.due is not None and occ.due.isoformat() == "2026-03-30T00:00:00+02:00"


def test_floating_counts_from_the_last_completion() -> None:
    c = contract("FREQ=YEARLY", start="2026-03-15", mode="floating")
    assert dates(c, "2028-12-31") == ["2026-03-15", "2027-03-15", "2028-03-15"]
    # Done five days late: the next ones move with it.
    assert dates(c, "2028-12-31", last_done=date(2026, 3, 20)) == ["2027-03-20", "2028-03-20"]
    fixed = contract("FREQ=YEARLY", start="2026-03-15")
    assert dates(fixed, "2028-12-31", last_done=date(2026, 3, 20)) == [
        "2026-03-15",
        "2027-03-15",
        "2028-03-15",
    ]


@pytest.mark.parametrize(
    ("rrule", "says"),
    [
        ("FREQ=HOURLY", "FREQ must be one of"),
        ("FREQ=WEEKLY;BYDAY=XX", "not an RFC 5545 RRULE"),
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL"),
        ("DTSTART:20260101\nRRULE:FREQ=DAILY", "DTSTART"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "gives no date"),
    ],
)
def test_a_bad_rrule_is_named(rrule: str, says: str) -> None:
    with pytest.raises(ValidationError) as err:
        contract(rrule)
    text = str(err.value)
    assert says in text and "rrule" in text


@settings(max_examples=60, deadline=None)
@given(
    freq=st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    interval=st.integers(1, 4),
    start=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    before=st.integers(0, 30),
    after=st.integers(0, 30),
    mode=st.sampled_from(["fixed", "floating"]),
    done_after=st.integers(0, 400) | st.none(),
)
def test_occurrences_are_ordered_unique_and_inside_their_window(
    freq: str, interval: int, start: date, before: int, after: int, mode: str, done_after: int | None
) -> None:
    c = contract(
        f"FREQ={freq};INTERVAL={interval}",
        start=start.isoformat(),
        mode=mode,
        window={"before_days": before, "after_days": after},
    )
    done = start + timedelta(days=done_after) if done_after is not None else None
    occ = occurrences(c, until=start + timedelta(days=800), last_done=done)
    keys = [o.key for o in occ]
    assert len(keys) == len(set(keys))
    assert [o.nominal for o in occ] == sorted(o.nominal for o in occ)
    for o in occ:
        assert o.earliest <= o.due == o.nominal <= o.latest
        assert (o.latest - o.earliest).days == before + after
        assert o.nominal >= start
        if mode == "floating" and done is not None:
            assert o.nominal > done
    # Generating again gives the same keys: idempotent.
    assert [o.key for o in occurrences(c, until=start + timedelta(days=800), last_done=done)] == keys


# --- availability --------------------------------------------------------------------------------

WEEK = [{"day": d, "start": "08:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]


def test_template_exceptions_and_public_holidays() -> None:
    """Week of 21 Dec 2026 in France: Christmas (Fri) is a public holiday; Tue is an absence;
    Wed's changed shift and Sat's extra shift are exceptions; a typed shift on Thu beats the
    template; the weekend has no template shift."""
    av = Availability.model_validate(
        {
            "weekly": WEEK,
            "holidays": "FR",
            "exceptions": [
                {"date": "2026-12-22", "kind": "absence", "note": "dentist"},
                {"date": "2026-12-23", "kind": "shift", "start": "10:00", "end": "14:00"},
                {"date": "2026-12-26", "kind": "shift", "start": "09:00", "end": "12:00"},
            ],
        }
    )
    t = Technician.model_validate(
        tech(
            "A",
            availability=av.model_dump(mode="json"),
            shifts=[{"date": "2026-12-24", "start": "07:00", "end": "12:00"}],
        )
    )
    days = [date(2026, 12, 21) + timedelta(days=i) for i in range(7)]
    got = {
        s.date.isoformat(): (f"{s.start:%H:%M}", f"{s.end:%H:%M}") for s in t.with_derived_shifts(days).shifts
    }
    assert got == {
        "2026-12-21": ("08:00", "17:00"),
        "2026-12-23": ("10:00", "14:00"),
        "2026-12-24": ("07:00", "12:00"),
        "2026-12-26": ("09:00", "12:00"),
    }
    assert av.holiday(date(2026, 12, 25)) == "Christmas Day"
    # Idempotent: deriving again from the derived technician changes nothing.
    once = t.with_derived_shifts(days)
    assert once.with_derived_shifts(days) is once


def test_regional_holidays_and_validity() -> None:
    bavaria = Availability.model_validate({"weekly": WEEK, "holidays": "DE-BY"})
    berlin = Availability.model_validate({"weekly": WEEK, "holidays": "DE-BE"})
    epiphany = date(2027, 1, 6)  # a Wednesday: a holiday in Bavaria, not in Berlin
    assert bavaria.shift_on(epiphany) is None
    assert berlin.shift_on(epiphany) == (time(8), time(17))
    ending = Availability.model_validate({"weekly": WEEK, "valid_until": "2027-01-08"})
    assert ending.shift_on(date(2027, 1, 8)) is not None and ending.shift_on(date(2027, 1, 11)) is None
    with pytest.raises(ValidationError, match="holidays"):
        Availability.model_validate({"weekly": WEEK, "holidays": "XX"})
    with pytest.raises(ValidationError, match="two shifts on mon"):
        Availability.model_validate({"weekly": [*WEEK, WEEK[0]]})


# --- expansion -----------------------------------------------------------------------------------


def test_expansion_adds_occurrences_and_asset_warranty_once() -> None:
    """Occurrences due in the horizon become jobs (K1's next, due on the 14th, waits); a repair
    naming an asset takes its warranty from the asset (the typed flag loses); expanding twice adds
    nothing."""
    data = scenario_dict(
        [tech("A", shifts=[], availability={"weekly": WEEK})],
        [
            job("R1", kind="repair", asset_id="A1", warranty=False),
            job("R2", kind="repair", asset_id="A2", warranty=True),
        ],
        days=5,
        assets=[ASSET, {**ASSET, "id": "A2", "warranty_until": "2026-01-01"}],
        contracts=[
            {
                "id": "K1",
                "asset_ids": ["A1"],
                "duration_minutes": 60,
                "rrule": "FREQ=WEEKLY",
                "start": DAY,
                "window": {"before_days": 3, "after_days": 1},
            },
            {
                "id": "K2",
                "asset_ids": ["A2"],
                "duration_minutes": 60,
                "rrule": "FREQ=YEARLY",
                "start": "2026-12-10",
            },
        ],
    )
    sc = Scenario.model_validate(data).expanded()
    by_id = {j.id: j for j in sc.jobs}
    assert set(by_id) == {"R1", "R2", "K1:2026-12-07", "K2:2026-12-10"}
    assert by_id["R1"].warranty is True and by_id["R1"].effective_priority == 1
    assert by_id["R2"].warranty is False
    assert by_id["K2:2026-12-10"].occurrence is not None
    assert len(sc.technicians[0].shifts) == 5
    assert sc.expanded() is sc and sc.contracts == [] and sc.technicians[0].availability is None
    assert Scenario.model_validate(sc.model_dump(mode="json")).expanded().jobs == sc.jobs
    assert Scenario.model_validate(data).expanded().jobs == sc.jobs  # the same every time


def test_references_are_checked() -> None:
    data = scenario_dict(
        [tech("A")],
        [job("R1", asset_id="NOPE")],
        assets=[ASSET],
        contracts=[
            {
                "id": "K1",
                "asset_ids": ["A9"],
                "duration_minutes": 60,
                "rrule": "FREQ=YEARLY",
                "start": DAY,
                "preferred_technician_id": "Z",
            }
        ],
    )
    with pytest.raises(ValidationError) as err:
        Scenario.model_validate(data)
    text = str(err.value)
    assert "contracts[0] (K1).asset_ids: unknown asset 'A9'" in text
    assert "preferred_technician_id: unknown 'Z'" in text
    assert "jobs[0] (R1).asset_id: unknown asset 'NOPE'" in text
