"""Intake settings, from the environment (prefix ``KENTONGAN_INTAKE_``).

Kafka bootstrap and topic prefix stay in :class:`schemas.settings.Settings`; this object holds
only what the HTTP intake needs. Secrets are ``SecretStr`` so they never print in a repr.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producers.intake.ratelimit import DEFAULT_RULES, RateRule
from schemas.reports import ReportChannel


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KENTONGAN_INTAKE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8086, ge=0, le=65535)
    # One key per client population, so a leaked app key cannot file call-centre reports.
    app_api_key: SecretStr | None = None
    callcentre_api_key: SecretStr | None = None
    # Kannel's get-url carries this as ?secret=... (or the X-Kannel-Secret header).
    kannel_secret: SecretStr | None = None
    max_body_bytes: int = Field(default=16 * 1024, ge=256)
    # JSON in the environment, e.g. {"app": [{"count": 3, "per_seconds": 60}]}.
    rate_limits: dict[ReportChannel, list[RateRule]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_RULES.items()})
    @field_validator("rate_limits")
    @classmethod
    def _every_channel_limited(
        cls, rules: dict[ReportChannel, list[RateRule]]
    ) -> dict[ReportChannel, list[RateRule]]:
        # A channel left out of the environment keeps its default: never silently unlimited.
        return {**{k: list(v) for k, v in DEFAULT_RULES.items()}, **rules}

    # How long the intake remembers report ids for idempotency and GET /reports/{id}.
    remember_reports: int = Field(default=100_000, ge=100)
    kafka_timeout_s: float = Field(default=10.0, gt=0)
    # Follow the incidents topic so GET /reports/{id} can say "attached to incident N".
    watch_incidents: bool = True
