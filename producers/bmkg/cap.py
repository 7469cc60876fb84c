"""BMKG nowcast warnings: CAP 1.2 bytes in, a :class:`CapAlert` and kelurahan Signals out.

Pure: no network, no Kafka. :func:`parse_cap` raises exactly one exception type,
:class:`CapError`, for anything it will not accept, so callers can dead-letter on it and treat
every other exception as a bug. Format notes: ``tests/data/bmkg/PROVENANCE.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from xml.etree.ElementTree import Element

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from shapely.geometry import Polygon

from producers.bmkg.safexml import parse_untrusted, shorten
from schemas.events import (
    BMKG_ATTRIBUTION,
    Hazard,
    MsgType,
    Proximity,
    Severity,
    Signal,
    SignalSource,
)
from schemas.geography import Geography, load_geography

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_NS = "{" + CAP_NS + "}"
_ALERT_TAG = _NS + "alert"

# BMKG's "kode_detail_cap": C + 2-letter province + YYYYMMDD + 3-digit sequence (CBL20261010002).
_FILE_CODE_RE = re.compile(r"(?<![A-Za-z0-9])(C[A-Z]{2}\d{11})(?!\d)")
# Plain decimal degrees only: float() alone would also take "nan", "1e2" and "1_0".
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_KECAMATAN_LIST_RE = re.compile(
    r"(?:khususnya\s+di|especially\s+in)\s*:?\s*(?P<names>[^\n]*?)\s*(?:\.(?=\s|$)|\n|$)",
    re.IGNORECASE,
)

# Checked in order, as substrings of the lower-cased <event>: "Hujan Lebat dan Petir" is a
# thunderstorm, not heavy rain, so thunder comes first.
_EVENT_RULES: tuple[tuple[tuple[str, ...], Hazard], ...] = (
    (("petir", "thunder"), Hazard.THUNDERSTORM),
    (("hujan lebat", "heavy rain"), Hazard.HEAVY_RAIN),
    (("angin kencang", "strong wind"), Hazard.STRONG_WIND),
)
# OASIS Event Terms codes. Only the one BMKG was seen to use is mapped; others would be guesses.
_OET_HAZARDS: dict[str, Hazard] = {"OET-194": Hazard.THUNDERSTORM}

# CAP "Exercise", "System", "Test" and "Draft" messages must not reach the public.
_PUBLIC_STATUSES = frozenset({"Actual"})
SOURCE = "bmkg.nowcast"


class CapError(ValueError):
    """The document is not a CAP 1.2 alert Kentongan can use; the message says why."""


class CapReference(BaseModel):
    """One entry of CAP ``<references>``: an earlier message this one updates or cancels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: str
    identifier: str
    sent: AwareDatetime

    def as_cap(self) -> str:
        """The CAP wire form ``sender,identifier,sent``."""
        return f"{self.sender},{self.identifier},{self.sent.isoformat()}"

    def lookup_keys(self) -> list[str]:
        """Where the referenced alert's areas are recorded (see :func:`placement_keys`)."""
        return _message_keys(self.sender, self.identifier, self.sent)


