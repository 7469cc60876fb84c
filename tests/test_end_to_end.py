"""The walking skeleton on a real broker: a BMKG CAP in, SMS jobs in the outbox out."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from deploy.processes import start, stop
from deploy.readiness import records_on
from deploy.topics import create_topics
from producers.bmkg.replay import replay
from producers.feeds import publish_jsonl
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import DeadLetter, Subscriber
from schemas.settings import Settings
from schemas.topics import DEADLETTER, NOWCAST_RAW, SUBSCRIBERS
from stream_processors.planning import directory_changelog
from tests.kafka_helpers import free_ports, lines, read_topic, wait_for, wait_while_running

pytestmark = pytest.mark.kafka

CAP_DIR = Path(__file__).parent / "data" / "bmkg" / "cap"
AMPENAN_SELATAN = "52.71.01.1004"
WORKER_READY = "Worker ready"  # faust's Recovery service logs it once every table is recovered


@dataclass
class Pipeline:
    """Topics created; the worker and SMS consumer are started by each test when it is ready."""

    env: dict[str, str]
    logs: Path
    outbox: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *command: str, log: str, **env: str) -> subprocess.Popen[bytes]:
        process = start(list(command), {**self.env, **env}, self.logs / f"{log}.log")
        self.processes.append(process)
        return process

    def start_worker(self, log: str = "worker", **env: str) -> subprocess.Popen[bytes]:
        """A worker, returned once it is ready: every table recovered (fails at once, with the
        logs, if it dies)."""
        process = self.start("worker", log=log, **env)
        log_file = self.logs / f"{log}.log"
        wait_while_running(lambda: WORKER_READY in log_file.read_text(errors="replace"),
                           self.processes, self.logs, timeout_s=150)
        return process

    def start_sms(self, log: str = "deliver") -> subprocess.Popen[bytes]:
        return self.start("deliver", "sms", "--outbox", str(self.outbox), log=log)

    def wait_for_directory(self, count: int) -> None:
        """The worker's planner knows ``count`` kelurahan memberships: warnings replayed now
        reach them all."""
        topic = directory_changelog(Settings(topic_prefix=self.env["KENTONGAN_TOPIC_PREFIX"]))
        bootstrap = self.env["KAFKA_BOOTSTRAP"]
        wait_while_running(lambda: records_on(bootstrap, topic) >= count, self.processes,
                           self.logs, timeout_s=120)

    def wait_for_outbox(self, count: int) -> None:
        wait_while_running(lambda: len(lines(self.outbox)) >= count, self.processes, self.logs,
                           timeout_s=120)


@pytest.fixture
def pipeline(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Pipeline]:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap,
           "KENTONGAN_TOPIC_PREFIX": topic_prefix, "KENTONGAN_HOME": str(tmp_path / "home")}
    running = Pipeline(env=env, logs=tmp_path, outbox=tmp_path / "outbox.jsonl")
    yield running
    for process in running.processes:
        stop(process)


def subscribers_file(tmp_path: Path) -> Path:
    people = [
        Subscriber(subscriber_id="e2e-1", phone="+6281200000001", areas=[AMPENAN_SELATAN]),
        Subscriber(subscriber_id="e2e-2", phone="+6281200000002", areas=[AMPENAN_SELATAN]),
        Subscriber(subscriber_id="e2e-3", phone="+6281200000003", areas=["52.71.03.1005"]),
    ]
    path = tmp_path / "subscribers.jsonl"
    path.write_text("".join(p.model_dump_json() + "\n" for p in people), encoding="utf-8")
    return path


def test_a_cap_through_the_broker_lands_sms_jobs_in_the_outbox(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, pipeline: Pipeline
) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    shutil.copy(CAP_DIR / "mataram_test_CNB20261127001_alert.xml", recorded)
    shutil.copy(CAP_DIR / "shippinghot_en_CBL20261010002_alert.xml", recorded)  # Bali: no signal

    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        assert publish_jsonl(subscribers_file(tmp_path), SUBSCRIBERS, publisher) == 3
        # A broken document first: it must be dead-lettered and must not stop the stream.
        publisher.send(NOWCAST_RAW, "garbage", b'{"not": "a raw document"')
        (metrics_port,) = free_ports(1)
        pipeline.start("worker", log="worker", KENTONGAN_METRICS_PORT=str(metrics_port))
        pipeline.start_sms()
        pipeline.wait_for_directory(3)
        assert replay(recorded, publisher, speed=0).published == 2

    pipeline.wait_for_outbox(2)
    wait_for(lambda: False, timeout_s=3)  # nothing more may arrive
    sent = [json.loads(line) for line in lines(pipeline.outbox)]
    assert sorted(m["recipient"] for m in sent) == ["+6281200000001", "+6281200000002"]
    for message in sent:
        assert message["channel"] == "sms" and message["version"] == 1
        assert message["incident_id"].startswith(f"INC-{AMPENAN_SELATAN}-hydromet-")
        assert "Ampenan Selatan" in message["text"] and "Sumber: BMKG" in message["text"]

    letters = [decode(DeadLetter, r.value) for r in read_topic(
        kafka_bootstrap, DEADLETTER.full_name(topic_prefix), partitions=1, min_count=1)]
    assert [(d.stage, d.value) for d in letters] == [
        ("normalize-nowcast", '{"not": "a raw document"')
    ]
    assert "RawDocument" in letters[0].reason or "JSON" in letters[0].reason

    # Duty officers see the same story in Prometheus.
    metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'kentongan_signals_total{hazard="thunderstorm",source="nowcast"} 1.0' in metrics
    assert 'kentongan_delivery_jobs_total{channel="sms"} 2.0' in metrics
    assert 'kentongan_deadletters_total{stage="normalize-nowcast"} 1.0' in metrics
    assert "+6281200000001" not in metrics


def test_a_replay_after_a_restart_sends_nothing_twice(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, pipeline: Pipeline
) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    shutil.copy(CAP_DIR / "mataram_test_CNB20261127001_alert.xml", recorded)

    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        publish_jsonl(subscribers_file(tmp_path), SUBSCRIBERS, publisher)
        pipeline.start("worker", log="worker")
        pipeline.wait_for_directory(3)
        replay(recorded, publisher, speed=0)
        deliver = pipeline.start_sms()
        pipeline.wait_for_outbox(2)
        # Restart the SMS consumer and replay the same recording: still two messages.
        stop(deliver)
        pipeline.processes.remove(deliver)
        pipeline.start_sms(log="deliver2")
        replay(recorded, publisher, speed=0)
    wait_for(lambda: False, timeout_s=8)
    assert len(lines(pipeline.outbox)) == 2


ALERT_FILE = CAP_DIR / "mataram_test_CNB20261127001_alert.xml"
CANCEL_NAME = "mataram_test_CNB20261127003_alert.xml"


def cancel_of_alert() -> str:
    """BMKG-style Cancel of ``ALERT_FILE``: <references> names it, and it has no polygon."""
    text = ALERT_FILE.read_text(encoding="utf-8")
    reference = ("cuaca.ekstrem@bmkg.go.id,2.49.0.1.360.0.2026.11.27.06.52.001,"
                 "2026-11-27T14:30:00+08:00")
    cancel = re.sub(r"\s*<polygon>.*?</polygon>", "", text, flags=re.S)
    return (cancel.replace("<sent>2026-11-27T14:30:00+08:00</sent>",
                           "<sent>2026-11-27T15:20:00+08:00</sent>")
            .replace("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>")
            .replace("<scope>Public</scope>",
                     f"<scope>Public</scope>\n  <references>{reference}</references>"))


def test_a_cancel_naming_the_alert_sends_the_all_clear(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, pipeline: Pipeline
) -> None:
    """BMKG-style Cancel with <references> and no polygon: the worker remembers where the
    alert lay, resolves the incident, and the same subscribers hear it is over."""
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    shutil.copy(ALERT_FILE, recorded)
    (recorded / CANCEL_NAME).write_text(cancel_of_alert(), encoding="utf-8")

    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        publish_jsonl(subscribers_file(tmp_path), SUBSCRIBERS, publisher)
        pipeline.start("worker", log="worker")
        pipeline.start_sms()
        pipeline.wait_for_directory(3)
        assert replay(recorded, publisher, speed=0).published == 2

    pipeline.wait_for_outbox(4)
    sent = [json.loads(line) for line in lines(pipeline.outbox)]
    assert sorted((m["recipient"], m["version"]) for m in sent) == [
        ("+6281200000001", 1), ("+6281200000001", 2),
        ("+6281200000002", 1), ("+6281200000002", 2),
    ]
    all_clear = [m["text"] for m in sent if m["version"] == 2]
    assert all(t.startswith("SELESAI") and "sudah berakhir" in t for t in all_clear)
