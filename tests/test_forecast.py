"""BMKG forecast API parsing: the real samples, a Mataram test forecast, and hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.bmkg.forecast import (
    STRONG_WIND_KMH,
    ForecastError,
    parse_command,
    parse_forecast,
    signals_from_forecast,
)
from schemas.events import BMKG_ATTRIBUTION, Hazard, SignalSource
from schemas.geography import Geography, load_geography

DIR = Path(__file__).parent / "data" / "bmkg" / "prakiraan"
BANDUNG = "siaga_prakiraan-32.73.01.1001_2026-09-24.json"
NOT_FOUND = "siaga_prakiraan-404.json"
MATARAM_TEST = "mataram_test_prakiraan-52.71.01.1004_2026-11-27.json"
REAL = [BANDUNG]
WIB = timezone(timedelta(hours=7))
WITA = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def geo() -> Geography:
    return load_geography()


def read(name: str) -> bytes:
    return (DIR / name).read_bytes()


def as_json(name: str) -> dict[str, Any]:
    value = json.loads(read(name))
    assert isinstance(value, dict)
    return value


def test_the_real_samples_are_the_recorded_bytes() -> None:
    sums = {
        BANDUNG: "c4fc7c180d2282624cfdd90afb5b1937c746f63a9cf7ab8edd329c6d48a11fd9",
        NOT_FOUND: "adc970ea8acc1eb0664046a79724993aa355b0fe133ab47668514c1b91e57f6d",
    }
    for name, digest in sums.items():
        assert hashlib.sha256(read(name)).hexdigest() == digest, name


def test_the_real_bandung_forecast_parses_with_local_days_from_local_datetime(
    geo: Geography,
) -> None:
    forecast = parse_forecast(read(BANDUNG))
    assert forecast.location.adm4 == "32.73.01.1001"
    assert forecast.location.timezone == "Asia/Jakarta"
    assert forecast.analysis_date == datetime(2026, 9, 24, tzinfo=UTC)
    (area,) = forecast.areas
    assert area.location.timezone == "+0700"  # the data-level quirk
    assert len(area.steps) == 20
    days = area.days()
    assert [len(v) for v in days.values()] == [4, 8, 8]
    assert list(days) == [date(2026, 9, 24), date(2026, 9, 25), date(2026, 9, 26)]
    first = area.steps[0]
    assert first.utc == datetime(2026, 9, 24, 7, tzinfo=UTC)
    assert first.local == datetime(2026, 9, 24, 14, tzinfo=WIB)
    assert first.local.utcoffset() == timedelta(hours=7)
    assert first.vs is None and first.vs_text is None
    # a step at 02:00 local on the 25th is UTC the 24th: it belongs to the local day
    assert area.steps[4].utc.date() == date(2026, 9, 24)
    assert area.steps[4].local.date() == date(2026, 9, 25)
    assert signals_from_forecast(forecast, geo) == []  # Bandung is not Mataram
    assert parse_command(read(BANDUNG), BANDUNG) == []


def test_the_404_body_is_the_documented_rejection() -> None:
    with pytest.raises(ForecastError, match="Data not found"):
        parse_forecast(read(NOT_FOUND))


def test_an_iana_zone_at_the_data_level_is_honoured() -> None:
    doc = as_json(BANDUNG)
    doc["data"][0]["lokasi"]["timezone"] = "Asia/Makassar"
    step = parse_forecast(json.dumps(doc).encode()).areas[0].steps[0]
    assert step.local.utcoffset() == timedelta(hours=8)
    assert step.local == datetime(2026, 9, 24, 14, tzinfo=WITA)  # same wall clock, WITA


def test_the_mataram_test_forecast_yields_one_signal_per_hazardous_step(geo: Geography) -> None:
    forecast = parse_forecast(read(MATARAM_TEST))
    assert forecast.location.timezone == "Asia/Makassar"
    signals = signals_from_forecast(forecast, geo)
    assert [(s.hazard, s.effective, s.expires) for s in signals] == [
        (Hazard.THUNDERSTORM, datetime(2026, 11, 27, 9, tzinfo=UTC),
         datetime(2026, 11, 27, 12, tzinfo=UTC)),
        (Hazard.HEAVY_RAIN, datetime(2026, 11, 28, 18, tzinfo=UTC),
         datetime(2026, 11, 28, 21, tzinfo=UTC)),
        (Hazard.STRONG_WIND, datetime(2026, 11, 28, 21, tzinfo=UTC),
         datetime(2026, 11, 29, tzinfo=UTC)),
    ]
    for s in signals:
        assert s.area_code == "52.71.01.1004" and s.area_name == "Ampenan Selatan"
        assert s.kecamatan_code == "52.71.01"
        assert s.source is SignalSource.FORECAST
        assert s.attribution == BMKG_ATTRIBUTION
        assert s.signal_id.endswith("#52.71.01.1004")
    assert "17:00 WITA" in signals[0].headline
    assert len({s.signal_id for s in signals}) == 3
    # deterministic: parsing again gives the same ids
    assert [s.signal_id for s in signals_from_forecast(parse_forecast(read(MATARAM_TEST)), geo)] \
        == [s.signal_id for s in signals]
    assert parse_command(read(MATARAM_TEST), MATARAM_TEST) == signals


def test_hazards_come_from_the_description_never_the_code(geo: Geography) -> None:
    doc = as_json(MATARAM_TEST)
    steps = [s for day in doc["data"][0]["cuaca"] for s in day]
    for step in steps:
        step["weather"] = 95  # "thunderstorm" in the current code table: must be ignored
        step["ws"] = 1.0
        step["weather_desc"], step["weather_desc_en"] = "Berawan", "Mostly Cloudy"
    steps[3]["weather"] = 0
    steps[3]["weather_desc"], steps[3]["weather_desc_en"] = "Cerah", "Thunderstorm"
    signals = signals_from_forecast(parse_forecast(json.dumps(doc).encode()), geo)
    assert [s.hazard for s in signals] == [Hazard.THUNDERSTORM]


def test_strong_wind_starts_at_the_threshold(geo: Geography) -> None:
    doc = as_json(MATARAM_TEST)
    steps = [s for day in doc["data"][0]["cuaca"] for s in day]
    for step in steps:
        step["weather_desc"], step["weather_desc_en"], step["ws"] = "Cerah", "Sunny", 3.0
    steps[0]["ws"] = STRONG_WIND_KMH - 0.1
    steps[1]["ws"] = STRONG_WIND_KMH
    signals = signals_from_forecast(parse_forecast(json.dumps(doc).encode()), geo)
    assert [(s.hazard, s.effective) for s in signals] == [
        (Hazard.STRONG_WIND, datetime(2026, 11, 27, 9, tzinfo=UTC))
    ]


def test_only_mataram_kelurahan_get_signals(geo: Geography) -> None:
    doc = as_json(MATARAM_TEST)
    for where in (doc["lokasi"], doc["data"][0]["lokasi"]):
        where["adm4"] = "52.71.01.1001"  # the non-existent code third-party apps use
    assert signals_from_forecast(parse_forecast(json.dumps(doc).encode()), geo) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"null",
        read(BANDUNG)[:-40],  # truncated
        b'{"lokasi": {}, "data": []}',
        b'{"lokasi": {"adm4": "52.71.01.1004", "timezone": "Mars/Olympus"}, "data": []}',
        b'{"lokasi": {"adm4": "52.71.01.1004", "timezone": "+0800"}, "data": [{"cuaca": [[{}]]}]}',
        read(BANDUNG).replace(b'"2026-09-24 14:00:00"', b'"2026-09-24T14:00:00+07:00"'),
        read(BANDUNG).replace(b'"ws":1.4', b'"ws":"1.4"'),
        b"\xff\xfe{",
        b"[" * 100_000,
    ],
)
def test_bad_input_is_the_documented_rejection(body: bytes) -> None:
    with pytest.raises(ForecastError):
        parse_forecast(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_forecast_error(data: bytes) -> None:
    with contextlib.suppress(ForecastError):
        parse_forecast(data)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)


@st.composite
def mutated_forecast(draw: st.DrawFn) -> bytes:
    """A real sample with one value replaced, one key deleted, or the bytes cut/flipped."""
    name = draw(st.sampled_from([BANDUNG, MATARAM_TEST]))
    doc = as_json(name)
    how = draw(st.sampled_from(["replace", "delete", "bytes"]))
    if how == "bytes":
        raw = bytearray(read(name))
        i = draw(st.integers(0, len(raw) - 1))
        if draw(st.booleans()):
            return bytes(raw[:i])
        raw[i] = draw(st.integers(0, 255))
        return bytes(raw)
    step = doc["data"][0]["cuaca"][draw(st.integers(0, 2))][0]
    target = draw(st.sampled_from([doc, doc["lokasi"], doc["data"][0], doc["data"][0]["lokasi"],
                                   step]))
    key = draw(st.sampled_from(sorted(target)))
    if how == "delete":
        del target[key]
    else:
        target[key] = draw(_json_values())
    return json.dumps(doc).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_forecast())
def test_mutated_real_samples_raise_only_forecast_error(data: bytes) -> None:
    geo = load_geography()
    try:
        forecast = parse_forecast(data)
    except ForecastError:
        return
    signals_from_forecast(forecast, geo)  # and whatever parses can be turned into signals
