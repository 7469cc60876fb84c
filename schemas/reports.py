"""Citizen reports: the submission as received on ``reports.raw``."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from schemas.events import Event, Hazard


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
