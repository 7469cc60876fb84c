"""Citizen-facing text of an incident version, per language, sized for each channel. Pure code.

The planner renders once per version and language and stores the text in each delivery job,
so what was sent is on record exactly. Every form says what BNPB level, which hazard, which
kelurahan, until when (WITA), what to do, "Sumber: BMKG" when BMKG stands behind it, and (SMS)
how to stop. Each form is tried from the fullest wording down to the tersest until it fits its
channel; tests/test_render.py proves the tersest fits for every kelurahan, hazard and level.

- SMS: one segment by default (160 GSM-7 characters, 70 if the text needs UCS-2), up to
  ``max_parts`` when configured; the subscriber's language first, the other one added only
  when it still fits.
- Push: a title and a body within what FCM shows (see ``PUSH_TITLE_MAX``/``PUSH_BODY_MAX``);
  a push job's text is ``title + "\\n" + body``.
- Cell broadcast: a 90- and a 360-character summary (Indonesian; English too in the long one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.events import FAMILY, LEVEL_RANK, Announce, Hazard, HazardFamily, Incident, Level
from stream_processors.sms import fits, to_gsm7

WITA = ZoneInfo("Asia/Makassar")
Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")

# FCM accepts 4 KB of payload; what a phone shows is far less: Android cuts a notification
# title at about 65 characters and a collapsed body at about 240.
PUSH_TITLE_MAX, PUSH_BODY_MAX, FCM_PAYLOAD_MAX_BYTES = 65, 240, 4096
CELL_BROADCAST_SHORT, CELL_BROADCAST_LONG = 90, 360
STOP_KEYWORD = "BERHENTI"

HAZARD_NAME: dict[Language, dict[Hazard, str]] = {
    "id": {
        Hazard.HEAVY_RAIN: "hujan lebat", Hazard.THUNDERSTORM: "hujan lebat & petir",
        Hazard.STRONG_WIND: "angin kencang", Hazard.FLOOD: "banjir",
        Hazard.LANDSLIDE: "tanah longsor", Hazard.FALLEN_TREE: "pohon tumbang",
        Hazard.HIGH_WAVES: "gelombang tinggi", Hazard.FIRE: "kebakaran",
        Hazard.EARTHQUAKE: "gempa bumi", Hazard.OTHER: "keadaan darurat",
    },
    "en": {
        Hazard.HEAVY_RAIN: "heavy rain", Hazard.THUNDERSTORM: "thunderstorm",
        Hazard.STRONG_WIND: "strong wind", Hazard.FLOOD: "flood",
        Hazard.LANDSLIDE: "landslide", Hazard.FALLEN_TREE: "fallen trees",
        Hazard.HIGH_WAVES: "high waves", Hazard.FIRE: "fire",
        Hazard.EARTHQUAKE: "earthquake", Hazard.OTHER: "emergency",
    },
}

# What to do, by hazard family and level: (full, terse). Data, so the duty officers' wording
# can change without touching the code.
ADVICE: dict[Language, dict[HazardFamily, dict[Level, tuple[str, str]]]] = {
    "id": {
        HazardFamily.HYDROMET: {
            Level.WASPADA: ("Waspadai genangan & pohon tumbang", "Waspadai genangan"),
            Level.SIAGA: ("Jauhi sungai & lereng, siapkan tas siaga", "Jauhi sungai & lereng"),
            Level.AWAS: ("Segera ke tempat tinggi & aman, ikuti petugas",
                         "Segera ke tempat aman"),
        },
        HazardFamily.WIND: {
            Level.WASPADA: ("Jauhi pohon, tiang & baliho", "Jauhi pohon & baliho"),
            Level.SIAGA: ("Tetap di bangunan kokoh, jauhi pohon", "Tetap di dalam bangunan"),
            Level.AWAS: ("Segera berlindung di bangunan kokoh", "Segera berlindung"),
        },
        HazardFamily.MARINE: {
            Level.WASPADA: ("Hindari aktivitas di pantai & laut", "Hindari pantai & laut"),
            Level.SIAGA: ("Jauhi pantai, amankan perahu", "Jauhi pantai"),
            Level.AWAS: ("Segera menjauh dari pantai", "Jauhi pantai"),
        },
        HazardFamily.FIRE: {
            Level.WASPADA: ("Hindari lokasi & asap", "Hindari lokasi"),
            Level.SIAGA: ("Jauhi lokasi, siap mengungsi", "Jauhi lokasi"),
            Level.AWAS: ("Segera mengungsi, ikuti petugas", "Segera mengungsi"),
        },
        HazardFamily.EARTHQUAKE: {
            Level.WASPADA: ("Waspadai gempa susulan", "Waspadai susulan"),
            Level.SIAGA: ("Jauhi bangunan retak, waspadai susulan", "Jauhi bangunan retak"),
            Level.AWAS: ("Ke tempat terbuka & tinggi, jauhi pantai", "Ke tempat terbuka"),
        },
        HazardFamily.OTHER: {
            level: ("Ikuti arahan petugas", "Ikuti petugas") for level in Level
        },
    },
    "en": {
        HazardFamily.HYDROMET: {
            Level.WASPADA: ("Watch for floods & falling trees", "Watch for floods"),
            Level.SIAGA: ("Keep away from rivers & slopes, pack a go-bag",
                          "Avoid rivers & slopes"),
            Level.AWAS: ("Move to high, safe ground now, follow officials",
                         "Move to safe ground"),
        },
        HazardFamily.WIND: {
            Level.WASPADA: ("Keep away from trees, poles & billboards", "Avoid trees"),
            Level.SIAGA: ("Stay in a sturdy building, away from trees", "Stay indoors"),
            Level.AWAS: ("Take shelter in a sturdy building now", "Take shelter now"),
        },
        HazardFamily.MARINE: {
            Level.WASPADA: ("Avoid the beach & the sea", "Avoid the beach"),
            Level.SIAGA: ("Keep off the beach, secure boats", "Keep off the beach"),
            Level.AWAS: ("Move away from the shore now", "Leave the shore"),
        },
        HazardFamily.FIRE: {
            Level.WASPADA: ("Avoid the area & the smoke", "Avoid the area"),
            Level.SIAGA: ("Keep away, be ready to evacuate", "Keep away"),
            Level.AWAS: ("Evacuate now, follow officials", "Evacuate now"),
        },
        HazardFamily.EARTHQUAKE: {
            Level.WASPADA: ("Expect aftershocks", "Expect aftershocks"),
            Level.SIAGA: ("Keep out of cracked buildings", "Avoid cracked buildings"),
            Level.AWAS: ("Go to open high ground, away from the shore", "Go to open ground"),
        },
        HazardFamily.OTHER: {
            level: ("Follow officials' instructions", "Follow officials") for level in Level
        },
    },
}
ALL_CLEAR_ADVICE: dict[Language, tuple[str, str]] = {
    "id": ("Tetap berhati-hati", "Tetap hati-hati"),
    "en": ("Stay careful", "Stay careful"),
}
EMERGENCY = {"id": "Darurat: 112", "en": "Emergency: 112"}
STOP_LONG = {"id": f"Balas {STOP_KEYWORD} utk berhenti", "en": f"Reply {STOP_KEYWORD} to stop"}
STOP_SHORT = f"Stop: {STOP_KEYWORD}"
_MONTHS: dict[Language, list[str]] = {
    "id": ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}


def level_name(level: Level, language: Language) -> str:
    """BNPB's word for the level; English readers also get its rank (they rarely know it)."""
    word = level.value.upper()
    return word if language == "id" else f"{word} {LEVEL_RANK[level]}/3"


