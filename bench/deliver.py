"""Jobs/s of ``kentongan deliver sms --sink http:URL`` from alerts.sms to a local gateway that
accepts at once, against a bare aiohttp loop posting the same requests to the same gateway.

    .venv/bin/python bench/deliver.py [--jobs 461936] [--concurrency 64]

Uses $KAFKA_BOOTSTRAP, or starts a private broker on free ports. The gateway runs in its own
process (so it does not share the GIL with either side) and times first to last request.
Prints the figures and writes bench/results/deliver.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import requests
from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.kafka_runner import KafkaRunner  # noqa: E402
from deploy.topics import create_topics  # noqa: E402
from schemas.events import Channel, DeliveryJob, Level  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from schemas.topics import ALERTS_SMS  # noqa: E402

TARGET = 0.7
GATEWAY = r'''
import sys, time
from aiohttp import web
stats = {"count": 0, "first": 0.0, "last": 0.0}
async def send(request):
    await request.read()
    now = time.monotonic()
    if not stats["count"]:
        stats["first"] = now
    stats["count"] += 1
    stats["last"] = now
    return web.json_response({"ok": True}, status=202)
async def get_stats(request):
    return web.json_response(stats)
async def reset(request):
    stats.update(count=0, first=0.0, last=0.0)
    return web.json_response(stats)
app = web.Application()
app.router.add_post("/send", send)
app.router.add_get("/stats", get_stats)
app.router.add_post("/reset", reset)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def job(n: int) -> DeliveryJob:
    recipient = f"+62812{n:08d}"
    return DeliveryJob(job_key=f"INC-52.71.01.1004-hydromet-1/1/{recipient}/sms",
                       incident_id="INC-52.71.01.1004-hydromet-1", version=1, channel=Channel.SMS,
                       recipient=recipient, subscriber_id=f"s{n}", area_code="52.71.01.1004",
                       language="id", text="[KENTONGAN] SIAGA banjir Ampenan Selatan. Sumber: BMKG",
                       created_at=datetime.now(UTC), level=Level.SIAGA)


def publish(bootstrap: str, topic: str, jobs: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    for n in range(jobs):
        j = job(n)
        producer.send(topic, key=j.recipient.encode(), value=j.model_dump_json().encode())
    producer.flush(timeout=300)
    producer.close()


def stats(url: str) -> dict[str, float]:
    return dict(requests.get(f"{url}/stats", timeout=5).json())


def wait_count(url: str, jobs: int, timeout_s: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = stats(url)
        if got["count"] >= jobs:
            return got
        time.sleep(0.5)
    raise SystemExit(f"the gateway saw {stats(url)['count']} of {jobs} in {timeout_s:.0f} s")


async def bare_loop(url: str, jobs: int, concurrency: int) -> None:
    """The baseline: the same POSTs from one aiohttp session, nothing else."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(jobs))

        async def worker() -> None:
            for n in queue:
                j = job(n)
                body = json.dumps({"to": j.recipient, "text": j.text, "reference": j.job_key,
                                   "unicode": False}).encode()
                async with session.post(url, data=body, headers={
                        "Content-Type": "application/json", "Idempotency-Key": j.job_key}) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=461_936)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kentongan-bench-"))
    runner = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    if not bootstrap:
        settings = Settings()
        runner = KafkaRunner(work / "kafka", version=settings.kafka_version, port=free_port(),
                             controller_port=free_port(), heap="512m",
                             jars_dir=KafkaRunner.from_settings(settings).jars_dir)
        runner.up()
        bootstrap = runner.bootstrap
    port = free_port()
    gateway = subprocess.Popen([sys.executable, "-c", GATEWAY, str(port)])
    url = f"http://127.0.0.1:{port}"
    deliver = None
    try:
        for _ in range(50):
            try:
                stats(url)
                break
            except requests.RequestException:
                time.sleep(0.1)
        prefix = f"bench-{int(time.time())}."
        create_topics(bootstrap, prefix=prefix)
        t0 = time.monotonic()
        publish(bootstrap, ALERTS_SMS.full_name(prefix), args.jobs)
        print(f"published {args.jobs} jobs in {time.monotonic() - t0:.1f} s", flush=True)

        asyncio.run(bare_loop(f"{url}/send", args.jobs, args.concurrency))
        got = stats(url)
        baseline = got["count"] / (got["last"] - got["first"])
        print(f"bare aiohttp loop: {baseline:,.0f} requests/s", flush=True)
        requests.post(f"{url}/reset", timeout=5)

        env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap, "KENTONGAN_TOPIC_PREFIX": prefix,
               "KENTONGAN_HOME": str(work / "home"),
               "KENTONGAN_DELIVERY_CONCURRENCY": str(args.concurrency),
               "KENTONGAN_DELIVERY_THROTTLES": "{}"}
        deliver = subprocess.Popen([sys.executable, "-m", "deploy.cli", "deliver", "sms",
                                    "--sink", f"http:{url}/send"], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got = wait_count(url, args.jobs, timeout_s=3600)
        rate = got["count"] / (got["last"] - got["first"])
        rss = peak_rss_mb(deliver.pid)
        ratio = rate / baseline
        print(f"kentongan deliver sms --sink http: {rate:,.0f} jobs/s, peak RSS {rss:.0f} MB; "
              f"ratio {ratio:.2f} (target ≥ {TARGET})", flush=True)
        result = {
            "name": "deliver-sms-http",
            "figures": {"jobs": args.jobs, "concurrency": args.concurrency,
                        "deliver_jobs_per_s": {"value": round(rate), "unit": "jobs/s"},
                        "deliver_peak_rss": {"value": round(rss), "unit": "MB"}},
            "baseline": {"bare_aiohttp_requests_per_s": {"value": round(baseline),
                                                         "unit": "requests/s"}},
            "ratio": round(ratio, 3), "target": {"ratio": TARGET, "peak_rss_mb": 500},
            "meets_target": ratio >= TARGET and rss <= 500,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
        }
        out = ROOT / "bench" / "results" / "deliver.json"
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
        return 0
    finally:
        if deliver is not None:
            deliver.terminate()
            deliver.wait(60)
        gateway.terminate()
        gateway.wait(10)
        if runner is not None:
            runner.down()


if __name__ == "__main__":
    sys.exit(main())
