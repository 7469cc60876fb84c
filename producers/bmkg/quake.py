"""BMKG earthquake feeds (InaTEWS ``autogempa``, ``gempaterkini``, ``gempadirasakan``; JSON and
the current XML layout): bytes in, :class:`Quake` list and kelurahan Signals out.

Pure: no network, no Kafka. :func:`parse_quake` raises exactly one exception type,
:class:`QuakeError`, for anything it will not accept.

Format facts relied on (tests/data/bmkg/PROVENANCE.md, FORMATS.md §3): every value is a string;
``DateTime`` is the authoritative UTC instant (``Tanggal``/``Jam`` are WIB and sometimes disagree
with it: they are kept only as a consistency flag); ``Coordinates`` / ``<point><coordinates>`` are
``lat,lon``. The legacy (<= 2020) XML layout is **rejected explicitly**: its coordinates are
``lon,lat``, magnitudes carry "SR" and it has no ``DateTime``; BMKG no longer serves it, and
guessing the axis order of an earthquake is worse than a dead letter.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from producers.bmkg.safexml import parse_untrusted, shorten
from schemas.events import (
    BMKG_ATTRIBUTION,
    Hazard,
    RawDocument,
    Severity,
    Signal,
    SignalSource,
)
from schemas.geography import Area, Geography, load_geography

SOURCE = "bmkg.quake"
FEEDS = ("autogempa", "gempaterkini", "gempadirasakan")

#: Signals are emitted where the intensity, rounded to the nearest level, is at least IV:
#: "felt indoors by many" on the Modified Mercalli scale, where people start to react.
MMI_THRESHOLD = 4
#: How long a quake signal stays current: the hours when aftershocks and damage reports come in.
QUAKE_SIGNAL_TTL = timedelta(hours=6)
#: Mean Earth radius (IUGG), km, for the haversine distance.
EARTH_RADIUS_KM = 6371.0088
#: Felt-report places that stand for Mataram: the city itself, and Lombok Barat, which surrounds
#: it on land, or the island named alone. Lombok Utara/Tengah/Timur are 20-60 km away and are
#: left to the attenuation estimate rather than copied onto the city.
_FELT_HERE = re.compile(
    r"\bmataram\b|\blombok\s*barat\b|\blobar\b|^(?:pulau\s+)?lombok$", re.IGNORECASE
)

_WIB = timezone(timedelta(hours=7))  # ``Jam`` is always WIB, even for WITA events
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "mei", "jun", "jul", "agu", "sep", "okt", "nov", "des"), 1)}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_COORDS_RE = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*$")
_MAGNITUDE_RE = re.compile(rf"^\s*({_NUMBER})\s*$")
_DEPTH_RE = re.compile(rf"^\s*({_NUMBER})\s*km\s*$", re.IGNORECASE)
_FELT_RE = re.compile(r"^\s*([IVX]+)(?:\s*-\s*([IVX]+))?\s+(\S.*?)\s*$")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9,
          "X": 10, "XI": 11, "XII": 12}
_ROMAN_OF = {v: k for k, v in _ROMAN.items()}


class QuakeError(ValueError):
    """The document is not a BMKG earthquake feed Kentongan can use; the message says why."""


class Quake(BaseModel):
    """One earthquake as BMKG reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feed: str | None = None
    time: AwareDatetime  # UTC, from ``DateTime``
    lat: float
    lon: float
    magnitude: float
    depth_km: float
    region: str = ""
    potential: str | None = None
    felt: str | None = None
    shakemap: str | None = None
    #: False when ``Tanggal`` + ``Jam`` (WIB) disagree with ``DateTime`` (a known BMKG quirk).
    local_clock_consistent: bool | None = None

    def source_id(self) -> str:
        """BMKG publishes no event id; UTC second + epicentre identifies an event across the
        three feeds (magnitude is left out: it can be revised)."""
        return f"gempa|{self.time:%Y%m%dT%H%M%SZ}|{self.lat:.2f},{self.lon:.2f}"

    def felt_here(self) -> int | None:
        """Highest MMI level the ``Dirasakan`` text reports for Mataram (see ``_FELT_HERE``)."""
        return felt_mmi_for_mataram(self.felt or "")


