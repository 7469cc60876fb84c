"""Event models carried on Kafka. Every model is versioned by ``schema_version``.

Times are timezone-aware (``AwareDatetime``); naive datetimes are rejected at the boundary.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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


class ReporterKind(StrEnum):
    """How a reporter's identity is known; only verified kinds count as distinct citizens."""

    PHONE = "phone"  # the number the SMS gateway (or the 112 line) saw
    APP_ACCOUNT = "app_account"  # an account the smart-city app vouches for
    CALLCENTRE_TICKET = "callcentre_ticket"  # an agent's ticket
    UNVERIFIED = "unverified"  # e.g. an app report with no account assertion

    @property
    def verified(self) -> bool:
        return self is not ReporterKind.UNVERIFIED


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
    sent: AwareDatetime | None = Field(
        default=None, description="CAP: when BMKG issued it (effective may lie ahead)")
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
    tsunami: bool = Field(default=False, description="quakes: BMKG states tsunami potential")
    alert_keys: list[str] = Field(
        default_factory=list, description="CAP: the keys a later <references> entry may use")
    reference_keys: list[str] = Field(
        default_factory=list, description="CAP: keys of the alerts this Update/Cancel names")
    reporter_kind: ReporterKind | None = Field(
        default=None, description="reports: how the reporter's identity was verified")


class Level(StrEnum):
    """BNPB's public warning levels, lowest first: the only levels a citizen is ever shown.
    The mapping from CAP severity and quake intensity lives in ``stream_processors.levels``."""

    WASPADA = "waspada"
    SIAGA = "siaga"
    AWAS = "awas"


LEVEL_RANK: dict[Level, int] = {level: rank for rank, level in enumerate(Level, start=1)}


class HazardFamily(StrEnum):
    """Hazards that are one emergency to a duty officer; one incident per kelurahan and family."""

    HYDROMET = "hydromet"
    WIND = "wind"
    MARINE = "marine"
    FIRE = "fire"
    EARTHQUAKE = "earthquake"
    OTHER = "other"


FAMILY: dict[Hazard, HazardFamily] = {
    Hazard.HEAVY_RAIN: HazardFamily.HYDROMET,
    Hazard.THUNDERSTORM: HazardFamily.HYDROMET,
    Hazard.FLOOD: HazardFamily.HYDROMET,
    Hazard.LANDSLIDE: HazardFamily.HYDROMET,
    Hazard.STRONG_WIND: HazardFamily.WIND,
    Hazard.FALLEN_TREE: HazardFamily.WIND,
    Hazard.HIGH_WAVES: HazardFamily.MARINE,
    Hazard.FIRE: HazardFamily.FIRE,
    Hazard.EARTHQUAKE: HazardFamily.EARTHQUAKE,
    Hazard.OTHER: HazardFamily.OTHER,
}


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Change(StrEnum):
    """What made this incident version."""

    OPENED = "opened"
    UPDATED = "updated"  # sources changed, level and audience did not
    ESCALATED = "escalated"
    DEESCALATED = "deescalated"
    VERIFIED = "verified"
    ACKNOWLEDGED = "acknowledged"
    NOTE = "note"
    RESOLVED = "resolved"  # cancelled by BMKG, or resolved by an operator
    EXPIRED = "expired"  # every source ran out


class Announce(StrEnum):
    """What the kelurahan's subscribers are told about this version (None: nothing)."""

    WARNING = "warning"  # first public version
    RAISED = "raised"
    LOWERED = "lowered"
    ALL_CLEAR = "all_clear"  # only to those who were warned


class ActionKind(StrEnum):
    ACK = "ack"
    VERIFY = "verify"
    ESCALATE = "escalate"
    DEESCALATE = "deescalate"
    RESOLVE = "resolve"
    NOTE = "note"


class SourceRef(Event):
    """One BMKG alert or quake an incident stands on."""

    ref: str = Field(description="CAP dedupe key, or the quake event id")
    source: SignalSource
    hazard: Hazard
    level: Level
    proximity: Proximity = Proximity.INSIDE
    headline: str
    at: AwareDatetime
    expires: AwareDatetime | None = None


