"""A delivery consumer against misbehaving local gateways, on the real broker: every job ends
delivered or dead-lettered with its reason; Retry-After is honoured; an unsubscribe stops the
person's queued jobs at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict

import pytest
from aiohttp import web

from consumers.sinks.sms import HttpSmsSink
from deploy.topics import create_topics
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import Channel, DeadLetter, Level, Subscriber
from schemas.topics import DEADLETTER, SUBSCRIBERS
from tests.delivery_helpers import (
    delivering,
    final_status,
    make_job,
    outcomes,
    publish_jobs,
    settings_for,
)
from tests.gateways import Received, gateway
from tests.kafka_helpers import read_topic, wait_for

pytestmark = pytest.mark.kafka


def test_gateway_faults_end_delivered_or_in_deadletter_with_the_reason(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """5xx, timeouts and 429 + Retry-After are retried until the gateway takes the job; a
    gateway that never recovers, or refuses for good (400), puts the job in deadletter."""
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    # Recipient number -> behaviour; each job its own recipient.
    plan = {0: "ok", 1: "503x2", 2: "429x1", 3: "slowx1", 4: "always500", 5: "400"}
    seen: Counter[str] = Counter()
    attempts_at: defaultdict[str, list[float]] = defaultdict(list)

    async def behave(got: Received, _: web.Request) -> web.StreamResponse:
        body = json.loads(got.body)
        kind = plan[int(body["to"][-2:]) % 6]
        seen[body["to"]] += 1
        attempts_at[body["to"]].append(time.monotonic())
        n = seen[body["to"]]
        if kind == "503x2" and n <= 2:
            return web.Response(status=503, text="overloaded")
        if kind == "429x1" and n == 1:
            return web.Response(status=429, headers={"Retry-After": "2"}, text="slow down")
        if kind == "slowx1" and n == 1:
            await asyncio.sleep(3)  # beyond the client's 1 s timeout
        if kind == "always500":
            return web.Response(status=500, text="broken")
        if kind == "400":
            return web.Response(status=400, text="bad number")
        return web.json_response({"id": body["reference"]})

    jobs = [make_job(n, recipient=f"+628120000{n:02d}") for n in range(6)]
    with gateway(behave) as gw:
        settings = settings_for(kafka_bootstrap, topic_prefix, attempts=4, base_delay_s=0.1,
                                max_delay_s=0.3, request_timeout_s=1.0)
        publish_jobs(kafka_bootstrap, topic_prefix, jobs)
        with delivering(Channel.SMS, HttpSmsSink(gw.url, timeout_s=1.0), settings):
            assert wait_for(lambda: len(final_status(outcomes(
                kafka_bootstrap, topic_prefix, keys=6, timeout_s=1))) == 6, 40)

    final = final_status(outcomes(kafka_bootstrap, topic_prefix, keys=6))
    by_kind = {plan[n]: final[job.job_key] for n, job in enumerate(jobs)}
    assert by_kind == {"ok": "delivered", "503x2": "delivered", "429x1": "delivered",
                       "slowx1": "delivered", "always500": "failed", "400": "failed"}
    # The 429's Retry-After (2 s) was honoured, though the backoff alone is at most 0.3 s.
    first, second = attempts_at["+62812000002"][:2]
    assert second - first >= 1.9
    assert seen["+62812000004"] == 4 and seen["+62812000005"] == 1  # attempts, then none
    letters = [decode(DeadLetter, r.value) for r in read_topic(
        kafka_bootstrap, DEADLETTER.full_name(topic_prefix), partitions=1, min_count=2)]
    reasons = sorted(letter.reason for letter in letters)
    assert len(reasons) == 2
    assert "gave up after 1 attempt(s): HTTP 400: bad number" in reasons
    assert "gave up after 4 attempt(s): HTTP 500: broken" in reasons
    assert all(letter.stage == "deliver-sms" for letter in letters)


def test_an_unsubscribe_stops_the_persons_queued_jobs(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    leaver = Subscriber(subscriber_id="leaver", phone="+6281200000001", areas=["52.71.01.1004"])
    stayer = Subscriber(subscriber_id="stayer", phone="+6281200000002", areas=["52.71.01.1004"])
    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        for person in (leaver, stayer):
            publisher.send(SUBSCRIBERS, person.subscriber_id, person)

    async def slow(_: Received, __: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.03)
        return web.json_response({"ok": True})

    # 60 alerts each (awas: never throttled), interleaved, one at a time: ~4 s of queue.
    jobs = [make_job(i, recipient=person.phone, subscriber_id=person.subscriber_id,
                     incident=f"INC-52.71.01.1004-hydromet-{i}", level=Level.AWAS)
            for i in range(60) for person in (leaver, stayer)]
    with gateway(slow) as gw:
        settings = settings_for(kafka_bootstrap, topic_prefix, concurrency=1, window=4)
        publish_jobs(kafka_bootstrap, topic_prefix, jobs)
        with delivering(Channel.SMS, HttpSmsSink(gw.url), settings):
            assert wait_for(lambda: gw.count() >= 10, 30)
            with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
                publisher.send(SUBSCRIBERS, "leaver", leaver.model_copy(update={"active": False}))
            unsubscribed_at = time.monotonic()
            assert wait_for(lambda: len(final_status(outcomes(
                kafka_bootstrap, topic_prefix, keys=120, timeout_s=1))) == 120, 40)

    sent_to = Counter(json.loads(r.body)["to"] for r in gw.received)
    late = [r for r in gw.received
            if json.loads(r.body)["to"] == leaver.phone and r.at > unsubscribed_at + 1.0]
    assert sent_to[stayer.phone] == 60
    assert sent_to[leaver.phone] < 30 and late == []
    final = final_status(outcomes(kafka_bootstrap, topic_prefix, keys=120))
    leaver_final = Counter(final[j.job_key] for j in jobs if j.subscriber_id == "leaver")
    assert leaver_final["unsubscribed"] == 60 - sent_to[leaver.phone]
    assert leaver_final["delivered"] == sent_to[leaver.phone]
