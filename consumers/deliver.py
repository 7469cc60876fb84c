"""Kafka shell of a delivery channel: alerts.<channel> -> pipeline -> gateway; every outcome on
``deliveries``, accepted keys on ``deliveries.ledger``, refusals on ``deadletter``.

One asyncio loop does everything (aiokafka + aiohttp): the poll loop keeps calling ``getmany``
(so the group never thinks we died) while sends run as tasks, at most ``concurrency`` at once;
a retry waits in the queue, never in the poll loop. A group commit every ``commit_interval_ms``
(or sooner when the window fills): fsync the sink (outbox), write one ledger entry per
partition, flush outcomes, then commit each partition's offset up to its first unsettled job.

Once per recipient: a job whose key the ledger holds is not sent again, across restarts and
hosts (the ledger partition moves with the input partition). What a crash can send twice is
what was handed to the gateway but not yet in a flushed ledger entry: at most ``window`` jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from consumers import metrics
from consumers.directory import SubscriberDirectory
from consumers.dlr import Report, dlr_app
from consumers.item import Item
from consumers.ledger import LedgerIndex
from consumers.queue import JobQueue, OffsetTracker
from consumers.retry import RetryPolicy
from consumers.sinks.base import Sink
from consumers.sinks.sms import KannelSink
from consumers.stages import (
    Dedupe,
    Record,
    Send,
    Sequence,
    Stage,
    Subscribed,
    Throttled,
)
from consumers.throttle import Throttle
from producers.publisher import dead_letter
from schemas.codec import decode, encode, encode_key
from schemas.delivery import LedgerEntry
from schemas.events import (
    Channel,
    DeliveryJob,
    DeliveryOutcome,
    DeliveryStatus,
    Subscriber,
    dead_letter_key,
    utc_now,
)
from schemas.settings import Settings
from schemas.topics import (
    ALERT_TOPICS,
    DEADLETTER,
    DELIVERIES,
    DELIVERY_LEDGER,
    SUBSCRIBERS,
    TopicSpec,
)

log = logging.getLogger(__name__)

LEDGER_KEYS_PER_ENTRY = 2000
SHUTDOWN_FLUSH_S = 30.0


@dataclass(frozen=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None


@dataclass
class RunStats:
    outcomes: Counter[str] = field(default_factory=Counter)
    ledger_loaded: int = 0
    broker_retries: int = 0


def build_pipeline(channel: Channel, sink: Sink, settings: Settings, ledger: LedgerIndex,
                   directory: SubscriberDirectory, throttle: Throttle) -> Stage:
    d = settings.delivery
    send = Send(sink, RetryPolicy(d.attempts, d.base_delay_s, d.max_delay_s), d.request_timeout_s)
    if channel is Channel.CALLCENTRE:
        # The 112 desk is not a subscriber and must see everything: no unsubscribe, no limits.
        return Sequence(Dedupe(ledger), Throttled(throttle), send, Record())
    return Sequence(Dedupe(ledger), Subscribed(directory), Throttled(throttle), send, Record())


class ChannelRunner:
    def __init__(self, channel: Channel, sink: Sink, settings: Settings, stop: threading.Event,
                 *, group_id: str | None = None) -> None:
        self.channel, self.sink, self.settings, self.stop_event = channel, sink, settings, stop
        d = self.cfg = settings.delivery
        prefix = settings.topic_prefix
        self.topic = ALERT_TOPICS[channel.value].full_name(prefix)
        self.ledger_topic = DELIVERY_LEDGER.full_name(prefix)
        self.group_id = group_id or f"{prefix}{settings.app_id}-deliver-{channel.value}"
        self.instance_id = d.instance_id or f"{socket.gethostname()}-{channel.value}"
        self.stage_name = f"deliver-{channel.value}"
        self.ledger = LedgerIndex()
        self.directory = SubscriberDirectory(channel, keep_records=channel is Channel.PUSH)
        self.throttle = Throttle(d.throttles)
        self.pipeline = build_pipeline(channel, sink, settings, self.ledger, self.directory,
                                       self.throttle)
        self.queue = JobQueue()
        self.trackers: dict[int, OffsetTracker] = {}
        self.stats = RunStats()
        self._early: dict[int, list[ConsumerRecord[bytes, bytes]]] = {}
        self._done: defaultdict[int, list[int]] = defaultdict(list)
        self._unsent: list[_Pending] = []
        self._by_partition: Counter[int] = Counter()
        self.in_flight = 0
        self.unledgered = 0
        self._hold_until = 0.0
        self._paused = False
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.TimerHandle | None = None
        self._commit_now = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._chunk = max(1, d.concurrency // 4)
        self.dlr_url: str | None = None

    # --- the Context the stages talk to -------------------------------------------------

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def stop(self, item: Item, status: DeliveryStatus, detail: str) -> None:
        item.state = "done"
        if status is not DeliveryStatus.DUPLICATE:  # a duplicate never held the claim
            self.ledger.release(item.job.job_key)
        self._outcome(item.job.job_key, status, item.attempts, detail)
        if status is DeliveryStatus.FAILED:
            self._dead_letter(self.topic, item.partition, item.offset, item.job.job_key,
                              item.job.model_dump_json(), detail)
        self._done[item.partition].append(item.offset)

    def retry(self, item: Item, delay_s: float, detail: str) -> None:
        item.state = "queued"
        metrics.RETRIES.labels(channel=self.channel.value).inc()
        due = self.now() + delay_s
        self.queue.push_later(item, due)
        self._wake_at(due)

    def hold(self, until: float) -> None:
        self._hold_until = max(self._hold_until, until)

    def invalid_recipient(self, item: Item) -> None:
        updated = self.directory.drop_channel(item.job.subscriber_id)
        if updated is not None:
            log.info("deactivating %s for subscriber %s: the gateway says the address is gone",
                     self.channel.value, item.job.subscriber_id)
            self._emit(SUBSCRIBERS, updated.subscriber_id, updated)

    def record(self, item: Item) -> None:
        item.state = "done"
        self.ledger.accept(item.partition, item.job.job_key, item.offset)
        self.unledgered += 1
        status = DeliveryStatus.ACCEPTED if item.accepted_only else DeliveryStatus.DELIVERED
        self._outcome(item.job.job_key, status, item.attempts, item.receipt)
        self._done[item.partition].append(item.offset)
        if self.unledgered * 2 >= self.cfg.window:
            self._commit_now.set()

    # --- what goes to Kafka -----------------------------------------------------------------

    def _emit(self, spec: TopicSpec, key: str | None, value: BaseModel,
              partition: int | None = None) -> None:
        self._unsent.append(_Pending(spec.full_name(self.settings.topic_prefix),
                                     encode_key(key), encode(value), partition))

    def _outcome(self, job_key: str, status: DeliveryStatus, attempts: int, detail: str) -> None:
        metrics.OUTCOMES.labels(channel=self.channel.value, status=status.value).inc()
        self.stats.outcomes[status.value] += 1
        self._emit(DELIVERIES, job_key, DeliveryOutcome(
            job_key=job_key, channel=self.channel, status=status, attempts=attempts,
            sink=self.sink.name, detail=detail, at=utc_now()))

    def _dead_letter(self, topic: str, partition: int | None, offset: int | None,
                     key: str | bytes | None, value: str | bytes | None, reason: str) -> None:
        metrics.DEADLETTERS.labels(channel=self.channel.value).inc()
        letter = dead_letter(source_topic=topic, value=value, stage=self.stage_name,
                             reason=reason, key=key, partition=partition, offset=offset)
        self._emit(DEADLETTER, dead_letter_key(topic, partition, offset), letter)

    def on_report(self, report: Report) -> None:
        """A delivery report from Kannel: the job's final outcome."""
        self._outcome(report.job_key, report.status, 0, report.detail)
        if report.status is DeliveryStatus.FAILED:
            self._dead_letter(self.topic, None, None, report.job_key, report.job_key,
                              report.detail)
        self._commit_now.set()

    async def _flush(self, deadline: float | None = None) -> bool:
        """Produce everything pending; a record the broker did not take is produced again
        (with backoff) until it is, so a broker restart delays outcomes and never loses or
        crashes them. False only if ``deadline`` passed first."""
        delay = 0.2
        while self._unsent:
            records, self._unsent = self._unsent, []
            failed: list[_Pending] = []
            futures = []
            for rec in records:
                try:
                    futures.append((rec, await self.producer.send(
                        rec.topic, rec.value, key=rec.key, partition=rec.partition)))
                except KafkaError:
                    failed.append(rec)
            for rec, future in futures:
                try:
                    await future
                except KafkaError:
                    failed.append(rec)
            if failed:
                self.stats.broker_retries += len(failed)
                metrics.BROKER_RETRIES.labels(channel=self.channel.value).inc(len(failed))
                log.warning("broker did not take %d records; producing them again in %.1f s",
                            len(failed), delay)
                self._unsent = failed + self._unsent
                if deadline is not None and time.monotonic() > deadline:
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return True

    async def _group_commit(self, deadline: float | None = None) -> None:
        async with self._commit_lock:
            started = time.monotonic()
            done, self._done = self._done, defaultdict(list)
            pending = self.ledger.take_pending()
            if pending:
                await self.sink.sync()  # durable at the gateway before the ledger says so
            for partition, entries in pending.items():
                for i in range(0, len(entries), LEDGER_KEYS_PER_ENTRY):
                    chunk = entries[i:i + LEDGER_KEYS_PER_ENTRY]
                    offsets = [offset for _, offset in chunk]
                    self._emit(DELIVERY_LEDGER, f"{self.channel.value}:{partition}", LedgerEntry(
                        channel=self.channel, partition=partition,
                        keys=[digest for digest, _ in chunk], first_offset=min(offsets),
                        last_offset=max(offsets), at=utc_now()), partition=partition)
            if not await self._flush(deadline):
                log.warning("stopping with %d records the broker never took; their jobs are "
                            "not committed and will be read again", len(self._unsent))
                return
            self.unledgered -= sum(len(entries) for entries in pending.values())
            for partition, offsets in done.items():
                tracker = self.trackers.get(partition)
                if tracker is not None:
                    for offset in offsets:
                        tracker.settle(offset)
            await self._commit_offsets()
            metrics.GROUP_COMMIT_SECONDS.labels(channel=self.channel.value).observe(
                time.monotonic() - started)
        self._dispatch()

    async def _commit_offsets(self) -> None:
        offsets: dict[TopicPartition, int] = {}
        for partition, tracker in self.trackers.items():
            committable = tracker.committable()
            if committable is not None and committable > tracker.committed:
                offsets[TopicPartition(self.topic, partition)] = committable
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # Not committed is safe: the ledger dedupes what is read again. Next round retries.
            log.warning("offset commit failed (%s); will try again", type(exc).__name__)
            return
        for tp, offset in offsets.items():
            if tp.partition in self.trackers:
                self.trackers[tp.partition].committed = offset

    async def _committer(self) -> None:
        interval = self.cfg.commit_interval_ms / 1000
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_now.wait(), interval)
            self._commit_now.clear()
            if not self._closing:
                await self._group_commit()

    # --- reading ----------------------------------------------------------------------------

    def _accept(self, record: ConsumerRecord[bytes, bytes]) -> None:
        partition = record.partition
        tracker = self.trackers.get(partition)
        if tracker is None:  # its ledger is still loading
            self._early.setdefault(partition, []).append(record)
            return
        tracker.add(record.offset)
        try:
            job = decode(DeliveryJob, record.value)
            if job.channel is not self.channel:
                raise ValueError(f"a {job.channel.value} job on {self.topic}")
        except ValueError as exc:
            self._dead_letter(record.topic, partition, record.offset, record.key, record.value,
                              f"invalid delivery job: {exc}")
            self._done[partition].append(record.offset)
            return
        self.queue.push(Item(job, partition, record.offset))

    async def _read_ledger(self, partition: int) -> list[str]:
        tp = TopicPartition(self.ledger_topic, partition)
        digests: list[str] = []
        while True:
            try:
                self._ledger_reader.assign([tp])
                await self._ledger_reader.seek_to_beginning(tp)
                end = (await self._ledger_reader.end_offsets([tp]))[tp]
                while await self._ledger_reader.position(tp) < end:
                    batches = await self._ledger_reader.getmany(tp, timeout_ms=500)
                    for record in batches.get(tp, []):
                        try:
                            entry = decode(LedgerEntry, record.value)
                        except ValueError:
                            log.warning("ledger partition %d offset %d is not a LedgerEntry; "
                                        "skipped", partition, record.offset)
                            continue
                        if entry.channel is self.channel and entry.partition == partition:
                            digests.extend(entry.keys)
                return digests
            except KafkaError as exc:
                log.warning("reading the ledger failed (%s); again in 1 s", type(exc).__name__)
                digests.clear()
                await asyncio.sleep(1)

    async def assigned(self, partitions: set[int]) -> None:
        for partition in sorted(partitions - set(self.trackers)):
            loaded = self.ledger.load(partition, await self._read_ledger(partition))
            self.stats.ledger_loaded += loaded
            self.trackers[partition] = OffsetTracker()
            log.info("%s partition %d: %d accepted keys from the ledger", self.topic, partition,
                     loaded)
            for record in self._early.pop(partition, []):
                self._accept(record)
        self._dispatch()

    async def revoked(self, partitions: set[int]) -> None:
        deadline = time.monotonic() + self.cfg.request_timeout_s + 5
        while any(self._by_partition[p] for p in partitions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._group_commit()
        for item in self.queue.drop_partitions(partitions):
            if item.attempts:
                self.ledger.release(item.job.job_key)
        for partition in partitions:
            self.trackers.pop(partition, None)
            self._early.pop(partition, None)
        self.ledger.forget(partitions)

    async def _follow_subscribers(self, catch_up_only: bool) -> None:
        reader = self._subscriber_reader
        while True:
            try:
                if catch_up_only:
                    tps = [TopicPartition(self._subscribers_topic, p)
                           for p in range(SUBSCRIBERS.partitions)]
                    reader.assign(tps)
                    await reader.seek_to_beginning(*tps)
                    ends = await reader.end_offsets(tps)
                    while True:
                        positions = [await reader.position(tp) for tp in tps]
                        if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                            break
                        self._apply_subscribers(await reader.getmany(timeout_ms=500))
                    return
                while not self._closing:
                    self._apply_subscribers(await reader.getmany(timeout_ms=200))
                return
            except KafkaError as exc:
                log.warning("following subscribers failed (%s); again in 1 s",
                            type(exc).__name__)
                await asyncio.sleep(1)

    def _apply_subscribers(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        for records in batches.values():
            for record in records:
                if record.key is None:
                    continue
                subscriber_id = record.key.decode(errors="replace")
                if record.value is None:
                    self.directory.apply(subscriber_id, None)
                    continue
                try:
                    self.directory.apply(subscriber_id, decode(Subscriber, record.value))
                except ValueError:
                    log.warning("subscribers offset %d is not a Subscriber; ignored",
                                record.offset)

    # --- sending ----------------------------------------------------------------------------

    def _wake_at(self, when: float) -> None:
        if self._wake is not None and not self._wake.cancelled() and self._wake.when() <= when:
            return
        if self._wake is not None:
            self._wake.cancel()
        self._wake = asyncio.get_running_loop().call_at(when, self._dispatch)

    def _dispatch(self) -> None:
        if self._closing:
            return
        now = self.now()
        if now < self._hold_until:
            self._wake_at(self._hold_until)
            return
        while True:
            free = min(self.cfg.concurrency - self.in_flight,
                       self.cfg.window - self.in_flight - self.unledgered)
            if free <= 0:
                if self.unledgered:
                    self._commit_now.set()
                break
            items = self.queue.pop_ready(min(free, self._chunk), now)
            if not items:
                due = self.queue.next_due()
                if due is not None:
                    self._wake_at(due)
                break
            self.in_flight += len(items)
            for item in items:
                item.state = ""
                self._by_partition[item.partition] += 1
            task = asyncio.create_task(self._run_batch(items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        metrics.IN_FLIGHT.labels(channel=self.channel.value).set(self.in_flight)
        metrics.QUEUED.labels(channel=self.channel.value).set(len(self.queue))

    async def _run_batch(self, items: list[Item]) -> None:
        try:
            await self.pipeline(self, items)
        except Exception:
            log.exception("a delivery stage failed; its jobs go back to the queue")
            for item in items:
                if item.state == "":
                    self.retry(item, 1.0, "stage error")
        finally:
            self.in_flight -= len(items)
            for item in items:
                self._by_partition[item.partition] -= 1
            self._dispatch()

    def _flow_control(self) -> None:
        assignment = self.consumer.assignment()
        if len(self.queue) >= self.cfg.max_buffered:
            if assignment:
                self.consumer.pause(*assignment)
            self._paused = True
        elif self._paused and len(self.queue) < self.cfg.max_buffered // 2:
            self.consumer.resume(*assignment)
            self._paused = False

    # --- lifecycle --------------------------------------------------------------------------

    async def _start(self, what: str, start: Callable[[], Awaitable[None]]) -> None:
        """Start a client, waiting for the broker as long as it takes (or until stopped)."""
        delay = 0.5
        while True:
            try:
                await start()
                return
            except KafkaError as exc:
                if self.stop_event.is_set():
                    raise
                log.warning("%s: broker not answering (%s); again in %.1f s", what,
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _start_dlr(self) -> web.AppRunner | None:
        if not isinstance(self.sink, KannelSink):
            return None
        runner = web.AppRunner(dlr_app(self.sink.signer, self.on_report), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.cfg.dlr_host, self.cfg.dlr_port)
        await site.start()
        port = runner.addresses[0][1]
        self.dlr_url = self.cfg.dlr_url or f"http://{self.cfg.dlr_host}:{port}"
        self.sink.dlr_base = self.dlr_url.rstrip("/")
        log.info("delivery reports on %s/dlr/...", self.dlr_url)
        return runner

    async def run(self) -> RunStats:
        bootstrap = self.settings.kafka_bootstrap
        client = f"kentongan-{self.stage_name}"
        self._subscribers_topic = SUBSCRIBERS.full_name(self.settings.topic_prefix)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=client,
                                         acks="all", enable_idempotence=True, linger_ms=5)
        self._ledger_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap,
                                               enable_auto_commit=False, client_id=client)
        self._subscriber_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap,
                                                   enable_auto_commit=False, client_id=client)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=self.group_id, client_id=client,
            group_instance_id=self.instance_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=self.cfg.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.cfg.session_timeout_ms // 5),
            max_partition_fetch_bytes=1 << 20)
        dlr_runner = None
        background: list[asyncio.Task[None]] = []
        try:
            await self._start("producer", self.producer.start)
            await self._start("ledger reader", self._ledger_reader.start)
            await self._start("subscriber reader", self._subscriber_reader.start)
            await self.sink.start()
            dlr_runner = await self._start_dlr()
            if self.channel is not Channel.CALLCENTRE:
                await self._follow_subscribers(catch_up_only=True)
                background.append(asyncio.create_task(self._follow_subscribers(False)))
            self.consumer.subscribe([self.topic], listener=_Rebalance(self))
            await self._start("consumer", self.consumer.start)
            background.append(asyncio.create_task(self._committer()))
            log.info("delivering %s from %s via %s", self.channel.value, self.topic,
                     self.sink.name)
            while not self.stop_event.is_set():
                try:
                    batches = await self.consumer.getmany(timeout_ms=100, max_records=2000)
                except KafkaError as exc:
                    log.warning("poll failed (%s); polling again", type(exc).__name__)
                    await asyncio.sleep(0.5)
                    continue
                for records in batches.values():
                    for record in records:
                        self._accept(record)
                self._flow_control()
                self._dispatch()
        finally:
            await self._shutdown(background, dlr_runner)
        return self.stats

    async def _shutdown(self, background: list[asyncio.Task[None]],
                        dlr_runner: web.AppRunner | None) -> None:
        self._closing = True
        if self._wake is not None:
            self._wake.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.cfg.request_timeout_s + 5)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if hasattr(self, "consumer") and self.consumer.assignment():
            await self._group_commit(deadline=time.monotonic() + SHUTDOWN_FLUSH_S)
        else:
            await self._flush(deadline=time.monotonic() + SHUTDOWN_FLUSH_S)
        for close in (self.consumer.stop, self._ledger_reader.stop, self._subscriber_reader.stop,
                      self.producer.stop, self.sink.close):
            try:
                await close()
            except Exception as exc:  # closing must go on whatever one client says
                log.warning("closing: %s", exc)
        if dlr_runner is not None:
            await dlr_runner.cleanup()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ChannelRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.runner.revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.runner.assigned({tp.partition for tp in assigned})


def run_channel(channel: Channel, sink: Sink, settings: Settings, stop: threading.Event,
                *, group_id: str | None = None) -> RunStats:
    """Deliver until ``stop`` is set (SIGTERM/SIGINT in the CLI)."""
    return asyncio.run(ChannelRunner(channel, sink, settings, stop, group_id=group_id).run())