def parse_quake(data: bytes, *, file_name: str | None = None) -> list[Quake]:
    """Parse ``autogempa``/``gempaterkini``/``gempadirasakan`` (JSON or current XML). Raises
    :class:`QuakeError` and nothing else for anything unusable (malformed or hostile XML,
    truncated JSON, legacy XML, missing or invalid fields)."""
    feed = _feed_of(file_name)
    head = data.lstrip()[:1]
    entries = _xml_entries(data) if head == b"<" else _json_entries(data)
    if not entries:
        raise QuakeError("no <gempa> entry")
    return [_quake(entry, feed, f"gempa[{i}]") for i, entry in enumerate(entries)]


def hypocentral_distance_km(quake: Quake, lat: float, lon: float) -> float:
    """Straight-line distance from the hypocentre to a surface point: haversine epicentral
    distance combined with depth (flat-Earth approximation, fine at these ranges)."""
    epicentral = haversine_km(quake.lat, quake.lon, lat, lon)
    return math.hypot(epicentral, quake.depth_km)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def estimated_mmi(magnitude: float, hypocentral_km: float) -> float:
    """Intensity prediction equation of Allen, Wald & Worden (2012), "Intensity attenuation for
    active crustal regions", Journal of Seismology 16(3):409-433, doi:10.1007/s10950-012-9278-7:
    the hypocentral-distance model,

        MMI = c0 + c1*M + c2*ln(sqrt(R^2 + Rm^2))            (R <= 50 km)
            + c4*ln(R/50)                                      (added for R > 50 km)
        Rm  = m1 + m2*exp(M - 5)

    with c0=2.085, c1=1.428, c2=-1.402, c4=0.078, m1=-0.209, m2=2.042 (sigma about 0.8 MMI).
    A global relation for active crustal regions, derived from ShakeMap data that include
    Indonesian events; BMKG's ``Magnitude`` is taken as moment magnitude Mw (the equation's
    input), an assumption for small events where BMKG may report another M type. Intraslab
    (deep) events are outside its calibration: treat results for depth > 70 km with caution.
    Clamped to the scale, I..XII.
    """
    c0, c1, c2, c4, m1, m2 = 2.085, 1.428, -1.402, 0.078, -0.209, 2.042
    r = max(hypocentral_km, 0.0)
    rm = m1 + m2 * math.exp(min(magnitude, 10.0) - 5.0)
    mmi = c0 + c1 * magnitude + c2 * math.log(math.sqrt(r * r + rm * rm))
    if r > 50.0:
        mmi += c4 * math.log(r / 50.0)
    return min(12.0, max(1.0, mmi))


def mmi_level(mmi: float) -> int:
    """Nearest whole intensity level (half up)."""
    return math.floor(mmi + 0.5)


def severity_for(level: int) -> Severity:
    if level >= 8:
        return Severity.EXTREME  # heavy damage
    if level >= 6:
        return Severity.SEVERE  # felt by all, some damage
    if level >= 5:
        return Severity.MODERATE  # felt by nearly everyone, objects fall
    return Severity.MINOR


def tsunami_potential(potential: str | None) -> bool:
    """BMKG's ``Potensi`` states tsunami potential; "Tidak berpotensi tsunami" (the usual text)
    and "dirasakan untuk diteruskan pada masyarakat" state none."""
    text = (potential or "").lower()
    return "tsunami" in text and not re.search(r"\btidak\s+berpotensi", text)


def felt_mmi_for_mataram(text: str) -> int | None:
    """Parse ``Dirasakan`` ("III-IV Muna, II - III Kab. Manggarai, III Mataram"): the top of the
    range of each entry naming Mataram (see ``_FELT_HERE``); None if none does."""
    best: int | None = None
    for entry in text.split(","):
        match = _FELT_RE.match(entry)
        if not match:
            continue
        low, high, place = match.groups()
        levels = [_ROMAN.get(low), _ROMAN.get(high) if high else None]
        found = [v for v in levels if v is not None]
        place = re.sub(r"^(?:kab\.?|kabupaten|kota)\s+", "", place.strip(), flags=re.IGNORECASE)
        if found and _FELT_HERE.search(place):
            best = max(found) if best is None else max(best, *found)
    return best


