"""The planning core: pure functions from a Scenario (and options) to a Plan, and its checker.

Imports only `models`; no files, database or network, so the service, the CLI and the benchmarks
all call the same code.
"""

from optimizer.options import SolveOptions, Weights
from optimizer.solve import solve
from optimizer.validate import Violation, validate_plan

__all__ = ["SolveOptions", "Violation", "Weights", "solve", "validate_plan"]
