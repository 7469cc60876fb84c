"""Replay recorded BMKG files (nowcast CAP, forecast JSON, earthquake feeds) onto their raw
topics in their original order and relative timing, each document at most once.

Thin shell: the kind of each file is detected from its content (the name is only a fallback
for content too broken to tell), parsing is the pure parsers', and a file that does not parse
is dead-lettered with the reason while the replay goes on. Before publishing, the keys already
on the raw topics are read (``dedupe.py``), so replaying a directory twice lands nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from producers.bmkg import cap as cap_mod
from producers.bmkg import forecast as forecast_mod
from producers.bmkg import quake as quake_mod
from producers.bmkg.cap import CapError, parse_cap
from producers.bmkg.dedupe import KeyLedger, load_ledger
from producers.publisher import Publisher
from schemas.events import RawDocument, utc_now
from schemas.topics import BMKG_RAW_TOPICS, FORECAST_RAW, NOWCAST_RAW, QUAKE_RAW, TopicSpec

log = logging.getLogger(__name__)

#: Recorded gaps longer than this are shortened to it: a directory mixing a 2022 quake and a
#: 2026 warning should replay in order, not over four years.
MAX_GAP_S = 3600.0
_SUFFIXES = {".xml", ".json"}


class Kind(StrEnum):
    NOWCAST = "nowcast"
    FORECAST = "forecast"
    QUAKE = "quake"
    RSS = "rss"


_SPEC = {Kind.NOWCAST: NOWCAST_RAW, Kind.FORECAST: FORECAST_RAW, Kind.QUAKE: QUAKE_RAW,
         Kind.RSS: NOWCAST_RAW}
_SOURCE = {Kind.NOWCAST: cap_mod.SOURCE, Kind.FORECAST: forecast_mod.SOURCE,
           Kind.QUAKE: quake_mod.SOURCE, Kind.RSS: cap_mod.SOURCE}
_CONTENT_TYPE = {Kind.NOWCAST: "application/xml", Kind.FORECAST: "application/json",
                 Kind.QUAKE: "application/json", Kind.RSS: "application/rss+xml"}


@dataclass(frozen=True)
class Recorded:
    path: Path
    body: bytes
    kind: Kind
    at: datetime | None = None  # CAP sent, newest quake DateTime, forecast analysis_date
    key: str | None = None
    error: str | None = None

    @property
    def spec(self) -> TopicSpec:
        return _SPEC[self.kind]


@dataclass
class ReplayResult:
    published: int = 0
    rejected: int = 0
    skipped: int = 0  # RSS indexes: they only point at CAP files
    duplicates: int = 0  # already on the raw topic


def detect_kind(body: bytes, name: str = "") -> Kind:
    """The feed a recorded file belongs to, from its content; its name breaks ties only for
    content too broken to tell (e.g. empty or binary)."""
    head = body[:2048].lstrip()
    if head.startswith(b"<"):
        if b"<rss" in head:
            return Kind.RSS
        if b"<Infogempa" in head:
            return Kind.QUAKE
        if b"<alert" in head or b"cap:1.2" in head:
            return Kind.NOWCAST
    elif head.startswith((b"{", b"[")):
        if b'"Infogempa"' in head:
            return Kind.QUAKE
        if any(marker in head for marker in (b'"lokasi"', b'"cuaca"', b'"Data not found"')):
            return Kind.FORECAST
    lowered = name.lower()
    if "gempa" in lowered:
        return Kind.QUAKE
    if "prakiraan" in lowered or "forecast" in lowered:
        return Kind.FORECAST
    if lowered.endswith(".json"):
        return Kind.FORECAST
    return Kind.NOWCAST


def classify(path: Path, body: bytes) -> Recorded:
    """Detect, parse and key one recorded file (pure)."""
    kind = detect_kind(body, path.name)
    try:
        if kind is Kind.RSS:
            return Recorded(path, body, kind)
        if kind is Kind.NOWCAST:
            alert = parse_cap(body, file_name=path.name)
            return Recorded(path, body, kind, alert.sent, alert.dedupe_key())
        if kind is Kind.FORECAST:
            forecast = forecast_mod.parse_forecast(body)
            return Recorded(path, body, kind, forecast.analysis_date,
                            forecast_mod.document_key(forecast, body))
        quakes = quake_mod.parse_quake(body, file_name=path.name)
        feed = quakes[0].feed
        return Recorded(path, body, kind, max(q.time for q in quakes),
                        quake_mod.document_key(quakes, body, feed))
    except (CapError, forecast_mod.ForecastError, quake_mod.QuakeError) as exc:
        return Recorded(path, body, kind, error=str(exc))


def load_directory(directory: Path) -> list[Recorded]:
    """Recorded files under ``directory`` (recursively), in original order: by their own time,
    then by name; files that did not parse come last, by name."""
    found = [
        classify(path, path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix.lower() in _SUFFIXES
    ]
    far_future = datetime.max.replace(tzinfo=utc_now().tzinfo)
    return sorted(found, key=lambda r: (r.error is not None, r.at or far_future, r.path.name))


def replay(
    directory: Path,
    publisher: Publisher,
    *,
    speed: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    ledger: KeyLedger | None = None,
) -> ReplayResult:
    """Publish each recorded document not already on its raw topic. ``speed`` 1.0 keeps the
    original gaps (each capped at :data:`MAX_GAP_S`), 10 is ten times faster, 0 sends at once.
    Without a ``ledger``, the raw topics are read from the beginning first."""
    if ledger is None:
        ledger = load_ledger(publisher.bootstrap, BMKG_RAW_TOPICS, prefix=publisher.prefix)
    result = ReplayResult()
    previous: datetime | None = None
    for recorded in load_directory(directory):
        if recorded.kind is Kind.RSS:
            result.skipped += 1
            continue
        if recorded.error is not None or recorded.key is None:
            publisher.dead_letter(
                source_topic=recorded.spec.full_name(publisher.prefix), key=recorded.path.name,
                value=recorded.body, stage=f"replay-{recorded.kind.value}",
                reason=recorded.error or "no key",
            )
            result.rejected += 1
            continue
        if ledger.seen(recorded.spec, recorded.key):
            result.duplicates += 1
            continue
        at = recorded.at
        if speed > 0 and previous is not None and at is not None and at > previous:
            sleep(min((at - previous).total_seconds(), MAX_GAP_S) / speed)
        if at is not None:
            previous = at
        document = RawDocument(
            source=_SOURCE[recorded.kind],
            source_id=recorded.key,
            name=recorded.path.name,
            fetched_at=utc_now(),
            content_type=_CONTENT_TYPE[recorded.kind],
            body=recorded.body.decode("utf-8", errors="replace"),
        )
        publisher.send(recorded.spec, recorded.key, document)
        ledger.add(recorded.spec, recorded.key)
        result.published += 1
    publisher.flush()
    return result