def signals_from_quake(quake: Quake, geography: Geography) -> list[Signal]:
    """One Signal per Mataram kelurahan where the intensity (the max of the estimate at the
    kelurahan's representative point and BMKG's felt report for Mataram) reaches
    :data:`MMI_THRESHOLD`; sorted by code."""
    felt = quake.felt_here()
    source_id = quake.source_id()
    signals: list[Signal] = []
    for area in geography.kelurahan.values():
        point = area.geometry.representative_point()
        distance = hypocentral_distance_km(quake, point.y, point.x)
        mmi = estimated_mmi(quake.magnitude, distance)
        if felt is not None:
            mmi = max(mmi, float(felt))
        level = mmi_level(mmi)
        if level < MMI_THRESHOLD:
            continue
        signals.append(_signal(quake, area, source_id, distance, mmi, level, felt))
    return sorted(signals, key=lambda s: s.area_code)


def document_key(quakes: list[Quake], body: bytes, feed: str | None) -> str:
    """Kafka key of a raw feed document: feed, newest event, content digest (a re-fetch of the
    same bytes dedupes; a changed list does not)."""
    newest = max(q.time for q in quakes)
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"{feed or 'gempa'}|{newest:%Y%m%dT%H%M%SZ}|{digest}"


def signals_from_document(document: RawDocument, geography: Geography) -> list[Signal]:
    """For the worker: a ``bmkg.quake.raw`` record's signals, de-duplicated by signal_id (a feed
    never lists one event twice, but be safe). Raises QuakeError."""
    found: dict[str, Signal] = {}
    for quake in parse_quake(document.body.encode(), file_name=document.name):
        for signal in signals_from_quake(quake, geography):
            found.setdefault(signal.signal_id, signal)
    return list(found.values())


def parse_command(data: bytes, file_name: str | None = None) -> list[Signal]:
    """``kentongan parse quake FILE``: the signals the producer would publish."""
    geography = load_geography()
    return [s for q in parse_quake(data, file_name=file_name)
            for s in signals_from_quake(q, geography)]


# --- helpers ---------------------------------------------------------------------------------


def _signal(
    quake: Quake, area: Area, source_id: str, distance: float, mmi: float, level: int,
    felt: int | None,
) -> Signal:
    roman = _ROMAN_OF.get(level, str(level))
    parts = [f"{quake.region}." if quake.region else "",
             f"Kedalaman {quake.depth_km:g} km; {distance:.0f} km dari {area.name}."]
    if felt is not None:
        parts.append(f"Dirasakan (BMKG): {quake.felt}.")
    if quake.potential:
        parts.append(f"{quake.potential}.")
    return Signal(
        signal_id=f"{source_id}#{area.code}",
        source=SignalSource.QUAKE,
        source_id=source_id,
        **area.signal_fields(),
        hazard=Hazard.EARTHQUAKE,
        severity=severity_for(level),
        headline=f"Gempa M{quake.magnitude:.1f}, perkiraan intensitas MMI {roman} di {area.name}",
        description=" ".join(p for p in parts if p),
        effective=quake.time,
        expires=quake.time + QUAKE_SIGNAL_TTL,
        attribution=BMKG_ATTRIBUTION,
        distance_km=round(distance, 1),
        mmi=round(mmi, 1),
        tsunami=tsunami_potential(quake.potential),
    )


def _feed_of(file_name: str | None) -> str | None:
    name = (file_name or "").lower()
    for feed in FEEDS:
        if feed in name:
            return feed
    return None


