"""Citizen reports: the submission as received (``reports.raw``) and its normalized reading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.events import Event, Hazard

#: A report id is used as a Kafka key and in URLs: keep it to a safe, printable alphabet.
REPORT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class ReportChannel(StrEnum):
    APP = "app"
    CALLCENTRE = "callcentre"
    SMS = "sms"


class CitizenReport(Event):
    """A citizen's report as submitted (the value on ``reports.raw``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    report_id: str = Field(min_length=1, max_length=128)
    reporter: str = Field(min_length=1, max_length=128, description="phone or app account id")
    channel: ReportChannel
    text: str = Field(min_length=1, max_length=2000)
    category: Hazard | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    location_text: str | None = Field(default=None, max_length=500)
    photo_url: str | None = Field(default=None, max_length=2000)
    reported_at: AwareDatetime


class ReportSubmission(BaseModel):
    """The body of ``POST /reports``: stricter than :class:`CitizenReport` (unknown fields and
    half a coordinate are refused), because this is where a client can still be told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_id: str | None = Field(
        default=None, pattern=REPORT_ID_PATTERN,
        description="client-chosen id; a second POST with the same id is accepted once",
    )
    reporter: str = Field(
        min_length=1, max_length=128,
        description="phone number (normalised to E.164, region ID) or app account id",
    )
    channel: ReportChannel
    text: str = Field(min_length=1, max_length=2000)
    category: Hazard | None = Field(default=None, description="an explicit category wins")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    location_text: str | None = Field(default=None, max_length=500)
    photo_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    reported_at: AwareDatetime

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class LocationMethod(StrEnum):
    GPS = "gps"  # the point lies in a kelurahan polygon
    KELURAHAN_NAME = "kelurahan_name"
    KECAMATAN_NAME = "kecamatan_name"  # area_code stays null; the kecamatan is known
    OUTSIDE = "outside_mataram"  # a point or a name outside Kota Mataram
    NONE = "none"


class Route(StrEnum):
    """Where the worker should send the report next."""

    SIGNAL = "signal"  # located to a kelurahan: becomes a Signal
    CALLCENTRE = "callcentre"  # not placeable to a kelurahan: a person must look at it


class Matched(BaseModel):
    """The words that decided, so an operator can see why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hazard: list[str] = Field(default_factory=list)
    location: list[str] = Field(default_factory=list)


class NormalizedReport(BaseModel):
    """What the intake and ``kentongan parse report`` make of one submission. Pure derivation:
    the same submission always gives the same normalized report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    report_id: str | None
    channel: ReportChannel
    reporter_ref: str = Field(description="hash of the normalized reporter; never a phone")
    reported_at: AwareDatetime
    hazard: Hazard
    hazard_source: Literal["category", "text", "default"]
    area_code: str | None = Field(description="kelurahan code, or null when unresolved")
    area_name: str | None
    kecamatan_code: str | None
    kecamatan_name: str | None
    location_method: LocationMethod
    location_confidence: float = Field(ge=0, le=1)
    outside_mataram: bool
    route: Route
    matched: Matched
    flags: list[str] = Field(default_factory=list, description="e.g. gps_outside_mataram")


class RateRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=1)
    per_seconds: float = Field(gt=0)


# A citizen rarely has more than a few distinct emergencies to report in a minute; a call-centre
# agent files on behalf of callers, so the same caller's number may legitimately recur more.
DEFAULT_RULES: Mapping[ReportChannel, Sequence[RateRule]] = {
    ReportChannel.APP: (RateRule(count=5, per_seconds=60), RateRule(count=20, per_seconds=3600)),
    ReportChannel.SMS: (RateRule(count=5, per_seconds=60), RateRule(count=20, per_seconds=3600)),
    ReportChannel.CALLCENTRE: (RateRule(count=20, per_seconds=60),),
}
