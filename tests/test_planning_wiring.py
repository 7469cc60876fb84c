"""The planner's wiring, checked without a broker: co-partitioned inputs, declared changelogs."""

from __future__ import annotations

from schemas.settings import Settings
from schemas.topics import CATALOGUE, INCIDENTS_BY_AREA, SUBSCRIBERS_BY_AREA
from stream_processors.app import create_app
from stream_processors.planning import TABLE_CHANGELOGS, directory_changelog


def test_each_planner_table_writes_to_a_changelog_the_catalogue_creates() -> None:
    settings = Settings(topic_prefix="t-wiring.")
    app = create_app(settings)
    for table_name, spec in TABLE_CHANGELOGS.items():
        table = app.tables[table_name]
        assert spec in CATALOGUE and spec.compacted
        assert table.changelog_topic.get_topic_name() == spec.full_name(settings.topic_prefix)
        assert table.partitions == spec.partitions
    assert directory_changelog(settings) == TABLE_CHANGELOGS["audience"].full_name(
        settings.topic_prefix)


def test_the_planners_inputs_and_state_are_co_partitioned_by_kelurahan() -> None:
    counts = {SUBSCRIBERS_BY_AREA.partitions, INCIDENTS_BY_AREA.partitions,
              TABLE_CHANGELOGS["audience"].partitions, TABLE_CHANGELOGS["announced"].partitions}
    assert len(counts) == 1
