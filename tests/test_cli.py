"""The operator's contract: `kentongan kafka up|status|down`, `topics create`, `demo`, `parse`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from deploy.topics import create_topics
from schemas.topics import CATALOGUE
from tests.kafka_helpers import free_ports, lines, shared_jars_dir

CAP_DIR = Path(__file__).parent / "data" / "bmkg" / "cap"


def kentongan(*args: str, env: dict[str, str] | None = None,
              timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args], env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


@pytest.mark.kafka
def test_kafka_up_status_down_through_the_cli(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    jars = shared_jars_dir()
    home = tmp_path / "home"
    # The CLI reads the jar cache from its own home; share the machine's to avoid a refetch.
    (home / "kafka" / "jars").mkdir(parents=True)
    (home / "kafka" / "jars" / jars.name).symlink_to(jars)
    env = {**os.environ, "KENTONGAN_HOME": str(home), "KENTONGAN_KAFKA_PORT": str(port),
           "KENTONGAN_KAFKA_CONTROLLER_PORT": str(controller_port)}
    env.pop("KAFKA_BOOTSTRAP", None)
    try:
        up = kentongan("kafka", "up", env=env)
        assert up.returncode == 0, up.stderr
        status = kentongan("kafka", "status", env=env)
        assert status.returncode == 0
        assert "broker: live" in status.stdout
        assert f"bootstrap: 127.0.0.1:{port}" in status.stdout
        again = kentongan("kafka", "up", env=env)  # idempotent: same broker
        pid_line = next(line for line in status.stdout.splitlines() if line.startswith("pid:"))
        assert pid_line in again.stdout
    finally:
        down = kentongan("kafka", "down", env=env)
    assert down.returncode == 0 and "stopped the broker" in down.stdout
    after = kentongan("kafka", "status", env=env)
    assert after.returncode == 1 and "broker: stopped" in after.stdout


@pytest.mark.kafka
def test_topics_create_is_idempotent_and_follows_the_catalogue(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    created = create_topics(kafka_bootstrap, prefix=topic_prefix)
    assert sorted(created) == sorted(spec.full_name(topic_prefix) for spec in CATALOGUE)
    assert create_topics(kafka_bootstrap, prefix=topic_prefix) == []
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(
            [spec.full_name(topic_prefix) for spec in CATALOGUE])}
    finally:
        admin.close()
    for spec in CATALOGUE:
        assert len(described[spec.full_name(topic_prefix)]["partitions"]) == spec.partitions


@pytest.mark.kafka
def test_demo_finishes_with_messages_in_the_outbox(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap, "KENTONGAN_HOME": str(tmp_path)}
    demo = kentongan("demo", "--timeout", "120", env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    # Three warned kelurahan; the lone fallen-tree report opens nothing (3 reporters needed).
    assert "incidents raised: 3" in out
    # The report naming no place, and every incident version, reach the 112 desk.
    assert re.search(r"messages delivered per channel: callcentre=[1-9]\d*, sms=8\n", out)
    assert "dead letters: 3" in out
    outbox = Path(next(line for line in out.splitlines() if line.startswith("outbox: "))[8:])
    sent = [json.loads(line) for line in lines(outbox)]
    assert len(sent) == 8
    # Ampenan Selatan's three subscribers hear twice: the warning, then the citizens' escalation.
    versions = sorted((m["recipient"], m["version"]) for m in sent
                      if m["incident_id"].startswith("INC-52.71.01.1004-"))
    assert versions == [(f"+628123450000{n}", v) for n in (1, 2, 3) for v in (1, 3)]


def test_parse_cap_prints_one_signal_per_kelurahan() -> None:
    result = kentongan("parse", "cap", str(CAP_DIR / "mataram_test_CNB20261127002_alert.xml"))
    assert result.returncode == 0, result.stderr
    signals = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["area_code"] for s in signals] == ["52.71.02.1011", "52.71.05.1008"]
    contract = {"area_code", "hazard", "severity", "source_id", "msg_type", "effective", "expires"}
    for signal in signals:
        assert contract <= set(signal)
        assert signal["hazard"] == "thunderstorm" and signal["msg_type"] == "Alert"


def test_parse_cap_rejects_a_non_cap_file_clearly() -> None:
    result = kentongan("parse", "cap", str(CAP_DIR / "siaga_rss_id_2026-09-24.xml"))
    assert result.returncode == 1
    assert "siaga_rss_id_2026-09-24.xml" in result.stderr and "CAP" in result.stderr
