"""One settings object, read from the environment, for every process Kentongan runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "state" / "kentongan"


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
    metrics_port: int = 0
    # Named in the User-Agent of every request to BMKG, so they can reach the operator.
    contact_url: str = "https://example.invalid/kentongan-set-KENTONGAN_CONTACT_URL"

    @property
    def outbox_path(self) -> Path:
        return self.outbox or self.home / "outbox" / "outbox.jsonl"

    @property
    def kafka_home(self) -> Path:
        return self.home / "kafka"
