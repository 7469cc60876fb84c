"""deploy.kafka_runner: rendered config, cluster ids, tool checks, jar cache, and a real broker."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.kafka_runner import (
    KafkaRunner,
    KafkaRunnerError,
    ensure_jars,
    new_cluster_id,
    render_server_properties,
)
from schemas.settings import Settings
from tests.kafka_helpers import free_ports, shared_jars_dir

VERSION = "4.0.2"


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def write_script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


# -- render_server_properties ------------------------------------------------------------------


def test_server_properties_have_the_single_node_settings(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(
        node_id=1, port=19092, controller_port=19093, data_dir=tmp_path / "data"))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "num.partitions",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"
    # Dynamic quorum would need --standalone at format time; the runner uses the static one.
    assert "controller.quorum.bootstrap.servers" not in props


def test_server_properties_listen_on_loopback_only(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(
        node_id=1, port=9092, controller_port=9093, data_dir=tmp_path))
    endpoints = [
        *props["listeners"].split(","),
        *props["advertised.listeners"].split(","),
        props["controller.quorum.voters"].split("@", 1)[1],
    ]
    hosts = {re.sub(r"^\w+://", "", ep).rsplit(":", 1)[0] for ep in endpoints}
    assert hosts == {"127.0.0.1"}


def test_server_properties_escape_paths_for_java_properties() -> None:
    text = render_server_properties(
        node_id=1, port=1, controller_port=2, data_dir=Path("/srv/kafka\\x/é"))
    assert parse_properties(text)["log.dirs"] == "/srv/kafka\\\\x/\\u00e9"


# -- new_cluster_id ------------------------------------------------------------------------------


def test_cluster_ids_are_kafka_shaped() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 encodes to a leading '-' (index 62 of the URL-safe alphabet); the first draw is refused.
    draws = iter([b"\xf8" + bytes(15), bytes(16)])
    monkeypatch.setattr(secrets, "token_bytes", lambda n: next(draws))
    assert new_cluster_id() == "A" * 22


# -- missing or unsuitable tools -------------------------------------------------------------------


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: neither java nor mvn
    runner = KafkaRunner(tmp_path / "home", port=free_ports(1)[0])
    with pytest.raises(KafkaRunnerError, match=r"`java` was not found.*openjdk-17-jre-headless"):
        runner.up(timeout_s=5)


def test_missing_mvn_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaRunnerError, match=r"`mvn` was not found.*apt-get install maven"):
        ensure_jars(VERSION, tmp_path / "jars" / VERSION)


def test_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_script(tmp_path / "java", """echo 'openjdk version "11.0.22" 2024-01-16' >&2""")
    monkeypatch.setenv("PATH", str(tmp_path))
    runner = KafkaRunner(tmp_path / "home", port=free_ports(1)[0])
    with pytest.raises(KafkaRunnerError, match=r"needs Java 17 or newer.*Java 11"):
        runner.up(timeout_s=5)


def test_a_taken_port_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_script(tmp_path / "java", """echo 'openjdk version "17.0.15" 2025-04-15' >&2""")
    monkeypatch.setenv("PATH", str(tmp_path))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        runner = KafkaRunner(tmp_path / "home", port=port, controller_port=free_ports(1)[0])
        with pytest.raises(KafkaRunnerError, match=rf"127\.0\.0\.1:{port} is already in use"):
            runner.up(timeout_s=5)
    assert not runner.pid_path.exists()


# -- ensure_jars (with a stand-in mvn; the real fetch is covered by the broker test) -------------

# Shell builtins only: PATH holds nothing but this script's directory.
FAKE_MVN = """
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;; esac
done
if [ -n "$FAIL" ]; then
  : > "$out/half.jar"; echo "[ERROR] Could not resolve dependencies" >&2; exit 1
