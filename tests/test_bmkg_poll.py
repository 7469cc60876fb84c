"""Live polling against a local server serving recorded BMKG files (never BMKG itself)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.topics import create_topics
from producers.bmkg.cap import parse_cap
from producers.bmkg.dedupe import KeyLedger
from producers.bmkg.http import HttpFetcher, TokenBucket
from producers.bmkg.poll import BmkgPoller, PollConfig, run_polling
from producers.bmkg.rss import parse_rss
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import DeadLetter, RawDocument
from schemas.settings import Settings
from schemas.topics import DEADLETTER, FORECAST_RAW, NOWCAST_RAW, QUAKE_RAW
from tests.bmkg_fakes import FakeBmkg, RecordingPublisher, Route, billion_laughs, serve
from tests.kafka_helpers import read_topic, wait_for

DATA = Path(__file__).parent / "data" / "bmkg"
CAP_DIR, FORECAST_DIR, QUAKE_DIR = DATA / "cap", DATA / "prakiraan", DATA / "gempa"
MATARAM_CAP = "mataram_test_CNB20261127001_alert.xml"
RSS_EN = "shippinghot_rss_en_2026-10-10.xml"
BOMB = billion_laughs("alert")
AREAS = ("52.71.01.1004", "52.71.01.1005", "52.71.01.1006", "52.71.02.1001")


def rss_id(*items: tuple[str, str]) -> bytes:
    """An Indonesian index in BMKG's layout (header, stylesheet, item fields) listing
    (file code, pubDate) pairs. Written for the tests; the real index is in cap/."""
    body = "".join(
        f"""
        <item>
            <title>Hujan Lebat disertai Petir di Nusa Tenggara Barat</title>
            <link>https://www.bmkg.go.id/alerts/nowcast/id/{code}_alert.xml</link>
            <description>Uji (test) item.</description>
            <author>cuaca.ekstrem@bmkg.go.id (BMKG)</author>
            <category>Met</category>
            <guid isPermaLink="false">2.49.0.1.360.0.{code}</guid>
            <pubDate>{pub}</pubDate>
        </item>
"""
        for code, pub in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
    <?xml-stylesheet type="text/xsl" href="/cap/nowcast-rss-style.xsl"?>
    <rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
        <channel>
            <title>Peringatan Dini Cuaca BMKG</title>
            <link>https://www.bmkg.go.id/alerts/nowcast/id/rss.xml</link>
            <language>id</language>
            <copyright>public domain</copyright>
            <pubDate>Fri, 27 Nov 2026 06:45:00 +0000</pubDate>
{body}
        </channel>
    </rss>""".encode()


