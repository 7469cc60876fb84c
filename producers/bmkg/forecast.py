"""BMKG public forecast API (``prakiraan-cuaca`` per adm4): JSON bytes in, a :class:`Forecast`
and kelurahan Signals out.

Pure: no network, no Kafka. :func:`parse_forecast` raises exactly one exception type,
:class:`ForecastError`, for anything it will not accept (truncated JSON, BMKG's 404 body
``{"message":"Data not found",...}``, a wrong shape), so callers dead-letter on it.

Quirks handled (tests/data/bmkg/PROVENANCE.md, FORMATS.md §4):
- ``local_datetime`` / ``utc_datetime`` are zone-less text. ``utc_datetime`` is UTC; the local
  wall clock is interpreted with ``lokasi.timezone``, which is an IANA name ("Asia/Jakarta") at
  the top level but "+0700" style inside ``data[].lokasi``.
- ``cuaca`` is grouped by *local* calendar day with variable sizes (4/8/8, 8/8/2): days are
  derived from ``local_datetime``, never from array positions.
- ``vs`` / ``vs_text`` may be null; the ``weather`` code changed meaning between API versions,
  so hazards are read from ``weather_desc`` / ``weather_desc_en`` text only.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict

from producers.bmkg.safexml import shorten
from schemas.events import (
    BMKG_ATTRIBUTION,
    Hazard,
    RawDocument,
    Severity,
    Signal,
    SignalSource,
)
from schemas.geography import Geography, load_geography

SOURCE = "bmkg.forecast"

#: Strong wind from ``ws`` (km/h). BMKG's extreme-weather warnings call 25 knots (about 46 km/h)
#: or more "angin kencang" (as BMKG forecasters are quoted, e.g. Harian Jogja, 20 Dec 2016; the
#: SOP regulation itself was not retrieved). 45 km/h rounds that down, so the threshold errs
#: towards warning; it lies within Beaufort 6 (39-49 km/h, "strong breeze": large branches move).
STRONG_WIND_KMH = 45.0

#: One forecast step covers three hours (FORMATS.md §4: "one step per 3 h").
STEP = timedelta(hours=3)

# Substrings of the lower-cased description, checked in order: "Hujan Petir" (thunderstorm with
# rain) is a thunderstorm, not heavy rain. "hujan sedang"/"moderate rain" is deliberately absent.
_DESC_RULES: tuple[tuple[tuple[str, ...], Hazard], ...] = (
    (("petir", "thunder"), Hazard.THUNDERSTORM),
    (("hujan lebat", "heavy rain"), Hazard.HEAVY_RAIN),
)
# A 3-day forecast is less certain than a nowcast (which BMKG marks Moderate): advisory only.
_SEVERITY: dict[Hazard, Severity] = {
    Hazard.THUNDERSTORM: Severity.MINOR,
    Hazard.HEAVY_RAIN: Severity.MINOR,
    Hazard.STRONG_WIND: Severity.MINOR,
}
_HEADLINE_ID: dict[Hazard, str] = {
    Hazard.THUNDERSTORM: "Prakiraan hujan petir",
    Hazard.HEAVY_RAIN: "Prakiraan hujan lebat",
    Hazard.STRONG_WIND: "Prakiraan angin kencang",
}
_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})$")
_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
_ZONE_ABBREVIATIONS = {7: "WIB", 8: "WITA", 9: "WIT"}


class ForecastError(ValueError):
    """The document is not a BMKG forecast Kentongan can use; the message says why."""


class ForecastLocation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    adm4: str
    provinsi: str
    kotkab: str
    kecamatan: str
    desa: str
    lat: float | None = None
    lon: float | None = None
    timezone: str


class ForecastStep(BaseModel):
    """One 3-hour step. ``utc`` is the instant; ``local`` the same instant on the area's clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    utc: AwareDatetime
    local: AwareDatetime
    weather_desc: str
    weather_desc_en: str
    weather: int | None = None
    t: float | None = None
    hu: float | None = None
    tcc: float | None = None
    tp: float | None = None
    ws: float | None = None
    wd: str | None = None
    vs: float | None = None
    vs_text: str | None = None


