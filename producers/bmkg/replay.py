"""Replay recorded BMKG nowcast CAP files onto ``bmkg.nowcast.raw`` in their original order.

Thin shell: parsing is ``parse_cap``; a file that does not parse is dead-lettered with the
reason and the replay goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from producers.bmkg.cap import CapAlert, CapError, parse_cap
from producers.publisher import Publisher
from schemas.events import RawDocument, utc_now
from schemas.topics import NOWCAST_RAW

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    path: Path
    body: bytes
    alert: CapAlert | None
    error: str | None

    @property
    def sent(self) -> datetime | None:
        return self.alert.sent if self.alert else None


@dataclass
class ReplayResult:
    published: int = 0
    rejected: int = 0
    skipped: int = 0


def is_rss_index(body: bytes) -> bool:
    head = body[:600].lstrip()
    return b"<rss" in head


def load_directory(directory: Path) -> list[Recorded]:
    """CAP files of a directory, ordered by ``sent`` (unparseable ones last, by name)."""
    found: list[Recorded] = []
    for path in sorted(directory.glob("*.xml")):
        body = path.read_bytes()
        try:
            found.append(Recorded(path, body, parse_cap(body, file_name=path.name), None))
        except CapError as exc:
            found.append(Recorded(path, body, None, str(exc)))
    far_future = datetime.max.replace(tzinfo=utc_now().tzinfo)
    return sorted(found, key=lambda r: (r.sent or far_future, r.path.name))


def replay(
    directory: Path,
    publisher: Publisher,
    *,
    speed: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """Publish each recorded CAP; ``speed`` 1.0 keeps the original gaps, 0 sends at once."""
    result = ReplayResult()
    previous: datetime | None = None
    for recorded in load_directory(directory):
        if recorded.alert is None:
            if is_rss_index(recorded.body):
                # The RSS index only points at CAP files; the CAP files themselves are replayed.
                result.skipped += 1
                continue
            publisher.dead_letter(
                source_topic=NOWCAST_RAW.full_name(publisher.prefix), key=recorded.path.name,
                value=recorded.body, stage="replay-nowcast", reason=f"{recorded.error}",
            )
            result.rejected += 1
            continue
        sent = recorded.alert.sent
        if speed > 0 and previous is not None and sent > previous:
            sleep((sent - previous).total_seconds() / speed)
        previous = sent
        document = RawDocument(
            source="bmkg.nowcast",
            source_id=recorded.alert.dedupe_key(),
            name=recorded.path.name,
            fetched_at=utc_now(),
            body=recorded.body.decode("utf-8", errors="replace"),
        )
        publisher.send(NOWCAST_RAW, document.source_id, document)
        result.published += 1
    publisher.flush()
    return result
