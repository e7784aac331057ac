"""Installed equipment and the maintenance contracts that generate its recurring visits.

A contract's recurrence is an RFC 5545 RRULE, read by python-dateutil (month ends, leap days, COUNT and
UNTIL follow the RFC, not a hand-written calendar). Each nominal date becomes an *occurrence*: a
visit that may happen on any day of [nominal - before_days, nominal + after_days] and is due on the
nominal date. The router picks the day inside that window (near the due date unless a neighbour's
visit makes another day cheaper): fixed-date generation, as other tools do it, throws that freedom
away.

Fixed contracts follow the calendar from `start`. Floating ones count from the last completed visit:
the next nominal date is the first of the rule, anchored on the completion date, after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from models.common import GeoPoint, Identifier, SkillLevel, SkillName, Strict
from models.kinds import Contract, JobKind

#: Recurrences a maintenance contract may use: a visit a day at most.
_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
#: Far enough to find a yearly rule's next date (29 February: up to 8 years).
_LOOKAHEAD_YEARS = 12


class Asset(Strict):
    """Equipment installed at a customer's site: what a contract covers and a repair may name."""

    id: Identifier
    customer_id: Annotated[str, Field(max_length=64)] | None = None
    location: GeoPoint
    product: Annotated[str, Field(max_length=200)] | None = None
    serial: Annotated[str, Field(max_length=100)] | None = None
    installed_on: date | None = None
    warranty_until: date | None = Field(None, description="the last day under warranty")

    def under_warranty(self, on: date) -> bool:
        return self.warranty_until is not None and on <= self.warranty_until


class DueWindow(Strict):
    """How far before and after its nominal (due) date an occurrence may be visited."""

    before_days: Annotated[int, Field(ge=0, le=180)] = 7
    after_days: Annotated[int, Field(ge=0, le=180)] = 7


class MaintenanceContract(Strict):
    """A maintenance agreement: recurring visits to the assets it covers (one visit per date, at the
    first asset's site; a contract covers the equipment of one site)."""

    id: Annotated[Identifier, Field(max_length=48)]
    asset_ids: Annotated[list[Identifier], Field(min_length=1, max_length=100)]
    kind: JobKind = JobKind.MAINTENANCE
    skills: dict[SkillName, SkillLevel] = Field(default_factory=dict)
    duration_minutes: Annotated[float, Field(gt=0, le=1440, allow_inf_nan=False)]
    rrule: Annotated[str, Field(min_length=6, max_length=500)] = Field(
        description="RFC 5545 recurrence, e.g. 'FREQ=YEARLY' or 'FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1'"
    )
    start: date = Field(description="the first nominal date counts from here (DTSTART)")
    until: date | None = Field(None, description="the contract ends: no occurrence after this date")
    window: DueWindow = Field(default_factory=DueWindow)
    mode: Literal["fixed", "floating"] = "fixed"
    contract: Contract = Field(Contract.STANDARD, description="the tier: priority and SLA of its visits")
    preferred_technician_id: Identifier | None = None
    last_done: date | None = Field(
        None, description="floating contracts: the last completed visit (the service tracks it itself)"
    )

    @field_validator("rrule")
    @classmethod
    def _parse(cls, value: str) -> str:
        text = value.strip()
        text = text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text
        parts = dict(p.partition("=")[::2] for p in text.upper().split(";") if p)
        if "DTSTART" in text.upper():
            raise ValueError("give the first date as `start`, not DTSTART inside the rule")
        if parts.get("FREQ") not in _FREQUENCIES:
            raise ValueError(f"FREQ must be one of {', '.join(_FREQUENCIES)} (at most a visit a day)")
        if not parts.get("INTERVAL", "1").isdigit() or int(parts.get("INTERVAL", "1")) < 1:
            raise ValueError("INTERVAL must be a whole number of at least 1")
        try:
            _rule(text, date(2000, 1, 1))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not an RFC 5545 RRULE: {exc}") from None
        return text

    @model_validator(mode="after")
    def _happens(self) -> MaintenanceContract:
        if self.until is not None and self.until < self.start:
            raise ValueError(f"until {self.until} is before start {self.start}")
        horizon = self.start + timedelta(days=366 * _LOOKAHEAD_YEARS)
        if not _dates(self.rrule, self.start, self.start, horizon, limit=1):
            raise ValueError(
                f"rrule {self.rrule!r} gives no date in the {_LOOKAHEAD_YEARS} years after start"
            )
        return self


class OccurrenceRef(Strict):
    """What a job generated from a contract remembers of it: the cost model prefers its due date."""

    contract_id: Identifier
    key: Identifier
    nominal: date
    earliest: date
    due: date
    latest: date


@dataclass(frozen=True)
class Occurrence:
    contract_id: str
    key: str
    nominal: date
    earliest: date
    due: date
    latest: date

    def ref(self) -> OccurrenceRef:
        return OccurrenceRef(**asdict(self))


def occurrence_key(contract_id: str, nominal: date) -> str:
    """Contract and nominal date: generating twice finds the same key and creates nothing new."""
    return f"{contract_id}:{nominal.isoformat()}"


def nominal_dates(
    contract: MaintenanceContract, *, until: date, last_done: date | None = None, since: date | None = None
) -> list[date]:
    """The contract's nominal dates up to `until` (and from `since`), in order.

    Floating contracts with a completion count from it: the first date after it, of the rule anchored
    on it. `last_done` overrides the contract's own field (the service passes what it recorded).
    """
    done = last_done if last_done is not None else contract.last_done
    anchor, after = contract.start, contract.start
    if contract.mode == "floating" and done is not None:
        anchor, after = done, done + timedelta(days=1)
    end = min(until, contract.until) if contract.until is not None else until
    begin = max(after, since) if since is not None else after
    if end < begin:
        return []
    return _dates(contract.rrule, anchor, begin, end)


def occurrences(
    contract: MaintenanceContract,
    *,
    until: date,
    last_done: date | None = None,
    open_on: date | None = None,
) -> list[Occurrence]:
    """Occurrences with a nominal date up to `until`; with `open_on`, only those whose window has not
    closed by then (a window that closed unvisited is the compliance report's business)."""
    before, after = contract.window.before_days, contract.window.after_days
    since = open_on - timedelta(days=after) if open_on is not None else None
    return [
        Occurrence(
            contract_id=contract.id,
            key=occurrence_key(contract.id, nominal),
            nominal=nominal,
            earliest=nominal - timedelta(days=before),
            due=nominal,
            latest=nominal + timedelta(days=after),
        )
        for nominal in nominal_dates(contract, until=until, last_done=last_done, since=since)
    ]


def _rule(text: str, dtstart: date):  # type: ignore[no-untyped-def]
    from dateutil.rrule import rrulestr

    return rrulestr(text, dtstart=datetime.combine(dtstart, time(0)), ignoretz=True)


def _dates(text: str, anchor: date, begin: date, end: date, limit: int | None = None) -> list[date]:
    rule = _rule(text, anchor)
    out: list[date] = []
    for dt in rule.xafter(datetime.combine(begin, time(0)), inc=True):
        if dt.date() > end:
            break
        out.append(dt.date())
        if limit is not None and len(out) >= limit:
            break
    return out
