"""Create the catalogue's topics, idempotently, on any bootstrap servers."""

from __future__ import annotations

from contextlib import suppress

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from schemas.topics import CATALOGUE, TopicSpec


def create_topics(
    bootstrap: str, *, prefix: str = "", specs: tuple[TopicSpec, ...] = CATALOGUE,
    replication_factor: int = 1,
) -> list[str]:
    """Create every missing topic; return the names created (empty when all existed)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kentongan-topics")
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.full_name(prefix) not in existing]
        if not missing:
            return []
        wanted = {
            spec.full_name(prefix): {
                "num_partitions": spec.partitions,
                "replication_factor": replication_factor,
                "configs": spec.configs(),
            }
            for spec in missing
        }
        # Another process may win the race; the topics then exist, which is all we want.
        with suppress(TopicAlreadyExistsError):
            admin.create_topics(wanted, wait_for_metadata=True)
    finally:
        admin.close()
    _wait_for_leaders(bootstrap, {spec.full_name(prefix): spec.partitions for spec in missing})
    return sorted(wanted)


def _wait_for_leaders(bootstrap: str, partitions: dict[str, int]) -> None:
    """Metadata can name a leader before it serves: a ListOffsets answer proves it does, so the
    first producer after ``topics create`` does not meet NotLeaderForPartition."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, client_id="kentongan-topics", enable_auto_commit=False
    )
    try:
        consumer.end_offsets(
            [TopicPartition(name, p) for name, count in partitions.items() for p in range(count)]
        )
    finally:
        consumer.close()