class AreaForecast(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    location: ForecastLocation
    steps: list[ForecastStep]

    def days(self) -> dict[date, list[ForecastStep]]:
        """Steps grouped by local calendar day (from ``local_datetime``, not array position)."""
        out: dict[date, list[ForecastStep]] = {}
        for step in self.steps:
            out.setdefault(step.local.date(), []).append(step)
        return out


class Forecast(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    location: ForecastLocation
    analysis_date: AwareDatetime | None = None
    areas: list[AreaForecast]

    def source_id(self) -> str:
        """Identity of this forecast run for one adm4: signals of a rerun replace, not add."""
        stamp = self.analysis_date.isoformat() if self.analysis_date else "unknown"
        return f"forecast|{self.location.adm4}|{stamp}"


def parse_forecast(data: bytes) -> Forecast:
    """Parse one ``api.bmkg.go.id/publik/prakiraan-cuaca?adm4=...`` response body.

    Raises :class:`ForecastError` and nothing else for anything unusable.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ForecastError(f"not JSON: {shorten(str(exc))}") from None
    if not isinstance(document, dict):
        raise ForecastError(f"expected a JSON object, got {type(document).__name__}")
    if "lokasi" not in document and "message" in document:
        # BMKG's body for an unknown adm4 (HTTP 404): {"message":"Data not found",...}
        raise ForecastError(
            f"BMKG error body: {shorten(str(document.get('message')))}"
            f" (status {shorten(str(document.get('statusCode')))})"
        )
    top = _location(_field(document, "lokasi", dict, "lokasi"), "lokasi")
    entries = _field(document, "data", list, "data")
    areas: list[AreaForecast] = []
    analysis: datetime | None = None
    for index, entry in enumerate(entries):
        where = f"data[{index}]"
        if not isinstance(entry, dict):
            raise ForecastError(f"{where}: expected an object")
        location = (
            _location(entry["lokasi"], f"{where}.lokasi") if "lokasi" in entry else top
        )
        zone = _zone(location.timezone, f"{where}.lokasi.timezone")
        days = _field(entry, "cuaca", list, f"{where}.cuaca")
        steps: list[ForecastStep] = []
        for d, day in enumerate(days):
            if not isinstance(day, list):
                raise ForecastError(f"{where}.cuaca[{d}]: expected a list of steps")
            for s, raw in enumerate(day):
                step, step_analysis = _step(raw, zone, f"{where}.cuaca[{d}][{s}]")
                steps.append(step)
                if step_analysis is not None and (analysis is None or step_analysis > analysis):
                    analysis = step_analysis
        steps.sort(key=lambda st: st.utc)
        areas.append(AreaForecast(location=location, steps=steps))
    return Forecast(location=top, analysis_date=analysis, areas=areas)


def hazards_of(step: ForecastStep) -> list[Hazard]:
    """Hazards of one step: thunderstorm or heavy rain by description text (id or en), strong
    wind by ``ws`` >= :data:`STRONG_WIND_KMH`."""
    found: list[Hazard] = []
    text = f"{step.weather_desc} | {step.weather_desc_en}".casefold()
    for needles, hazard in _DESC_RULES:
        if any(needle in text for needle in needles):
            found.append(hazard)
            break
    if step.ws is not None and step.ws >= STRONG_WIND_KMH:
        found.append(Hazard.STRONG_WIND)
    return found


def signals_from_forecast(forecast: Forecast, geography: Geography) -> list[Signal]:
    """One Signal per (Mataram kelurahan, hazard, step) for hazardous steps; ``[]`` for an adm4
    that is not one of Mataram's 50 kelurahan."""
    source_id = forecast.source_id()
    signals: list[Signal] = []
    for area_forecast in forecast.areas:
        area = geography.kelurahan.get(area_forecast.location.adm4)
        if area is None:
            continue
        for step in area_forecast.steps:
            for hazard in hazards_of(step):
                stamp = step.utc.strftime("%Y%m%dT%H%MZ")
                clock = f"{step.local:%d-%m-%Y %H:%M} {_zone_name(step.local)}"
                signals.append(
                    Signal(
                        signal_id=f"{source_id}|{hazard.value}|{stamp}#{area.code}",
                        source=SignalSource.FORECAST,
                        source_id=source_id,
                        **area.signal_fields(),
                        hazard=hazard,
                        severity=_SEVERITY[hazard],
                        headline=f"{_HEADLINE_ID[hazard]} di {area.name}, {clock}",
                        description=_describe(step),
                        effective=step.utc,
                        expires=step.utc + STEP,
                        attribution=BMKG_ATTRIBUTION,
                    )
                )
    return sorted(signals, key=lambda s: (s.effective, s.area_code, s.hazard.value))


def document_key(forecast: Forecast, body: bytes) -> str:
    """Kafka key of a raw forecast document: adm4 + run + a content digest, so a re-fetch of the
    same bytes dedupes and a silently corrected run does not."""
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"{forecast.source_id()}|{digest}"


def signals_from_document(document: RawDocument, geography: Geography) -> list[Signal]:
    """For the worker: a ``bmkg.forecast.raw`` record's signals. Raises ForecastError."""
    return signals_from_forecast(parse_forecast(document.body.encode()), geography)


def parse_command(data: bytes, file_name: str | None = None) -> list[Signal]:
    """``kentongan parse forecast FILE``: the signals the producer would publish."""
    return signals_from_forecast(parse_forecast(data), load_geography())


# --- helpers ---------------------------------------------------------------------------------


def _describe(step: ForecastStep) -> str:
    parts = [f"{step.weather_desc} / {step.weather_desc_en}"]
    if step.ws is not None:
        parts.append(f"angin {step.ws:g} km/jam" + (f" dari {step.wd}" if step.wd else ""))
    if step.tp is not None:
        parts.append(f"curah hujan {step.tp:g} mm")
    return "; ".join(parts) + ". Sumber: BMKG (prakiraan cuaca)."


def _zone_name(moment: datetime) -> str:
    offset = moment.utcoffset()
    hours = None if offset is None else offset.total_seconds() / 3600
    if hours is not None and hours.is_integer() and int(hours) in _ZONE_ABBREVIATIONS:
        return _ZONE_ABBREVIATIONS[int(hours)]
    return moment.strftime("UTC%z")


def _field(parent: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in parent:
        raise ForecastError(f"missing {where}")
    value = parent[name]
    if not isinstance(value, kind):
        raise ForecastError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _text(parent: Mapping[str, Any], name: str, where: str) -> str:
    value = _field(parent, name, str, f"{where}.{name}")
    assert isinstance(value, str)
    return value


def _number(parent: Mapping[str, Any], name: str, where: str) -> float | None:
    value = parent.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ForecastError(f"{where}.{name}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ForecastError(f"{where}.{name}: not a finite number")
    return number


def _optional_text(parent: Mapping[str, Any], name: str, where: str) -> str | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ForecastError(f"{where}.{name}: expected text, got {type(value).__name__}")
    return value


def _location(raw: Any, where: str) -> ForecastLocation:
    if not isinstance(raw, dict):
        raise ForecastError(f"{where}: expected an object")
    adm4 = _text(raw, "adm4", where)
    timezone_name = _text(raw, "timezone", where)
    _zone(timezone_name, f"{where}.timezone")  # reject an unusable zone here, with its path
    return ForecastLocation(
        adm4=adm4,
        provinsi=_optional_text(raw, "provinsi", where) or "",
        kotkab=_optional_text(raw, "kotkab", where) or "",
        kecamatan=_optional_text(raw, "kecamatan", where) or "",
        desa=_optional_text(raw, "desa", where) or "",
        lat=_number(raw, "lat", where),
        lon=_number(raw, "lon", where),
        timezone=timezone_name,
    )


def _zone(name: str, where: str) -> tzinfo:
    """``Asia/Makassar`` (IANA) or ``+0800`` / ``+08:00`` (fixed offset)."""
    match = _OFFSET_RE.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            raise ForecastError(f"{where}: offset out of range: {shorten(name)!r}")
        return timezone(-delta if sign == "-" else delta)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*", name):
        raise ForecastError(f"{where}: unknown time zone {shorten(name)!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ForecastError(f"{where}: unknown time zone {shorten(name)!r}") from None


def _wall_clock(text: str, where: str) -> datetime:
    try:
        value = datetime.strptime(text, _LOCAL_FORMAT)  # noqa: DTZ007 - zone applied by caller
    except ValueError:
        raise ForecastError(
            f"{where}: expected 'YYYY-MM-DD HH:MM:SS', got {shorten(text)!r}"
        ) from None
    # Far outside any real forecast; also keeps +3 h and zone shifts clear of datetime's range.
    if not 2000 <= value.year < 2200:
        raise ForecastError(f"{where}: implausible year {value.year}")
    return value


def _step(raw: Any, zone: tzinfo, where: str) -> tuple[ForecastStep, datetime | None]:
    if not isinstance(raw, dict):
        raise ForecastError(f"{where}: expected an object")
    local_naive = _wall_clock(_text(raw, "local_datetime", where), f"{where}.local_datetime")
    local = local_naive.replace(tzinfo=zone)
    utc_text = _optional_text(raw, "utc_datetime", where)
    # utc_datetime is UTC by definition; without it, the local clock and the zone give the instant.
    utc = (
        _wall_clock(utc_text, f"{where}.utc_datetime").replace(tzinfo=UTC)
        if utc_text
        else local.astimezone(UTC)
    )
    weather = raw.get("weather")
    if weather is not None and (isinstance(weather, bool) or not isinstance(weather, int)):
        raise ForecastError(f"{where}.weather: expected an integer code")
    analysis_text = _optional_text(raw, "analysis_date", where)
    analysis: datetime | None = None
    if analysis_text:
        try:
            # "2026-09-24T00:00:00": UTC per BMKG's documentation, written without a zone.
            parsed = datetime.fromisoformat(analysis_text)
        except ValueError:
            raise ForecastError(
                f"{where}.analysis_date: invalid {shorten(analysis_text)!r}"
            ) from None
        analysis = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if analysis.utcoffset() is None:
            raise ForecastError(f"{where}.analysis_date: invalid zone")
    step = ForecastStep(
        utc=utc,
        local=local,
        weather_desc=_text(raw, "weather_desc", where),
        weather_desc_en=_optional_text(raw, "weather_desc_en", where) or "",
        weather=weather,
        t=_number(raw, "t", where),
        hu=_number(raw, "hu", where),
        tcc=_number(raw, "tcc", where),
        tp=_number(raw, "tp", where),
        ws=_number(raw, "ws", where),
        wd=_optional_text(raw, "wd", where),
        vs=_number(raw, "vs", where),
        vs_text=_optional_text(raw, "vs_text", where),
    )
    return step, analysis

