"""One settings object, read from the environment, for every process Kentongan runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.reports import DEFAULT_RULES, RateRule, ReportChannel


def _default_home() -> Path:
    return Path.home() / ".local" / "state" / "kentongan"


class IntakeSettings(BaseSettings):
    """The citizen-report intake (``kentongan intake``); prefix ``KENTONGAN_INTAKE_``.
    Secrets are ``SecretStr`` so they never print in a repr."""

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


class Settings(BaseSettings):
    """Environment variables are the only configuration surface (12-factor)."""

    model_config = SettingsConfigDict(env_prefix="KENTONGAN_", extra="ignore")

    # KAFKA_BOOTSTRAP is the name operators and the test fixture use; no prefix on purpose.
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "KENTONGAN_KAFKA_BOOTSTRAP"),
    )
    home: Path = Field(default_factory=_default_home)
    kafka_version: str = "4.0.2"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    # Prefixed topic names let tests and parallel demos share one broker without seeing each other.
    topic_prefix: str = ""
    app_id: str = "kentongan"
    outbox: Path | None = None
    # The incident rules (YAML); the packaged stream_processors/rules.yaml when unset.
    rules: Path | None = None
    # How often the worker's clock ticks, so warnings run out with no further input.
    tick_seconds: float = Field(default=15.0, gt=0)
    metrics_port: int = 0
    # SMS alerts fit one segment unless the operator pays for more (concatenated, ≤ 3 parts).
    sms_max_parts: int = Field(default=1, ge=1, le=3)
    # Fan-out hands jobs over this many at a time, then lets the worker's loop run.
    plan_chunk: int = Field(default=1000, ge=1)
    # Named in the User-Agent of every request to BMKG, so they can reach the operator.
    contact_url: str = "https://example.invalid/kentongan-set-KENTONGAN_CONTACT_URL"

    intake: IntakeSettings = Field(default_factory=IntakeSettings)

    @property
    def outbox_path(self) -> Path:
        return self.outbox or self.home / "outbox" / "outbox.jsonl"

    @property
    def kafka_home(self) -> Path:
        return self.home / "kafka"