class AuditEntry(Event):
    """An operator's action on an incident, as it appears in every later version."""

    action: ActionKind
    operator: str
    reason: str = ""
    at: AwareDatetime


class Incident(Event):
    """One version of an incident (``incidents`` topic, compacted, keyed by ``incident_id``).

    An incident is one kelurahan and hazard family; its level is derived from what is in force
    (``alerts``, quakes, corroborating reports, operator actions) at the version's time."""

    schema_version: Literal[2] = 2
    incident_id: str
    version: int = Field(ge=1)
    status: IncidentStatus
    change: Change
    announce: Announce | None = Field(
        default=None, description="what subscribers are told; None: the desk only")
    area_code: str
    area_name: str
    kecamatan_code: str
    kecamatan_name: str
    hazard: HazardFamily
    hazards: list[Hazard] = Field(description="the specific hazards, main one first")
    level: Level
    verified: bool = Field(description="a BMKG product or an operator stands behind it")
    proximity: Proximity = Proximity.INSIDE
    acknowledged_by: str | None = None
    headline: str
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    expires: AwareDatetime | None = Field(
        default=None, description="when the last source in force runs out")
    alerts: list[SourceRef] = Field(default_factory=list, description="BMKG sources in force")
    report_ids: list[str] = Field(
        default_factory=list, description="corroborating reports (the most recent, bounded)")
    reporters: int = Field(default=0, ge=0, description="distinct verified reporters seen")
    outlook: str | None = Field(default=None, description="BMKG forecast for the kelurahan")
    audit: list[AuditEntry] = Field(default_factory=list)
    reason: str = Field(default="", description="why this version, for the duty officer")
    attribution: str | None = None


class IncidentAction(Event):
    """An operator's action (``incident.actions``): addressed by ``incident_id``, or by
    ``area_code`` + ``hazard`` (the kelurahan's open incident of that family)."""

    schema_version: Literal[1] = 1
    action_id: str = Field(min_length=1, max_length=128)
    action: ActionKind
    incident_id: str | None = Field(default=None, max_length=200)
    area_code: str | None = Field(default=None, pattern=r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")
    hazard: HazardFamily | None = None
    operator: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=2000)
    at: AwareDatetime

    @model_validator(mode="after")
    def _addressed(self) -> IncidentAction:
        if self.incident_id is None and (self.area_code is None or self.hazard is None):
            raise ValueError("an action names incident_id, or area_code and hazard")
        return self

    def target_area(self) -> str:
        """The kelurahan whose state the action changes (incident ids embed it)."""
        if self.area_code is not None:
            return self.area_code
        assert self.incident_id is not None
        return area_of_incident(self.incident_id)


class Command(Event):
    """Input of the correlator besides signals (``incident.commands``, keyed by ``area_code``):
    an operator's action routed to its kelurahan, or a clock tick for one partition."""

    schema_version: Literal[1] = 1
    kind: Literal["action", "tick"]
    action: IncidentAction | None = None
    at: AwareDatetime = Field(description="tick: the wall clock when it was sent")
    advance_to: AwareDatetime | None = Field(
        default=None, description="tick: move the clock to this event time (a replay's clock)")


def area_of_incident(incident_id: str) -> str:
    """``INC-52.71.01.1004-hydromet-...`` -> ``52.71.01.1004``; ValueError if not of that form."""
    parts = incident_id.split("-")
    if len(parts) < 3 or parts[0] != "INC" or not _AREA_CODE.match(parts[1]):
        raise ValueError(f"not an incident id: {incident_id[:80]!r}")
    return parts[1]


_AREA_CODE = re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")


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
    level: Level | None = Field(
        default=None, description="the incident's level: awas is sent first and never throttled")


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    ACCEPTED = "accepted"  # the gateway took it; its delivery report (DLR) comes later
    THROTTLED = "throttled"  # a per-recipient limit held it back (never for awas)
    UNSUBSCRIBED = "unsubscribed"  # the person left (or dropped the channel) before it went


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

