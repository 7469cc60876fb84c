"""Citizen report -> normalized report -> Signal: locate the kelurahan, classify the hazard.

Pure code: no Kafka, no HTTP. Both the intake (for ``GET /reports/{id}``) and the worker (for
the ``signals`` topic) call it, and ``kentongan parse report FILE`` prints what it decides.

Location, best first: the GPS point in a kelurahan polygon (confidence 1.0); a kelurahan name
or known spelling variant in ``location_text`` or ``text`` (0.8); a kecamatan name only (0.5,
``area_code`` null). Anything else - a place outside Kota Mataram or no place at all - is kept
and routed to the call centre: a person reads it, nothing is dropped.

Hazard: an explicit ``category`` wins; else ordered rules of word patterns (data, below);
the words that matched are returned so an operator sees why.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ValidationError
from shapely.geometry import Point

from producers.intake.phones import safe_reporter_ref
from schemas.events import (
    Channel,
    DeliveryJob,
    Hazard,
    ReporterKind,
    Severity,
    Signal,
    SignalSource,
)
from schemas.geography import Geography, load_geography
from schemas.reports import (
    CitizenReport,
    LocationMethod,
    Matched,
    NormalizedReport,
    ReportChannel,
    ReportSubmission,
    Route,
)

# A citizen report is a claim until corroborated; it lives as long as a typical nowcast.
REPORT_VALIDITY = timedelta(hours=3)

CONFIDENCE_GPS = 1.0
CONFIDENCE_KELURAHAN = 0.8
# GPS outside Mataram but the text names a kelurahan: the phone may be elsewhere than the event.
CONFIDENCE_KELURAHAN_GPS_DISAGREES = 0.6
CONFIDENCE_KECAMATAN = 0.5

# Ordered: the first rule with a match decides. Impacts come before their causes (a flood
# caused by heavy rain is a flood; a tree felled by wind is a fallen tree), and earthquake
# comes first because "roboh"/"retak" after a quake are the quake's damage.
# Patterns run on folded text (lower case, ASCII, single spaces, no punctuation).
_W = r"(?:\w+ ){0,4}"  # up to four words between: "pohon besar di depan sekolah tumbang"
HAZARD_RULES: tuple[tuple[Hazard, tuple[str, ...]], ...] = (
    (Hazard.EARTHQUAKE, (r"gempa(?: bumi)?(?:nya)?", r"lindu", r"retak(?:an)?", r"earthquakes?",
                         r"quake", r"tremors?")),
    (Hazard.LANDSLIDE, (r"(?:tanah )?longsor(?:an)?", r"landslides?", r"mudslides?")),
    (Hazard.FALLEN_TREE, (rf"pohon {_W}(?:tumbang|roboh|rubuh|patah)(?:nya)?",
                          r"(?:fallen|downed) trees?", rf"trees? {_W}(?:down|fell|fallen)")),
    (Hazard.FIRE, (r"kebakaran", r"terbakar", r"api(?:nya)?", r"fires?", r"burning")),
    (Hazard.HIGH_WAVES, (r"gelombang (?:pasang|tinggi)", r"ombak (?:besar|tinggi)", r"rob",
                         r"banjir rob", r"high waves?", r"tidal flood(?:ing)?", r"storm surge")),
    (Hazard.FLOOD, (r"(?:ke)?banjir(?:an|nya)?", r"genangan", r"tergenang", r"air masuk rumah",
                    r"air masuk ke rumah", r"floods?", r"flooding", r"flooded")),
    (Hazard.STRONG_WIND, (r"angin (?:kencang|ribut|puyuh|besar)", r"puting beliung",
                          r"strong winds?", r"whirlwind", r"tornado")),
    (Hazard.THUNDERSTORM, (r"petir", r"guntur", r"badai", r"thunder(?:storm)?s?", r"lightning")),
    (Hazard.HEAVY_RAIN, (r"hujan (?:deras|lebat|besar)", r"heavy rain(?:fall)?", r"downpour")),
)
_HAZARD_PATTERNS = tuple(
    (hazard, tuple(re.compile(rf"(?<![a-z0-9]){p}(?![a-z0-9])") for p in patterns))
    for hazard, patterns in HAZARD_RULES
)

# Places outside Kota Mataram that people name; Lombok Barat border kecamatan and desa come from
# the packaged geography. "bengkel" (a desa, but also "workshop") is left out on purpose.
OUTSIDE_NAMES = ("senggigi", "lombok barat", "lombok tengah", "lombok timur", "lombok utara",
                 "praya", "selong", "gerung", "sumbawa", "bima", "dompu", "bali", "denpasar")
_AMBIGUOUS_OUTSIDE = {"bengkel"}


class UnlocatedReport(ValueError):
    """The report names no kelurahan of Kota Mataram that we can resolve."""


class ReportInputError(ValueError):
    """``parse_command`` input that is not a report: names the line and the field."""


def fold(text: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces, and expand the written
    reduplication "sayang2" to "sayang sayang": the form names and words are matched in."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split()
    out: list[str] = []
    for word in words:
        m = re.fullmatch(r"([a-z]{3,})2", word)
        out.extend([m.group(1), m.group(1)] if m else [word])
    return " ".join(out)


# --- hazard -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HazardReading:
    hazard: Hazard
    source: Literal["category", "text", "default"]
    matched: list[str]


def classify_text(text: str, category: Hazard | None = None) -> HazardReading:
    if category is not None:
        return HazardReading(category, "category", [f"category={category.value}"])
    folded = fold(text)
    for hazard, patterns in _HAZARD_PATTERNS:
        words = [m.group(0) for p in patterns for m in p.finditer(folded)]
        if words:
            return HazardReading(hazard, "text", sorted(set(words), key=folded.find))
    return HazardReading(Hazard.OTHER, "default", [])


def classify(report: CitizenReport | ReportSubmission) -> Hazard:
    return classify_text(report.text, report.category).hazard


# --- location ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Name:
    words: tuple[str, ...]
    kind: Literal["kelurahan", "kecamatan", "outside"]
    code: str  # kelurahan or kecamatan code; "" for outside names not in the geography


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    name: _Name


class PlaceIndex:
    """Whole-word name matcher over kelurahan, kecamatan and outside names with variants."""

    def __init__(self, geography: Geography, variants: Iterable[tuple[str, str]]) -> None:
        names: dict[tuple[str, ...], _Name] = {}

        def add(text: str, kind: Literal["kelurahan", "kecamatan", "outside"], code: str) -> None:
            words = tuple(fold(text).split())
            if words and words not in names:
                names[words] = _Name(words, kind, code)

        for area in geography.kelurahan.values():
            add(area.name, "kelurahan", area.code)
        for kec_code, kec_name in geography.kecamatan_names.items():
            if not kec_code.startswith("52.71."):
                add(kec_name, "outside", kec_code)
            elif fold(kec_name) == "mataram":
                # Bare "Mataram" means the city; only "kecamatan Mataram" means the kecamatan.
                for prefix in ("kecamatan", "kec"):
                    add(f"{prefix} {kec_name}", "kecamatan", kec_code)
            else:
                add(kec_name, "kecamatan", kec_code)
        for variant, code in variants:
            if code in geography.kelurahan:
                add(variant, "kelurahan", code)
            elif code.startswith("52.71.") and code in geography.kecamatan_names:
                add(variant, "kecamatan", code)
            elif code.startswith("52.01"):
                add(variant, "outside", code)
        for desa in geography.neighbours.values():
            if fold(desa.name) not in _AMBIGUOUS_OUTSIDE:
                add(desa.name, "outside", desa.code)
        for place in OUTSIDE_NAMES:
            add(place, "outside", "")
        self._by_first: dict[str, list[_Name]] = {}
        for name in names.values():
            self._by_first.setdefault(name.words[0], []).append(name)

    def find(self, text: str) -> list[_Hit]:
        """Non-overlapping hits in text order; where names overlap the longest wins, so
        "Pagutan Barat" is Pagutan Barat and a lone "Pagutan" is Pagutan."""
        words = fold(text).split()
        hits = [
            _Hit(i, i + len(name.words), name)
            for i, word in enumerate(words)
            for name in self._by_first.get(word, ())
            if tuple(words[i:i + len(name.words)]) == name.words
        ]
        chosen: list[_Hit] = []
        for hit in sorted(hits, key=lambda h: (-(h.end - h.start), h.start)):
            if all(hit.end <= c.start or hit.start >= c.end for c in chosen):
                chosen.append(hit)
        return sorted(chosen, key=lambda h: h.start)


def _name_variants() -> list[tuple[str, str]]:
    # The project copy (provenance in schemas/data/mataram/PROVENANCE.md).
    data = files("schemas").joinpath("data", "mataram", "name_variants.csv").read_text("utf-8")
    return [(r["variant"], r["kemendagri_code"]) for r in csv.DictReader(io.StringIO(data))]


@functools.cache
def _index_for(geography: Geography) -> PlaceIndex:
    return PlaceIndex(geography, _name_variants())


@dataclass(frozen=True)
class Location:
    method: LocationMethod
    confidence: float
    area_code: str | None = None
    kecamatan_code: str | None = None
    matched: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


def locate_fields(
    geography: Geography,
    *,
    lat: float | None,
    lon: float | None,
    texts: Sequence[str | None],
) -> Location:
    """Place a report: GPS first, then names in ``texts`` (first text with a name wins)."""
    flags: list[str] = []
    if lat is not None and lon is not None:
        area = geography.kelurahan_at(lat, lon)
        if area is not None:
            return Location(LocationMethod.GPS, CONFIDENCE_GPS, area.code, area.kecamatan_code,
                            (f"gps {lat:.5f},{lon:.5f}",))
        flags.append("gps_outside_mataram")
        near = [d for d in geography.neighbours.values() if d.geometry.intersects(Point(lon, lat))]
        if near:
            flags.append(f"gps_in_{near[0].code}")

    index = _index_for(geography)
    kecamatan_hit: _Hit | None = None
    outside_hit: _Hit | None = None
    for text in texts:
        if not text:
            continue
        hits = index.find(text)
        kelurahan = [h for h in hits if h.name.kind == "kelurahan"]
        if kelurahan:
            first = kelurahan[0]
            if len({h.name.code for h in kelurahan}) > 1:
                flags.append("several_kelurahan_named")
            confidence = CONFIDENCE_KELURAHAN_GPS_DISAGREES if flags and flags[0].startswith(
                "gps_outside") else CONFIDENCE_KELURAHAN
            area = geography.kelurahan[first.name.code]
            return Location(LocationMethod.KELURAHAN_NAME, confidence, area.code,
                            area.kecamatan_code, (" ".join(first.name.words),), tuple(flags))
        kecamatan_hit = kecamatan_hit or next((h for h in hits if h.name.kind == "kecamatan"),
                                              None)
        outside_hit = outside_hit or next((h for h in hits if h.name.kind == "outside"), None)
    if kecamatan_hit is not None:
        return Location(LocationMethod.KECAMATAN_NAME, CONFIDENCE_KECAMATAN, None,
                        kecamatan_hit.name.code, (" ".join(kecamatan_hit.name.words),),
                        tuple(flags))
    if outside_hit is not None or flags:
        words = (" ".join(outside_hit.name.words),) if outside_hit else ()
        return Location(LocationMethod.OUTSIDE, 0.0, matched=words, flags=tuple(flags))
    return Location(LocationMethod.NONE, 0.0, flags=("no_place_found",))


def normalize(
    report: CitizenReport | ReportSubmission, geography: Geography, *, report_id: str | None = None
) -> NormalizedReport:
    """The normalized reading of one submission (``report_id`` fills a missing one)."""
    hazard = classify_text(report.text, report.category)
    where = locate_fields(geography, lat=report.lat, lon=report.lon,
                          texts=(report.location_text, report.text))
    area = geography.kelurahan[where.area_code] if where.area_code else None
    kec_code = where.kecamatan_code
    return NormalizedReport(
        report_id=report.report_id or report_id,
        channel=report.channel,
        reporter_ref=safe_reporter_ref(report.reporter),
        reported_at=report.reported_at,
        hazard=hazard.hazard,
        hazard_source=hazard.source,
        area_code=where.area_code,
        area_name=area.name if area else None,
        kecamatan_code=kec_code,
        kecamatan_name=geography.kecamatan_names.get(kec_code) if kec_code else None,
        location_method=where.method,
        location_confidence=where.confidence,
        outside_mataram=where.method is LocationMethod.OUTSIDE,
        route=Route.SIGNAL if where.area_code else Route.CALLCENTRE,
        matched=Matched(hazard=hazard.matched, location=list(where.matched)),
        flags=list(where.flags),
    )


def locate(report: CitizenReport, geography: Geography) -> NormalizedReport:
    """The normalized report if it names a kelurahan; else :class:`UnlocatedReport`."""
    normalized = normalize(report, geography)
    if normalized.area_code is None:
        where = (f"kecamatan {normalized.kecamatan_name} only" if normalized.kecamatan_code
                 else "outside Kota Mataram" if normalized.outside_mataram
                 else "no place in Kota Mataram named")
        raise UnlocatedReport(f"report {report.report_id}: {where}; route to the call centre")
    return normalized


def reporter_ref(reporter: str) -> str:
    return safe_reporter_ref(reporter)


def report_from_raw(key: bytes | str | None, value: bytes | str | None) -> CitizenReport:
    """Decode a ``reports.raw`` record. The intake keeps the body exactly as received, so a
    body without ``report_id`` takes it from the record key (the intake always sets it)."""
    if value is None:
        raise ValueError("empty record (tombstone or null value)")
    try:
        body = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"reports.raw value is not JSON: {exc}") from None
    if isinstance(body, dict) and not body.get("report_id") and key:
        body["report_id"] = key.decode() if isinstance(key, bytes) else key
    return CitizenReport.model_validate(body)


#: Kafka header with which the intake records how it verified the reporter (a ReporterKind).
IDENTITY_HEADER = "kentongan-identity"

# Without the intake's header (reports an operator published from a file) the channel says how
# the reporter is known: the SMS gateway saw the number, an agent opened the ticket, the app
# vouched for its account.
_KIND_OF_CHANNEL = {
    ReportChannel.SMS: ReporterKind.PHONE,
    ReportChannel.CALLCENTRE: ReporterKind.CALLCENTRE_TICKET,
    ReportChannel.APP: ReporterKind.APP_ACCOUNT,
}


def reporter_kind(report: CitizenReport, recorded: bytes | str | None = None) -> ReporterKind:
    """How the reporter's identity is known: the intake's record if there is one."""
    if recorded:
        text = recorded.decode() if isinstance(recorded, bytes) else recorded
        try:
            return ReporterKind(text)
        except ValueError:
            return ReporterKind.UNVERIFIED
    return _KIND_OF_CHANNEL[report.channel]


def signal_from_report(
    report: CitizenReport, geography: Geography, kind: ReporterKind | None = None
) -> Signal:
    normalized = locate(report, geography)
    assert normalized.area_code is not None  # locate() raises otherwise
    area = geography.kelurahan[normalized.area_code]
    hazard = normalized.hazard
    reporter = reporter_ref(report.reporter)
    return Signal(
        signal_id=f"report:{report.report_id}#{area.code}",
        source=SignalSource.REPORT,
        source_id=f"report:{report.report_id}",
        **area.signal_fields(),
        hazard=hazard,
        severity=Severity.MINOR,
        headline=f"Laporan warga: {hazard.value} di {area.name}",
        description=report.text,
        effective=report.reported_at,
        expires=report.reported_at + REPORT_VALIDITY,
        reporter_ref=reporter,
        reporter_kind=kind or reporter_kind(report),
    )


CALLCENTRE_DESK = "callcentre"  # the 112 duty desk: the recipient of unplaceable reports


def callcentre_job(report: CitizenReport, geography: Geography, now: datetime) -> DeliveryJob:
    """For the worker: a report no kelurahan could be found for goes to the 112 desk, so a
    person reads it and calls back (the number is on ``reports.raw`` under the report id; it
    is deliberately not copied into the job)."""
    n = normalize(report, geography)
    where = (f"Kec. {n.kecamatan_name}" if n.kecamatan_name
             else "di luar Kota Mataram" if n.outside_mataram else "lokasi tidak diketahui")
    return DeliveryJob(
        job_key=f"report:{report.report_id}/1/{CALLCENTRE_DESK}/{Channel.CALLCENTRE.value}",
        incident_id=f"report:{report.report_id}",
        version=1,
        channel=Channel.CALLCENTRE,
        recipient=CALLCENTRE_DESK,
        subscriber_id=CALLCENTRE_DESK,
        area_code=n.kecamatan_code or "52.71",
        language="id",
        text=(f"Laporan warga {report.report_id} ({report.channel.value}) perlu dilokasikan: "
              f"{n.hazard.value}, {where}. Pesan: {report.text}"),
        created_at=now,
    )


# --- kentongan parse report -------------------------------------------------------------------

def _documents(data: bytes) -> list[tuple[int, object]]:
    text = data.decode("utf-8-sig")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    else:
        return [(1, item) for item in whole] if isinstance(whole, list) else [(1, whole)]
    docs: list[tuple[int, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                docs.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ReportInputError(f"line {number}: not JSON: {exc.msg}") from None
    return docs


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()
    )


def parse_command(data: bytes, file_name: str | None = None) -> list[BaseModel]:
    """One JSON report as POSTed, a JSON array, or JSON lines -> one NormalizedReport each."""
    geography = load_geography()
    out: list[BaseModel] = []
    for number, doc in _documents(data):
        try:
            submission = ReportSubmission.model_validate(doc)
        except ValidationError as exc:
            raise ReportInputError(f"line {number}: {_describe(exc)}") from None
        out.append(normalize(submission, geography))
    if not out:
        raise ReportInputError(f"{file_name or 'input'}: no report in it")
    return out