def build_fake() -> FakeBmkg:
    fake = FakeBmkg()
    mataram = (CAP_DIR / MATARAM_CAP).read_bytes()
    wrong_ns = mataram.replace(b"emergency:cap:1.2", b"emergency:cap:1.1")
    pub = "Fri, 27 Nov 2026 14:30:00 +0800"
    fake.routes["/alerts/nowcast/id"] = Route(200, rss_id(
        ("CGT20260924002", "Thu, 24 Sep 2026 15:07:00 +0800"), ("CNB20261127001", pub),
        ("CXB20261127003", pub), ("CXW20261127004", pub), ("CXM20261127005", pub),
        ("CXG20261127006", pub),
    ), etag='"rss-id-1"')
    fake.routes["/alerts/nowcast/en"] = Route(200, (CAP_DIR / RSS_EN).read_bytes())
    caps = {
        "id/CGT20260924002": (CAP_DIR / "siaga_id_CGT20260924002_alert.xml").read_bytes(),
        "id/CNB20261127001": mataram,
        "id/CXB20261127003": BOMB,
        "id/CXW20261127004": wrong_ns,
        "id/CXM20261127005": mataram[: len(mataram) // 2],
    }
    for path in CAP_DIR.glob("shippinghot_en_*_alert.xml"):
        caps[f"en/{path.name.split('_')[2]}"] = path.read_bytes()
    for key, body in caps.items():
        fake.routes[f"/alerts/nowcast/{key}_alert.xml"] = Route(200, body)
    forecast = "/publik/prakiraan-cuaca?adm4="
    fake.routes[forecast + "52.71.01.1004"] = Route(
        200, (FORECAST_DIR / "mataram_test_prakiraan-52.71.01.1004_2026-11-27.json").read_bytes(),
        etag='"fc-1"', content_type="application/json")
    fake.routes[forecast + "52.71.01.1005"] = Route(
        200, b'{"lokasi":{"adm1":"52","adm2":"52.71"', content_type="application/json")
    fake.routes[forecast + "52.71.01.1006"] = Route(
        404, (FORECAST_DIR / "siaga_prakiraan-404.json").read_bytes(), None, "application/json")
    fake.routes[forecast + "52.71.02.1001"] = Route(
        200, (FORECAST_DIR / "siaga_prakiraan-32.73.01.1001_2026-09-24.json").read_bytes())
    tews = "/DataMKG/TEWS/"
    fake.routes[tews + "autogempa.json"] = Route(
        200, (QUAKE_DIR / "mataram_test_autogempa_2026-11-27.json").read_bytes(), etag='"q-1"',
        content_type="application/json")
    fake.routes[tews + "gempaterkini.json"] = Route(
        200, (QUAKE_DIR / "siaga_gempaterkini_2026-09-24_trimmed.json").read_bytes())
    fake.routes[tews + "gempadirasakan.json"] = Route(200, b'{"Infogempa":{"gempa":[{"Tan')
    return fake


def config_for(base: str, **overrides: object) -> PollConfig:
    values: dict[str, object] = {
        "nowcast_indexes": (("id", f"{base}/alerts/nowcast/id"),
                            ("en", f"{base}/alerts/nowcast/en")),
        "cap_url": base + "/alerts/nowcast/{lang}/{code}_alert.xml",
        "forecast_url": base + "/publik/prakiraan-cuaca?adm4={adm4}",
        "quake_urls": tuple(f"{base}/DataMKG/TEWS/{f}.json"
                            for f in ("autogempa", "gempaterkini", "gempadirasakan")),
        "forecast_areas": AREAS,
        "contact_url": "https://example.org/kentongan-tests",
        **overrides,
    }
    return PollConfig(**values)  # type: ignore[arg-type]


def fast_fetcher(contact: str = "https://example.org/kentongan-tests") -> HttpFetcher:
    return HttpFetcher(bucket=TokenBucket(1000.0, 1000.0), max_attempts=2,
                       sleep=lambda _: None)


@pytest.fixture
def fake() -> Iterator[FakeBmkg]:
    with serve(build_fake()) as server:
        yield server


def _cap_key(name: str) -> str:
    return parse_cap((CAP_DIR / name).read_bytes(), file_name=name).dedupe_key()


EXPECTED_NOWCAST_KEYS = {
    _cap_key(name) for name in (
        "siaga_id_CGT20260924002_alert.xml", MATARAM_CAP,
        *(p.name for p in CAP_DIR.glob("shippinghot_en_*_alert.xml")),
    )
}


def test_one_poll_of_each_feed_publishes_good_documents_and_dead_letters_bad_ones(
    fake: FakeBmkg,
) -> None:
    publisher = RecordingPublisher()
    poller = BmkgPoller(fast_fetcher(), publisher, KeyLedger(),  # type: ignore[arg-type]
                        config=config_for(fake.base))
    nowcast = poller.poll_nowcast()
    forecast = poller.poll_forecast()
    quakes = poller.poll_quakes()

    by_topic: dict[str, list[str | None]] = {}
    for topic, key, value in publisher.sent:
        assert isinstance(value, RawDocument) and value.source_id == key
        by_topic.setdefault(topic, []).append(key)
    assert set(by_topic["bmkg.nowcast.raw"]) == EXPECTED_NOWCAST_KEYS
    assert len(by_topic["bmkg.nowcast.raw"]) == len(EXPECTED_NOWCAST_KEYS)
    (forecast_key,) = by_topic["bmkg.forecast.raw"]
    assert forecast_key and forecast_key.startswith("forecast|52.71.01.1004|")
    assert len(by_topic["bmkg.quake.raw"]) == 2

    reasons = {str(d["key"]).rsplit("/", 1)[-1]: str(d["reason"]) for d in publisher.letters}
    assert "forbidden XML construct" in reasons["CXB20261127003_alert.xml"]
    assert "not CAP 1.2" in reasons["CXW20261127004_alert.xml"]
    assert "malformed XML" in reasons["CXM20261127005_alert.xml"]
    assert reasons["CXG20261127006_alert.xml"] == "HTTP 404"
    assert "not JSON" in reasons["prakiraan-cuaca?adm4=52.71.01.1005"]
    assert "Data not found" in reasons["prakiraan-cuaca?adm4=52.71.01.1006"]
    assert "asked for adm4 52.71.02.1001" in reasons["prakiraan-cuaca?adm4=52.71.02.1001"]
    assert "not JSON" in reasons["gempadirasakan.json"]
    en_items = parse_rss((CAP_DIR / RSS_EN).read_bytes())
    missing_en = len(en_items) - 4  # four of the twelve English CAP files were recorded
    assert nowcast.rejected == 4 + missing_en
    assert (forecast.published, forecast.rejected) == (1, 3)
    assert (quakes.published, quakes.rejected) == (2, 1)
    for letter in publisher.letters:
        assert letter["source_topic"] in {"bmkg.nowcast.raw", "bmkg.forecast.raw",
                                          "bmkg.quake.raw"}

    # The next cycle: ETags give 304s, known CAPs are not fetched again, nothing is re-sent.
    cap_requests = fake.count("/alerts/nowcast/id/CGT20260924002_alert.xml")
    again = [poller.poll_nowcast(), poller.poll_forecast(), poller.poll_quakes()]
    assert sum(s.published for s in again) == 0
    assert sum(s.rejected for s in again) == 0
    assert again[0].not_modified == 1 and again[1].not_modified == 1
    assert again[2].not_modified == 1 and again[2].duplicates == 1
    assert fake.count("/alerts/nowcast/id/CGT20260924002_alert.xml") == cap_requests
    assert fake.requests[-1][1]["User-Agent"].startswith("Kentongan/")


def test_after_a_restart_known_alerts_are_not_even_fetched(fake: FakeBmkg) -> None:
    ledger = KeyLedger({NOWCAST_RAW.name: set(EXPECTED_NOWCAST_KEYS)})
    publisher = RecordingPublisher()
    poller = BmkgPoller(fast_fetcher(), publisher, ledger,  # type: ignore[arg-type]
                        config=config_for(fake.base))
    stats = poller.poll_nowcast()
    assert stats.published == 0 and stats.duplicates == len(EXPECTED_NOWCAST_KEYS)
    assert fake.count("/alerts/nowcast/id/CNB20261127001_alert.xml") == 0


def test_the_loop_keeps_going_when_bmkg_is_down() -> None:
    publisher = RecordingPublisher()
    config = config_for("http://127.0.0.1:9", nowcast_every_s=0.05, quake_every_s=0.05)
    poller = BmkgPoller(fast_fetcher(), publisher, KeyLedger(),  # type: ignore[arg-type]
                        config=config)
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    stats = poller.run(stop)
    assert stats.failed >= 4 and stats.published == 0 and publisher.letters == []


@pytest.mark.kafka
def test_polling_through_the_broker_lands_each_document_once_across_restarts(
    kafka_bootstrap: str, topic_prefix: str, fake: FakeBmkg, monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("KENTONGAN_TOPIC_PREFIX", topic_prefix)
    settings = Settings()
    config = config_for(fake.base, nowcast_every_s=0.3, quake_every_s=0.3, forecast_every_s=0.3)

    def raw_keys() -> dict[str, Counter[str]]:
        return {
            spec.name: Counter(r.key.decode() for r in read_topic(
                kafka_bootstrap, spec.full_name(topic_prefix), partitions=spec.partitions,
                timeout_s=2.0))
            for spec in (NOWCAST_RAW, FORECAST_RAW, QUAKE_RAW)
        }

    def expected(keys: dict[str, Counter[str]]) -> bool:
        return (set(keys["bmkg.nowcast.raw"]) == EXPECTED_NOWCAST_KEYS
                and len(keys["bmkg.forecast.raw"]) == 1 and len(keys["bmkg.quake.raw"]) == 2)

    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        for _run in range(2):  # the second run is a restart: its ledger comes from the topics
            stop = threading.Event()
            worker = threading.Thread(
                target=run_polling, args=(settings, publisher, stop),
                kwargs={"config": config, "fetcher": fast_fetcher()}, daemon=True)
            worker.start()
            try:
                assert wait_for(lambda: expected(raw_keys()), timeout_s=60)
                wait_for(lambda: False, timeout_s=1.5)  # a few more cycles
            finally:
                stop.set()
                worker.join(timeout=30)
            assert not worker.is_alive()

    keys = raw_keys()
    assert expected(keys)
    for counts in keys.values():
        assert set(counts.values()) == {1}, counts
    records = read_topic(kafka_bootstrap, NOWCAST_RAW.full_name(topic_prefix),
                         partitions=NOWCAST_RAW.partitions, timeout_s=2.0)
    mataram = [decode(RawDocument, r.value) for r in records
               if r.key.decode().startswith("CNB20261127001|")]
    assert mataram[0].body == (CAP_DIR / MATARAM_CAP).read_text(encoding="utf-8")
    letters = [decode(DeadLetter, r.value) for r in read_topic(
        kafka_bootstrap, DEADLETTER.full_name(topic_prefix), partitions=1, timeout_s=2.0)]
    reasons = " | ".join(d.reason for d in letters)
    for expected_reason in ("forbidden XML construct", "not CAP 1.2", "Data not found",
                            "not JSON", "HTTP 404"):
        assert expected_reason in reasons