def headline(announce: Announce, level: Level, language: Language) -> str:
    name = level_name(level, language)
    if language == "id":
        return {Announce.WARNING: f"PERINGATAN {name}", Announce.RAISED: f"NAIK ke {name}",
                Announce.LOWERED: f"TURUN ke {name}", Announce.ALL_CLEAR: "SELESAI"}[announce]
    return {Announce.WARNING: f"ALERT {name}", Announce.RAISED: f"RAISED to {name}",
            Announce.LOWERED: f"LOWERED to {name}", Announce.ALL_CLEAR: "ALL CLEAR"}[announce]


def wita(moment: datetime, language: Language, *, with_date: bool = True) -> str:
    local = moment.astimezone(WITA)
    clock = f"{local:%H:%M} WITA"
    return f"{local.day} {_MONTHS[language][local.month - 1]} {clock}" if with_date else clock


def main_hazard(incident: Incident) -> Hazard:
    return incident.hazards[0] if incident.hazards else Hazard.OTHER


def advice(incident: Incident, language: Language, announce: Announce) -> tuple[str, str]:
    """(full, terse) advice for this version."""
    if announce is Announce.ALL_CLEAR:
        return ALL_CLEAR_ADVICE[language]
    family = incident.hazard if incident.hazard in ADVICE[language] else FAMILY[
        main_hazard(incident)]
    return ADVICE[language][family][incident.level]


@dataclass(frozen=True)
class _Wording:
    """One way of phrasing a version."""

    kecamatan: bool = False
    emergency: bool = False
    long_stop: bool = False
    long_advice: bool = False
    with_date: bool = False


# Fullest first: each step drops the luxury that helps least. The last, tersest one is what
# tests/test_render.py proves fits one segment for every kelurahan, hazard and level.
_TIERS = (
    _Wording(kecamatan=True, emergency=True, long_stop=True, long_advice=True, with_date=True),
    _Wording(emergency=True, long_stop=True, long_advice=True, with_date=True),
    _Wording(long_stop=True, long_advice=True, with_date=True),
    _Wording(long_advice=True, with_date=True),
    _Wording(with_date=True),
    _Wording(),
)


def _announce_of(incident: Incident, announce: Announce | None) -> Announce:
    return announce or incident.announce or Announce.WARNING


