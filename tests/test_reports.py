"""Citizen reports are located and classified the way a Mataram duty officer would read them.

Pure code, no broker: ``producers.reports`` on realistic Indonesian (and some English) texts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from producers.reports import (
    ReportInputError,
    UnlocatedReport,
    callcentre_job,
    classify_text,
    fold,
    normalize,
    parse_command,
    report_from_raw,
    signal_from_report,
)
from schemas.events import Hazard
from schemas.geography import load_geography
from schemas.reports import CitizenReport, LocationMethod, ReportSubmission, Route

GEO = load_geography()
TEST_DATA = Path(__file__).parent / "data" / "reports"
AT = datetime(2026, 11, 27, 6, 35, tzinfo=UTC)

F, T, L, W, FI, E, HW, R, TS, OT = (
    Hazard.FLOOD, Hazard.FALLEN_TREE, Hazard.LANDSLIDE, Hazard.STRONG_WIND, Hazard.FIRE,
    Hazard.EARTHQUAKE, Hazard.HIGH_WAVES, Hazard.HEAVY_RAIN, Hazard.THUNDERSTORM, Hazard.OTHER,
)
KEC = "kec"  # expected area: kecamatan only (area_code null)

# (text, location_text, expected kelurahan code | None | KEC:<kecamatan code>, hazard)
TABLE: list[tuple[str, str | None, str | None, Hazard]] = [
    ("BANJIR AMPENAN SELATAN air setinggi lutut", None, "52.71.01.1004", F),
    ("banjir di pagutan, air sudah masuk rumah warga", None, "52.71.02.1008", F),
    ("Pagutan Barat banjir sepinggang, mohon bantuan perahu", None, "52.71.02.1014", F),
    ("pohon tumbang di jalan dekat masjid", "Pagutan Timur", "52.71.02.1013", T),
    ("Air masuk rumah di Kebon Sari sejak subuh", None, "52.71.01.1010", F),
    ("genangan setinggi betis di kebun sari gang 3", None, "52.71.01.1010", F),
    ("Kebakaran rumah di Dayen Peken, api masih besar!!", None, "52.71.01.1012", FI),
    ("asap hitam, ada api di pasar Dayan Peken", None, "52.71.01.1012", FI),
    ("Angin kencang di Pajarakan Karya, atap seng beterbangan", None, "52.71.01.1011", W),
    ("puting beliung di Pejarakan Karya tadi sore", None, "52.71.01.1011", W),
    ("Sayang sayang banjir, kali meluap", None, "52.71.03.1009", F),
    ("banjir di SAYANG-SAYANG dekat SD", None, "52.71.03.1009", F),
    ("sayang2 kebanjiran lagi", None, "52.71.03.1009", F),
    ("gempa terasa kuat, dinding rumah retak", "Cilinaya", "52.71.03.1012", E),
    ("rumah roboh akibat gempa di Bintaro", None, "52.71.01.1013", E),
    ("gelombang pasang sampai ke permukiman nelayan Bintaro", None, "52.71.01.1013", HW),
    ("Rob masuk ke rumah di Ampenan Utara", None, "52.71.01.1007", HW),
    ("tanah longsor di tebing dekat sungai Jangkuk, Pejeruk", None, "52.71.01.1006", L),
    ("hujan deras sejak jam 3, jalan licin di Rembiga", None, "52.71.05.1005", R),
    ("petir menyambar tiang listrik di Gomong", None, "52.71.05.1006", TS),
    ("hujan lebat disertai petir di Monjok Barat", None, "52.71.05.1009", TS),
    ("Monjok tergenang air", None, "52.71.05.1003", F),
    ("Monjok Timur: pohon besar di depan sekolah tumbang", None, "52.71.05.1008", T),
    ("Cakranegara Barat banjir setinggi 50 cm", None, "52.71.03.1005", F),
    ("Cakranegara Selatan Baru pohon roboh menimpa mobil", None, "52.71.03.1010", T),
    ("banjir di Cakranegara Selatan", None, "52.71.03.1004", F),
    ("banjir di Cakranegara", None, f"{KEC}:52.71.03", F),
    ("angin kencang di kec. Selaprang, banyak baliho roboh", None, f"{KEC}:52.71.05", W),
    ("Kecamatan Mataram hujan deras", None, f"{KEC}:52.71.02", R),
    ("Mataram Barat banjir dekat kantor camat", None, "52.71.05.1001", F),
    ("kebakaran gudang di Mataram Timur", None, "52.71.02.1002", FI),
    ("banjir di Karang Pule dan Tanjung Karang", None, "52.71.04.1001", F),
    ("Tanjung Karang Permai: rob dan ombak besar", None, "52.71.04.1004", HW),
    ("Jempong Baru, air masuk rumah", None, "52.71.04.1003", F),
    ("lampu mati dan jalan rusak", "Kekalik Jaya", "52.71.04.1005", OT),
    ("Flooding near the market in Bertais, water knee deep", None, "52.71.06.1003", F),
    ("fallen tree blocking the road in Turida", None, "52.71.06.1006", T),
    ("Babakan: strong wind tore off roofs", None, "52.71.06.1002", W),
    ("pohon tumbang di jalan raya Senggigi", None, None, T),
    ("banjir di Gunung Sari, jembatan putus", None, None, F),
    ("gempa di Lombok Utara terasa sampai sini", None, None, E),
    ("tolong ada yang pingsan di jalan", None, None, OT),
    ("hujan deras di Mataram, jalan tergenang", None, None, F),
    ("Abian Tubuh Baru banjir bandang", None, "52.71.06.1005", F),
    ("Dasan Agung Baru kebakaran", None, "52.71.05.1007", FI),
    ("Dasan Agung angin puyuh", None, "52.71.05.1002", W),
]


def _report(text: str, location_text: str | None = None, **extra: Any) -> ReportSubmission:
    return ReportSubmission.model_validate({
        "reporter": "081234567890", "channel": "app", "text": text,
        "location_text": location_text, "reported_at": AT.isoformat(), **extra,
    })


def test_the_table_has_at_least_forty_messages() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("text", "location_text", "where", "hazard"), TABLE,
                         ids=[row[0][:40] for row in TABLE])
def test_realistic_messages_are_located_and_classified(
    text: str, location_text: str | None, where: str | None, hazard: Hazard
) -> None:
    normalized = normalize(_report(text, location_text), GEO)
    assert normalized.hazard is hazard, normalized.matched
    if where is None:
        assert normalized.area_code is None and normalized.kecamatan_code is None
        assert normalized.route is Route.CALLCENTRE and normalized.location_confidence == 0
    elif where.startswith(f"{KEC}:"):
        assert normalized.area_code is None
        assert normalized.kecamatan_code == where.split(":")[1]
        assert normalized.location_confidence == 0.5
        assert normalized.route is Route.CALLCENTRE
    else:
        assert normalized.area_code == where, normalized.matched
        assert normalized.location_confidence == 0.8
        assert normalized.route is Route.SIGNAL
    if hazard is not Hazard.OTHER:
        assert normalized.matched.hazard, "the words that decided are named"


def test_pagutan_and_pagutan_barat_are_different_kelurahan() -> None:
    assert normalize(_report("banjir Pagutan"), GEO).area_code == "52.71.02.1008"
    assert normalize(_report("banjir Pagutan Barat"), GEO).area_code == "52.71.02.1014"
    assert normalize(_report("banjir PAGUTAN-BARAT"), GEO).area_code == "52.71.02.1014"
    # "Pagutanbarat" is no word boundary we can trust: it is not silently read as Pagutan.
    assert normalize(_report("banjir pagutanbarat"), GEO).area_code is None


def test_location_text_is_preferred_over_text() -> None:
    normalized = normalize(_report("kiriman dari Rembiga: banjir", "Turida"), GEO)
    assert normalized.area_code == "52.71.06.1006"


def test_several_kelurahan_take_the_first_and_say_so() -> None:
    normalized = normalize(_report("banjir di Karang Pule dan Tanjung Karang"), GEO)
    assert normalized.area_code == "52.71.04.1001"
    assert "several_kelurahan_named" in normalized.flags


def test_gps_inside_a_kelurahan_beats_the_text() -> None:
    normalized = normalize(_report("banjir di Bintaro", lat=-8.60998, lon=116.10904), GEO)
    assert (normalized.area_code, normalized.location_method) == ("52.71.02.1014",
                                                                   LocationMethod.GPS)
    assert normalized.location_confidence == 1.0


def test_gps_outside_mataram_falls_back_to_the_text_with_less_confidence() -> None:
    normalized = normalize(_report("banjir di Bintaro", lat=-8.54617, lon=116.07517), GEO)
    assert normalized.area_code == "52.71.01.1013"
    assert normalized.location_confidence == 0.6
    assert "gps_outside_mataram" in normalized.flags
    assert "gps_in_52.01.14.2002" in normalized.flags  # Meninting, Batu Layar


def test_gps_outside_and_no_name_is_kept_and_routed_to_the_call_centre() -> None:
    normalized = normalize(_report("banjir", lat=-8.54617, lon=116.07517), GEO)
    assert normalized.area_code is None and normalized.outside_mataram
    assert normalized.route is Route.CALLCENTRE


def test_an_explicit_category_wins_over_the_text() -> None:
    normalized = normalize(_report("banjir di Turida", category="fire"), GEO)
    assert normalized.hazard is Hazard.FIRE and normalized.hazard_source == "category"


def test_hazard_words_are_whole_words() -> None:
    assert classify_text("sapi hilang").hazard is Hazard.OTHER  # "api" inside "sapi"
    assert classify_text("robohnya pagar").hazard is Hazard.OTHER  # "rob" inside "robohnya"
    assert classify_text("apinya besar").hazard is Hazard.FIRE


def test_fold_ignores_case_accents_and_punctuation() -> None:
    assert fold("  SAYANG-sayang,  Kébon.Sari ") == "sayang sayang kebon sari"


def test_phone_reporters_are_pseudonymous() -> None:
    normalized = normalize(_report("banjir Turida"), GEO)
    same = normalize(_report("banjir Turida", reporter="+62 812-3456-7890"), GEO)
    assert normalized.reporter_ref == same.reporter_ref
    assert "812" not in normalized.model_dump_json().replace(normalized.reporter_ref, "")


def test_signal_from_report_keeps_the_worker_contract() -> None:
    report = CitizenReport(report_id="r1", reporter="081234567890", channel="sms",
                           text="BANJIR AMPENAN SELATAN air setinggi lutut", reported_at=AT)
    signal = signal_from_report(report, GEO)
    assert (signal.area_code, signal.hazard, signal.signal_id) == (
        "52.71.01.1004", Hazard.FLOOD, "report:r1#52.71.01.1004")
    with pytest.raises(UnlocatedReport, match="kecamatan Ampenan only"):
        signal_from_report(report.model_copy(update={"text": "banjir di Ampenan"}), GEO)


def test_an_unplaceable_report_becomes_a_call_centre_job_without_the_phone() -> None:
    report = CitizenReport(report_id="r9", reporter="081234567890", channel="sms",
                           text="banjir di Ampenan, tolong", reported_at=AT)
    job = callcentre_job(report, GEO, AT)
    assert (job.channel.value, job.recipient, job.area_code) == ("callcentre", "callcentre",
                                                                 "52.71.01")
    assert "Kec. Ampenan" in job.text and "r9" in job.text and "81234567890" not in job.text


def test_report_from_raw_takes_a_missing_id_from_the_key() -> None:
    body = json.dumps({"reporter": "u1", "channel": "app", "text": "banjir",
                       "reported_at": AT.isoformat()}).encode()
    assert report_from_raw(b"rep-7", body).report_id == "rep-7"
    with pytest.raises(ValueError, match="not JSON"):
        report_from_raw(b"k", b"{")


def test_parse_command_reads_one_report_or_json_lines() -> None:
    one = json.dumps({"reporter": "u1", "channel": "app", "text": "pohon tumbang di Gomong",
                      "reported_at": AT.isoformat(), "report_id": "a"}, indent=2).encode()
    [only] = parse_command(one, "one.json")
    assert only.model_dump(mode="json")["area_code"] == "52.71.05.1006"
    lines = (TEST_DATA / "reports.jsonl").read_bytes()
    out = [m.model_dump(mode="json") for m in parse_command(lines, "reports.jsonl")]
    assert [(o["area_code"], o["hazard"]) for o in out] == [
        ("52.71.01.1004", "flood"), ("52.71.02.1014", "fallen_tree"), (None, "earthquake"),
    ]
    assert {"area_code", "hazard", "location_confidence", "matched"} <= set(out[0])


def test_parse_command_names_the_line_and_field_of_bad_input() -> None:
    with pytest.raises(ReportInputError, match=r"line 2: channel"):
        parse_command(b'{"reporter":"u","channel":"app","text":"x","reported_at":"'
                      + AT.isoformat().encode() + b'"}\n{"reporter":"u","channel":"fax",'
                      b'"text":"x","reported_at":"2026-11-27T06:00:00Z"}\n')
    with pytest.raises(ReportInputError, match="line 1: not JSON"):
        parse_command(b"{oops\n")


def test_kentongan_parse_report_prints_one_json_object_per_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from deploy.cli import main

    assert main(["parse", "report", str(TEST_DATA / "reports.jsonl")]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["report_id"], p["area_code"], p["hazard"], p["location_confidence"])
            for p in printed] == [("sms-0001", "52.71.01.1004", "flood", 0.8),
                                  ("app-0002", "52.71.02.1014", "fallen_tree", 1.0),
                                  ("cc-0003", None, "earthquake", 0.0)]
    assert printed[2]["route"] == "callcentre" and printed[2]["matched"]["location"] == [
        "senggigi"]
