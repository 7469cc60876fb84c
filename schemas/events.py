"""Event models carried on Kafka. Every model is versioned by ``schema_version``.

Times are timezone-aware (``AwareDatetime``); naive datetimes are rejected at the boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

BMKG_ATTRIBUTION = "Sumber: BMKG"


class Hazard(StrEnum):
    HEAVY_RAIN = "heavy_rain"
    THUNDERSTORM = "thunderstorm"
    STRONG_WIND = "strong_wind"
    FLOOD = "flood"
    LANDSLIDE = "landslide"
    FALLEN_TREE = "fallen_tree"
    HIGH_WAVES = "high_waves"
    FIRE = "fire"
    EARTHQUAKE = "earthquake"
    OTHER = "other"


class Severity(StrEnum):
    """CAP 1.2 severity, lower-cased; ordered by ``SEVERITY_RANK``."""

    UNKNOWN = "unknown"
    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"
    EXTREME = "extreme"


SEVERITY_RANK: dict[Severity, int] = {s: i for i, s in enumerate(Severity)}


class MsgType(StrEnum):
    """CAP 1.2 msgType values that carry meaning for an incident."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class Proximity(StrEnum):
    """Where a warning lies relative to the kelurahan it is about."""

    INSIDE = "inside"
    # Over a Lombok Barat desa bordering the kelurahan, not over the kelurahan itself.
    ADJACENT = "adjacent"


class SignalSource(StrEnum):
    NOWCAST = "nowcast"
    FORECAST = "forecast"
    QUAKE = "quake"
    REPORT = "report"


class Channel(StrEnum):
    SMS = "sms"
    PUSH = "push"
    CALLCENTRE = "callcentre"


class Event(BaseModel):
    """Base for every value on a Kentongan topic: strict about unknown fields, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RawDocument(Event):
    """A document exactly as fetched or received, kept for audit and replay (``*.raw`` topics)."""

    schema_version: Literal[1] = 1
    source: str = Field(description="feed name, e.g. 'bmkg.nowcast'")
    source_id: str = Field(description="stable identity of the document, used as the Kafka key")
    name: str = Field(description="file name or URL it came from")
    fetched_at: AwareDatetime
    content_type: str = "application/xml"
    body: str = Field(description="the document text, undecoded beyond UTF-8")


class Signal(Event):
    """One source's statement about one kelurahan (``signals`` topic, keyed by ``area_code``)."""

    schema_version: Literal[1] = 1
    signal_id: str = Field(description="deterministic: source_id + area_code, so replays dedupe")
    source: SignalSource
    source_id: str
    msg_type: MsgType = MsgType.ALERT
    references: list[str] = Field(default_factory=list)
    area_code: str = Field(pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")
    proximity: Proximity = Proximity.INSIDE
    area_name: str
    kecamatan_code: str
    kecamatan_name: str
    hazard: Hazard
    severity: Severity
    headline: str
    description: str | None = None
    effective: AwareDatetime
    expires: AwareDatetime | None = None
    attribution: str | None = None
    reporter_ref: str | None = Field(
        default=None, description="hashed reporter identity (reports only); never a phone number"
    )
    distance_km: float | None = Field(
        default=None, description="quakes: hypocentral distance to the kelurahan, km"
    )
    mmi: float | None = Field(
        default=None, description="quakes: intensity (Modified Mercalli) estimated or reported"
    )


class IncidentStatus(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    EXPIRED = "expired"


class Incident(Event):
    """One version of an incident (``incidents`` topic, compacted, keyed by ``incident_id``)."""

    schema_version: Literal[1] = 1
    incident_id: str
    version: int = Field(ge=1)
    status: IncidentStatus
    area_code: str
    area_name: str
    kecamatan_name: str
    hazard: Hazard
    severity: Severity
    proximity: Proximity = Proximity.INSIDE
    headline: str
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    expires: AwareDatetime | None = None
    signal_ids: list[str]
    attribution: str | None = None


class Subscriber(Event):
    """A person who asked for alerts (``subscribers`` topic, compacted, keyed by id)."""

    schema_version: Literal[1] = 1
    subscriber_id: str
    phone: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$", description="E.164")
    push_token: str | None = None
    areas: list[str] = Field(description="kelurahan codes")
    channels: list[Channel] = Field(default_factory=lambda: [Channel.SMS])
    language: Literal["id", "en"] = "id"
    active: bool = True


class DeliveryJob(Event):
    """One message for one recipient on one channel (``alerts.<channel>``, keyed by recipient)."""

    schema_version: Literal[1] = 1
    job_key: str = Field(
        description="idempotency key: incident_id/version/recipient/channel"
    )
    incident_id: str
    version: int
    channel: Channel
    recipient: str
    subscriber_id: str
    area_code: str
    language: Literal["id", "en"]
    text: str
    created_at: AwareDatetime


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    FAILED = "failed"


class DeliveryOutcome(Event):
    """What happened to a job (``deliveries`` topic, keyed by ``job_key``)."""

    schema_version: Literal[1] = 1
    job_key: str
    channel: Channel
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    sink: str
    detail: str = ""
    at: AwareDatetime


class DeadLetter(Event):
    """A record a stage could not handle, with the reason.

    On ``deadletter``, keyed ``source_topic:partition:offset``.
    """

    schema_version: Literal[1] = 1
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str = Field(description="the original record, decoded as UTF-8 with replacement")
    stage: str
    reason: str
    at: AwareDatetime


def dead_letter_key(topic: str, partition: int | None, offset: int | None) -> str:
    def part(value: int | None) -> str:
        return "-" if value is None else str(value)

    return f"{topic}:{part(partition)}:{part(offset)}"


def utc_now() -> datetime:
    return datetime.now(UTC)

