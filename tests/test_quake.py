"""BMKG earthquake feeds: the real samples, Mataram test events, the intensity estimate."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.bmkg.quake import (
    MMI_THRESHOLD,
    Quake,
    QuakeError,
    estimated_mmi,
    felt_mmi_for_mataram,
    haversine_km,
    parse_command,
    parse_quake,
    signals_from_quake,
)
from schemas.events import BMKG_ATTRIBUTION, Hazard, Severity, SignalSource
from schemas.geography import Geography, load_geography

DIR = Path(__file__).parent / "data" / "bmkg" / "gempa"
SUMS = {
    "afdaapala_autogempa_legacy_2020-06-23.xml":
        "1d6897ccfe2ea8cd8f16ef26dbad9f2090ddd82885a21cb9ff3dfb9c2b89e709",
    "aldii_autogempa_2024-01-10.json":
        "e0cc78ab1072dc37837dd1948b8e9db678fca3d7241f27dbcaa16bab3a79c393",
    "alfanalfarisy_autogempa_2022-08-22.xml":
        "ea689a539c92621df1aba0e28946b3273c2b77474c3124e471a71e8f09e1e02b",
    "darcien_gempadirasakan_sample_2025-12-24.json":
        "ae18205c5a83e5dae0ae7306e425e35f77874bfdaedf00356add0fa03ae2a7f6",
    "siaga_autogempa_2026-09-24.json":
        "15918ea5ce97f8c54592b841a06434b96f5ff1d7961d65bd7ee24993c68f1480",
    "siaga_gempadirasakan_2026-09-24_trimmed.json":
        "f11687caa3e2ec7d1e4e30f833bfac0b657a57233a1d2790adf39081a0aec8cb",
    "siaga_gempaterkini_2026-09-24_trimmed.json":
        "7389fca38b34cd18067cd3e2256e7f0be0b114a57e2fa1fc2e348ac3b3b084f9",
}
LEGACY = "afdaapala_autogempa_legacy_2020-06-23.xml"
REAL_CURRENT = sorted(n for n in SUMS if n != LEGACY)
TEST_AUTO = "mataram_test_autogempa_2026-11-27.json"
TEST_FELT = "mataram_test_gempadirasakan_2026-11-28.json"


@pytest.fixture(scope="module")
def geo() -> Geography:
    return load_geography()


def read(name: str) -> bytes:
    return (DIR / name).read_bytes()


def test_the_real_samples_are_the_recorded_bytes() -> None:
    for name, digest in SUMS.items():
        assert hashlib.sha256(read(name)).hexdigest() == digest, name


@pytest.mark.parametrize("name", REAL_CURRENT)
def test_every_current_real_sample_parses_and_none_yields_a_mataram_signal(
    name: str, geo: Geography
) -> None:
    quakes = parse_quake(read(name), file_name=name)
    assert quakes
    for quake in quakes:
        assert quake.time.utcoffset() is not None and quake.time.tzinfo is UTC
        assert signals_from_quake(quake, geo) == []
    assert parse_command(read(name), name) == []


def test_counts_and_feeds_of_the_real_samples() -> None:
    counts = {n: len(parse_quake(read(n), file_name=n)) for n in REAL_CURRENT}
    assert counts["darcien_gempadirasakan_sample_2025-12-24.json"] == 15
    assert counts["siaga_gempaterkini_2026-09-24_trimmed.json"] == 2
    assert counts["siaga_autogempa_2026-09-24.json"] == 1
    (auto,) = parse_quake(read("siaga_autogempa_2026-09-24.json"),
                          file_name="siaga_autogempa_2026-09-24.json")
    assert auto.feed == "autogempa"
    assert (auto.lat, auto.lon, auto.magnitude, auto.depth_km) == (-8.51, 123.27, 1.8, 12.0)
    assert auto.time == datetime(2026, 9, 23, 12, 16, 56, tzinfo=UTC)
    assert auto.felt == "II-III Kab. Lembata" and auto.local_clock_consistent is True


def test_datetime_is_authoritative_when_tanggal_disagrees() -> None:
    name = "aldii_autogempa_2024-01-10.json"
    (quake,) = parse_quake(read(name), file_name=name)
    assert quake.time == datetime(2024, 1, 10, 13, 17, 26, tzinfo=UTC)
    assert quake.local_clock_consistent is False  # "9 Jan 2024" vs 10 Jan 20:17 WIB


def test_the_current_xml_layout_reads_lat_lon_from_point_coordinates() -> None:
    name = "alfanalfarisy_autogempa_2022-08-22.xml"
    (quake,) = parse_quake(read(name), file_name=name)
    assert (quake.lat, quake.lon, quake.magnitude, quake.depth_km) == (-1.85, 120.88, 4.2, 5.0)
    assert quake.time == datetime(2022, 8, 22, 12, 8, 45, tzinfo=UTC)
    assert quake.felt == "II - III Tomata"


def test_the_legacy_xml_layout_is_rejected_explicitly() -> None:
    with pytest.raises(QuakeError, match="legacy"):
        parse_quake(read(LEGACY), file_name=LEGACY)


def test_the_bima_event_in_the_real_felt_list_is_too_far_for_mataram(geo: Geography) -> None:
    name = "darcien_gempadirasakan_sample_2025-12-24.json"
    bima = next(q for q in parse_quake(read(name), file_name=name) if "Bima" in q.region)
    mataram = geo.kelurahan["52.71.01.1004"].geometry.representative_point()
    assert 330 < haversine_km(bima.lat, bima.lon, mataram.y, mataram.x) < 370
    assert signals_from_quake(bima, geo) == []


def test_allen_wald_worden_2012_against_hand_computed_values() -> None:
    # M6.9 at 43 km hypocentral (the 5 Aug 2018 Lombok event seen from Mataram): MMI ~6.6,
    # computed by hand from the published coefficients; Mataram reported VI-VII.
    assert estimated_mmi(6.9, 43.0) == pytest.approx(6.60, abs=0.02)
    assert estimated_mmi(5.0, 10.0) == pytest.approx(5.97, abs=0.02)
    # beyond 50 km the c4 term applies and the curve stays continuous at 50 km
    assert estimated_mmi(6.0, 50.0 + 1e-9) == pytest.approx(estimated_mmi(6.0, 50.0), abs=1e-6)
    assert estimated_mmi(4.0, 500.0) == 1.0  # clamped to the scale
    assert 8.0 < estimated_mmi(9.5, 0.0) <= 12.0  # near-source saturation, within the scale


def test_felt_text_for_mataram() -> None:
    assert felt_mmi_for_mataram("IV Mataram, III Lombok Utara") == 4
    assert felt_mmi_for_mataram("II - III Kota Mataram") == 3
    assert felt_mmi_for_mataram("III-IV Lombok Barat") == 4
    assert felt_mmi_for_mataram("V Lombok Timur, III Lombok Tengah") is None
    assert felt_mmi_for_mataram("II-III Bima, III Tomohon , II-III Kab. Manggarai") is None
    assert felt_mmi_for_mataram("") is None


def test_a_nearby_quake_reaches_every_kelurahan_with_severity_from_mmi(geo: Geography) -> None:
    (quake,) = parse_quake(read(TEST_AUTO), file_name=TEST_AUTO)
    signals = signals_from_quake(quake, geo)
    assert len(signals) == 50
    assert [s.area_code for s in signals] == sorted(geo.kelurahan)
    for s in signals:
        assert s.hazard is Hazard.EARTHQUAKE and s.source is SignalSource.QUAKE
        assert s.attribution == BMKG_ATTRIBUTION
        assert s.effective == datetime(2026, 11, 27, 7, 10, 5, tzinfo=UTC)
        assert s.mmi is not None and s.distance_km is not None
        assert s.severity in (Severity.MODERATE, Severity.SEVERE)
        assert s.signal_id == f"{quake.source_id()}#{s.area_code}"
    nearest = min(signals, key=lambda s: s.distance_km or 0)
    farthest = max(signals, key=lambda s: s.distance_km or 0)
    assert (nearest.mmi or 0) > (farthest.mmi or 0)


def test_a_felt_report_naming_mataram_lifts_a_low_estimate(geo: Geography) -> None:
    far, _near, bima = parse_quake(read(TEST_FELT), file_name=TEST_FELT)
    assert far.felt_here() == 4
    assert estimated_mmi(far.magnitude, 45.0) < MMI_THRESHOLD - 0.5  # the estimate alone: III
    signals = signals_from_quake(far, geo)
    assert len(signals) == 50
    assert {s.severity for s in signals} == {Severity.MINOR}
    assert {s.mmi for s in signals} == {4.0}
    without_report = far.model_copy(update={"felt": "III-IV Lombok Timur"})
    assert signals_from_quake(without_report, geo) == []
    assert signals_from_quake(bima, geo) == []


def test_one_event_in_two_feeds_has_one_identity() -> None:
    (auto,) = parse_quake(read(TEST_AUTO), file_name=TEST_AUTO)
    _, again, _ = parse_quake(read(TEST_FELT), file_name=TEST_FELT)
    assert auto.source_id() == again.source_id()
    assert auto.feed == "autogempa" and again.feed == "gempadirasakan"


def _entry() -> dict[str, Any]:
    doc = json.loads(read("siaga_autogempa_2026-09-24.json"))
    entry = doc["Infogempa"]["gempa"]
    assert isinstance(entry, dict)
    return entry


@pytest.mark.parametrize(
    ("field", "value"),
    [("DateTime", "2026-09-23T12:16:56"), ("DateTime", "kemarin"), ("Coordinates", "-8.51"),
     ("Coordinates", "123.27,-95"), ("Coordinates", "nan,1"), ("Magnitude", "6.3 SR"),
     ("Magnitude", 5.0), ("Kedalaman", "12"), ("Kedalaman", "-5 km")],
)
def test_bad_fields_are_the_documented_rejection(field: str, value: object) -> None:
    entry = _entry()
    entry[field] = value
    with pytest.raises(QuakeError):
        parse_quake(json.dumps({"Infogempa": {"gempa": entry}}).encode())


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"Infogempa": {"gempa": []}}', b'{"Infogempa": {"gempa": [1]}}',
     read("siaga_autogempa_2026-09-24.json")[:-10],
     b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b"<Infogempa><gempa><Wilayah>&b;</Wilayah></gempa></Infogempa>",
     b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://example.invalid/x.dtd"><Infogempa/>',
     b"<Infogempa><gempa>", b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>",
     b"<Infogempa></Infogempa>", b"{" * 100_000],
)
def test_hostile_or_broken_documents_are_the_documented_rejection(body: bytes) -> None:
    with pytest.raises(QuakeError):
        parse_quake(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_quake_error(data: bytes) -> None:
    with contextlib.suppress(QuakeError):
        parse_quake(data)


@st.composite
def mutated_quake(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from([*REAL_CURRENT, LEGACY, TEST_AUTO, TEST_FELT]))
    raw = bytearray(read(name))
    for _ in range(draw(st.integers(1, 4))):
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["flip", "cut", "dup", "digit"]))
        if op == "flip":
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + draw(st.integers(1, 20))]
        elif op == "dup":
            raw[i:i] = raw[i:i + draw(st.integers(1, 20))]
        else:
            raw[i] = ord(draw(st.sampled_from("0123456789-.,")))
    return bytes(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_quake())
def test_mutated_samples_raise_only_quake_error(data: bytes) -> None:
    geo = load_geography()
    try:
        quakes = parse_quake(data)
    except QuakeError:
        return
    for quake in quakes:
        assert isinstance(quake, Quake)
        signals_from_quake(quake, geo)
