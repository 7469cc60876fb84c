"""BMKG nowcast CAP parsing: real BMKG files, Mataram test alerts, and hostile input."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.bmkg.cap import (
    CapAlert,
    CapError,
    hazard_of,
    kecamatan_names_in_description,
    parse_cap,
    placement_keys,
    referenced_placement,
    signals_from_cap,
    still_covered,
)
from schemas.events import (
    BMKG_ATTRIBUTION,
    Hazard,
    MsgType,
    Proximity,
    Severity,
    SignalSource,
)
from schemas.geography import Geography, load_geography
from tests.bmkg_fakes import billion_laughs

DATA = Path(__file__).parent / "data" / "bmkg"
CAP_DIR = DATA / "cap"
REAL_ALERTS = sorted(p for p in CAP_DIR.glob("*_alert.xml") if not p.name.startswith("mataram_"))
RSS_FILES = sorted(CAP_DIR.glob("*_rss_*.xml"))
TEST_1 = "mataram_test_CNB20261127001_alert.xml"
TEST_2 = "mataram_test_CNB20261127002_alert.xml"
WITA = timezone(timedelta(hours=8))
WIB = timezone(timedelta(hours=7))
SENDER = "cuaca.ekstrem@bmkg.go.id"


@pytest.fixture(scope="module")
def geo() -> Geography:
    return load_geography()


def read(name: str) -> bytes:
    return (CAP_DIR / name).read_bytes()


def parse_file(name: str) -> CapAlert:
    return parse_cap(read(name), file_name=name)


def edit(name: str, *replacements: tuple[str, str]) -> bytes:
    """A test CAP with exact text replaced; each replacement must apply once."""
    text = read(name).decode()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text.encode()


# --- the samples are what PROVENANCE.md says they are ----------------------------------------


def test_sample_files_match_recorded_checksums() -> None:
    sums = re.findall(r"^([0-9a-f]{64})  (cap/\S+)$", (DATA / "PROVENANCE.md").read_text(), re.M)
    assert len(sums) == len(list(CAP_DIR.iterdir())) == 10
    for digest, name in sums:
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


# --- real BMKG alerts --------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_ALERTS, ids=lambda p: p.name)
def test_real_alerts_parse_with_aware_times_and_touch_no_kelurahan(
    path: Path, geo: Geography
) -> None:
    alert = parse_cap(path.read_bytes(), file_name=path.name)
    for moment in (alert.sent, alert.effective, alert.expires):
        assert moment is not None and moment.utcoffset() is not None
    assert alert.sender == SENDER
    assert alert.status == "Actual" and alert.msg_type is MsgType.ALERT and alert.scope == "Public"
    assert alert.severity is Severity.MODERATE
    assert hazard_of(alert) is Hazard.THUNDERSTORM
    assert alert.polygons and all(ring[0] == ring[-1] for ring in alert.polygons)
    assert alert.file_code is not None and alert.file_code in path.name
    assert signals_from_cap(alert, geo) == []  # none of them is in NTB


def test_bali_alert_fields() -> None:
    alert = parse_file("shippinghot_en_CBL20261010002_alert.xml")
    assert alert.identifier == "2.49.0.1.360.0.2026.10.10.06.51.002"
    assert alert.sent == datetime(2026, 10, 10, 14, 30, tzinfo=WITA)
    assert alert.sent.utcoffset() == timedelta(hours=8)
    assert alert.effective == datetime(2026, 10, 10, 14, 35, tzinfo=WITA)
    assert alert.expires == datetime(2026, 10, 10, 16, 30, tzinfo=WITA)
    assert alert.language == "en" and alert.event == "Thunderstorm"
    assert alert.event_codes == [("OET:v1.2", "OET-194")]
    assert (alert.urgency, alert.certainty) == ("Immediate", "Observed")
    assert alert.headline == "Thunderstorm This Afternoon in Bali"
    assert alert.area_desc == "Bali"
    assert len(alert.polygons) == 1 and len(alert.polygons[0]) == 33
    assert alert.polygons[0][0] == (-8.296, 115.128)  # CAP order: lat, lon
    [shape] = alert.shapely_polygons()
    assert shape.exterior.coords[0] == (115.128, -8.296)  # shapely order: lon, lat
    assert alert.web == "https://nowcasting.bmkg.go.id/infografis/CBL/2026/10/10/infografis.jpg"
    assert alert.file_code == "CBL20261010002"
    assert alert.references == []
    assert kecamatan_names_in_description(alert.description) == ["PENEBEL"]


def test_gorontalo_alert_in_both_languages() -> None:
    id_alert = parse_file("siaga_id_CGT20260924002_alert.xml")
    en_alert = parse_file("siaga_en_CGT20260924002_alert.xml")
    assert id_alert.identifier == en_alert.identifier == "2.49.0.1.360.0.2026.09.24.07.75.002"
    assert id_alert.sent == datetime(2026, 9, 24, 15, 7, tzinfo=WITA)
    assert id_alert.sent.utcoffset() == timedelta(hours=8)
    assert len(id_alert.polygons) == len(en_alert.polygons) == 4
    assert id_alert.polygons == en_alert.polygons
    assert (id_alert.language, id_alert.event) == ("id", "Hujan Lebat dan Petir")
    assert hazard_of(id_alert) is hazard_of(en_alert) is Hazard.THUNDERSTORM
    assert kecamatan_names_in_description(id_alert.description) == ["DENGILO", "MANANGGU"]
    assert kecamatan_names_in_description(en_alert.description) == ["DENGILO", "MANANGGU"]
    # One warning in two languages is one warning downstream.
    key = "CGT20260924002|2026-09-24T15:07:00+08:00"
    assert id_alert.dedupe_key() == en_alert.dedupe_key() == key


def test_aceh_alert_fields() -> None:
    alert = parse_file("shippinghot_en_CAH20261010003_alert.xml")
    assert alert.identifier == "2.49.0.1.360.0.2026.10.10.06.11.003"
    assert alert.sent == datetime(2026, 10, 10, 11, 20, tzinfo=WIB)
    assert alert.sent.utcoffset() == timedelta(hours=7)
    assert alert.severity is Severity.MODERATE
    assert len(alert.polygons) == 7
    assert kecamatan_names_in_description(alert.description) == [
        "DARUL IMARAH",
        "LHOONG",
        "LUENG BATA",
        "SEULIMEUM",
        "TRUMON TENGAH",
        "TRUMON TIMUR",
    ]


@pytest.mark.parametrize("path", RSS_FILES, ids=lambda p: p.name)
def test_rss_index_is_not_a_cap_alert(path: Path) -> None:
    assert len(RSS_FILES) == 2
    with pytest.raises(CapError, match=re.escape("not CAP 1.2: root element rss")):
        parse_cap(path.read_bytes(), file_name=path.name)


# --- Mataram test alerts -> signals --------------------------------------------------------


def test_ampenan_selatan_alert_yields_one_signal(geo: Geography) -> None:
    alert = parse_file(TEST_1)
    assert alert.identifier == "2.49.0.1.360.0.2026.11.27.06.52.001"
    assert alert.area_desc == "Nusa Tenggara Barat"
    [signal] = signals_from_cap(alert, geo)
    key = "CNB20261127001|2026-11-27T14:30:00+08:00"
    assert alert.dedupe_key() == key
    assert signal.signal_id == f"{key}#52.71.01.1004"
    assert signal.source is SignalSource.NOWCAST
    assert signal.source_id == key
    assert signal.msg_type is MsgType.ALERT
    assert signal.references == []
    assert (signal.area_code, signal.area_name) == ("52.71.01.1004", "Ampenan Selatan")
    assert (signal.kecamatan_code, signal.kecamatan_name) == ("52.71.01", "Ampenan")
    assert signal.hazard is Hazard.THUNDERSTORM
    assert signal.severity is Severity.MODERATE
    assert signal.headline == "Hujan Lebat disertai Petir di Nusa Tenggara Barat"
    assert signal.description is not None
    assert signal.description.startswith("Hujan lebat disertai petir akan terjadi")
    assert signal.effective == datetime(2026, 11, 27, 14, 35, tzinfo=WITA)
    assert signal.expires == datetime(2026, 11, 27, 16, 30, tzinfo=WITA)
    assert signal.attribution == BMKG_ATTRIBUTION == "Sumber: BMKG"


def test_two_kecamatan_alert_yields_two_signals(geo: Geography) -> None:
    alert = parse_file(TEST_2)
    signals = signals_from_cap(alert, geo)
    assert [(s.area_code, s.kecamatan_name) for s in signals] == [
        ("52.71.02.1011", "Mataram"),
        ("52.71.05.1008", "Selaparang"),
    ]
    assert len({s.signal_id for s in signals}) == 2
    assert {s.source_id for s in signals} == {"CNB20261127002|2026-11-27T14:30:00+08:00"}
    assert all(s.attribution == "Sumber: BMKG" for s in signals)
    names = kecamatan_names_in_description(alert.description)
    assert names == ["MATARAM", "SELAPRANG"]
    assert [geo.kecamatan_code_for_name(n) for n in names] == ["52.71.02", "52.71.05"]


def test_file_code_comes_from_the_file_name_or_url() -> None:
    data = read(TEST_1)
    url = "https://www.bmkg.go.id/alerts/nowcast/id/CNB20261127001_alert.xml"
    assert parse_cap(data, file_name=url).file_code == "CNB20261127001"
    assert parse_cap(data, file_name="no-code-here.xml").file_code is None
    alert = parse_cap(data)
    assert alert.file_code is None
    # Without the file code, identity falls back to what BMKG keeps stable between polls.
    assert alert.dedupe_key() == (
        f"{SENDER}|2026-11-27T14:30:00+08:00|Hujan Lebat dan Petir|Nusa Tenggara Barat"
    )


def test_update_carries_its_references_into_the_signals(geo: Geography) -> None:
    original = parse_file(TEST_1)
    ref = f"{SENDER},{original.identifier},2026-11-27T14:30:00+08:00"
    data = edit(
        TEST_1,
        ("<sent>2026-11-27T14:30:00+08:00</sent>", "<sent>2026-11-27T15:00:00+08:00</sent>"),
        ("<msgType>Alert</msgType>", "<msgType>Update</msgType>"),
        ("<scope>Public</scope>", f"<scope>Public</scope>\n  <references>{ref}</references>"),
        ("<severity>Moderate</severity>", "<severity>Severe</severity>"),
    )
    update = parse_cap(data, file_name=TEST_1)
    assert update.msg_type is MsgType.UPDATE
    [reference] = update.references
    assert (reference.sender, reference.identifier) == (SENDER, original.identifier)
    assert reference.sent == original.sent and reference.sent.utcoffset() is not None
    [signal] = signals_from_cap(update, geo)
    assert signal.msg_type is MsgType.UPDATE
    assert signal.references == [ref]
    assert signal.severity is Severity.SEVERE
    assert signal.signal_id != signals_from_cap(original, geo)[0].signal_id


def test_cancel_yields_cancel_signals_for_the_areas_it_covers(geo: Geography) -> None:
    refs = (
        f"{SENDER},2.49.0.1.360.0.2026.11.27.06.52.002,2026-11-27T14:30:00+08:00 "
        f"{SENDER},2.49.0.1.360.0.2026.11.27.07.52.002,2026-11-27T15:00:00+08:00"
    )
    data = edit(
        TEST_2,
        ("<sent>2026-11-27T14:30:00+08:00</sent>", "<sent>2026-11-27T15:10:00+08:00</sent>"),
        ("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>"),
        ("<scope>Public</scope>", f"<scope>Public</scope>\n  <references>{refs}</references>"),
    )
    cancel = parse_cap(data, file_name=TEST_2)
    assert len(cancel.references) == 2
    signals = signals_from_cap(cancel, geo)
    assert [s.area_code for s in signals] == ["52.71.02.1011", "52.71.05.1008"]
    assert all(s.msg_type is MsgType.CANCEL for s in signals)
    assert all(s.references == refs.split() for s in signals)


@pytest.mark.parametrize("msg_type", ["Ack", "Error"])
def test_ack_and_error_messages_are_rejected(msg_type: str) -> None:
    data = edit(TEST_1, ("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>"))
    with pytest.raises(CapError, match="unsupported msgType"):
        parse_cap(data)


@pytest.mark.parametrize("status", ["Test", "Exercise", "Draft", "System"])
def test_non_actual_alerts_reach_no_kelurahan(status: str, geo: Geography) -> None:
    alert = parse_cap(edit(TEST_1, ("<status>Actual</status>", f"<status>{status}</status>")))
    assert alert.status == status
    assert signals_from_cap(alert, geo) == []


# --- descriptions and hazards ------------------------------------------------------------


def test_kecamatan_names_are_deduplicated_in_order() -> None:
    text = (
        "Hujan lebat disertai petir akan terjadi pada 24 September 2026, 15:27 WIB di sebagian "
        "wilayah Riau, khususnya di BUKIT BATU, BUKIT BATU, PINGGIR, MA'U, PINGGIR.\n"
        " Kondisi ini berpotensi menimbulkan dampak berupa jarak pandang berkurang."
    )
    assert kecamatan_names_in_description(text) == ["BUKIT BATU", "PINGGIR", "MA'U"]
    assert kecamatan_names_in_description("Conditions are expected to improve.") == []
    assert kecamatan_names_in_description("... especially in: A, , B") == ["A", "B"]


@pytest.mark.parametrize(
    ("event", "hazard"),
    [
        ("Hujan Lebat dan Petir", Hazard.THUNDERSTORM),
        ("Thunderstorm", Hazard.THUNDERSTORM),
        ("Hujan Lebat", Hazard.HEAVY_RAIN),
        ("Heavy Rain", Hazard.HEAVY_RAIN),
        ("Angin Kencang", Hazard.STRONG_WIND),
        ("Strong Wind", Hazard.STRONG_WIND),
    ],
)
def test_hazard_from_event_text(event: str, hazard: Hazard) -> None:
    alert = parse_file(TEST_1).model_copy(update={"event": event, "event_codes": []})
    assert hazard_of(alert) is hazard


def test_hazard_falls_back_to_oet_code_then_other() -> None:
    alert = parse_file(TEST_1).model_copy(update={"event": "Cuaca Ekstrem"})
    assert hazard_of(alert) is Hazard.THUNDERSTORM  # OET-194
    assert hazard_of(alert.model_copy(update={"event_codes": []})) is Hazard.OTHER


# --- rejections: CapError and nothing else -----------------------------------------------

BILLION_LAUGHS = billion_laughs("alert", xmlns="urn:oasis:names:tc:emergency:cap:1.2")
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>'
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?>\n<!DOCTYPE alert SYSTEM "http://example.invalid/cap.dtd">\n'
    b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>'
)


@pytest.mark.timeout(1)
def test_billion_laughs_is_rejected_fast() -> None:
    with pytest.raises(CapError, match="forbidden XML construct"):
        parse_cap(BILLION_LAUGHS)


@pytest.mark.parametrize("data", [EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["entity", "dtd"])
def test_external_references_are_rejected(data: bytes) -> None:
    with pytest.raises(CapError, match="forbidden XML construct"):
        parse_cap(data)


def _truncated() -> bytes:
    data = read(TEST_1)
    return data[: len(data) // 2]


NS = 'xmlns="urn:oasis:names:tc:emergency:cap:1.2"'
REJECTED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "malformed XML"),
    ("malformed", b"<alert><sent>2026</alert>", "malformed XML"),
    ("not xml", b"\x00\xff\xfe garbage", "malformed XML"),
    ("truncated", _truncated(), "malformed XML"),
    (
        "wrong namespace",
        edit(TEST_1, (NS, 'xmlns="urn:oasis:names:tc:emergency:cap:1.1"')),
        "not CAP 1.2: root element {urn:oasis:names:tc:emergency:cap:1.1}alert",
    ),
    ("no namespace", edit(TEST_1, (" " + NS, "")), "not CAP 1.2: root element alert"),
    (
        "naive time",
        edit(TEST_1, ("<sent>2026-11-27T14:30:00+08:00", "<sent>2026-11-27T14:30:00")),
        "naive time in <sent>",
    ),
    (
        "naive expires",
        edit(TEST_1, ("<expires>2026-11-27T16:30:00+08:00", "<expires>2026-11-27T16:30:00")),
        "naive time in <expires>",
    ),
    (
        "bad time",
        edit(TEST_1, ("T14:30:00+08:00</sent>", "T25:30:00+08:00</sent>")),
        "invalid time in <sent>",
    ),
    (
        "missing sent",
        edit(TEST_1, ("  <sent>2026-11-27T14:30:00+08:00</sent>\n", "")),
        "missing <sent>",
    ),
    ("missing info", re.sub(rb"<info>.*</info>", b"", read(TEST_1), flags=re.S), "missing <info>"),
    ("bad msgType", edit(TEST_1, ("<msgType>Alert<", "<msgType>Warning<")), "invalid msgType"),
    ("bad severity", edit(TEST_1, (">Moderate<", ">Scary<")), "invalid severity"),
    ("latitude", edit(TEST_1, ("-8.588,116.077", "-98.588,116.077")), "latitude out of range"),
    ("longitude", edit(TEST_1, ("-8.588,116.077", "-8.588,216.077")), "longitude out of range"),
    ("not a number", edit(TEST_1, ("-8.588,116.077", "-8.588,nan")), "invalid <polygon> point"),
    ("lon only", edit(TEST_1, ("-8.588,116.077", "116.077")), "invalid <polygon> point"),
    ("open ring", edit(TEST_1, (" -8.577,116.072</polygon>", "</polygon>")), "not closed"),
    (
        "three points",
        re.sub(
            rb"<polygon>.*</polygon>",
            b"<polygon>-8.58,116.07 -8.59,116.08 -8.58,116.07</polygon>",
            read(TEST_1),
        ),
        "at least 4",
    ),
    (
        "bad references",
        edit(TEST_1, ("<scope>Public</scope>", "<scope>Public</scope><references>x</references>")),
        "invalid <references> entry",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED]
)
def test_unusable_documents_raise_cap_error(data: bytes, message: str) -> None:
    with pytest.raises(CapError, match=re.escape(message)) as caught:
        parse_cap(data)
    assert type(caught.value) is CapError


# --- property: CapAlert or CapError, never anything else -----------------------------------

VALID = read(TEST_2)
# Bytes that make mutations hit the parser's interesting paths, not just the XML tokenizer.
INTERESTING = [
    b"<",
    b">",
    b"&",
    b"&lol;",
    b"<!DOCTYPE a [<!ENTITY x 'y'>]>",
    b"]]>",
    b"<![CDATA[",
    b"<!--",
    b'"',
    b",",
    b" ",
    b"\n",
    b"\x00",
    b"\xff",
    b"+08:00",
    b"T99:99",
    b"-",
    b".",
    b"9999",
    b"</polygon>",
    b"<polygon>1,2 3,4 5,6 1,2</polygon>",
    b"<references>a,b,2026-01-01T00:00:00</references>",
    b"<references>a,b,2026-01-01T00:00:00+08:00 c,d,2026-01-01T00:00:00Z</references>",
    b'xmlns="x"',
]


def assert_alert_or_cap_error(data: bytes) -> None:
    try:
        result = parse_cap(data, file_name="CNB20261127002_alert.xml")
    except CapError:
        return
    assert isinstance(result, CapAlert)


@st.composite
def mutated_cap(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        operation = draw(st.sampled_from(["delete", "insert", "insert_token", "truncate"]))
        if operation == "delete":
            length = draw(st.integers(min_value=1, max_value=40))
            del data[position : position + length]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=20))
        elif operation == "insert_token":
            data[position:position] = draw(st.sampled_from(INTERESTING))
        else:
            del data[position:]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_an_alert_or_cap_error(data: bytes) -> None:
    assert_alert_or_cap_error(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_cap())
def test_mutated_cap_gives_an_alert_or_cap_error(data: bytes) -> None:
    assert_alert_or_cap_error(data)


# --- warnings over the Lombok Barat border ---------------------------------------------------


def over(name: str, geometry: object) -> bytes:
    """A test CAP whose only polygon is ``geometry`` (shapely, lon/lat) in CAP lat,lon text."""
    ring = " ".join(f"{y:.3f},{x:.3f}" for x, y in geometry.exterior.coords)  # type: ignore[attr-defined]
    text = re.sub(r"(<polygon>.*?</polygon>\s*)+", f"<polygon>{ring}</polygon>\n    ",
                  read(name).decode(), flags=re.S)
    return text.encode()


def largest_part(geometry: object) -> object:
    parts = getattr(geometry, "geoms", [geometry])
    return max(parts, key=lambda part: part.area)


def test_a_warning_over_a_bordering_desa_is_adjacent_to_its_kelurahan(geo: Geography) -> None:
    jatisela = geo.neighbours["52.01.09.2010"]  # Gunungsari, borders Ampenan Utara and Bintaro
    inner = largest_part(jatisela.geometry.buffer(-0.0008))
    signals = signals_from_cap(parse_cap(over(TEST_1, inner), file_name=TEST_1), geo)
    assert signals, "the shrunk desa polygon should still reach Mataram's border kelurahan"
    assert {s.proximity for s in signals} == {Proximity.ADJACENT}
    expected = {area.code for area in geo.adjacent_kelurahan("52.01.09.2010")}
    assert {s.area_code for s in signals} == expected
    assert "52.71.01.1007" in expected  # Ampenan Utara


def test_inside_wins_over_adjacent_for_the_same_kelurahan(geo: Geography) -> None:
    ampenan_utara = geo.kelurahan["52.71.01.1007"].geometry
    jatisela = geo.neighbours["52.01.09.2010"].geometry
    both = largest_part(ampenan_utara.union(jatisela).buffer(-0.0005))
    signals = signals_from_cap(parse_cap(over(TEST_1, both), file_name=TEST_1), geo)
    proximity = {s.area_code: s.proximity for s in signals}
    assert proximity["52.71.01.1007"] is Proximity.INSIDE
    assert len(proximity) == len(signals)  # one signal per kelurahan, never two


# --- Update and Cancel that follow their <references> -----------------------------------------

ALERT_1_REF = f"{SENDER},2.49.0.1.360.0.2026.11.27.06.52.001,2026-11-27T14:30:00+08:00"


def follow_up(msg_type: str, *, polygons: bool, sent: str = "15:10") -> CapAlert:
    """An Update/Cancel of test alert 1 that names it in <references>, with or without area."""
    replacements = [
        ("<sent>2026-11-27T14:30:00+08:00</sent>", f"<sent>2026-11-27T{sent}:00+08:00</sent>"),
        ("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>"),
        ("<scope>Public</scope>",
         f"<scope>Public</scope>\n  <references>{ALERT_1_REF}</references>"),
    ]
    data = edit(TEST_1, *replacements)
    if not polygons:
        data = re.sub(rb"\s*<polygon>.*?</polygon>", b"", data, flags=re.S)
    return parse_cap(data, file_name="mataram_test_CNB20261127003_alert.xml")


def recorded_for(alert: CapAlert, geo: Geography) -> dict[str, list[tuple[str, Proximity]]]:
    """What the worker remembers after an alert: its placement under each of its keys."""
    covered = still_covered(signals_from_cap(alert, geo))
    return {key: covered for key in placement_keys(alert)}


def test_a_cancel_without_polygons_cancels_the_kelurahan_of_the_alert_it_names(
    geo: Geography,
) -> None:
    memory = recorded_for(parse_file(TEST_1), geo)
    cancel = follow_up("Cancel", polygons=False)
    assert signals_from_cap(cancel, geo) == []  # alone it cannot know where it applies
    signals = signals_from_cap(cancel, geo, referenced_placement(cancel, memory.get))
    assert [(s.area_code, s.msg_type) for s in signals] == [("52.71.01.1004", MsgType.CANCEL)]


def test_an_update_without_polygons_keeps_the_referenced_areas(geo: Geography) -> None:
    memory = recorded_for(parse_file(TEST_1), geo)
    update = follow_up("Update", polygons=False)
    signals = signals_from_cap(update, geo, referenced_placement(update, memory.get))
    assert [(s.area_code, s.msg_type) for s in signals] == [("52.71.01.1004", MsgType.UPDATE)]


def test_an_update_that_moves_cancels_the_kelurahan_it_no_longer_covers(geo: Geography) -> None:
    memory = recorded_for(parse_file(TEST_1), geo)
    moved = over(TEST_1, largest_part(geo.kelurahan["52.71.02.1011"].geometry.buffer(-0.0005)))
    moved = moved.replace(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>").replace(
        b"<scope>Public</scope>",
        f"<scope>Public</scope>\n  <references>{ALERT_1_REF}</references>".encode())
    update = parse_cap(moved, file_name="mataram_test_CNB20261127004_alert.xml")
    signals = signals_from_cap(update, geo, referenced_placement(update, memory.get))
    assert [(s.area_code, s.msg_type) for s in signals] == [
        ("52.71.01.1004", MsgType.CANCEL), ("52.71.02.1011", MsgType.UPDATE),
    ]


def test_a_reissued_alert_is_found_by_sender_and_sent_when_its_oid_changed(
    geo: Geography,
) -> None:
    original = parse_file(TEST_1)
    memory = recorded_for(original, geo)
    del memory[f"id|{original.identifier}"]  # BMKG re-issued it under another OID
    cancel = follow_up("Cancel", polygons=False)
    assert [s.area_code for s in signals_from_cap(
        cancel, geo, referenced_placement(cancel, memory.get))] == ["52.71.01.1004"]
