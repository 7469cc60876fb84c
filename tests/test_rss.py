"""BMKG nowcast RSS index: the two real indexes and hostile input."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.bmkg.rss import RssError, parse_rss
from tests.bmkg_fakes import billion_laughs

CAP_DIR = Path(__file__).parent / "data" / "bmkg" / "cap"
RSS_ID = "siaga_rss_id_2026-09-24.xml"
RSS_EN = "shippinghot_rss_en_2026-10-10.xml"
WITA = timezone(timedelta(hours=8))


def read(name: str) -> bytes:
    return (CAP_DIR / name).read_bytes()


def test_the_real_indonesian_index() -> None:
    items = parse_rss(read(RSS_ID))
    assert len(items) == 11
    first = items[0]
    assert first.link == "https://www.bmkg.go.id/alerts/nowcast/id/CGT20260924002_alert.xml"
    assert first.file_code == "CGT20260924002" and first.language == "id"
    assert first.cap_file_name() == "CGT20260924002_alert.xml"
    assert first.guid == "2.49.0.1.360.0.2026.09.24.07.75.002"
    # pubDate carries the province's offset with no colon (+0800) and equals the CAP <sent>
    assert first.pub_date == datetime(2026, 9, 24, 15, 7, tzinfo=WITA)
    assert first.pub_date.utcoffset() == timedelta(hours=8)
    assert all(i.file_code and i.pub_date.tzinfo for i in items)
    assert len({i.file_code for i in items}) == 11


def test_the_real_english_index_includes_bali() -> None:
    items = parse_rss(read(RSS_EN))
    assert len(items) == 12
    assert all(i.language == "en" for i in items)
    bali = next(i for i in items if i.file_code == "CBL20261010002")
    assert bali.pub_date.astimezone(UTC).tzinfo is UTC
    assert "Bali" in bali.title


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<rss",
        b"<feed/>",
        b"<rss version='2.0'/>",
        b"<rss><channel><item><link>https://x/CAB20260101001_alert.xml</link></item></channel></rss>",
        b"<rss><channel><item><link>https://x/a</link><pubDate>Thu, 24 Sep 2026 15:07:00</pubDate>"
        b"</item></channel></rss>",
        b"<rss><channel><item><link>https://x/a</link><pubDate>yesterday</pubDate></item>"
        b"</channel></rss>",
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><rss><channel/></rss>',
    ],
)
def test_bad_input_is_the_documented_rejection(body: bytes) -> None:
    with pytest.raises(RssError):
        parse_rss(body)


def test_an_xml_bomb_is_rejected_fast() -> None:
    bomb = billion_laughs("rss")
    started = time.monotonic()
    with pytest.raises(RssError, match="forbidden"):
        parse_rss(bomb)
    assert time.monotonic() - started < 1.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_rss_error(data: bytes) -> None:
    with contextlib.suppress(RssError):
        parse_rss(data)


@st.composite
def mutated_rss(draw: st.DrawFn) -> bytes:
    raw = bytearray(read(draw(st.sampled_from([RSS_ID, RSS_EN]))))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip":
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + draw(st.integers(1, 40))]
        else:
            raw[i:i] = raw[i:i + draw(st.integers(1, 40))]
    return bytes(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_rss())
def test_mutated_real_indexes_raise_only_rss_error(data: bytes) -> None:
    with contextlib.suppress(RssError):
        parse_rss(data)
