"""What a citizen reads: sized for SMS segments, push and cell broadcast, in their language."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from schemas.events import BMKG_ATTRIBUTION, FAMILY, Announce, Hazard, Incident, Level
from schemas.geography import load_geography
from stream_processors.render import (
    ADVICE,
    ALL_CLEAR_ADVICE,
    CELL_BROADCAST_LONG,
    CELL_BROADCAST_SHORT,
    FCM_PAYLOAD_MAX_BYTES,
    HAZARD_NAME,
    LANGUAGES,
    PUSH_BODY_MAX,
    PUSH_TITLE_MAX,
    Language,
    cell_broadcast,
    push_message,
    sms_text,
    split_push_text,
)
from stream_processors.sms import Encoding, count_segments, fits, to_gsm7
from tests.factories import incident

# An expiry late on the last day of a month with a long name: the widest time text there is.
EXPIRES = datetime(2026, 12, 28, 15, 55, tzinfo=UTC)  # 23:55 WITA
KELURAHAN = sorted(load_geography().kelurahan.values(), key=lambda a: a.code)


# --- the segment counter -------------------------------------------------------------------

def test_gsm7_basic_text_fits_160_per_single_segment_then_153_per_part() -> None:
    assert (count_segments("a" * 160).encoding, count_segments("a" * 160).parts) == (
        Encoding.GSM7, 1)
    assert count_segments("a" * 161).parts == 2
    assert count_segments("a" * 306).parts == 2
    assert count_segments("a" * 307).parts == 3


def test_extension_characters_cost_two_septets_and_never_straddle_two_parts() -> None:
    assert count_segments("{" * 80).units == 160 and count_segments("{" * 80).parts == 1
    assert count_segments("€" * 81).parts == 2
    # 306 septets would be two parts of 153, but the ESC pair at 153 moves whole to part 2,
    # pushing the last character into a third.
    straddling = "a" * 152 + "[" + "a" * 152
    assert count_segments(straddling).units == 306
    assert count_segments(straddling).parts == 3


def test_a_character_outside_gsm7_makes_the_text_ucs2_of_70_then_67_per_part() -> None:
    text = "ł" + "a" * 69
    assert count_segments(text).encoding is Encoding.UCS2
    assert count_segments(text).parts == 1
    assert count_segments(text + "a").parts == 2
    assert count_segments("ł" + "a" * 133).parts == 2  # 134 = 2 x 67
    assert count_segments("ł" + "a" * 134).parts == 3
    # An emoji is two UTF-16 units and is not split across parts either.
    assert count_segments("😀" * 35).units == 70 and count_segments("😀" * 35).parts == 1
    straddling = "a" * 66 + "😀" + "a" * 66  # 134 units, but the pair cannot start at unit 67
    assert count_segments(straddling).units == 134 and count_segments(straddling).parts == 3


def test_gsm7_letters_with_accents_stay_gsm7_and_others_are_transliterated() -> None:
    assert count_segments("Pagutan é à ñ ü Ä").encoding is Encoding.GSM7
    assert to_gsm7("Kebon Sari \u2013 \u2018Mataram\u2019 ō ł") == "Kebon Sari - 'Mataram' o ?"
    assert count_segments(to_gsm7("Ṣelaparang \U0001f30a")).encoding is Encoding.GSM7


# --- every text fits and says what it must --------------------------------------------------

def version(area_index: int, hazard: Hazard, level: Level, announce: Announce,
            attribution: str | None = BMKG_ATTRIBUTION) -> Incident:
    area = KELURAHAN[area_index]
    return incident(area_code=area.code, area_name=area.name, kecamatan_code=area.kecamatan_code,
                    kecamatan_name=area.kecamatan_name, hazard=FAMILY[hazard], hazards=[hazard],
                    level=level, announce=announce, expires=EXPIRES, attribution=attribution)


def required_parts(version: Incident, language: Language, announce: Announce) -> list[str]:
    hazard = version.hazards[0]
    parts = [HAZARD_NAME[language][hazard], version.area_name, "Sumber: BMKG", "BERHENTI"]
    if announce is not Announce.ALL_CLEAR:
        parts += [version.level.value.upper(), "23:55 WITA"]
    return parts


def advice_in(text: str, version: Incident, language: Language, announce: Announce) -> bool:
    options = (ALL_CLEAR_ADVICE[language] if announce is Announce.ALL_CLEAR
               else ADVICE[language][FAMILY[version.hazards[0]]][version.level])
    return any(option in text for option in options)


HEADLINE_WORD = {"id": {Announce.WARNING: "PERINGATAN", Announce.RAISED: "NAIK",
                        Announce.LOWERED: "TURUN", Announce.ALL_CLEAR: "SELESAI"},
                 "en": {Announce.WARNING: "ALERT", Announce.RAISED: "RAISED",
                        Announce.LOWERED: "LOWERED", Announce.ALL_CLEAR: "ALL CLEAR"}}


@pytest.mark.parametrize("announce", list(Announce))
def test_every_sms_fits_one_segment_and_has_every_required_part(announce: Announce) -> None:
    """Every template x hazard x level x all 50 kelurahan x both languages."""
    checked = 0
    for area_index in range(len(KELURAHAN)):
        for hazard in Hazard:
            for level in Level:
                v = version(area_index, hazard, level, announce)
                for language in LANGUAGES:
                    text = sms_text(v, language)
                    segments = count_segments(text)
                    where = f"{announce}/{hazard}/{level}/{v.area_name}/{language}"
                    assert segments.parts == 1, f"{where}: {segments} {text!r}"
                    assert segments.encoding is Encoding.GSM7, where
                    assert segments.units <= 160, where
                    for part in required_parts(v, language, announce):
                        assert part in text, f"{where}: {part!r} missing from {text!r}"
                    assert advice_in(text, v, language, announce), f"{where}: no advice"
                    assert text.startswith(HEADLINE_WORD[language][announce]), where
                    checked += 1
    assert checked == len(KELURAHAN) * len(Hazard) * len(Level) * 2


@pytest.mark.parametrize("parts", [2, 3])
def test_with_more_parts_allowed_the_other_language_follows_within_them(parts: int) -> None:
    for area_index in range(len(KELURAHAN)):
        for announce in Announce:
            v = version(area_index, Hazard.THUNDERSTORM, Level.AWAS, announce)
            for language in LANGUAGES:
                text = sms_text(v, language, max_parts=parts)
                assert fits(text, parts), text
                first, _, second = text.partition("\n")
                other = "en" if language == "id" else "id"
                assert first.startswith(HEADLINE_WORD[language][announce])
                if parts == 3:  # two languages always fit in three parts
                    assert second.startswith(HEADLINE_WORD[other][announce]), text


def test_without_bmkg_behind_it_no_text_claims_bmkg() -> None:
    v = version(0, Hazard.FLOOD, Level.SIAGA, Announce.WARNING, attribution=None)
    for language in LANGUAGES:
        assert "BMKG" not in sms_text(v, language, max_parts=3)
        assert "BMKG" not in push_message(v, language).as_text()
    assert "BMKG" not in cell_broadcast(v, CELL_BROADCAST_LONG)


def test_times_are_shown_in_wita() -> None:
    at_utc = version(0, Hazard.FLOOD, Level.SIAGA, Announce.WARNING).model_copy(
        update={"expires": datetime(2026, 11, 27, 16, 30, tzinfo=UTC)})
    assert "s/d 28 Nov 00:30 WITA" in sms_text(at_utc, "id")
    assert "until 28 Nov 00:30 WITA" in sms_text(at_utc, "en")


def test_push_title_and_body_stay_within_what_fcm_shows() -> None:
    for area_index in range(len(KELURAHAN)):
        for hazard in Hazard:
            for level in Level:
                for announce in Announce:
                    v = version(area_index, hazard, level, announce)
                    for language in LANGUAGES:
                        push = push_message(v, language)
                        assert 0 < len(push.title) <= PUSH_TITLE_MAX, push.title
                        assert 0 < len(push.body) <= PUSH_BODY_MAX, push.body
                        payload = json.dumps({"notification": {"title": push.title,
                                                               "body": push.body}})
                        assert len(payload.encode()) <= FCM_PAYLOAD_MAX_BYTES
                        assert v.area_name in push.body and "Sumber: BMKG" in push.body
                        assert HAZARD_NAME[language][hazard] in push.body
                        assert split_push_text(push.as_text()) == push


def test_cell_broadcast_summaries_fit_90_and_360_characters() -> None:
    for area_index in range(len(KELURAHAN)):
        for hazard in Hazard:
            for level in Level:
                for announce in Announce:
                    v = version(area_index, hazard, level, announce)
                    short = cell_broadcast(v, CELL_BROADCAST_SHORT)
                    long = cell_broadcast(v, CELL_BROADCAST_LONG)
                    assert len(short) <= CELL_BROADCAST_SHORT, short
                    assert len(long) <= CELL_BROADCAST_LONG, long
                    for text in (short, long):
                        assert v.area_name in text and "Sumber: BMKG" in text
                        assert HAZARD_NAME["id"][hazard] in text
                        if announce is not Announce.ALL_CLEAR:
                            assert level.value.upper() in text and "23:55 WITA" in text
                    # The long one also speaks English.
                    assert HAZARD_NAME["en"][hazard] in long.split("\n")[1], long
