"""The delivery consumer as operators run it (``kentongan deliver``), killed and starved of its
broker mid-fan-out: nobody is missed, duplicates stay within the in-flight window, a torn last
line does not stop a restart, and a broker restart is ridden out without help."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from deploy.kafka_runner import KafkaRunner
from deploy.processes import start, stop
from deploy.topics import create_topics
from schemas.settings import Settings
from tests.delivery_helpers import final_status, make_job, outcomes, publish_jobs
from tests.gateways import gateway
from tests.kafka_helpers import free_ports, lines, shared_jars_dir, wait_while_running

pytestmark = pytest.mark.kafka

JOBS = 2000
WINDOW = 64


def deliver_env(bootstrap: str, prefix: str, home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP": bootstrap, "KENTONGAN_TOPIC_PREFIX": prefix,
            "KENTONGAN_HOME": str(home), "KENTONGAN_DELIVERY_WINDOW": str(WINDOW),
            "KENTONGAN_DELIVERY_CONCURRENCY": "16", **extra}


def test_sigkill_mid_fanout_misses_no_one_and_duplicates_stay_within_the_window(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    publish_jobs(kafka_bootstrap, topic_prefix, (make_job(n) for n in range(JOBS)))
    kills = sorted(random.Random(20261127).sample(range(150, JOBS - 150), 3))
    env = deliver_env(kafka_bootstrap, topic_prefix, tmp_path / "home")
    processes: list[subprocess.Popen[bytes]] = []
    with gateway() as gw:
        command = ["deliver", "sms", "--sink", f"http:{gw.url}/send"]
        try:
            restarted: list[float] = []
            for n, at in enumerate(kills):
                processes.append(start(command, env, tmp_path / f"deliver-{n}.log"))
                def reached(at: int = at) -> bool:
                    return gw.count() >= at

                wait_while_running(reached, processes[-1:], tmp_path, 90)
                killed = processes.pop()
                killed.kill()  # SIGKILL: no commit, no flush, no goodbye
                killed.wait()
                restarted.append(time.monotonic())
                before = gw.count()
                processes.append(start(command, env, tmp_path / f"deliver-{n}b.log"))
                # Static membership: the restarted consumer gets its partitions back at once,
                # not after the 45 s session timeout a stale member would hold them for.
                def resumed(before: int = before) -> bool:
                    return gw.count() > before

                wait_while_running(resumed, processes[-1:], tmp_path, 30)
                stop(processes.pop())
            processes.append(start(command, env, tmp_path / "deliver-last.log"))
            wait_while_running(lambda: len(set(gw.keys())) >= JOBS, processes, tmp_path, 120)
        finally:
            for process in processes:
                stop(process)
    keys = gw.keys()
    duplicates = len(keys) - len(set(keys))
    print(f"{len(kills)} kills at {kills}: {len(keys)} requests, {duplicates} duplicates "
          f"(bound {WINDOW} per kill)")
    assert set(keys) == {make_job(n).job_key for n in range(JOBS)}  # nobody missed
    assert duplicates <= WINDOW * len(kills)
    final = final_status(outcomes(kafka_bootstrap, topic_prefix, keys=JOBS))
    assert len(final) == JOBS and set(final.values()) <= {"delivered", "duplicate"}


def test_a_torn_last_outbox_line_does_not_stop_a_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    jobs = 600
    publish_jobs(kafka_bootstrap, topic_prefix, (make_job(n) for n in range(jobs)))
    outbox = tmp_path / "outbox.jsonl"
    env = deliver_env(kafka_bootstrap, topic_prefix, tmp_path / "home")
    first = start(["deliver", "sms", "--outbox", str(outbox)], env, tmp_path / "first.log")
    try:
        wait_while_running(lambda: len(lines(outbox)) >= 100, [first], tmp_path, 60)
    finally:
        first.kill()
        first.wait()
    with outbox.open("a", encoding="utf-8") as f:
        f.write('{"recipient": "+6281200000')  # a write cut short by the crash
    second = start(["deliver", "sms", "--outbox", str(outbox)], env, tmp_path / "second.log")
    try:
        def all_there() -> bool:
            try:
                return len({json.loads(line)["job_key"] for line in lines(outbox)}) >= jobs
            except json.JSONDecodeError:
                return False
        wait_while_running(all_there, [second], tmp_path, 60)
    finally:
        stop(second)
    sent = [json.loads(line) for line in lines(outbox)]  # every line is whole
    assert {m["job_key"] for m in sent} == {make_job(n).job_key for n in range(jobs)}


def test_a_broker_restart_mid_fanout_is_ridden_out_and_nobody_is_missed(
    tmp_path: Path
) -> None:
    """`kafka down`, ten seconds, `kafka up`: the consumer keeps running by itself."""
    port, controller_port = free_ports(2)
    runner = KafkaRunner(tmp_path / "kafka-home", version=Settings().kafka_version, port=port,
                         controller_port=controller_port, heap="384m", jars_dir=shared_jars_dir())
    runner.up()
    prefix = "restart."
    processes: list[subprocess.Popen[bytes]] = []
    try:
        create_topics(runner.bootstrap, prefix=prefix)
        publish_jobs(runner.bootstrap, prefix, (make_job(n) for n in range(JOBS)))

        async_delay = 0.004

        async def slow(_: object, __: object) -> object:
            import asyncio

            from aiohttp import web
            await asyncio.sleep(async_delay)
            return web.json_response({"ok": True})

        with gateway(slow) as gw:  # type: ignore[arg-type]
            env = deliver_env(runner.bootstrap, prefix, tmp_path / "home")
            processes.append(start(["deliver", "sms", "--sink", f"http:{gw.url}/send"], env,
                                   tmp_path / "deliver.log"))
            wait_while_running(lambda: gw.count() >= 300, processes, tmp_path, 90)
            runner.down()
            time.sleep(10)
            runner.up()
            wait_while_running(lambda: len(set(gw.keys())) >= JOBS, processes, tmp_path, 180)
            assert processes[0].poll() is None, "the consumer died with the broker"
            final = final_status(outcomes(runner.bootstrap, prefix, keys=JOBS,
                                          timeout_s=60))
            assert len(final) == JOBS
        assert set(gw.keys()) == {make_job(n).job_key for n in range(JOBS)}
    finally:
        for process in processes:
            stop(process)
        runner.down()
