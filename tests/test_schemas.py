"""The contract: models refuse what would corrupt the stream; JSON Schema is exported."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from producers.feeds import record_key
from schemas.events import Subscriber, dead_letter_key
from schemas.export import export_json_schemas
from schemas.topics import CATALOGUE, REPORTS_RAW, SUBSCRIBERS, by_name
from tests.factories import warning


def test_topic_names_are_unique_and_compaction_is_declared() -> None:
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names))
    assert by_name("incidents").configs()["cleanup.policy"] == "compact"
    assert by_name("subscribers").configs()["cleanup.policy"] == "compact"
    assert by_name("signals").configs()["cleanup.policy"] == "delete"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        warning(effective=datetime(2026, 11, 27, 14, 35))  # noqa: DTZ001 - naive on purpose


def test_phones_must_be_e164() -> None:
    with pytest.raises(ValidationError, match="phone"):
        Subscriber(subscriber_id="x", phone="081234500001", areas=["52.71.01.1004"])


def test_signals_need_a_dotted_kemendagri_code() -> None:
    with pytest.raises(ValidationError, match="area_code"):
        warning(area="5271011004")


def test_every_catalogue_model_exports_a_json_schema(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    names = {path.name for path in written}
    assert {"Signal.v1.schema.json", "Incident.v1.schema.json", "DeliveryJob.v1.schema.json",
            "CitizenReport.v1.schema.json", "DeadLetter.v1.schema.json"} <= names
    signal = json.loads((tmp_path / "Signal.v1.schema.json").read_text())
    assert "area_code" in signal["required"]


def test_dead_letter_keys_name_where_the_record_came_from() -> None:
    assert dead_letter_key("reports.raw", 3, 17) == "reports.raw:3:17"
    assert dead_letter_key("reports.raw", None, None) == "reports.raw:-:-"


def test_a_jsonl_line_is_keyed_by_its_topic_key_field() -> None:
    assert record_key('{"report_id": "r1", "text": "x"}', REPORTS_RAW) == "r1"
    with pytest.raises(ValueError, match="not JSON"):
        record_key('{"report_id": ', REPORTS_RAW)
    with pytest.raises(ValueError, match="subscriber_id"):
        record_key('{"phone": "+6281234500001"}', SUBSCRIBERS)
