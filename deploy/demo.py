"""``kentongan demo``: the whole pipeline on a local broker, replaying a recorded scenario.

Every stage runs as the same process an operator would start (``kentongan worker``,
``kentongan deliver sms``); the demo only orchestrates, watches the topics and reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from deploy.kafka_runner import KafkaRunner, broker_answers
from deploy.processes import start, stop
from deploy.readiness import wait_for_records
from deploy.topics import create_topics
from producers.bmkg.replay import replay
from producers.feeds import publish_jsonl
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import DeadLetter, DeliveryOutcome, DeliveryStatus, Incident
from schemas.settings import Settings
from schemas.topics import DEADLETTER, DELIVERIES, INCIDENTS, REPORTS_RAW, SUBSCRIBERS, TopicSpec
from stream_processors.planning import directory_changelog

SCENARIO = "mataram-demo"


def scenario_dir(name: str = SCENARIO) -> Path:
    return Path(str(resources.files("deploy") / "scenarios" / name))


@dataclass
class Observed:
    """What the demo saw on the output topics."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    versions: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    outcomes: int = 0
    deadletters: list[DeadLetter] = field(default_factory=list)


class TopicWatcher:
    """Reads output topics from the beginning without a consumer group (nothing to clean up)."""

    def __init__(self, bootstrap: str, prefix: str, specs: list[TopicSpec]) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = [
            TopicPartition(spec.full_name(prefix), p) for spec in specs
            for p in range(spec.partitions)
        ]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.prefix = prefix
        self.observed = Observed()

    def poll(self, timeout_ms: int = 500) -> None:
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                name = record.topic.removeprefix(self.prefix)
                if name == INCIDENTS.name:
                    incident = decode(Incident, record.value)
                    self.observed.incidents[incident.incident_id] = incident
                    self.observed.versions[incident.incident_id] += 1
                elif name == DELIVERIES.name:
                    outcome = decode(DeliveryOutcome, record.value)
                    self.observed.outcomes += 1
                    if outcome.status is DeliveryStatus.DELIVERED:
                        self.observed.delivered[outcome.channel.value] += 1
                elif name == DEADLETTER.name:
                    self.observed.deadletters.append(decode(DeadLetter, record.value))

    def close(self) -> None:
        self.consumer.close()


def _wait(watcher: TopicWatcher, until: float, done: Callable[[], object] | None) -> bool:
    """Read the output topics until ``done()`` is true (True) or ``until`` passes (False)."""
    while time.monotonic() < until:
        watcher.poll()
        if done is not None and done():
            return True
    return False


def run_demo(settings: Settings, *, timeout_s: float = 120.0, keep_broker: bool = False) -> int:
    scenario = scenario_dir()
    expected = json.loads((scenario / "expected.json").read_text(encoding="utf-8"))
    run_id = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    prefix = f"{settings.topic_prefix}demo-{run_id}."
    run_dir = settings.home / "demo" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    outbox = run_dir / "outbox.jsonl"
    desk = run_dir / "callcentre.jsonl"  # what the 112 desk's console would show

    started_broker = None
    if broker_answers(settings.kafka_bootstrap) is None:
        if "KAFKA_BOOTSTRAP" in os.environ:
            print(f"no broker answers at {settings.kafka_bootstrap} (KAFKA_BOOTSTRAP)",
                  file=sys.stderr)
            return 1
        print("starting the local Kafka broker (first run fetches the jars) ...", flush=True)
        started_broker = KafkaRunner.from_settings(settings)
        started_broker.up()
    print(f"broker: {settings.kafka_bootstrap}; topics prefixed {prefix!r}", flush=True)
    create_topics(settings.kafka_bootstrap, prefix=prefix)

    env = {**os.environ, "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "KENTONGAN_TOPIC_PREFIX": prefix, "KENTONGAN_HOME": str(settings.home)}
    processes: list[subprocess.Popen[bytes]] = []
    watcher = TopicWatcher(settings.kafka_bootstrap, prefix, [INCIDENTS, DELIVERIES, DEADLETTER])
    try:
        with Publisher(settings.kafka_bootstrap, prefix=prefix) as publisher:
            subscribers = publish_jsonl(scenario / "subscribers.jsonl", SUBSCRIBERS, publisher)
            print(f"published {subscribers} subscribers", flush=True)
            processes.append(start(["worker"], env, run_dir / "worker.log"))
            # Warnings should meet a worker that already knows who lives where.
            directory = directory_changelog(settings.model_copy(update={"topic_prefix": prefix}))
            if not wait_for_records(settings.kafka_bootstrap, directory, subscribers, timeout_s):
                print(f"the worker did not load the subscribers; see {run_dir}", file=sys.stderr)
                return 1
            processes.append(start(["deliver", "sms", "--outbox", str(outbox)], env,
                                    run_dir / "deliver-sms.log"))
            processes.append(start(["deliver", "callcentre", "--outbox", str(desk)], env,
                                   run_dir / "deliver-callcentre.log"))
            result = replay(scenario / "cap", publisher, speed=0)
            print(f"replayed {result.published} recorded BMKG documents ({result.skipped} RSS "
                  f"indexes skipped, {result.duplicates} already on the topic: the same alert "
                  "in another language)", flush=True)
            until = time.monotonic() + timeout_s
            # Reports follow the warning, as they did in the street: wait for the incident.
            if not _wait(watcher, until, lambda: watcher.observed.incidents):
                print("no incident was raised in time; see the logs in " f"{run_dir}",
                      file=sys.stderr)
                return 1
            reports = publish_jsonl(scenario / "reports.jsonl", REPORTS_RAW, publisher)
            print(f"published {reports} citizen reports", flush=True)

        want = int(expected["min_sms"])
        settled = _wait(watcher, until, lambda: (
            watcher.observed.delivered["sms"] >= want
            and watcher.observed.delivered["callcentre"] >= int(expected["min_callcentre"])
            and len(watcher.observed.deadletters) >= int(expected["min_deadletters"])
        ))
        _wait(watcher, time.monotonic() + 3, None)  # let stragglers land before the summary
        _summarise(watcher.observed, outbox, desk, run_dir)
        if not settled:
            print(f"the scenario did not settle within {timeout_s:.0f} s", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the pipeline", file=sys.stderr)
        return 130
    finally:
        watcher.close()
        for process in processes:
            stop(process)
        if started_broker is not None and not keep_broker:
            started_broker.down()


def _summarise(observed: Observed, outbox: Path, desk: Path, run_dir: Path) -> None:
    print("\n== Kentongan demo: what happened ==")
    print(f"incidents raised: {len(observed.incidents)}")
    for incident in sorted(observed.incidents.values(), key=lambda i: i.incident_id):
        print(f"  {incident.incident_id}  {incident.area_name} ({incident.kecamatan_name})  "
              f"{incident.hazard.value}  level={incident.level.value}  "
              f"verified={str(incident.verified).lower()}  status={incident.status.value}  "
              f"versions={observed.versions[incident.incident_id]}")
    channels = ", ".join(f"{c}={n}" for c, n in sorted(observed.delivered.items())) or "none"
    print(f"messages delivered per channel: {channels}")
    print(f"dead letters: {len(observed.deadletters)}")
    for letter in observed.deadletters:
        reason = " ".join(letter.reason.split())
        print(f"  [{letter.stage}] {reason[:110]}")
    print(f"outbox: {outbox}")
    print(f"call-centre desk: {desk}")
    print(f"logs: {run_dir}")
