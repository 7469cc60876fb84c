"""Create the catalogue's topics, idempotently, on any bootstrap servers."""

from __future__ import annotations

from contextlib import suppress

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
        wanted = {
            spec.full_name(prefix): {
                "num_partitions": spec.partitions,
                "replication_factor": replication_factor,
                "configs": spec.configs(),
            }
            for spec in specs
            if spec.full_name(prefix) not in existing
        }
        if not wanted:
            return []
        # Another process may win the race; the topics then exist, which is all we want.
        with suppress(TopicAlreadyExistsError):
            admin.create_topics(wanted, wait_for_metadata=True)
        return sorted(wanted)
    finally:
        admin.close()
