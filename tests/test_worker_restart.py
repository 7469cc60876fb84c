"""A restarted worker serves again: its changelogged tables (incident state, subscriber
directory, CAP placements) are recovered, and work a killed worker had not committed is redone."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from deploy.processes import stop
from producers.bmkg.replay import replay
from producers.feeds import publish_jsonl
from producers.publisher import Publisher
from schemas.events import Subscriber
from schemas.topics import ALERTS_SMS, SUBSCRIBERS
from tests.kafka_helpers import lines, wait_for
from tests.test_end_to_end import (  # noqa: F401  (pipeline: the fixture)
    ALERT_FILE,
    AMPENAN_SELATAN,
    CANCEL_NAME,
    Pipeline,
    cancel_of_alert,
    pipeline,
    subscribers_file,
)

pytestmark = pytest.mark.kafka

# Pejanggik and Monjok Timur; same sender and <sent> as ALERT_FILE, so the Cancel finds the
# right kelurahan only through the exact-identifier placement recovered from the changelog.
SECOND_ALERT = ALERT_FILE.with_name("mataram_test_CNB20261127002_alert.xml")
PEJANGGIK = "52.71.02.1011"


def end(running: Pipeline, worker: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if how is signal.SIGKILL:
        worker.kill()
        worker.wait()
    else:
        stop(worker)  # SIGTERM: faust commits and leaves the group
    running.processes.remove(worker)


def outbox(running: Pipeline) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines(running.outbox)]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_restarted_worker_recovers_its_tables_and_alerts_again(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
    pipeline: Pipeline,  # noqa: F811
    how: signal.Signals,
) -> None:
    """After the restart, a Cancel with no polygon needs the recovered placement (where the
    alert lay), incident (what to resolve) and directory (who lives there); a new alert for
    another kelurahan needs the directory. Jobs the killed worker may re-plan are deduped."""
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    shutil.copy(ALERT_FILE, recorded)
    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        assert publish_jsonl(subscribers_file(tmp_path), SUBSCRIBERS, publisher) == 3
        pejanggik = Subscriber(subscriber_id="e2e-4", phone="+6281200000004",
                               areas=[PEJANGGIK])
        publisher.send(SUBSCRIBERS, pejanggik.subscriber_id, pejanggik)
        publisher.flush()
        worker = pipeline.start_worker("worker")
        pipeline.start_sms()
        pipeline.wait_for_directory(4)
        assert replay(recorded, publisher, speed=0).published == 1
        pipeline.wait_for_outbox(2)
        (opened,) = {m["incident_id"] for m in outbox(pipeline)}

        end(pipeline, worker, how)
        pipeline.start_worker("worker-restarted")

        (recorded / CANCEL_NAME).write_text(cancel_of_alert(), encoding="utf-8")
        shutil.copy(SECOND_ALERT, recorded)
        assert replay(recorded, publisher, speed=0).published == 2
    pipeline.wait_for_outbox(5)
    wait_for(lambda: False, timeout_s=3)  # nothing more may arrive

    sent = sorted(outbox(pipeline), key=lambda m: (str(m["recipient"]), str(m["version"])))
    assert [(m["recipient"], m["area_code"], m["version"]) for m in sent] == [
        ("+6281200000001", AMPENAN_SELATAN, 1), ("+6281200000001", AMPENAN_SELATAN, 2),
        ("+6281200000002", AMPENAN_SELATAN, 1), ("+6281200000002", AMPENAN_SELATAN, 2),
        ("+6281200000004", PEJANGGIK, 1),
    ]
    # The all-clear resolves the very incident opened before the restart.
    assert [m["incident_id"] for m in sent if m["area_code"] == AMPENAN_SELATAN] == [opened] * 4
    texts = {(m["recipient"], m["version"]): str(m["text"]) for m in sent}
    for phone in ("+6281200000001", "+6281200000002"):
        assert texts[(phone, 2)].startswith("SELESAI") and "sudah berakhir" in texts[(phone, 2)]
    assert "Pejanggik" in texts[("+6281200000004", 1)]
    assert len({m["job_key"] for m in sent}) == 5


FAN_OUT = 2000


def test_a_worker_killed_mid_fan_out_finishes_it_after_a_restart_once_per_phone(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
    pipeline: Pipeline,  # noqa: F811
) -> None:
    """SIGKILL while the jobs of a 2,000-phone fan-out are being written: the incident's offset
    was not committed, so the restarted worker plans it again; the SMS consumer dedupes by job
    key, so every phone hears exactly once."""
    people = tmp_path / "subscribers.jsonl"
    phones = [f"+62812{n:07d}" for n in range(1, FAN_OUT + 1)]
    people.write_text("".join(
        Subscriber(subscriber_id=f"fan-{n}", phone=phone, areas=[AMPENAN_SELATAN])
        .model_dump_json() + "\n" for n, phone in enumerate(phones)), encoding="utf-8")
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    shutil.copy(ALERT_FILE, recorded)
    sms = ALERTS_SMS.full_name(topic_prefix)
    watch = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(sms, p) for p in range(ALERTS_SMS.partitions)]

    def jobs_written() -> int:
        return sum(watch.end_offsets(parts).values())

    try:
        with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
            assert publish_jsonl(people, SUBSCRIBERS, publisher) == FAN_OUT
            worker = pipeline.start_worker("worker")
            pipeline.wait_for_directory(FAN_OUT)
            assert replay(recorded, publisher, speed=0).published == 1
        deadline = time.monotonic() + 60
        while (written := jobs_written()) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        worker.kill()
        worker.wait()
        pipeline.processes.remove(worker)
        at_kill = jobs_written()
        assert 0 < written <= at_kill < FAN_OUT, "the kill came before or after the fan-out"

        pipeline.start_worker("worker-restarted")
        pipeline.start_sms()
        pipeline.wait_for_outbox(FAN_OUT)
        wait_for(lambda: False, timeout_s=3)  # nothing more may arrive
        assert jobs_written() >= at_kill + FAN_OUT  # planned again in full
    finally:
        watch.close()

    sent = Counter(str(m["recipient"]) for m in outbox(pipeline))
    assert sorted(sent) == sorted(phones)
    assert [phone for phone, times in sent.items() if times > 1] == []
