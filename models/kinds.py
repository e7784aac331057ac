"""The kinds of service work and the contract tiers: shared by jobs, assets and maintenance contracts."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    INSTALLATION = "installation"
    MAINTENANCE = "maintenance"
    REPAIR = "repair"
    INSPECTION = "inspection"
    COMPLAINT = "complaint"
    TRAINING = "training"
    FOLLOW_UP = "follow_up"


class Contract(StrEnum):
    NONE = "none"
    STANDARD = "standard"
    PREMIUM = "premium"