fi
: > "$out/kafka_2.13-4.0.2.jar"; : > "$out/kafka-clients-4.0.2.jar"
"""


def test_ensure_jars_fetches_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_script(tmp_path / "mvn", FAKE_MVN)
    monkeypatch.setenv("PATH", str(tmp_path))
    jars = tmp_path / "cache" / VERSION

    assert ensure_jars(VERSION, jars) == jars
    assert sorted(p.name for p in jars.iterdir()) == [
        "kafka-clients-4.0.2.jar", "kafka_2.13-4.0.2.jar"]
    assert [p.name for p in jars.parent.iterdir()] == [VERSION]  # no temporary leftovers


def test_ensure_jars_skips_a_filled_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn: it must not be needed
    jars = tmp_path / "cache" / VERSION
    jars.mkdir(parents=True)
    (jars / f"kafka_2.13-{VERSION}.jar").touch()
    assert ensure_jars(VERSION, jars) == jars


def test_failed_fetch_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_script(tmp_path / "mvn", FAKE_MVN)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("FAIL", "1")
    jars = tmp_path / "cache" / VERSION
    with pytest.raises(KafkaRunnerError, match=r"(?s)fetch Kafka 4\.0\.2.*Could not resolve"):
        ensure_jars(VERSION, jars)
    assert list(jars.parent.iterdir()) == []


# -- down() only ever stops our broker -------------------------------------------------------------


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_down_leaves_a_foreign_pid_alone(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    runner = KafkaRunner(tmp_path / "home")
    runner.pid_path.parent.mkdir(parents=True)
    runner.pid_path.write_text(f"{bystander.pid}\n")

    assert runner.status().running is False
    assert runner.down(timeout_s=1) is False
    time.sleep(0.2)
    assert bystander.poll() is None, "down() signalled a process that is not our broker"
    assert not runner.pid_path.exists()


# -- a real broker ---------------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[KafkaRunner]:
    if shutil.which("java") is None and os.environ.get("CI") != "true":
        pytest.skip("java is not installed")
    port, controller_port = free_ports(2)
    runner = KafkaRunner(tmp_path, version=VERSION, port=port, controller_port=controller_port,
                         jars_dir=shared_jars_dir())
    try:
        yield runner
    finally:
        runner.down()


def _consume(bootstrap: str, topic: str, count: int, **config: object) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=f"{topic}-reader", **config)
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
    finally:
        consumer.close()
    return values


@pytest.mark.kafka
def test_broker_lifecycle_and_round_trip(runner: KafkaRunner, topic_prefix: str) -> None:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.errors import KafkaTimeoutError

    status = runner.up()
    assert status.running and status.answered, status
    assert status.bootstrap == runner.bootstrap
    assert status.cluster_id == runner.cluster_id_path.read_text().strip()
    assert runner.status() == status

    again = runner.up()
    assert again.pid == status.pid, "up() started a second broker"

    bootstrap = runner.bootstrap
    plain, txn = f"{topic_prefix}plain", f"{topic_prefix}txn"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics({plain: {"num_partitions": 1, "replication_factor": 1},
                             txn: {"num_partitions": 1, "replication_factor": 1}},
                            wait_for_metadata=True)

        # Idempotent (kafka-python 3 default) producer: needs nothing beyond a working broker.
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for i in range(3):
            producer.send(plain, f"plain-{i}".encode())
        producer.flush()
        producer.close()
        assert _consume(bootstrap, plain, 3) == [b"plain-0", b"plain-1", b"plain-2"]

        # Transactions only work on one node with the transaction.state.log.* settings.
        tx = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{topic_prefix}tx")
        tx.init_transactions()
        tx.begin_transaction()
        tx.send(txn, b"aborted")
        tx.abort_transaction()
        tx.begin_transaction()
        tx.send(txn, b"committed-0")
        tx.send(txn, b"committed-1")
        tx.commit_transaction()
        tx.close()
        assert _consume(bootstrap, txn, 2, isolation_level="read_committed") == [
            b"committed-0", b"committed-1"]

        # auto.create.topics.enable=false: a typo'd topic fails instead of springing into being.
        stray = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=1500)
        with pytest.raises(KafkaTimeoutError):
            stray.send(f"{topic_prefix}no-such-topic", b"x").get(timeout=5)
        stray.close()
        assert f"{topic_prefix}no-such-topic" not in admin.list_topics()
    finally:
        admin.close()

    assert runner.down() is True
    after = runner.status()
    assert not after.running and not after.answered, after
    assert not runner.pid_path.exists()
    assert runner.down() is False


@pytest.mark.kafka
def test_a_broker_dying_at_startup_reports_its_log(tmp_path: Path) -> None:
    if shutil.which("java") is None and os.environ.get("CI") != "true":
        pytest.skip("java is not installed")
    port, controller_port = free_ports(2)
    # A 1 KiB heap passes our check but the JVM refuses it: the quickest real startup death.
    runner = KafkaRunner(tmp_path, port=port, controller_port=controller_port, heap="1k",
                         jars_dir=shared_jars_dir())
    with pytest.raises(KafkaRunnerError, match=r"(?s)exited during startup.*Too small.*heap"):
        runner.up(timeout_s=60)
    assert not runner.pid_path.exists()
    assert runner.status().running is False


def test_runner_from_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka_port=29092, kafka_controller_port=29093,
                        kafka_heap="256m", kafka_version="4.0.2")
    runner = KafkaRunner.from_settings(settings)
    assert runner.home == tmp_path.resolve()
    assert runner.bootstrap == "127.0.0.1:29092"
    assert (runner.controller_port, runner.heap, runner.version) == (29093, "256m", "4.0.2")
    assert runner.jars_dir == tmp_path.resolve() / "kafka" / "jars" / "4.0.2"
