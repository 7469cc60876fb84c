"""Fan-out throughput at city scale (issue #8): prints its figures and writes
bench/results/fanout.json.

    .venv/bin/python bench/fanout.py [--total 461936] [--concurrency 64] [--out PATH]

1. Generates the population (``kentongan subscribers generate``'s code, same assumptions) and
   loads it the way the worker does: ``rekey`` into the subscriber -> areas table and the
   per-kelurahan ``AreaIndex`` (their exact size, and the process's RSS growth).
2. Times planning one version for one kelurahan with the whole city loaded: the largest and
   the median kelurahan (members snapshot, audience, texts, every job encoded), and a version
   that announces nothing.
3. One ``awas`` incident over all 50 kelurahan through the same planning code, chunk by chunk,
   each job POSTed to a local HTTP gateway (another process that answers 202 at once) by a
   pooled aiohttp client; then, in the same run, a bare aiohttp loop POSTing as many requests
   of the same size to the same gateway. The ratio of the two rates is the planner's overhead.

Partial: the jobs go from the planning code straight to the gateway; the Kafka hop (worker ->
alerts.sms -> delivery consumer) is not in this path (the consumer lives on another branch).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from producers.subscribers import ASSUMPTIONS, generate_rows  # noqa: E402
from schemas.events import (  # noqa: E402
    BMKG_ATTRIBUTION,
    Announce,
    Change,
    Channel,
    Hazard,
    HazardFamily,
    Incident,
    IncidentStatus,
    Level,
    Subscriber,
)
from schemas.geography import Area, load_geography  # noqa: E402
from stream_processors.audience import AreaIndex, indexed_value, member_key, rekey  # noqa: E402
from stream_processors.fanout import EncodedJob, plan_version  # noqa: E402
from stream_processors.table_store import InternedValues  # noqa: E402

TOTAL = 461_936
TARGETS = {"handover_seconds_max": 60.0, "ratio_min": 0.7, "peak_rss_mb_max": 500.0,
           "plan_one_kelurahan_ms_max": 50.0}
RESPONSE = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


# --- the gateway: a separate process that accepts every request at once ----------------------

class _Gateway(asyncio.Protocol):
    received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0
                              else len(head)]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            _Gateway.received += 1
            self.transport.write(RESPONSE)


def serve_gateway(port_file: Path) -> None:
    """Run the gateway until stdin closes; then print what it received and its peak RSS."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Gateway, "127.0.0.1", 0, backlog=1024)
        port_file.write_text(str(server.sockets[0].getsockname()[1]))
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())
    print(json.dumps({"received": _Gateway.received, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; getrusage's survives exec, so a child would
    report its parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the population ---------------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def deep_size(index: AreaIndex, where: InternedValues) -> tuple[int, int]:
    """Bytes the two structures hold: every dict, key and value (exact for str/bytes/dict)."""
    areas: dict[str, dict[str, bytes]] = index._areas
    index_bytes = sys.getsizeof(areas) + sum(
        sys.getsizeof(people) + sum(sys.getsizeof(k) + sys.getsizeof(v)
                                    for k, v in people.items())
        for people in areas.values())
    data, values = where._data, where._values
    where_bytes = (sys.getsizeof(data) + sum(sys.getsizeof(k) for k in data)
                   + sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values))
    return index_bytes, where_bytes


def load_population(total: int, seed: int) -> tuple[InternedValues, AreaIndex, dict[str, Any]]:
    """The worker's planner state for ``total`` people, built one person at a time by the same
    code as route-subscribers and index-audience."""
    geography = load_geography()
    where, index = InternedValues(), AreaIndex()
    since = time.time_ns() // 1_000_000
    gc.collect()
    before = rss_mb()
    for phone, area, language, channels, token in generate_rows(total, geography, seed):
        person = Subscriber.model_construct(
            subscriber_id=f"sms-{phone[3:]}", phone=phone, push_token=token or None,
            areas=[area], channels=[Channel(c) for c in channels.split("+")],
            language="en" if language == "en" else "id", active=True)
        plan = rekey([], person, geography.kelurahan)
        where[person.subscriber_id.encode()] = ",".join(plan.areas).encode()
        for member_area, packed in plan.members:
            index[member_key(member_area, person.subscriber_id)] = indexed_value(
                packed, None, since)
    gc.collect()
    grown = rss_mb() - before
    index_bytes, where_bytes = deep_size(index, where)
    figures = {
        "index_mb": {"value": round(index_bytes / 2**20, 1), "unit": "MiB"},
        "index_bytes_per_subscriber": {"value": round(index_bytes / total), "unit": "B"},
        "subscriber_areas_mb": {"value": round(where_bytes / 2**20, 1), "unit": "MiB"},
        "subscriber_areas_bytes_per_subscriber": {"value": round(where_bytes / total),
                                                  "unit": "B"},
        "rss_growth_loading_planner_state": {"value": round(grown, 1), "unit": "MiB"},
    }
    return where, index, figures


def awas(area: Area, at: datetime) -> Incident:
    return Incident(
        incident_id=f"INC-{area.code}-hydromet-bench", version=1, status=IncidentStatus.OPEN,
        change=Change.OPENED, announce=Announce.WARNING, area_code=area.code,
        area_name=area.name, kecamatan_code=area.kecamatan_code,
        kecamatan_name=area.kecamatan_name, hazard=HazardFamily.HYDROMET,
        hazards=[Hazard.FLOOD], level=Level.AWAS, verified=True, headline="Banjir",
        opened_at=at, updated_at=at, expires=at + timedelta(hours=3),
        attribution=BMKG_ATTRIBUTION)


def plan_jobs(incident: Incident, index: AreaIndex) -> Iterable[list[EncodedJob]]:
    """What the worker's plan-fanout does before it hands a chunk over."""
    return plan_version(incident, index, None, datetime.now(UTC))


def time_planning(index: AreaIndex, areas: list[Area], repeat: int) -> dict[str, Any]:
    at = datetime.now(UTC)
    by_size = sorted(areas, key=lambda a: index.count(a.code))
    figures: dict[str, Any] = {}
    for label, area in (("largest", by_size[-1]), ("median", by_size[len(by_size) // 2])):
        samples, jobs = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            jobs = sum(len(c) for c in plan_jobs(awas(area, at), index))
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        figures[f"plan_{label}_kelurahan"] = {
            "kelurahan": area.name, "members": index.count(area.code), "jobs": jobs,
            "median_ms": round(statistics.median(samples), 1),
            "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 1),
            "max_ms": round(samples[-1], 1), "unit": "ms", "repeat": repeat}
    quiet = awas(by_size[-1], at).model_copy(update={"announce": None,
                                                     "change": Change.UPDATED})
    started = time.perf_counter()
    for _ in range(1000):
        assert not list(plan_jobs(quiet, index))
    figures["plan_announces_nothing"] = {  # per version: the 1000 took this many ms
        "value": round((time.perf_counter() - started) * 1000, 2), "unit": "us"}
    return figures


# --- hand-over ---------------------------------------------------------------------------------

async def hand_over(url: str, concurrency: int, jobs: asyncio.Queue[bytes | None]) -> int:
    import aiohttp

    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            nonlocal sent
            while (body := await jobs.get()) is not None:
                async with session.post(url, data=body) as answer:
                    if answer.status != 202:
                        raise RuntimeError(f"gateway answered {answer.status}")
                sent += 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return sent


async def planned_run(url: str, concurrency: int, index: AreaIndex,
                      areas: list[Area]) -> dict[str, Any]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4 * concurrency)
    at = datetime.now(UTC)
    stall = 0.0

    async def planner() -> int:
        nonlocal stall
        planned = 0
        for area in areas:  # one awas version per kelurahan
            chunks = iter(plan_jobs(awas(area, at), index))
            while True:
                started = time.perf_counter()
                chunk = next(chunks, None)
                stall = max(stall, time.perf_counter() - started)
                if chunk is None:
                    break
                for job in chunk:
                    await queue.put(job.value)
                planned += len(chunk)
        for _ in range(concurrency):
            await queue.put(None)
        return planned

    started = time.perf_counter()
    planned, sent = await asyncio.gather(planner(), hand_over(url, concurrency, queue))
    elapsed = time.perf_counter() - started
    assert planned == sent
    return {"jobs": sent, "seconds": elapsed, "rate": sent / elapsed,
            "longest_chunk_ms": stall * 1000}


async def bare_run(url: str, concurrency: int, count: int, body: bytes) -> dict[str, Any]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4 * concurrency)

    async def feed() -> None:
        for _ in range(count):
            await queue.put(body)
        for _ in range(concurrency):
            await queue.put(None)

    started = time.perf_counter()
    _, sent = await asyncio.gather(feed(), hand_over(url, concurrency, queue))
    elapsed = time.perf_counter() - started
    return {"jobs": sent, "seconds": elapsed, "rate": sent / elapsed}


def start_gateway(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    port_file = workdir / "gateway.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, __file__, "--gateway", str(port_file)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text()}/cgi-bin/sendsms"


def stop_gateway(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(input="", timeout=60)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def machine() -> dict[str, Any]:
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                     .splitlines() if line.startswith("MemTotal:"))
    return {"cores": os.cpu_count(), "memory_mb": memory_kb // 1024,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=TOTAL)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fanout.json"))
    parser.add_argument("--gateway", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gateway:
        serve_gateway(Path(args.gateway))
        return 0

    host = machine()
    print(f"machine: {host}", flush=True)
    print(f"population: {args.total} (ASSUMPTION: {ASSUMPTIONS})", flush=True)
    started = time.perf_counter()
    _where, index, memory = load_population(args.total, args.seed)
    print(f"loaded in {time.perf_counter() - started:.1f} s: {memory}", flush=True)
    areas = sorted(load_geography().kelurahan.values(), key=lambda a: a.code)
    planning = time_planning(index, areas, args.repeat)
    print(f"planning: {json.dumps(planning)}", flush=True)

    workdir = Path(args.out).parent
    workdir.mkdir(parents=True, exist_ok=True)
    gateway, url = start_gateway(workdir)
    try:
        ours = asyncio.run(planned_run(url, args.concurrency, index, areas))
        print(f"planned + handed over: {ours}", flush=True)
        body = next(iter(plan_jobs(awas(areas[0], datetime.now(UTC)), index)))[0].value
        bare = asyncio.run(bare_run(url, args.concurrency, ours["jobs"], body))
        print(f"bare aiohttp loop: {bare}", flush=True)
    finally:
        seen = stop_gateway(gateway)
    assert seen["received"] == ours["jobs"] + bare["jobs"], seen

    ratio = ours["rate"] / bare["rate"]
    rss = {"bench": round(peak_rss_mb(), 1), "gateway": round(seen["peak_rss_mb"], 1)}
    largest = planning["plan_largest_kelurahan"]
    figures = {
        "subscribers": {"value": args.total, "unit": "people"},
        "jobs": {"value": ours["jobs"], "unit": "jobs (sms + push)"},
        "handover_seconds": {"value": round(ours["seconds"], 1), "unit": "s"},
        "handover_rate": {"value": round(ours["rate"]), "unit": "jobs/s"},
        "longest_planning_chunk": {"value": round(ours["longest_chunk_ms"], 1), "unit": "ms"},
        **planning, **memory,
        "peak_rss_bench_process": {"value": rss["bench"], "unit": "MiB"},
        "peak_rss_gateway_process": {"value": rss["gateway"], "unit": "MiB"},
        "concurrency": {"value": args.concurrency, "unit": "connections"},
    }
    meets = {
        "handover_seconds": ours["seconds"] <= TARGETS["handover_seconds_max"],
        "ratio": ratio >= TARGETS["ratio_min"],
        "peak_rss": max(rss.values()) <= TARGETS["peak_rss_mb_max"],
        "plan_one_kelurahan": largest["median_ms"] <= TARGETS["plan_one_kelurahan_ms_max"],
    }
    result = {
        "name": "fanout",
        "figures": figures,
        "baseline": {"name": "bare aiohttp client loop, same gateway, same request count",
                     "handover_seconds": {"value": round(bare["seconds"], 1), "unit": "s"},
                     "rate": {"value": round(bare["rate"]), "unit": "requests/s"}},
        "ratio": round(ratio, 3),
        "target": TARGETS,
        "meets_target": {**meets, "all": all(meets.values())},
        "machine": host,
        "partial": ["no Kafka hop: jobs go from the planning code to the HTTP gateway directly "
                    "(the delivery consumer is on another branch)",
                    "memory: the planner's state in this process (exact size and RSS growth), "
                    "not a faust worker's RSS"],
        "assumptions": ASSUMPTIONS,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
