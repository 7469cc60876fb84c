"""``python -m deploy.jars``: fetch the configured Kafka broker jars into the shared cache."""

from __future__ import annotations

from deploy.kafka_runner import KafkaRunner, ensure_jars
from schemas.settings import Settings


def main() -> None:
    settings = Settings()
    path = ensure_jars(settings.kafka_version, KafkaRunner.from_settings(settings).jars_dir)
    print(f"Kafka {settings.kafka_version} jars: {path}")


if __name__ == "__main__":
    main()
