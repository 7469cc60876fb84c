"""``kentongan produce bmkg`` (live): poll BMKG's three feeds and publish raw documents.

Thin shell around the pure parsers:
- nowcast: the RSS indexes (id first, then en), then each new CAP file; published to
  ``bmkg.nowcast.raw`` keyed by the CAP dedupe key (file code + ``sent``; BMKG's OID changes
  between polls). The id and en files of one alert share that key, so the first (id) is kept;
- forecast: one request per Mataram kelurahan (the 50 adm4 codes from the geography), with ETag,
  spread over the loop so nowcast polling is never starved;
- earthquakes: ``autogempa``, ``gempaterkini``, ``gempadirasakan`` JSON, with ETag.

Every key already on a raw topic is skipped (``dedupe.KeyLedger``, loaded from the topics at
start). Bad input (malformed XML, an XML bomb, a wrong namespace, truncated JSON, a 404 body)
goes to ``deadletter`` with the reason, once per URL and content, and the loop keeps going.
Network failures are logged and retried on the next cycle. URLs, never bodies, are logged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from producers.bmkg import forecast as forecast_mod
from producers.bmkg import quake as quake_mod
from producers.bmkg.cap import SOURCE as NOWCAST_SOURCE
from producers.bmkg.cap import CapError, dedupe_key_for, parse_cap
from producers.bmkg.dedupe import KeyLedger, load_ledger
from producers.bmkg.http import CONTACT_URL, FetchError, FetchResult, HttpFetcher, user_agent
from producers.bmkg.rss import RssError, parse_rss
from producers.publisher import Publisher
from schemas.events import RawDocument, utc_now
from schemas.geography import Geography, load_geography
from schemas.settings import Settings
from schemas.topics import BMKG_RAW_TOPICS, FORECAST_RAW, NOWCAST_RAW, QUAKE_RAW, TopicSpec

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class PollConfig:
    """Endpoints (FORMATS.md §2-4) and cadences. Tests point the URLs at a local server."""

    nowcast_indexes: tuple[tuple[str, str], ...] = (
        ("id", "https://www.bmkg.go.id/alerts/nowcast/id"),
        ("en", "https://www.bmkg.go.id/alerts/nowcast/en"),
    )
    # CAP files are fetched from this template, not from whatever host an RSS link names.
    cap_url: str = "https://www.bmkg.go.id/alerts/nowcast/{lang}/{code}_alert.xml"
    forecast_url: str = "https://api.bmkg.go.id/publik/prakiraan-cuaca?adm4={adm4}"
    quake_urls: tuple[str, ...] = (
        "https://data.bmkg.go.id/DataMKG/TEWS/autogempa.json",
        "https://data.bmkg.go.id/DataMKG/TEWS/gempaterkini.json",
        "https://data.bmkg.go.id/DataMKG/TEWS/gempadirasakan.json",
    )
    #: None: all 50 Mataram kelurahan.
    forecast_areas: tuple[str, ...] | None = None
    nowcast_every_s: float = 60.0  # warnings are issued "any time" and last about 2 h
    quake_every_s: float = 60.0  # no cadence is documented; events matter within minutes
    forecast_every_s: float = 3600.0  # updated twice a day; ETag makes unchanged ones cheap
    forecast_batch: int = 5  # forecast requests per loop turn, so nowcast polls stay on time
    contact_url: str = CONTACT_URL

    @classmethod
    def from_settings(cls, settings: Settings) -> PollConfig:
        return cls(contact_url=settings.contact_url)


@dataclass
class PollStats:
    published: int = 0
    duplicates: int = 0
    not_modified: int = 0
    rejected: int = 0
    failed: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, other: PollStats) -> None:
        self.published += other.published
        self.duplicates += other.duplicates
        self.not_modified += other.not_modified
        self.rejected += other.rejected
        self.failed += other.failed


class BmkgPoller:
    """One poll of each feed per call; :meth:`run` schedules them until stopped."""

    def __init__(
        self,
        fetcher: HttpFetcher,
        publisher: Publisher,
        ledger: KeyLedger,
        *,
        config: PollConfig | None = None,
        geography: Geography | None = None,
    ) -> None:
        self.fetcher, self.publisher, self.ledger = fetcher, publisher, ledger
        self.config = config or PollConfig()
        geography = geography or load_geography()
        self.forecast_areas: tuple[str, ...] = (
            self.config.forecast_areas or tuple(sorted(geography.kelurahan))
        )
        # CAP files already handled this process (published, duplicate or dead-lettered):
        # the RSS lists an alert for hours, and its CAP need not be fetched every minute.
        self._handled_caps: set[str] = set()
        # (url, digest) pairs already dead-lettered, so a bad document is reported once.
        self._rejected: set[tuple[str, str]] = set()

    # --- nowcast -----------------------------------------------------------------------------

    def poll_nowcast(self) -> PollStats:
        stats = PollStats()
        for lang, index_url in self.config.nowcast_indexes:
            result = self._fetch(index_url, stats)
            if result is None:
                continue
            try:
                items = parse_rss(result.body)
            except RssError as exc:
                self._reject(NOWCAST_RAW, result, "poll-nowcast-rss", str(exc), stats)
                self.fetcher.forget(index_url)  # fetch it whole next time, not a 304
                continue
            for item in items:
                if item.file_code is None:
                    self._reject(NOWCAST_RAW, result, "poll-nowcast-rss",
                                 f"item link has no CAP file code: {item.link[:120]}", stats)
                    continue
                item_lang = item.language or lang
                # RSS pubDate is the CAP's <sent>: a known key needs no CAP request at all.
                expected_key = dedupe_key_for(item.file_code, item.pub_date)
                if self.ledger.seen(NOWCAST_RAW, expected_key):
                    stats.duplicates += 1
                    continue
                cap_url = self.config.cap_url.format(lang=item_lang, code=item.file_code)
                if cap_url in self._handled_caps:
                    continue
                self._poll_cap(cap_url, stats)
        self.publisher.flush()
        return stats

    def _poll_cap(self, cap_url: str, stats: PollStats) -> None:
        result = self._fetch(cap_url, stats, use_etag=False)
        if result is None:
            return
        self._handled_caps.add(cap_url)
        try:
            alert = parse_cap(result.body, file_name=urlsplit(cap_url).path)
        except CapError as exc:
            self._reject(NOWCAST_RAW, result, "poll-nowcast", str(exc), stats)
            return
        self._publish(NOWCAST_RAW, NOWCAST_SOURCE, alert.dedupe_key(), result, stats)

    # --- forecast ----------------------------------------------------------------------------

    def poll_forecast(self, areas: Sequence[str] | None = None) -> PollStats:
        stats = PollStats()
        for adm4 in areas if areas is not None else self.forecast_areas:
            url = self.config.forecast_url.format(adm4=adm4)
            result = self._fetch(url, stats, accept_error_body=True)
            if result is None:
                continue
            try:
                parsed = forecast_mod.parse_forecast(result.body)
                if parsed.location.adm4 != adm4:
                    raise forecast_mod.ForecastError(
                        f"asked for adm4 {adm4}, got {parsed.location.adm4[:40]!r}"
                    )
            except forecast_mod.ForecastError as exc:
                reason = str(exc) if result.ok else f"HTTP {result.status}: {exc}"
                self._reject(FORECAST_RAW, result, "poll-forecast", reason, stats)
                self.fetcher.forget(url)
                continue
            if not result.ok:  # an error status with a body that parsed: still not data
                self._reject(FORECAST_RAW, result, "poll-forecast", f"HTTP {result.status}", stats)
                continue
            key = forecast_mod.document_key(parsed, result.body)
            self._publish(FORECAST_RAW, forecast_mod.SOURCE, key, result, stats)
        self.publisher.flush()
        return stats

    # --- earthquakes -------------------------------------------------------------------------

    def poll_quakes(self) -> PollStats:
        stats = PollStats()
        for url in self.config.quake_urls:
            result = self._fetch(url, stats, accept_error_body=True)
            if result is None:
                continue
            if not result.ok:
                self._reject(QUAKE_RAW, result, "poll-quake", f"HTTP {result.status}", stats)
                continue
            try:
                quakes = quake_mod.parse_quake(result.body, file_name=urlsplit(url).path)
            except quake_mod.QuakeError as exc:
                self._reject(QUAKE_RAW, result, "poll-quake", str(exc), stats)
                self.fetcher.forget(url)
                continue
            key = quake_mod.document_key(quakes, result.body, quakes[0].feed)
            self._publish(QUAKE_RAW, quake_mod.SOURCE, key, result, stats)
        self.publisher.flush()
        return stats

    # --- the loop ----------------------------------------------------------------------------

    def run(
        self, stop: threading.Event, *, clock: Callable[[], float] = time.monotonic
    ) -> PollStats:
        """Poll until ``stop`` is set. A failing poll is logged and retried next cycle."""
        total = PollStats()
        cfg = self.config
        due = {"nowcast": clock(), "quake": clock(), "forecast": clock()}
        pending: deque[str] = deque()
        while not stop.is_set():
            now = clock()
            if now >= due["nowcast"]:
                total.add(self._guarded("nowcast", self.poll_nowcast))
                due["nowcast"] = now + cfg.nowcast_every_s
            if now >= due["quake"]:
                total.add(self._guarded("quake", self.poll_quakes))
                due["quake"] = now + cfg.quake_every_s
            if now >= due["forecast"]:
                pending.extend(code for code in self.forecast_areas if code not in pending)
                due["forecast"] = now + cfg.forecast_every_s
            if pending:
                batch = [pending.popleft() for _ in range(min(cfg.forecast_batch, len(pending)))]
                total.add(self._guarded("forecast", functools.partial(self.poll_forecast, batch)))
                continue
            stop.wait(max(0.05, min(due.values()) - clock()))
        self.publisher.flush()
        return total

    def _guarded(self, feed: str, poll: Callable[[], PollStats]) -> PollStats:
        try:
            stats = poll()
        except Exception:  # a bug in one feed must not silence the other two
            log.exception("polling %s failed; retrying next cycle", feed)
            return PollStats(failed=1)
        if stats.published or stats.rejected or stats.failed:
            log.info("%s: published %d, dead-lettered %d, failed %d, unchanged %d", feed,
                     stats.published, stats.rejected, stats.failed, stats.not_modified)
        return stats

    # --- helpers -----------------------------------------------------------------------------

    def _fetch(
        self, url: str, stats: PollStats, *, use_etag: bool = True, accept_error_body: bool = False
    ) -> FetchResult | None:
        try:
            result = self.fetcher.get(url, use_etag=use_etag)
        except FetchError as exc:
            log.warning("fetch failed: %s", exc)
            stats.failed += 1
            return None
        if result.not_modified:
            stats.not_modified += 1
            return None
        if not result.ok and not accept_error_body:
            if result.status == 404 and url not in self._handled_caps:
                # A CAP listed but gone, or an index moved: worth a record, once.
                self._handled_caps.add(url)
                self._reject(NOWCAST_RAW, result, "poll-nowcast", f"HTTP {result.status}", stats)
            else:
                log.warning("HTTP %d for %s", result.status, url)
                stats.failed += 1
            return None
        return result

    def _publish(
        self, spec: TopicSpec, source: str, key: str, result: FetchResult, stats: PollStats
    ) -> None:
        if self.ledger.seen(spec, key):
            stats.duplicates += 1
            return
        document = RawDocument(
            source=source,
            source_id=key,
            name=result.url,
            fetched_at=utc_now(),
            content_type=result.content_type.split(";")[0].strip() or "application/octet-stream",
            body=result.body.decode("utf-8", errors="replace"),
        )
        self.publisher.send(spec, key, document)
        self.ledger.add(spec, key)
        stats.published += 1

    def _reject(
        self, spec: TopicSpec, result: FetchResult, stage: str, reason: str, stats: PollStats
    ) -> None:
        digest = hashlib.sha256(result.body).hexdigest()[:16]
        if (result.url, digest) in self._rejected:
            return
        self._rejected.add((result.url, digest))
        log.warning("dead-lettered %s at %s", result.url, stage)
        self.publisher.dead_letter(
            source_topic=spec.full_name(self.publisher.prefix), key=result.url,
            value=result.body, stage=stage, reason=reason,
        )
        stats.rejected += 1
        stats.details.append(f"{result.url}: {reason}")


def run_polling(
    settings: Settings,
    publisher: Publisher,
    stop_event: threading.Event,
    *,
    config: PollConfig | None = None,
    fetcher: HttpFetcher | None = None,
) -> PollStats:
    """``kentongan produce bmkg`` without ``--replay``: load what the raw topics already hold,
    then poll until ``stop_event`` is set (wire SIGINT/SIGTERM to it)."""
    config = config or PollConfig.from_settings(settings)
    ledger = load_ledger(settings.kafka_bootstrap, BMKG_RAW_TOPICS, prefix=settings.topic_prefix)
    fetcher = fetcher or HttpFetcher(user_agent=user_agent(config.contact_url))
    poller = BmkgPoller(fetcher, publisher, ledger, config=config)
    return poller.run(stop_event)
