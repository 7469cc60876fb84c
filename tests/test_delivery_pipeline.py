"""The delivery pipeline's pure parts, each alone: stages, priority queue, offsets, ledger,
throttle rules, directory, retry timing, the outbox's torn tail, signatures. No broker."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from consumers.directory import SubscriberDirectory
from consumers.dlr import interpret
from consumers.item import Item
from consumers.ledger import LedgerIndex
from consumers.queue import JobQueue, OffsetTracker
from consumers.retry import RetryPolicy, parse_retry_after
from consumers.sinks.base import SendError, Sent, http_error
from consumers.sinks.outbox import OutboxSink, repair_torn_tail
from consumers.sinks.push import FCM_SCOPE, ServiceAccount, notification_text
from consumers.sinks.sms import DlrSigner, is_gsm7
from consumers.sinks.spec import SinkSpecError, build_sink, parse_spec
from consumers.sinks.webhook import sign, verify
from consumers.stages import Dedupe, Record, Route, Send, Sequence, Subscribed, Throttled
from consumers.throttle import Throttle
from schemas.delivery import DEFAULT_THROTTLES, ThrottleRule
from schemas.events import Channel, DeliveryJob, DeliveryStatus, Level, Subscriber
from schemas.settings import Settings
from tests.delivery_helpers import make_job


@dataclass
class Ctx:
    """A Context that writes down what the stages decided."""

    clock: float = 100.0
    stopped: list[tuple[str, DeliveryStatus, str]] = field(default_factory=list)
    retried: list[tuple[str, float]] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    held_until: float = 0.0
    invalid: list[str] = field(default_factory=list)

    def now(self) -> float:
        return self.clock

    def stop(self, item: Item, status: DeliveryStatus, detail: str) -> None:
        self.stopped.append((item.job.job_key, status, detail))

    def retry(self, item: Item, delay_s: float, detail: str) -> None:
        self.retried.append((item.job.job_key, delay_s))

    def hold(self, until: float) -> None:
        self.held_until = until

    def invalid_recipient(self, item: Item) -> None:
        self.invalid.append(item.job.subscriber_id)

    def record(self, item: Item) -> None:
        self.recorded.append(item.job.job_key)


def items(*jobs: DeliveryJob) -> list[Item]:
    return [Item(job, 0, n) for n, job in enumerate(jobs)]


class ScriptedSink:
    name = "scripted"

    def __init__(self, *answers: SendError | None) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    async def start(self) -> None: ...

    async def sync(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, job: DeliveryJob) -> Sent:
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        self.sent.append(job.job_key)
        return Sent("ok")


def run(stage: object, ctx: Ctx, batch: list[Item]) -> list[Item]:
    return asyncio.run(stage(ctx, batch))  # type: ignore[operator]


def test_dedupe_stops_a_key_the_ledger_holds_and_one_already_in_flight() -> None:
    ledger = LedgerIndex()
    ledger.accept(0, make_job(1).job_key, 7)
    ctx = Ctx()
    passed = run(Dedupe(ledger), ctx, items(make_job(1), make_job(2), make_job(2)))
    assert [i.job.job_key for i in passed] == [make_job(2).job_key]
    assert [s[1] for s in ctx.stopped] == [DeliveryStatus.DUPLICATE] * 2


def test_subscribed_stops_jobs_of_people_who_left_or_dropped_the_channel() -> None:
    directory = SubscriberDirectory(Channel.SMS)
    directory.apply("sub-1", Subscriber(subscriber_id="sub-1", areas=[], active=False))
    directory.apply("sub-2", Subscriber(subscriber_id="sub-2", areas=[],
                                        channels=[Channel.PUSH]))
    directory.apply("sub-3", None)  # tombstone
    ctx = Ctx()
    passed = run(Subscribed(directory), ctx, items(*(make_job(n) for n in range(5))))
    assert [i.job.subscriber_id for i in passed] == ["sub-0", "sub-4"]
    assert [s[2] for s in ctx.stopped] == ["unsubscribed", "no longer subscribed on sms",
                                           "unsubscribed"]


def test_throttle_rules_are_data_and_awas_is_never_held_back() -> None:
    throttle = Throttle({Channel.SMS: {Level.WASPADA: [ThrottleRule(count=2, per_seconds=60)]}})
    admitted = [throttle.admit(Channel.SMS, Level.WASPADA, "+62", t) is None for t in (0, 1, 2)]
    assert admitted == [True, True, False]
    assert throttle.admit(Channel.SMS, Level.AWAS, "+62", 3) is None
    assert throttle.admit(Channel.SMS, Level.WASPADA, "+62", 61.5) is None  # window slid
    assert throttle.admit(Channel.SMS, None, "+63", 0) is None  # no level: as waspada
    assert throttle.admit(Channel.CALLCENTRE, Level.WASPADA, "desk", 0) is None


def test_default_throttles_are_goalert_style_five_per_quarter_hour_eleven_per_hour() -> None:
    throttle = Throttle(DEFAULT_THROTTLES)
    minutes = [m for m in range(0, 60, 2)
               if throttle.admit(Channel.SMS, Level.WASPADA, "+62", m * 60.0) is None]
    assert len([m for m in minutes if m < 15]) == 5 and len(minutes) == 11


def test_throttled_stage_counts_a_job_once_even_when_it_is_retried() -> None:
    throttle = Throttle({Channel.SMS: {Level.SIAGA: [ThrottleRule(count=1, per_seconds=600)]}})
    first, second = items(make_job(1, recipient="+621"), make_job(2, recipient="+621"))
    ctx = Ctx()
    assert run(Throttled(throttle), ctx, [first]) == [first]
    first.attempts = 1  # back from a failed attempt
    assert run(Throttled(throttle), ctx, [first, second]) == [first]
    assert ctx.stopped[0][1] is DeliveryStatus.THROTTLED


def test_send_retries_later_honouring_retry_after_then_gives_up() -> None:
    sink = ScriptedSink(SendError("HTTP 429", retry_after=30, hold=True),
                        SendError("HTTP 503"), SendError("HTTP 503"))
    send = Send(sink, RetryPolicy(attempts=3, base_delay_s=0.1, max_delay_s=1))
    item = items(make_job(1))
    ctx = Ctx()
    assert run(send, ctx, item) == []
    assert ctx.retried[0][1] >= 30 and ctx.held_until == 130
    run(send, ctx, item)
    assert ctx.retried[1][1] <= 0.2  # plain backoff: no Retry-After
    run(send, ctx, item)
    assert ctx.stopped == [(make_job(1).job_key, DeliveryStatus.FAILED,
                            "gave up after 3 attempt(s): HTTP 503")]


def test_send_stops_at_once_on_a_permanent_refusal_and_flags_a_dead_address() -> None:
    sink = ScriptedSink(SendError("HTTP 404 UNREGISTERED", retryable=False,
                                  invalid_recipient=True))
    ctx = Ctx()
    run(Send(sink), ctx, items(make_job(1)))
    assert ctx.retried == [] and ctx.invalid == ["sub-1"]
    assert ctx.stopped[0][1] is DeliveryStatus.FAILED


def test_a_sequence_reads_as_the_policy_and_records_what_went_out() -> None:
    ledger, sink, ctx = LedgerIndex(), ScriptedSink(), Ctx()
    ledger.accept(0, make_job(0).job_key, 0)
    pipeline = Sequence(Dedupe(ledger), Send(sink), Record())
    run(pipeline, ctx, items(make_job(0), make_job(1)))
    assert sink.sent == ctx.recorded == [make_job(1).job_key]


def test_route_sends_each_item_down_its_branch_and_fails_the_unroutable() -> None:
    sms, push = ScriptedSink(), ScriptedSink()
    route = Route(lambda i: i.job.channel.value, {"sms": Send(sms), "push": Send(push)})
    ctx = Ctx()
    batch = items(make_job(1), make_job(2, channel=Channel.PUSH),
                  make_job(3, channel=Channel.CALLCENTRE))
    assert len(run(route, ctx, batch)) == 2
    assert (len(sms.sent), len(push.sent)) == (1, 1)
    assert ctx.stopped[0][1] is DeliveryStatus.FAILED


def test_awas_leaves_the_queue_before_siaga_before_waspada_and_retries_wait() -> None:
    queue = JobQueue()
    for n, level in enumerate([Level.WASPADA, None, Level.SIAGA, Level.AWAS, Level.WASPADA]):
        queue.push(Item(make_job(n, level=level), 0, n))
    later = Item(make_job(9, level=Level.AWAS), 0, 9)
    queue.push_later(later, due=50)
    order = [i.offset for i in queue.pop_ready(10, now=10)]
    assert order == [3, 2, 0, 4, 1]
    assert queue.pop_ready(10, now=49) == [] and queue.next_due() == 50
    assert queue.pop_ready(10, now=50) == [later]


def test_offsets_are_never_committed_past_an_unsettled_job() -> None:
    tracker = OffsetTracker()
    assert tracker.committable() is None
    for offset in range(10, 15):
        tracker.add(offset)
    for offset in (10, 12, 13, 14):  # 11 is still retrying
        tracker.settle(offset)
    assert tracker.committable() == 11
    tracker.settle(11)
    assert tracker.committable() == 15


def test_the_ledger_index_is_bounded_and_forgets_revoked_partitions() -> None:
    ledger = LedgerIndex(max_keys_per_partition=3)
    for n in range(5):
        ledger.accept(0, f"k{n}", n)
    assert [ledger.seen(0, f"k{n}") for n in range(5)] == [False, False, True, True, True]
    assert [offset for _, offset in ledger.take_pending()[0]] == [0, 1, 2, 3, 4]
    assert ledger.take_pending() == {}
    ledger.forget([0])
    assert not ledger.seen(0, "k4")


def test_a_dead_push_token_removes_push_from_the_published_record() -> None:
    directory = SubscriberDirectory(Channel.PUSH, keep_records=True)
    person = Subscriber(subscriber_id="p", push_token="tok", areas=["52.71.01.1004"],
                        channels=[Channel.SMS, Channel.PUSH], phone="+6281200000001")
    directory.apply("p", person)
    updated = directory.drop_channel("p")
    assert updated is not None and updated.channels == [Channel.SMS] and updated.active
    assert directory.refuses(make_job(1, subscriber_id="p", channel=Channel.PUSH))


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_backoff_stays_within_its_ceiling(attempt: int) -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30)
    ceiling = min(30, 0.5 * 2 ** (attempt - 1))
    assert 0 <= policy.delay(attempt, rng=random.Random(attempt)) <= ceiling


def test_retry_after_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_http_statuses_map_to_retry_wait_or_never() -> None:
    assert http_error(429, "7").retry_after == 7 and http_error(429).hold
    assert http_error(503).retryable and not http_error(503).hold
    assert not http_error(400, body="bad +6281234").retryable


def test_a_torn_last_line_is_cut_and_whole_lines_kept(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    outbox.write_text('{"a": 1}\n{"b": 2}\n{"c": ', encoding="utf-8")
    assert repair_torn_tail(outbox) == len('{"c": ')
    assert outbox.read_text(encoding="utf-8") == '{"a": 1}\n{"b": 2}\n'
    assert repair_torn_tail(outbox) == 0


def test_outbox_lines_carry_the_contract_and_are_durable_after_sync(tmp_path: Path) -> None:
    sink = OutboxSink(tmp_path / "outbox.jsonl")

    async def go() -> None:
        await sink.start()
        await sink.send(make_job(1, level=Level.AWAS))
        await sink.sync()
        await sink.close()

    asyncio.run(go())
    (record,) = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert (record["recipient"], record["channel"], record["level"]) == (
        "+6281200000001", "sms", "awas")
    assert record["job_key"] == make_job(1).job_key


def test_webhook_signature_verifies_and_a_replay_outside_the_window_does_not() -> None:
    body, secret = b'{"job_key": "k"}', b"s3cret"
    signature = sign(secret, "1000", body)
    assert verify(secret, "1000", signature, body, now=1100) is None
    assert verify(secret, "1000", signature, body, now=2000) == \
        "timestamp outside the replay window"
    assert verify(secret, "1000", signature, body + b" ", now=1000) == "bad signature"
    assert verify(b"other", "1000", signature, body, now=1000) == "bad signature"


def test_dlr_urls_carry_the_job_key_signed_and_reports_map_to_outcomes() -> None:
    signer = DlrSigner(b"k")
    key_part, mac_part = signer.token("INC-1/2/+6281200000001/sms").split("/")
    assert "%" not in key_part + mac_part
    assert signer.job_key(key_part, mac_part) == "INC-1/2/+6281200000001/sms"
    assert DlrSigner(b"other").job_key(key_part, mac_part) is None
    assert interpret("k", 1).status is DeliveryStatus.DELIVERED  # type: ignore[union-attr]
    assert interpret("k", 16).status is DeliveryStatus.FAILED  # type: ignore[union-attr]
    assert interpret("k", 8) is None


def test_gsm7_text_goes_7_bit_and_anything_else_ucs2() -> None:
    assert is_gsm7("[KENTONGAN] SIAGA: banjir! Sumber: BMKG €")
    assert not is_gsm7("Peringatan ⚠ banjir")


def test_the_fcm_assertion_is_rs256_signed_for_the_token_uri() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = ServiceAccount("svc@test", key, "http://127.0.0.1/token", "proj")
    header, claims, signature = account.assertion(1_000).split(".")

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    key.public_key().verify(unb64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(),
                            hashes.SHA256())
    body = json.loads(unb64(claims))
    assert body == {"iss": "svc@test", "scope": FCM_SCOPE, "aud": "http://127.0.0.1/token",
                    "iat": 1000, "exp": 4600}


def test_push_notification_text_fits_the_lock_screen() -> None:
    title, body = notification_text(make_job(1, text="SIAGA banjir. " + "x" * 500))
    assert title == "SIAGA banjir" and len(body) <= 240 and body.endswith("…")


def test_sink_specs_are_checked_and_secrets_never_come_from_the_command_line() -> None:
    assert parse_spec("outbox:/tmp/o.jsonl") == ("outbox", "/tmp/o.jsonl")
    with pytest.raises(SinkSpecError):
        parse_spec("carrier-pigeon:x")
    with pytest.raises(SinkSpecError, match="KANNEL_PASSWORD"):
        build_sink(Channel.SMS, "kannel:http://127.0.0.1:13013", Settings())
    with pytest.raises(SinkSpecError, match="does not deliver push"):
        build_sink(Channel.PUSH, "kannel:http://127.0.0.1:13013", Settings())


def test_deliver_refuses_a_bad_sink_clearly_before_touching_the_broker() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "deploy.cli", "deliver", "push", "--sink",
                             "kannel:http://127.0.0.1:1"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "kannel does not deliver push" in result.stderr
