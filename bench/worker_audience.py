"""The planner inside a real ``kentongan worker`` at city scale, on a real broker: how long the
worker takes to index N subscribers from ``subscribers``, its memory, how long one awas
version for the largest kelurahan takes from ``incidents`` to jobs on ``alerts.sms``, and how
long a restarted worker takes to plan again (it recovers its tables from their changelogs).
Prints the figures and writes bench/results/worker_audience.json.

    .venv/bin/python bench/worker_audience.py [--total 461936]

Uses $KAFKA_BOOTSTRAP when set, else starts a local broker from the cached jars.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import awas, machine  # noqa: E402
from deploy.kafka_runner import KafkaRunner  # noqa: E402
from deploy.processes import start, stop  # noqa: E402
from deploy.readiness import records_on  # noqa: E402
from deploy.topics import create_topics  # noqa: E402
from producers.publisher import Publisher  # noqa: E402
from producers.subscribers import ASSUMPTIONS, generate_rows, kelurahan_counts  # noqa: E402
from schemas.events import Announce, Change, Channel, Subscriber  # noqa: E402
from schemas.geography import load_geography  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from schemas.topics import ALERTS_SMS, INCIDENTS, SUBSCRIBERS  # noqa: E402
from stream_processors.planning import directory_changelog  # noqa: E402

TARGETS = {"peak_rss_mb_max": 500.0}


class RssSampler:
    """Samples a process's VmRSS / VmHWM from /proc every 0.5 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_hwm_mb, self.samples = pid, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_hwm_mb = max(self.peak_hwm_mb, int(line.split()[1]) / 1024)
            self.samples += 1

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=2)
        return self.peak_hwm_mb


def wait(what: str, done: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=461_936)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the worker logs and broker data")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                            "worker_audience.json"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kentongan-bench-"))
    runner = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    if not bootstrap:
        from tests.kafka_helpers import free_ports, shared_jars_dir

        port, controller = free_ports(2)
        runner = KafkaRunner(home / "kafka", version=Settings().kafka_version, port=port,
                             controller_port=controller, heap="512m",
                             jars_dir=shared_jars_dir())
        runner.up()
        bootstrap = runner.bootstrap
    prefix = f"bench-{int(time.time())}."
    env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap, "KENTONGAN_TOPIC_PREFIX": prefix,
           "KENTONGAN_HOME": str(home)}
    changelog = directory_changelog(Settings(topic_prefix=prefix))
    sms_topic = ALERTS_SMS.full_name(prefix)
    figures: dict[str, Any] = {}
    worker = None
    try:
        create_topics(bootstrap, prefix=prefix)
        geography = load_geography()
        started = time.monotonic()
        with Publisher(bootstrap, prefix=prefix) as publisher:
            for phone, area, language, channels, token in generate_rows(
                    args.total, geography, args.seed):
                person = Subscriber.model_construct(
                    subscriber_id=f"sms-{phone[3:]}", phone=phone, push_token=token or None,
                    areas=[area], channels=[Channel(c) for c in channels.split("+")],
                    language="en" if language == "en" else "id", active=True)
                publisher.send(SUBSCRIBERS, person.subscriber_id, person)
        print(f"published {args.total} subscribers in {time.monotonic() - started:.0f} s",
              flush=True)

        worker = start(["worker"], env, home / "worker.log")
        sampler = RssSampler(worker.pid)
        indexed = wait("index the city", lambda: records_on(bootstrap, changelog) >= args.total,
                       args.timeout)
        figures["index_city_seconds"] = {"value": round(indexed), "unit": "s"}
        figures["index_rate"] = {"value": round(args.total / indexed),
                                 "unit": "memberships/s (route + index, through Kafka)"}
        print(f"worker indexed {args.total} in {indexed:.0f} s", flush=True)

        counts = kelurahan_counts(args.total, geography)
        largest = geography.kelurahan[max(counts, key=lambda a: counts[a])]
        sms_people = sum(1 for row in generate_rows(args.total, geography, args.seed)
                         if row[1] == largest.code and "sms" in row[3])
        version = awas(largest, datetime.now(UTC))
        before = records_on(bootstrap, sms_topic)
        with Publisher(bootstrap, prefix=prefix) as publisher:
            publisher.send(INCIDENTS, version.incident_id, version)
        planned = wait("plan the largest kelurahan",
                       lambda: records_on(bootstrap, sms_topic) >= before + sms_people, 600)
        figures["largest_kelurahan_to_alerts_sms"] = {
            "kelurahan": largest.name, "sms_jobs": sms_people, "value": round(planned, 1),
            "unit": "s (incidents -> route -> plan -> alerts.sms, 0.5 s polling)"}
        print(f"{sms_people} SMS jobs for {largest.name} on alerts.sms in {planned:.1f} s",
              flush=True)
        figures["worker_peak_rss"] = {"value": round(sampler.stop(), 1), "unit": "MiB"}

        stop(worker, timeout_s=60)
        restarted_at = time.monotonic()
        worker = start(["worker"], env, home / "worker-2.log")
        sampler = RssSampler(worker.pid)
        raised = version.model_copy(update={"version": 2, "announce": Announce.RAISED,
                                            "change": Change.ESCALATED})
        before = records_on(bootstrap, sms_topic)
        with Publisher(bootstrap, prefix=prefix) as publisher:
            publisher.send(INCIDENTS, raised.incident_id, raised)
        wait("plan again after a restart",
             lambda: records_on(bootstrap, sms_topic) >= before + sms_people, args.timeout)
        figures["restart_to_planned_seconds"] = {
            "value": round(time.monotonic() - restarted_at, 1),
            "unit": "s (start, recover the tables, plan the largest kelurahan again)"}
        figures["restarted_worker_peak_rss"] = {"value": round(sampler.stop(), 1),
                                                "unit": "MiB"}
    finally:
        if worker is not None:
            stop(worker, timeout_s=60)
        if runner is not None:
            runner.down()
        if args.keep:
            print(f"kept {home}", flush=True)
        else:
            shutil.rmtree(home, ignore_errors=True)
    figures["subscribers"] = {"value": args.total, "unit": "people"}
    peak = max(figures["worker_peak_rss"]["value"], figures["restarted_worker_peak_rss"]["value"])
    result = {
        "name": "worker_audience",
        "figures": figures,
        "baseline": {"name": "the subscriber directory as a GlobalTable (issue #8)",
                     "memory": {"value": 280, "unit": "MB in every worker (issue figure)"},
                     "plan_one_version": {"value": 7.5, "unit": "s (issue figure)"}},
        "ratio": round(peak / 280, 3),
        "target": TARGETS,
        "meets_target": {"peak_rss": peak <= TARGETS["peak_rss_mb_max"]},
        "machine": machine(),
        "partial": ["one worker holds every partition: the whole city's planner state is in "
                    "one process (more workers split it by kelurahan)"],
        "assumptions": ASSUMPTIONS,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
