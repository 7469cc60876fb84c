"""One settings object, read from the environment, for every process Kentongan runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.delivery import DEFAULT_THROTTLES, ThrottleTable
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
    # The smart-city app's backend signs each logged-in account id with this key
    # (X-Account-Token: hex HMAC-SHA256(key, reporter)); without a valid token an app report is
    # "unverified": shown to the desk, never counted as a distinct citizen.
    app_account_secret: SecretStr | None = None
    # A report stamped later than now + this is refused (422): a clock far off is not a report.
    max_clock_skew_s: float = Field(default=300, ge=0)
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


class DeliverySettings(BaseSettings):
    """The delivery consumers (``kentongan deliver``); prefix ``KENTONGAN_DELIVERY_``.
    Gateway secrets live here (never on the command line) as ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="KENTONGAN_DELIVERY_", extra="ignore")

    # How hard to push a gateway, and how much may be re-sent after a crash.
    concurrency: int = Field(default=64, ge=1, description="sends in flight at once")
    window: int = Field(default=256, ge=1, description=(
        "jobs handed to the gateway but not yet in a flushed ledger entry: the most a crash "
        "can send twice"))
    commit_interval_ms: int = Field(default=200, ge=10)
    max_buffered: int = Field(default=20_000, ge=100, description=(
        "jobs read ahead of sending; the priority queue orders them, awas first"))
    attempts: int = Field(default=6, ge=1)
    base_delay_s: float = Field(default=0.5, gt=0)
    max_delay_s: float = Field(default=60.0, gt=0)
    request_timeout_s: float = Field(default=10.0, gt=0)
    throttles: ThrottleTable = Field(default_factory=lambda: dict(DEFAULT_THROTTLES))
    # Static group membership: a restarted consumer takes its partitions back at once instead
    # of waiting out the session timeout. Two consumers of one channel on one host need
    # distinct ids. Default: "<hostname>-<channel>".
    instance_id: str | None = None
    session_timeout_ms: int = Field(default=15_000, ge=6_000)

    # Kannel: the sendsms-user, and the delivery-report callback this process serves.
    kannel_username: str = "kentongan"
    kannel_password: SecretStr | None = None
    kannel_from: str | None = "KENTONGAN"  # the sender id people see; Kannel needs one
    dlr_host: str = "127.0.0.1"
    dlr_port: int = Field(default=0, ge=0, le=65535, validation_alias=AliasChoices(
        "KENTONGAN_DLR_PORT", "KENTONGAN_DELIVERY_DLR_PORT"), description="0: any free port")
    dlr_url: str | None = Field(default=None, description=(
        "the base URL Kannel calls back; default http://<dlr_host>:<port>"))
    dlr_secret: SecretStr | None = Field(default=None, description=(
        "signs the job key in each dlr-url; default: a random secret per process"))
    # Generic HTTP SMS gateway: bearer token.
    http_sms_token: SecretStr | None = None
    # FCM HTTP v1: the service-account JSON file; base URL overridable for tests.
    fcm_service_account_file: Path | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"
    # Web Push (VAPID): the private key (PEM, or raw base64url) and the contact subject.
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = "mailto:ops@example.invalid"
    # The 112 desk's webhook: HMAC-SHA256 secret.
    webhook_secret: SecretStr | None = None


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
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @property
    def outbox_path(self) -> Path:
        return self.outbox or self.home / "outbox" / "outbox.jsonl"

    @property
    def kafka_home(self) -> Path:
        return self.home / "kafka"
