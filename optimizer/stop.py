"""When a search stops: criteria as objects (as PyVRP's `pyvrp.stop`), so a run is reproducible.

A criterion answers two questions from the search's clock: is it time to stop, and how far along
are we (the annealing schedule follows it). With an iteration limit the schedule follows iterations,
never seconds, and the search runs in fixed chunks, so the same input, seed and limit give the same
plan on any machine, busy or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Clock:
    iterations: int
    seconds: float
    since_best: int  # iterations since the best plan last improved


class Stop(Protocol):
    def done(self, clock: Clock) -> bool: ...

    def fraction(self, clock: Clock) -> float | None:
        """How far along, 0..1; None when this criterion cannot tell."""
        ...


@dataclass(frozen=True)
class MaxRuntime:
    seconds: float

    def done(self, clock: Clock) -> bool:
        return clock.seconds >= self.seconds

    def fraction(self, clock: Clock) -> float | None:
        return min(clock.seconds / self.seconds, 1.0) if self.seconds > 0 else 1.0


@dataclass(frozen=True)
class MaxIterations:
    iterations: int

    def done(self, clock: Clock) -> bool:
        return clock.iterations >= self.iterations

    def fraction(self, clock: Clock) -> float | None:
        return min(clock.iterations / self.iterations, 1.0) if self.iterations > 0 else 1.0


@dataclass(frozen=True)
class NoImprovement:
    iterations: int

    def done(self, clock: Clock) -> bool:
        return clock.since_best >= self.iterations

    def fraction(self, clock: Clock) -> float | None:
        return None


class FirstOf:
    """Stops at the first criterion met; an iteration limit, when there is one, sets the pace."""

    def __init__(self, *criteria: Stop) -> None:
        self.criteria = criteria

    def done(self, clock: Clock) -> bool:
        return any(c.done(clock) for c in self.criteria)

    def fraction(self, clock: Clock) -> float | None:
        paced = [c.fraction(clock) for c in self.criteria if isinstance(c, MaxIterations)]
        if paced:
            return paced[0]
        known = [f for c in self.criteria if (f := c.fraction(clock)) is not None]
        return max(known) if known else None

    def iteration_limit(self) -> int | None:
        limits = [c.iterations for c in self.criteria if isinstance(c, MaxIterations)]
        return min(limits) if limits else None

    def __repr__(self) -> str:
        return f"FirstOf({', '.join(map(repr, self.criteria))})"


def iteration_limit(stop: Stop) -> int | None:
    """The iteration limit a criterion holds, if any: then the search runs in fixed chunks."""
    if isinstance(stop, MaxIterations):
        return stop.iterations
    if isinstance(stop, FirstOf):
        return stop.iteration_limit()
    return None
