"""Every incident scenario through ``kentongan simulate``: the rules on the timeline's clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.events import Incident
from stream_processors.rules import load_rules
from stream_processors.simulate import Rejection, simulate
from tests.scenarios import SCENARIOS, Scenario, check


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_through_simulate(scenario: Scenario, tmp_path: Path) -> None:
    results = list(simulate(scenario.timeline(tmp_path), load_rules()))
    rejected = [r for r in results if isinstance(r, Rejection)]
    assert len(rejected) == scenario.rejected, rejected
    check(scenario, [r for r in results if isinstance(r, Incident)], timed=True)


def test_the_readme_timeline_prints_what_the_readme_shows() -> None:
    timeline = Path(__file__).parents[1] / "deploy" / "scenarios" / "afternoon.jsonl"
    versions = [r for r in simulate(timeline, load_rules()) if isinstance(r, Incident)]
    assert [(v.version, v.change.value, v.level.value,
             None if v.announce is None else v.announce.value) for v in versions] == [
        (1, "opened", "waspada", "warning"), (2, "updated", "waspada", None),
        (3, "escalated", "siaga", "raised"), (4, "acknowledged", "siaga", None),
        (5, "expired", "siaga", "all_clear")]
    assert versions[-1].updated_at.isoformat() == "2026-11-27T16:30:00+08:00"