def _json_entries(data: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise QuakeError(f"not JSON: {shorten(str(exc))}") from None
    info = document.get("Infogempa") if isinstance(document, dict) else None
    if not isinstance(info, dict) or "gempa" not in info:
        raise QuakeError("expected {\"Infogempa\": {\"gempa\": ...}}")
    gempa = info["gempa"]
    entries = gempa if isinstance(gempa, list) else [gempa]  # autogempa: one object
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise QuakeError(f"gempa[{i}]: expected an object")
    return entries


def _xml_entries(data: bytes) -> list[dict[str, Any]]:
    root = parse_untrusted(data, QuakeError)
    if root.tag != "Infogempa":
        raise QuakeError(f"not an Infogempa document: root element {shorten(root.tag)}")
    entries: list[dict[str, Any]] = []
    for gempa in root.findall("gempa"):
        entry: dict[str, Any] = {}
        for child in gempa:
            if child.tag == "point":
                coordinates = child.find("coordinates")
                entry["Coordinates"] = (coordinates.text or "") if coordinates is not None else ""
            else:
                entry[child.tag] = child.text or ""
        if "DateTime" not in entry and ("_symbol" in entry or "Wilayah1" in entry):
            raise QuakeError(
                "legacy (<= 2020) autogempa.xml layout is not supported: lon,lat coordinates "
                "and no DateTime"
            )
        entries.append(entry)
    return entries


def _text(entry: dict[str, Any], name: str, where: str) -> str:
    if name not in entry:
        raise QuakeError(f"{where}: missing {name}")
    value = entry[name]
    if not isinstance(value, str):  # BMKG sends every value as a string
        raise QuakeError(f"{where}.{name}: expected a string, got {type(value).__name__}")
    return value


def _optional(entry: dict[str, Any], name: str, where: str) -> str | None:
    if entry.get(name) is None:
        return None
    return _text(entry, name, where).strip() or None


def _float(pattern: re.Pattern[str], text: str, what: str) -> tuple[float, ...]:
    match = pattern.match(text)
    if not match:
        raise QuakeError(f"invalid {what}: {shorten(text)!r}")
    values = tuple(float(g) for g in match.groups())
    if not all(math.isfinite(v) for v in values):
        raise QuakeError(f"invalid {what}: {shorten(text)!r}")
    return values


def _quake(entry: dict[str, Any], feed: str | None, where: str) -> Quake:
    time_text = _text(entry, "DateTime", where)
    try:
        moment = datetime.fromisoformat(time_text.strip())
    except ValueError:
        raise QuakeError(f"{where}: invalid DateTime {shorten(time_text)!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise QuakeError(f"{where}: DateTime {shorten(time_text)!r} has no UTC offset")
    if not 1900 <= moment.year < 2200:
        raise QuakeError(f"{where}: implausible DateTime {shorten(time_text)!r}")
    moment = moment.astimezone(UTC)
    lat, lon = _float(_COORDS_RE, _text(entry, "Coordinates", where), f"{where} Coordinates")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise QuakeError(f"{where}: coordinates out of range")
    (magnitude,) = _float(_MAGNITUDE_RE, _text(entry, "Magnitude", where), f"{where} Magnitude")
    if not -2.0 <= magnitude <= 10.0:
        raise QuakeError(f"{where}: implausible magnitude {magnitude:g}")
    (depth,) = _float(_DEPTH_RE, _text(entry, "Kedalaman", where), f"{where} Kedalaman")
    if not 0.0 <= depth <= 1000.0:
        raise QuakeError(f"{where}: implausible depth {depth:g} km")
    return Quake(
        feed=feed,
        time=moment,
        lat=lat,
        lon=lon,
        magnitude=magnitude,
        depth_km=depth,
        region=_optional(entry, "Wilayah", where) or "",
        potential=_optional(entry, "Potensi", where),
        felt=_optional(entry, "Dirasakan", where),
        shakemap=_optional(entry, "Shakemap", where),
        local_clock_consistent=_clock_consistent(
            _optional(entry, "Tanggal", where), _optional(entry, "Jam", where), moment
        ),
    )


def _clock_consistent(tanggal: str | None, jam: str | None, moment: datetime) -> bool | None:
    """Do ``Tanggal`` ("9 Jan 2024") and ``Jam`` ("20:17:26 WIB") name the same instant as
    ``DateTime``? None when they cannot be read."""
    if not tanggal or not jam:
        return None
    date_match = re.fullmatch(r"(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})", tanggal.strip())
    time_match = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})(?:\s*WIB)?", jam.strip())
    if not date_match or not time_match:
        return None
    month = _MONTHS.get(date_match.group(2).lower())
    if month is None:
        return None
    try:
        local = datetime(
            int(date_match.group(3)), month, int(date_match.group(1)),
            int(time_match.group(1)), int(time_match.group(2)), int(time_match.group(3)),
            tzinfo=_WIB,
        )
    except ValueError:
        return None
    return local == moment

