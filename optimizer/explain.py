"""Reasons for jobs the search left out: the dispatcher must see why, not just that."""

from __future__ import annotations

from collections.abc import Iterable

from models import ReasonCode
from optimizer.problem import Problem


def listed(names: Iterable[str], most: int = 4) -> str:
    """Names for a sentence: sorted, each once, the first `most` and how many more."""
    unique = sorted(set(names))
    return ", ".join(unique[:most]) + (f" and {len(unique) - most} more" if len(unique) > most else "")


def dropped_reason(problem: Problem, node: int) -> tuple[ReasonCode, str]:
    """A dropped job is CAPACITY if some technician-day could do it alone, else a timing reason.

    The pre-search filter ignores the lunch break (cheap, vectorised); the exact check here places
    it, so a job that only fails because lunch cannot fit is not blamed on capacity.
    """
    alone = [v for v in problem.allowed[node].tolist() if problem.solo.feasible(v, [node])]
    who = listed(problem.vehicles[v].technician_id for v in alone)
    job = problem.jobs[node]
    if job.appointment is not None:
        tz = problem.scenario
        a, b = tz.local(job.appointment.start), tz.local(job.appointment.end)
        why = (
            "no qualified technician can reach it in time"
            if not alone
            else f"{who} could keep it alone, but their time is taken by other promises or more urgent work"
        )
        return (
            ReasonCode.PROMISE_BROKEN,
            f"the promised window {a:%Y-%m-%d %H:%M}-{b:%H:%M} can no longer be kept: {why}",
        )
    if not alone:
        return (
            ReasonCode.NO_SHIFT_IN_WINDOW,
            "no qualified shift fits a start inside its windows once travel and the lunch break are placed",
        )
    days = sorted({problem.vehicles[v].date for v in alone})
    return (
        ReasonCode.CAPACITY,
        f"priority {int(problem.priority[node])}: could be done alone by {who} on "
        f"{len(days)} day(s), but their time is taken by work that is more urgent or fits better",
    )
