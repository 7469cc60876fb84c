"""Subscriber lists: the CSV import (bad rows named by line, good rows kept) and generated
test populations over Mataram's 50 kelurahan."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from pydantic import ValidationError

from producers.intake.kannel import subscriber_id_for
from producers.intake.phones import to_e164
from producers.subscribers import (
    SubscriptionRequest,
    generate_csv,
    kecamatan_shares,
    kelurahan_counts,
    parse_subscriber_csv,
    push_subscriber_id,
    subscriber_from_request,
)
from schemas.events import Channel
from schemas.geography import load_geography

GEO = load_geography()

CSV = """phone,kelurahan_code,language,channels,push_token
0812-3456-7890,52.71.01.1004,id,sms,
+6281234567891,52.71.03.1005,en,sms+push,fcm-token-1
0812 3456 7890,52.71.01.1005,id,sms,
12345,52.71.01.1004,id,sms,
081234567892,52.71.99.9999,id,sms,
081234567893,52.71.01.1004,fr,sms,
081234567894,52.71.01.1004,id,fax,
081234567895,52.71.01.1004,id,push,

081234567896,52.71.01.1004,,,
081234567890,52.71.02.1001,en,sms,
081234567897,52.71.01.1004,id,sms,,extra
"""


def test_good_rows_are_imported_and_bad_rows_named_by_line_without_the_phone() -> None:
    result = parse_subscriber_csv(CSV, GEO)
    by_line = {bad.line: bad.reason for bad in result.bad}
    assert sorted(by_line) == [5, 6, 7, 8, 9, 12, 13]
    assert by_line[5].startswith("phone:")
    assert "52.71.99.9999" in by_line[6]
    assert "language" in by_line[7] and "channels" in by_line[8]
    assert "push_token" in by_line[9]
    assert "another language" in by_line[12]
    assert "fields" in by_line[13]
    assert not any("34567" in reason for reason in by_line.values())
    assert result.rows == 11  # the blank line is not a row

    people = {str(s.phone): s for s in result.subscribers}
    assert sorted(people) == ["+6281234567890", "+6281234567891", "+6281234567896"]
    # One phone on two rows is one subscriber of two kelurahan, with the SMS keyword's id.
    first = people["+6281234567890"]
    assert first.areas == ["52.71.01.1004", "52.71.01.1005"]
    assert first.subscriber_id == subscriber_id_for("+6281234567890")
    second = people["+6281234567891"]
    assert (second.language, second.channels, second.push_token) == (
        "en", [Channel.SMS, Channel.PUSH], "fcm-token-1")
    # Empty language and channels take the defaults: Bahasa Indonesia, SMS.
    assert (people["+6281234567896"].language, people["+6281234567896"].channels) == (
        "id", [Channel.SMS])


def test_a_file_without_the_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(ValueError, match="line 1: the header lacks kelurahan_code"):
        parse_subscriber_csv("phone,language,channels\n0812,id,sms\n", GEO)


def test_the_app_subscribes_by_phone_or_by_token() -> None:
    by_phone = subscriber_from_request(SubscriptionRequest(
        phone="0812-3456-7890", areas=["52.71.01.1004", "52.71.01.1004"]), GEO)
    assert by_phone.subscriber_id == subscriber_id_for("+6281234567890")
    assert by_phone.areas == ["52.71.01.1004"] and by_phone.channels == [Channel.SMS]
    by_token = subscriber_from_request(SubscriptionRequest(
        push_token="tok", channels=[Channel.PUSH], areas=["52.71.03.1005"], language="en"), GEO)
    assert by_token.subscriber_id == push_subscriber_id("tok") and by_token.phone is None
    with pytest.raises(ValidationError, match="sms needs a phone"):
        SubscriptionRequest(areas=["52.71.01.1004"])
    with pytest.raises(ValueError, match=r"^areas: .*52\.71\.00\.0000"):
        subscriber_from_request(SubscriptionRequest(phone="081234567890",
                                                    areas=["52.71.00.0000"]), GEO)


def test_a_generated_population_follows_the_kecamatan_shares_over_all_50_kelurahan() -> None:
    total = 461_936
    counts = kelurahan_counts(total, GEO)
    assert sum(counts.values()) == total and set(counts) == set(GEO.kelurahan)
    shares = kecamatan_shares()
    by_kecamatan = Counter[str]()
    for area, n in counts.items():
        by_kecamatan[GEO.kelurahan[area].kecamatan_code] += n
    for kecamatan, population in shares.items():
        expected = total * population / sum(shares.values())
        assert abs(by_kecamatan[kecamatan] - expected) < 1, kecamatan
    # Evenly within a kecamatan: its kelurahan differ by at most one person.
    for kecamatan in shares:
        sizes = [counts[a.code] for a in GEO.kelurahan_in_kecamatan(kecamatan)]
        assert max(sizes) - min(sizes) <= 1


def test_a_generated_csv_imports_cleanly_and_is_the_same_for_the_same_seed() -> None:
    text = "".join(generate_csv(3000, GEO, seed=7))
    assert text == "".join(generate_csv(3000, GEO, seed=7))
    assert text != "".join(generate_csv(3000, GEO, seed=8))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len({row["phone"] for row in rows}) == 3000
    assert all(to_e164(row["phone"]) == row["phone"] for row in rows[:300])
    result = parse_subscriber_csv(text, GEO)
    assert result.bad == [] and len(result.subscribers) == 3000
    languages = Counter(s.language for s in result.subscribers)
    assert 0.02 < languages["en"] / 3000 < 0.08
