"""Citizen report -> Signal: locate the kelurahan and classify the hazard. Pure code.

This is the walking skeleton's version: point-in-polygon, then kelurahan names in the text,
and a short keyword table. A report that cannot be placed raises ``UnlocatedReport`` so the
caller keeps it (dead letter, call centre) instead of dropping it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import timedelta

from schemas.events import Hazard, Severity, Signal, SignalSource
from schemas.geography import Area, Geography
from schemas.reports import CitizenReport

# First match wins; longer phrases come before the single words they contain.
HAZARD_WORDS: tuple[tuple[Hazard, tuple[str, ...]], ...] = (
    (Hazard.EARTHQUAKE, ("gempa", "earthquake")),
    (Hazard.FALLEN_TREE, ("pohon tumbang", "pohon roboh", "fallen tree", "tree down")),
    (Hazard.LANDSLIDE, ("longsor", "landslide")),
    (Hazard.STRONG_WIND, ("angin kencang", "puting beliung", "strong wind")),
    (Hazard.HIGH_WAVES, ("gelombang pasang", "rob", "high waves")),
    (Hazard.FLOOD, ("banjir", "genangan", "air masuk rumah", "flood")),
    (Hazard.FIRE, ("kebakaran", "api", "fire")),
    (Hazard.THUNDERSTORM, ("petir", "thunder")),
    (Hazard.HEAVY_RAIN, ("hujan deras", "hujan lebat", "heavy rain")),
)
# A citizen report is a claim until corroborated; it lives as long as a typical nowcast.
REPORT_VALIDITY = timedelta(hours=3)


class UnlocatedReport(ValueError):
    """The report names no place in Kota Mataram that we can resolve."""


def fold(text: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: for name and word matching."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split())


def classify(report: CitizenReport) -> Hazard:
    if report.category is not None:
        return report.category
    words = f" {fold(report.text)} "
    for hazard, phrases in HAZARD_WORDS:
        if any(f" {phrase} " in words for phrase in phrases):
            return hazard
    return Hazard.OTHER


def locate(report: CitizenReport, geography: Geography) -> Area:
    if report.lat is not None and report.lon is not None:
        area = geography.kelurahan_at(report.lat, report.lon)
        if area is not None:
            return area
    haystack = f" {fold(' '.join(filter(None, [report.location_text, report.text])))} "
    # Longest name first, so "Pagutan Barat" wins over "Pagutan".
    for area in sorted(geography.kelurahan.values(), key=lambda a: -len(a.name)):
        if f" {fold(area.name)} " in haystack:
            return area
    raise UnlocatedReport(f"report {report.report_id}: no Mataram kelurahan found")


def reporter_ref(reporter: str) -> str:
    return hashlib.sha256(reporter.encode()).hexdigest()[:16]


def signal_from_report(report: CitizenReport, geography: Geography) -> Signal:
    area = locate(report, geography)
    hazard = classify(report)
    return Signal(
        signal_id=f"report:{report.report_id}#{area.code}",
        source=SignalSource.REPORT,
        source_id=f"report:{report.report_id}",
        area_code=area.code,
        area_name=area.name,
        kecamatan_code=area.kecamatan_code,
        kecamatan_name=area.kecamatan_name,
        hazard=hazard,
        severity=Severity.MINOR,
        headline=f"Laporan warga: {hazard.value} di {area.name}",
        description=report.text,
        effective=report.reported_at,
        expires=report.reported_at + REPORT_VALIDITY,
        reporter_ref=reporter_ref(report.reporter),
    )