class CapAlert(BaseModel):
    """One BMKG nowcast CAP alert (the single ``<info>`` block BMKG sends, flattened)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identifier: str
    sender: str
    sent: AwareDatetime
    status: str
    msg_type: MsgType
    scope: str
    references: list[CapReference] = Field(default_factory=list)
    file_code: str | None = None
    language: str
    event: str
    # (valueName, value) pairs, e.g. ("OET:v1.2", "OET-194")
    event_codes: list[tuple[str, str]] = Field(default_factory=list)
    urgency: str
    severity: Severity
    certainty: str
    effective: AwareDatetime
    expires: AwareDatetime | None = None
    headline: str
    description: str
    area_desc: str
    # closed rings of (lat, lon) pairs, exactly as CAP gives them
    polygons: list[list[tuple[float, float]]] = Field(default_factory=list)
    web: str | None = None

    def shapely_polygons(self) -> list[Polygon]:
        """The rings as shapely polygons in (lon, lat), the order geometry code expects."""
        return [Polygon([(lon, lat) for lat, lon in ring]) for ring in self.polygons]

    def dedupe_key(self) -> str:
        """Stable identity across polls. BMKG's OID embeds the hour the feed was built, so the
        same alert can come back with a new ``identifier``; file code + sent does not change."""
        if self.file_code:
            return dedupe_key_for(self.file_code, self.sent)
        return f"{self.sender}|{self.sent.isoformat()}|{self.event}|{self.area_desc}"


def dedupe_key_for(file_code: str, sent: datetime) -> str:
    """The key of BMKG's CAP file ``file_code`` sent at ``sent``; the RSS index gives both, so
    a poller knows an alert is already on Kafka without fetching its CAP file."""
    return f"{file_code}|{sent.isoformat()}"


def parse_cap(data: bytes, *, file_name: str | None = None) -> CapAlert:
    """Parse one CAP 1.2 document. ``file_name`` (a name or URL such as
    ``CBL20261010002_alert.xml``) supplies BMKG's file code when known.

    Raises :class:`CapError` and nothing else for anything unusable: malformed XML, DTDs and
    entities (billion laughs, XXE), a root that is not a CAP 1.2 ``alert``, missing required
    fields, naive or invalid times, out-of-range or open polygons, msgType Ack/Error.
    """
    root = parse_untrusted(data, CapError)
    if root.tag != _ALERT_TAG:
        raise CapError(f"not CAP 1.2: root element {shorten(root.tag)}")
    try:
        return _alert_from(root, file_name)
    except ValidationError as exc:  # a ValueError too, but not the documented one
        raise CapError(f"invalid CAP alert: {exc}") from exc


def _alert_from(root: Element, file_name: str | None) -> CapAlert:
    msg_type_text = _required(root, "msgType")
    if msg_type_text in ("Ack", "Error"):
        raise CapError(f"unsupported msgType {msg_type_text!r}: it carries no warning")
    try:
        msg_type = MsgType(msg_type_text)
    except ValueError:
        raise CapError(f"invalid msgType {shorten(msg_type_text)!r}") from None

    # CAP allows several <info> blocks (e.g. one per language); BMKG sends exactly one.
    # Taking the first keeps a warning flowing if that ever changes.
    info = root.find(_NS + "info")
    if info is None:
        raise CapError("missing <info>")

    sent = _time(_required(root, "sent"), "sent")
    effective_text = _optional(info, "effective")
    expires_text = _optional(info, "expires")
    event = _required(info, "event")
    area_descs: list[str] = []
    polygons: list[list[tuple[float, float]]] = []
    for area in info.findall(_NS + "area"):
        area_descs.append(_required(area, "areaDesc"))
        polygons.extend(_ring(p.text or "") for p in area.findall(_NS + "polygon"))

    return CapAlert(
        identifier=_required(root, "identifier"),
        sender=_required(root, "sender"),
        sent=sent,
        status=_required(root, "status"),
        msg_type=msg_type,
        scope=_required(root, "scope"),
        references=_references(_optional(root, "references")),
        file_code=_file_code(file_name),
        language=_optional(info, "language") or "en-US",  # CAP's default
        event=event,
        event_codes=[
            (_optional(code, "valueName") or "", _optional(code, "value") or "")
            for code in info.findall(_NS + "eventCode")
        ],
        urgency=_required(info, "urgency"),
        severity=_severity(_required(info, "severity")),
        certainty=_required(info, "certainty"),
        # CAP: an absent <effective> means effective from <sent>.
        effective=_time(effective_text, "effective") if effective_text else sent,
        expires=_time(expires_text, "expires") if expires_text else None,
        headline=_optional(info, "headline") or event,
        description=_optional(info, "description") or "",
        area_desc="; ".join(area_descs),
        polygons=polygons,
        web=_optional(info, "web"),
    )


def kecamatan_names_in_description(description: str) -> list[str]:
    """Kecamatan names BMKG lists after "khususnya di" / "especially in:" (up to the end of
    that sentence), stripped and de-duplicated in order. BMKG repeats names ("PINGGIR,
    PINGGIR"); polygons, not these names, decide which kelurahan are affected."""
    names: list[str] = []
    seen: set[str] = set()
    for match in _KECAMATAN_LIST_RE.finditer(description):
        for raw in match.group("names").split(","):
            name = raw.strip()
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                names.append(name)
    return names


def hazard_of(alert: CapAlert) -> Hazard:
    """Kentongan's hazard for the alert, from its ``<event>`` text (id or en), else its OET
    event code, else ``Hazard.OTHER``."""
    event = alert.event.casefold()
    for needles, hazard in _EVENT_RULES:
        if any(needle in event for needle in needles):
            return hazard
    for value_name, value in alert.event_codes:
        if value_name.upper().startswith("OET") and value.upper() in _OET_HAZARDS:
            return _OET_HAZARDS[value.upper()]
    return Hazard.OTHER


#: Where an alert lies: (kelurahan code, proximity) pairs.
Placement = Sequence[tuple[str, Proximity]]


def _message_keys(sender: str, identifier: str, sent: datetime) -> list[str]:
    # The identifier is exact; sender + sent (as a UTC instant) survives BMKG re-issuing the
    # same alert under a new OID, at the cost of merging alerts sent in the same second.
    return [f"id|{identifier}", f"sent|{sender}|{sent.astimezone(UTC).isoformat()}"]


def placement_keys(alert: CapAlert) -> list[str]:
    """Keys under which the worker records ``placement(alert)``, so a later Update or Cancel
    that names this alert in ``<references>`` can find the kelurahan it covered."""
    return _message_keys(alert.sender, alert.identifier, alert.sent)


def referenced_placement(
    alert: CapAlert, recorded: Callable[[str], Placement | None]
) -> list[tuple[str, Proximity]]:
    """Union of where the alerts named in ``<references>`` lay, per ``recorded(key)``; for each
    reference the exact identifier is tried before sender + sent."""
    found: dict[str, Proximity] = {}
    for reference in alert.references:
        for key in reference.lookup_keys():
            areas = recorded(key)
            if areas:
                for code, proximity in areas:
                    # INSIDE outranks ADJACENT when two referenced alerts disagree.
                    if found.get(code) is not Proximity.INSIDE:
                        found[code] = Proximity(proximity)
                break
    return sorted(found.items())


def still_covered(signals: Sequence[Signal]) -> list[tuple[str, Proximity]]:
    """Where an alert lies once its signals apply: what a later Update or Cancel refers to."""
    return [(s.area_code, s.proximity) for s in signals if s.msg_type is not MsgType.CANCEL]


class PlacementMemory(Protocol):
    """Where earlier alerts lay (the worker: a global table; simulate: a dict)."""

    def get(self, key: str) -> Any: ...

    def __setitem__(self, key: str, value: list[list[str]]) -> None: ...


def signals_remembering(
    alert: CapAlert, geography: Geography, memory: PlacementMemory
) -> list[Signal]:
    """``signals_from_cap`` that follows ``<references>`` through ``memory`` and records where
    this alert lies, so a later Update or Cancel naming it (perhaps without polygons) reaches
    the same kelurahan."""
    referenced = referenced_placement(alert, memory.get)
    found = signals_from_cap(alert, geography, referenced)
    covered = still_covered(found)
    if covered or referenced:
        for key in placement_keys(alert):
            memory[key] = [[code, proximity.value] for code, proximity in covered]
    return found


def placement(alert: CapAlert, geography: Geography) -> list[tuple[str, Proximity]]:
    """Kelurahan the polygons overlap with positive area (inside), then kelurahan that only
    border a Lombok Barat desa the polygons overlap (adjacent)."""
    polygons = alert.shapely_polygons()
    inside = [area.code for area in geography.kelurahan_overlapping(polygons)]
    nearby = {
        area.code
        for desa in geography.neighbours_overlapping(polygons)
        for area in geography.adjacent_kelurahan(desa.code)
    } - set(inside)
    return [(code, Proximity.INSIDE) for code in inside] + [
        (code, Proximity.ADJACENT) for code in sorted(nearby)
    ]


def signals_from_cap(
    alert: CapAlert, geography: Geography, referenced: Placement = ()
) -> list[Signal]:
    """One ``Signal`` per kelurahan of ``placement(alert)``; ``[]`` when there is none, or when
    the alert is not ``status`` Actual.

    ``referenced`` is where the alerts this one names in ``<references>`` lay (the worker
    remembers it). An Update replaces them: its own areas get Update signals and referenced
    areas it no longer covers get Cancel signals; an Update without polygons keeps their areas.
    A Cancel cancels its own areas and every referenced one.
    """
    if alert.status not in _PUBLIC_STATUSES:
        return []
    placed = dict(placement(alert, geography))
    dropped: dict[str, Proximity] = {}
    if alert.msg_type is MsgType.UPDATE:
        if not alert.polygons:
            placed = dict(referenced)
        dropped = {code: p for code, p in referenced if code not in placed}
    elif alert.msg_type is MsgType.CANCEL:
        placed = {**dict(referenced), **placed}
    if not placed and not dropped:
        return []
    source_id = alert.dedupe_key()
    hazard = hazard_of(alert)
    references = [ref.as_cap() for ref in alert.references]
    alert_keys = placement_keys(alert)
    reference_keys = [key for ref in alert.references for key in ref.lookup_keys()]
    areas = [(code, p, alert.msg_type) for code, p in placed.items()]
    areas += [(code, p, MsgType.CANCEL) for code, p in dropped.items()]
    return [
        Signal(
            signal_id=f"{source_id}#{code}",
            source=SignalSource.NOWCAST,
            source_id=source_id,
            msg_type=msg_type,
            references=references,
            alert_keys=alert_keys,
            reference_keys=reference_keys,
            sent=alert.sent,
            **geography.kelurahan[code].signal_fields(),
            proximity=proximity,
            hazard=hazard,
            severity=alert.severity,
            headline=alert.headline,
            description=alert.description or None,
            effective=alert.effective,
            expires=alert.expires,
            attribution=BMKG_ATTRIBUTION,
        )
        for code, proximity, msg_type in sorted(areas)
    ]




def _optional(parent: Element, tag: str) -> str | None:
    element = parent.find(_NS + tag)
    if element is None:
        return None
    return (element.text or "").strip() or None


def _required(parent: Element, tag: str) -> str:
    element = parent.find(_NS + tag)
    if element is None:
        raise CapError(f"missing <{tag}>")
    text = (element.text or "").strip()
    if not text:
        raise CapError(f"empty <{tag}>")
    return text


def _time(text: str, tag: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CapError(f"invalid time in <{tag}>: {shorten(text)!r}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise CapError(f"naive time in <{tag}>: {shorten(text)!r} has no UTC offset")
    return value


def _severity(text: str) -> Severity:
    try:
        return Severity(text.lower())
    except ValueError:
        raise CapError(f"invalid severity {shorten(text)!r}") from None


def _references(text: str | None) -> list[CapReference]:
    if not text:
        return []
    references: list[CapReference] = []
    for entry in text.split():
        parts = entry.split(",")
        if len(parts) != 3 or not all(parts):
            raise CapError(
                f"invalid <references> entry {shorten(entry)!r}: expected sender,identifier,sent"
            )
        sender, identifier, sent = parts
        references.append(
            CapReference(sender=sender, identifier=identifier, sent=_time(sent, "references"))
        )
    return references


def _ring(text: str) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for pair in text.split():
        parts = pair.split(",")
        if len(parts) != 2 or not all(_NUMBER_RE.fullmatch(p) for p in parts):
            raise CapError(f"invalid <polygon> point {shorten(pair)!r}: expected lat,lon")
        lat, lon = float(parts[0]), float(parts[1])
        if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
            raise CapError(f"<polygon> latitude out of range: {shorten(pair)!r}")
        if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
            raise CapError(f"<polygon> longitude out of range: {shorten(pair)!r}")
        points.append((lat, lon))
    if len(points) < 4:
        raise CapError(f"<polygon> has {len(points)} points; CAP needs at least 4")
    if points[0] != points[-1]:
        raise CapError("<polygon> is not closed: first and last points differ")
    return points


def _file_code(file_name: str | None) -> str | None:
    if not file_name:
        return None
    basename = re.split(r"[/\\]", file_name)[-1]
    match = _FILE_CODE_RE.search(basename)
    return match.group(1) if match else None




def parse_command(data: bytes, file_name: str | None = None) -> list[Signal]:
    """``kentongan parse cap FILE``: the signals the producer would publish for this file."""
    return signals_from_cap(parse_cap(data, file_name=file_name), load_geography())
