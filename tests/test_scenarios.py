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