def _sms_in(incident: Incident, language: Language, announce: Announce, w: _Wording,
            stop: bool) -> str:
    hazard = HAZARD_NAME[language][main_hazard(incident)]
    place = f"Kel. {incident.area_name}"
    if w.kecamatan:
        place += f", Kec. {incident.kecamatan_name}" if language == "id" else (
            f" ({incident.kecamatan_name})")
    where = f"di {place}" if language == "id" else f"in {place}"
    parts = [f"{headline(announce, incident.level, language)}: {hazard} {where}"]
    closing = announce is Announce.ALL_CLEAR
    if closing:
        parts[0] += " sudah berakhir." if language == "id" else " is over."
    elif incident.expires is not None:
        until = "s/d" if language == "id" else "until"
        parts[0] += f" {until} {wita(incident.expires, language, with_date=w.with_date)}."
    else:
        parts[0] += "."
    full, terse = advice(incident, language, announce)
    parts.append(f"{full if w.long_advice else terse}.")
    if w.emergency and not closing:
        parts.append(f"{EMERGENCY[language]}.")
    if incident.attribution:
        parts.append(f"{incident.attribution}.")
    if stop:
        parts.append(STOP_LONG[language] if w.long_stop else STOP_SHORT)
    return " ".join(parts)


def sms_variants(incident: Incident, language: Language, announce: Announce | None = None,
                 *, stop: bool = True) -> Iterator[str]:
    """Every wording of the message in one language, fullest first; ``stop``: with how to
    stop by SMS."""
    what = _announce_of(incident, announce)
    seen: set[str] = set()
    for wording in _TIERS:
        text = _sms_in(incident, language, what, wording, stop)
        if text not in seen:
            seen.add(text)
            yield text


def sms_text(incident: Incident, language: Language, *, max_parts: int = 1,
             announce: Announce | None = None) -> str:
    """The SMS for a subscriber reading ``language``: the fullest wording that fits
    ``max_parts`` segments, then the other language after a newline when that still fits.
    Always GSM-7 (see ``to_gsm7``), so one segment means 160 characters."""
    variants = [to_gsm7(text) for text in sms_variants(incident, language, announce)]
    first = next((text for text in variants if fits(text, max_parts)), variants[-1])
    other: Language = "en" if language == "id" else "id"
    for second in sms_variants(incident, other, announce):
        both = f"{first}\n{to_gsm7(second)}"
        if fits(both, max_parts):
            return both
    return first


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str

    def as_text(self) -> str:
        """How a push job carries it in ``DeliveryJob.text``: title, newline, body."""
        return f"{self.title}\n{self.body}"


def split_push_text(text: str) -> PushMessage:
    title, _, body = text.partition("\n")
    return PushMessage(title, body)


def _push_title(incident: Incident, language: Language, announce: Announce) -> str:
    hazard = HAZARD_NAME[language][main_hazard(incident)]
    title = f"{headline(announce, incident.level, language)}: {hazard.capitalize()}"
    with_place = f"{title} - {incident.area_name}"
    return with_place if len(with_place) <= PUSH_TITLE_MAX else title


def push_message(incident: Incident, language: Language,
                 announce: Announce | None = None) -> PushMessage:
    what = _announce_of(incident, announce)
    title = _push_title(incident, language, what)
    body = next(text for text in [*sms_variants(incident, language, what, stop=False), ""]
                if len(text) <= PUSH_BODY_MAX)
    return PushMessage(title, body)


def cell_broadcast(incident: Incident, limit: int = CELL_BROADCAST_SHORT,
                   announce: Announce | None = None) -> str:
    """A summary for everyone in the kelurahan's cells, never longer than ``limit``: Indonesian,
    then English when ``limit`` leaves room (the 360-character form)."""
    what = _announce_of(incident, announce)
    indonesian = next((text for text in _cell_broadcast_id(incident, what) if len(text) <= limit),
                      None)
    if indonesian is None:  # no kelurahan name is this long today; never exceed the limit
        indonesian = list(_cell_broadcast_id(incident, what))[-1][:limit]
    for english in sms_variants(incident, "en", what, stop=False):
        both = f"{indonesian}\n{english}"
        if len(both) <= limit:
            return both
    return indonesian


def _cell_broadcast_id(incident: Incident, announce: Announce) -> Iterator[str]:
    hazard = HAZARD_NAME["id"][main_hazard(incident)]
    closing = announce is Announce.ALL_CLEAR
    source = f" {incident.attribution}." if incident.attribution else ""
    full, terse = advice(incident, "id", announce)
    for with_date in (True, False):
        until = "" if closing or incident.expires is None else (
            f" s/d {wita(incident.expires, 'id', with_date=with_date)}")
        over = " berakhir" if closing else ""
        head = headline(announce, incident.level, "id")
        for advice_text in (full, terse):
            yield (f"{head}: {hazard} Kel. {incident.area_name}{over}{until}. "
                   f"{advice_text}.{source}")
    short_head = "SELESAI" if closing else incident.level.value.upper()
    yield f"{short_head} {hazard} {incident.area_name}{until}. {terse}.{source}"
    yield f"{short_head} {hazard} {incident.area_name}{until}.{source}"
