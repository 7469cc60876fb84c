"""Shared fixtures: one Kafka broker per test session, and per-test topic name prefixes."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

from deploy.kafka_runner import KafkaRunner, KafkaRunnerError, broker_answers
from schemas.settings import Settings
from tests.kafka_helpers import free_ports, shared_jars_dir


def _no_broker(reason: str) -> NoReturn:
    # In CI a missing broker must fail the run: a green build that skipped every Kafka test lies.
    if os.environ.get("CI") == "true":
        pytest.fail(f"no Kafka broker for the kafka tests: {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


def _docker_answers() -> bool:
    try:
        # import_module: the docker SDK ships no type stubs and pyproject lists no override.
        client = importlib.import_module("docker").from_env()
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker here"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of a broker that answers: $KAFKA_BOOTSTRAP, else Docker, else local jars."""
    configured = os.environ.get("KAFKA_BOOTSTRAP")
    if configured:
        if broker_answers(configured, timeout_s=10.0) is None:
            # An explicitly configured broker that is down is an error everywhere, not a skip.
            pytest.fail(f"KAFKA_BOOTSTRAP={configured} does not answer an admin request",
                        pytrace=False)
        yield configured
        return

    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        # Same single-node settings as deploy.kafka_runner: without the transaction-log ones,
        # transactional producers (and faust's exactly-once) cannot initialise on one broker.
        container = (
            KafkaContainer()
            .with_kraft()
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        )
        try:
            container.start()
        except Exception as exc:
            _no_broker(f"Docker answers but the Kafka container did not start: {exc}")
        try:
            yield container.get_bootstrap_server()
        finally:
            container.stop()
        return

    settings = Settings()
    port, controller_port = free_ports(2)
    runner = KafkaRunner(
        tmp_path_factory.mktemp("kafka-home"),
        version=settings.kafka_version,
        port=port,
        controller_port=controller_port,
        heap=settings.kafka_heap,
        jars_dir=shared_jars_dir(),
    )
    try:
        runner.up()
    except KafkaRunnerError as exc:
        runner.down()
        _no_broker(str(exc))
    try:
        yield runner.bootstrap
    finally:
        runner.down()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so tests sharing the session broker never see each other."""
    return f"t-{uuid.uuid4().hex[:8]}."
