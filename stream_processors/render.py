"""Citizen-facing message text: Bahasa Indonesia first, English second, SMS-sized.

Pure code; the planner stores the rendered text in each delivery job so that what was sent is
on record exactly.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.events import Announce, Hazard, Incident

WITA = ZoneInfo("Asia/Makassar")

HAZARD_ID: dict[Hazard, str] = {
    Hazard.HEAVY_RAIN: "hujan lebat",
    Hazard.THUNDERSTORM: "hujan lebat disertai petir",
    Hazard.STRONG_WIND: "angin kencang",
    Hazard.FLOOD: "banjir",
    Hazard.LANDSLIDE: "tanah longsor",
    Hazard.FALLEN_TREE: "pohon tumbang",
    Hazard.HIGH_WAVES: "gelombang tinggi",
    Hazard.FIRE: "kebakaran",
    Hazard.EARTHQUAKE: "gempa bumi",
    Hazard.OTHER: "kejadian darurat",
}
HAZARD_EN: dict[Hazard, str] = {
    Hazard.HEAVY_RAIN: "heavy rain",
    Hazard.THUNDERSTORM: "thunderstorm with heavy rain",
    Hazard.STRONG_WIND: "strong wind",
    Hazard.FLOOD: "flood",
    Hazard.LANDSLIDE: "landslide",
    Hazard.FALLEN_TREE: "fallen trees",
    Hazard.HIGH_WAVES: "high waves",
    Hazard.FIRE: "fire",
    Hazard.EARTHQUAKE: "earthquake",
    Hazard.OTHER: "emergency",
}
HEADLINE_ID: dict[Announce, str] = {
    Announce.WARNING: "PERINGATAN",
    Announce.RAISED: "PERINGATAN MENINGKAT",
    Announce.LOWERED: "PERINGATAN TURUN",
    Announce.ALL_CLEAR: "SELESAI",
}
HEADLINE_EN: dict[Announce, str] = {
    Announce.WARNING: "WARNING",
    Announce.RAISED: "WARNING RAISED",
    Announce.LOWERED: "WARNING LOWERED",
    Announce.ALL_CLEAR: "ALL CLEAR",
}
_MONTHS_ID = ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"]
_MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _wita(moment: datetime, months: list[str]) -> str:
    local = moment.astimezone(WITA)
    return f"{local.day} {months[local.month - 1]} {local:%H:%M} WITA"


def render_text(incident: Incident, announce: Announce | None = None) -> str:
    """One bilingual message; Indonesian first. Times are shown in WITA, Mataram's zone."""
    what = announce or incident.announce or Announce.WARNING
    hazard = incident.hazards[0] if incident.hazards else Hazard.OTHER
    place_id = f"Kel. {incident.area_name}, Kec. {incident.kecamatan_name}"
    place_en = f"{incident.area_name} ({incident.kecamatan_name})"
    closing = what is Announce.ALL_CLEAR
    level = "" if closing else f" {incident.level.value.upper()}"
    until_id = until_en = ""
    if incident.expires is not None and not closing:
        until_id = f" s/d {_wita(incident.expires, _MONTHS_ID)}"
        until_en = f" until {_wita(incident.expires, _MONTHS_EN)}"
    source_id = f" {incident.attribution}." if incident.attribution else ""
    source_en = " Source: BMKG." if incident.attribution else ""
    advice_id = "" if closing else " Waspada, hindari genangan & pohon. Darurat: 112."
    advice_en = "" if closing else " Stay alert. Emergency: 112."
    indonesian = (
        f"[KENTONGAN] {HEADLINE_ID[what]}{level} {HAZARD_ID[hazard]} di {place_id}"
        f"{until_id}.{advice_id}{source_id}"
    )
    english = (
        f"{HEADLINE_EN[what]}{level}: {HAZARD_EN[hazard]} in {place_en}"
        f"{until_en}.{advice_en}{source_en}"
    )
    return f"{indonesian}\n{english}"
