"""Example scenarios (JSON files beside this module) and the seeded generator that made them."""

from pathlib import Path

SCENARIO_DIR = Path(__file__).parent


def shipped() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.json"))
