"""The correlator's pieces, without Kafka: levels, rules files, state bounds and encoding."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from schemas.events import Level, Severity
from stream_processors.correlation import MAX_REPORTS, MAX_SEEN, AreaState, Correlator
from stream_processors.levels import level_of_cap, level_of_quake
from stream_processors.rules import RulesError, load_rules
from stream_processors.state_codec import dump_state, load_state
from tests.factories import T0, report, warning


def test_bmkg_words_map_to_bnpb_levels_in_one_place() -> None:
    assert [level_of_cap(s) for s in (Severity.MINOR, Severity.MODERATE, Severity.SEVERE,
                                      Severity.EXTREME)] == [
        Level.WASPADA, Level.WASPADA, Level.SIAGA, Level.AWAS]
    assert level_of_quake(3.4, tsunami=False) is None
    assert level_of_quake(4.0, tsunami=False) is Level.WASPADA
    assert level_of_quake(5.4, tsunami=False) is Level.WASPADA
    assert level_of_quake(5.6, tsunami=False) is Level.AWAS
    assert level_of_quake(3.0, tsunami=True) is Level.AWAS


def test_a_bad_rules_file_is_refused_naming_the_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\ncorroboration:\n"
        "  - name: citizens-confirm-warning\n    when: warned\n    distinct_reporters: 0\n"
        "    within_minutes: 60\n    then: escalate_once\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"rule 'citizens-confirm-warning': distinct_reporters"):
        load_rules(rules)
    rules.write_text("version: 1\nclock: {quiet_minutes: soon}\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"clock.quiet_minutes"):
        load_rules(rules)
    rules.write_text("corroboration: [\n", encoding="utf-8")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(rules)


def test_the_packaged_rules_are_the_documented_ones() -> None:
    rules = load_rules()
    warned, unwarned = rules.rule_for("warned"), rules.rule_for("unwarned")
    assert warned is not None and (warned.distinct_reporters, warned.within_minutes) == (2, 60)
    assert unwarned is not None and (unwarned.distinct_reporters,
                                     unwarned.within_minutes) == (3, 30)
    assert unwarned.level is Level.WASPADA
    assert rules.clock.future_skew_minutes == 5 and rules.clock.quiet_minutes == 60


def test_state_stays_bounded_under_a_flood_of_reports() -> None:
    correlator, state = Correlator(load_rules()), AreaState()
    correlator.on_signal(state, warning(), T0)
    for n in range(MAX_SEEN + 500):
        at = T0 + timedelta(seconds=n)
        correlator.on_signal(state, report(f"p{n}", at=at, report_id=f"r{n}"), at)
    assert len(state.seen) <= MAX_SEEN
    assert all(len(fs.reports) <= MAX_REPORTS for fs in state.families.values())


def test_state_survives_encoding_exactly() -> None:
    correlator, state = Correlator(load_rules()), AreaState()
    correlator.on_signal(state, warning(), T0)
    correlator.on_signal(state, report("a"), T0 + timedelta(minutes=20))
    again = load_state(dump_state(state))
    assert again == state
    # ... and the restored state decides as the original would.
    later = T0 + timedelta(minutes=25)
    assert correlator.on_signal(again, report("b", at=later), later) == correlator.on_signal(
        state, report("b", at=later), later)
