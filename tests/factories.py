"""Builders for test events: one place that knows a valid Signal/Incident/Subscriber."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import (
    BMKG_ATTRIBUTION,
    Announce,
    Change,
    Hazard,
    HazardFamily,
    Incident,
    IncidentStatus,
    Level,
    MsgType,
    ReporterKind,
    Severity,
    Signal,
    SignalSource,
    Subscriber,
)

WITA = ZoneInfo("Asia/Makassar")
T0 = datetime(2026, 11, 27, 14, 35, tzinfo=WITA)


def warning(area: str = "52.71.01.1004", *, at: datetime = T0, **changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "signal_id": f"CNB20261127001|{at.isoformat()}#{area}",
        "source": SignalSource.NOWCAST,
        "source_id": f"CNB20261127001|{at.isoformat()}",
        "msg_type": MsgType.ALERT,
        "area_code": area,
        "area_name": "Ampenan Selatan",
        "kecamatan_code": area[:8],
        "kecamatan_name": "Ampenan",
        "hazard": Hazard.THUNDERSTORM,
        "severity": Severity.MODERATE,
        "headline": "Hujan Lebat dan Petir di Nusa Tenggara Barat",
        "effective": at,
        "expires": at + timedelta(hours=2),
        "attribution": BMKG_ATTRIBUTION,
    }
    fields.update(changes)
    return Signal(**fields)


def report(reporter: str, *, area: str = "52.71.01.1004", hazard: Hazard = Hazard.FLOOD,
           at: datetime = T0 + timedelta(minutes=20), report_id: str | None = None,
           kind: ReporterKind = ReporterKind.PHONE) -> Signal:
    rid = report_id or f"r-{reporter}-{at:%H%M}"
    return Signal(
        signal_id=f"report:{rid}#{area}", source=SignalSource.REPORT, source_id=f"report:{rid}",
        area_code=area, area_name="Ampenan Selatan", kecamatan_code=area[:8],
        kecamatan_name="Ampenan", hazard=hazard, severity=Severity.MINOR,
        headline="Laporan warga", effective=at, expires=at + timedelta(hours=3),
        reporter_ref=reporter, reporter_kind=kind,
    )


def subscriber(sid: str, phone: str, areas: list[str], **changes: Any) -> Subscriber:
    return Subscriber(subscriber_id=sid, phone=phone, areas=areas, **changes)


def incident(**changes: Any) -> Incident:
    """An open, verified, announced incident version for Ampenan Selatan."""
    fields: dict[str, Any] = {
        "incident_id": "INC-52.71.01.1004-hydromet-20261127T0635Z-1", "version": 1,
        "status": IncidentStatus.OPEN, "change": Change.OPENED, "announce": Announce.WARNING,
        "area_code": "52.71.01.1004", "area_name": "Ampenan Selatan",
        "kecamatan_code": "52.71.01", "kecamatan_name": "Ampenan",
        "hazard": HazardFamily.HYDROMET, "hazards": [Hazard.THUNDERSTORM],
        "level": Level.SIAGA, "verified": True, "headline": "Hujan Lebat dan Petir",
        "opened_at": T0, "updated_at": T0, "expires": T0 + timedelta(hours=2),
        "attribution": BMKG_ATTRIBUTION,
    }
    fields.update(changes)
    return Incident(**fields)
