"""Service configuration from FIELDPLAN_* environment variables, read once through `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.common import ClockTime


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDPLAN_", extra="ignore")

    database_url: str = Field(
        "sqlite:///fieldplan.db", description="SQLAlchemy URL; postgresql+psycopg://... for PostgreSQL"
    )
    timezone: str = Field("Europe/Paris", description="the operation's local time zone")
    admin_key: Annotated[str, Field(min_length=24)] | None = Field(
        None, description="bootstrap admin API key; required unless --demo"
    )
    nightly_at: ClockTime = Field("02:00", description="local time of the nightly re-plan")  # type: ignore[assignment]
    horizon_working_days: Annotated[int, Field(ge=1, le=20)] = 5
    maintenance_weeks: Annotated[int, Field(ge=1, le=104)] = Field(
        8,
        description="maintenance occurrences are generated this many weeks ahead (nightly, and when a "
        "contract changes); shifts are derived from availability templates as far",
    )
    solve_seconds: Annotated[float, Field(gt=0, le=3600)] = 20.0
    nightly_publishes_days: Annotated[int, Field(ge=0, le=20)] = Field(
        1,
        description="the nightly re-plan publishes the first N days of its horizon (the day about to "
        "start); later days, and every daytime re-plan of a published day, stay proposals to review",
    )
    explain_fixes: bool = Field(
        True,
        description="every re-plan proposes and verifies fixes for the jobs it leaves out "
        "(`unassigned[].fixes`; about 1-2 s for a 600-job week)",
    )
    slot_token_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        30, description="an offered slot can be held or booked for this long after the query"
    )
    hold_minutes: Annotated[int, Field(ge=1, le=120)] = Field(
        5, description="a held slot is kept from other customers for this long"
    )
    travel_metric: Literal["great_circle", "osm", "osrm"] = Field(
        "great_circle", description="travel times of every plan: crow-flies, an OSM extract, an OSRM server"
    )
    osm_file: str | None = Field(None, description="travel_metric osm: the .osm.pbf extract of the region")
    osrm_url: str | None = Field(None, description="travel_metric osrm: the server's base URL")
    osrm_profile: str = "driving"
    travel_fallback: bool = Field(
        True,
        description="when the roads cannot be read, plan on great-circle times and say so in the run's "
        "summary (false: the re-plan fails)",
    )
    travel_cache: str | None = Field(
        None, description="folder of cached road matrices; default ~/.cache/fieldplan/travel"
    )
    emergency_sla_hours: Annotated[float, Field(gt=0, le=72)] = Field(
        4.0, description="an emergency posted without a `due` must be finished within this many hours"
    )
    max_changed_visits_per_technician: Annotated[int, Field(ge=0, le=1000)] = Field(
        2, description="in-day re-optimisation: visits of one technician it may add, take away or re-time"
    )
    max_eta_shift_minutes: Annotated[float, Field(ge=0, le=1440)] = Field(
        30.0, description="in-day re-optimisation: a visit whose start moves more than this is a change"
    )
    auto_reoptimise: bool = Field(
        False, description="re-optimise the day at once after every event posted for today"
    )
    intraday_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        30.0, description="an in-day re-optimisation that has not answered by then fails (the plan stays)"
    )
    webhook_urls: list[str] = Field(
        default_factory=list, description="notices (technicians, customers, dispatchers) are POSTed here"
    )
    webhook_secret: str | None = Field(
        None, description="signs each webhook body (HMAC-SHA256, header X-Fieldplan-Signature)"
    )
    webhook_retry_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        5.0, description="first retry of a failed delivery; doubled per attempt up to an hour"
    )
    webhook_max_attempts: Annotated[int, Field(ge=1, le=100)] = 10
    scheduler: bool = Field(True, description="run the nightly scheduler inside `fieldplan serve`")
    lock_stale_seconds: Annotated[float, Field(gt=0)] = 120.0
    geocoder: Literal["nominatim"] = "nominatim"
    geocoder_domain: str = "nominatim.openstreetmap.org"
    geocoder_scheme: Literal["http", "https"] = "https"
    geocoder_user_agent: str = "fieldplan"
    geocoder_min_delay_seconds: Annotated[float, Field(ge=0)] = 1.0
    geocoder_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    max_body_bytes: Annotated[int, Field(gt=0)] = 8 * 1024 * 1024
    max_bulk_requests: Annotated[int, Field(gt=0)] = 10_000
    territory_threshold: Annotated[int, Field(ge=1)] = Field(
        3000, description="a re-plan of more jobs than this is split into territories solved in parallel"
    )
    territory_jobs: Annotated[int, Field(ge=1)] = Field(1000, description="jobs per territory, about")
    territory_backend: Literal["process", "ray", "serial"] = Field(
        "process", description="where territories are solved: a local process pool or a Ray cluster"
    )
    territory_parallel: Annotated[int, Field(ge=1, le=4096)] = Field(
        2, description="pool processes (or local Ray CPUs) solving territories side by side"
    )
    ray_address: str | None = Field(
        None, description="an existing Ray cluster (else RAY_ADDRESS, else local)"
    )
    board_tile_url: str | None = Field(
        None,
        description="the board's map tiles, e.g. https://tiles.example.com/{z}/{x}/{y}.png; none: a plain "
        "background (no request leaves the service)",
    )
    cors_origins: list[str] = Field(default_factory=list, description="CORS is off unless set")
    solve_timeout_seconds: Annotated[float, Field(gt=0)] | None = Field(
        None, description="a re-plan whose solver has not answered by then fails; default 3 x limit + 120 s"
    )
    test_pause_at: str | None = Field(
        None, description="TESTING ONLY: 'POINT:SECONDS' pauses a plan write there (fault-injection tests)"
    )

    @model_validator(mode="after")
    def _signed(self) -> Settings:
        if self.webhook_urls and not self.webhook_secret:
            raise ValueError("webhook_urls needs webhook_secret (receivers check each body's signature)")
        return self

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        # psycopg 3 is the driver we ship in the `postgres` extra; plain postgresql:// means it.
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
