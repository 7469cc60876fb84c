"""Fan-out planning in the worker, partitioned by kelurahan. A thin shell over ``audience`` and
``fanout``; ``create_app`` adds :func:`stages` to its wiring.

    subscribers ─ route-subscribers ─> subscribers.by-area     (table subscriber-areas: id -> areas)
    subscribers.by-area ─ index-audience                       (table audience: area -> members)
    incidents ─ route-incidents ─> incidents.by-area
    incidents.by-area ─ plan-fanout ─> alerts.callcentre (every version), alerts.sms/.push
                                                               (table announced: incident -> when)

The planner's inputs are co-partitioned by area, so the worker that plans a kelurahan's
incidents holds that kelurahan's members, and faust recovers the ``audience`` table from its
changelog before the planner reads an incident. Planning costs the kelurahan's audience only,
and hands jobs over ``plan_chunk`` at a time, yielding to the loop in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

import faust

from schemas.codec import decode, encode
from schemas.events import Incident, Subscriber, utc_now
from schemas.geography import load_geography
from schemas.settings import Settings
from schemas.topics import (
    ANNOUNCED_CHANGELOG,
    AUDIENCE_CHANGELOG,
    INCIDENTS,
    INCIDENTS_BY_AREA,
    SUBSCRIBER_AREAS_CHANGELOG,
    SUBSCRIBERS,
    SUBSCRIBERS_BY_AREA,
    WORKER_APP_ID,
    TopicSpec,
)
from stream_processors import metrics
from stream_processors.audience import (
    AreaIndex,
    Planned,
    already_planned,
    indexed_value,
    member_key,
    planned_after,
    rekey,
    split_member_key,
    unpack_member,
)
from stream_processors.fanout import desk_job, plan_version
from stream_processors.partitions import partition_of
from stream_processors.table_store import InternedValues, add_table

log = logging.getLogger(__name__)
Event = faust.EventT[bytes]
Handler = Callable[[Event], Awaitable[None]]
Stage = tuple[faust.TopicT, str, Handler]

# Table names: their changelogs are declared in schemas/topics.py (tests check they agree).
SUBSCRIBER_AREAS_TABLE = "subscriber-areas"
AUDIENCE_TABLE = "audience"
ANNOUNCED_TABLE = "announced"
TABLE_CHANGELOGS = {SUBSCRIBER_AREAS_TABLE: SUBSCRIBER_AREAS_CHANGELOG,
                    AUDIENCE_TABLE: AUDIENCE_CHANGELOG, ANNOUNCED_TABLE: ANNOUNCED_CHANGELOG}


def directory_changelog(settings: Settings) -> str:
    """The changelog of the planner's members: its size says how many kelurahan memberships a
    starting worker already knows (the demo and the tests wait on it)."""
    return f"{settings.topic_prefix}{settings.app_id}-{AUDIENCE_TABLE}-changelog"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def stages(app: faust.App, settings: Settings, topic: Callable[[TopicSpec], faust.TopicT],
           alerts: Mapping[str, faust.TopicT]) -> list[Stage]:
    """Declare the planning tables; return (source topic, stage name, handler) for each agent."""
    kelurahan = load_geography().kelurahan
    by_area, incidents_by_area = topic(SUBSCRIBERS_BY_AREA), topic(INCIDENTS_BY_AREA)
    area_partitions = SUBSCRIBERS_BY_AREA.partitions

    def area_partition(area: str) -> int:
        return partition_of(area, area_partitions)

    # The areas each subscriber is in, so a change or an unsubscribe can tombstone the old ones.
    if settings.app_id != WORKER_APP_ID:
        log.warning("app id %r: the planner's changelogs are not in the topic catalogue; faust "
                    "creates them at start", settings.app_id)
    where = add_table(app, SUBSCRIBER_AREAS_TABLE, SUBSCRIBERS.partitions, InternedValues())
    index = AreaIndex()

    def forget_areas(active: set[int]) -> None:
        index.drop_areas({a for a in index.areas() if area_partition(a) in active})

    members = add_table(app, AUDIENCE_TABLE, area_partitions, index,
                        key_partition=lambda key: area_partition(split_member_key(key)[0]),
                        forget=forget_areas)
    # Per open incident: the last version planned (a redelivered one is not planned twice) and
    # when its last announced version was planned (the all-clear goes to the members of then).
    announced = app.Table(ANNOUNCED_TABLE, partitions=area_partitions, key_type=bytes,
                          value_type=bytes)

    async def route_subscribers(event: Event) -> None:
        key, value = event.message.key, event.message.value
        if key is None:
            raise ValueError("subscriber record without a key")
        subscriber_id = key.decode()
        subscriber = None if value is None else decode(Subscriber, value)
        if subscriber is not None and subscriber.subscriber_id != subscriber_id:
            raise ValueError(f"key {subscriber_id!r} names another subscriber than the record")
        previous = where.get(key)
        plan = rekey(previous.decode().split(",") if previous else [], subscriber, kelurahan)
        for area in plan.removed:
            await by_area.send(key=member_key(area, subscriber_id), value=None,
                               partition=area_partition(area))
        for area, packed in plan.members:
            await by_area.send(key=member_key(area, subscriber_id), value=packed,
                               partition=area_partition(area))
        areas = ",".join(plan.areas).encode()
        if plan.areas and areas != previous:  # unchanged areas: no changelog write
            where[key] = areas
        elif not plan.areas and previous is not None:
            del where[key]

    async def index_audience(event: Event) -> None:
        key, value = event.message.key, event.message.value
        if key is None:
            raise ValueError("member record without a key")
        area, subscriber_id = split_member_key(key)
        if value is None:  # left the kelurahan or unsubscribed: forgotten at once
            if index.has(area, subscriber_id):
                del members[key]
            return
        unpack_member(subscriber_id, value)  # refuse what the planner could not read later
        old = index.get(key)
        new = indexed_value(value, old, _now_ms())
        if new != old:  # a re-sent DAFTAR or re-import changes nothing: no changelog write
            members[key] = new

    async def route_incidents(event: Event) -> None:
        if event.message.value is None:
            return  # a compaction tombstone on incidents: nothing to plan
        incident = decode(Incident, event.message.value)
        await incidents_by_area.send(key=incident.area_code.encode(), value=event.message.value,
                                     partition=area_partition(incident.area_code))

    async def plan(event: Event) -> None:
        incident = decode(Incident, event.message.value)
        now = utc_now()
        incident_key = incident.incident_id.encode()
        stored = announced.get(incident_key)
        before = Planned.load(stored)
        if already_planned(incident, before):
            log.info("%s v%d was planned already: not again", incident.incident_id,
                     incident.version)
            return
        desk = desk_job(incident, now)
        metrics.JOBS.labels(channel=desk.channel.value).inc()
        await alerts[desk.channel.value].send(key=desk.recipient.encode(), value=encode(desk))
        area = incident.area_code
        started = time.perf_counter()
        planned_at = _now_ms()  # the snapshot: who is a member now hears this version
        planned = 0
        announced_at = before.announced_at_ms if before is not None else None
        for chunk in plan_version(incident, index, announced_at, now,
                                  sms_parts=settings.sms_max_parts,
                                  chunk_size=settings.plan_chunk):
            sent: Counter[str] = Counter()
            for job in chunk:
                if not index.has(area, job.subscriber_id):
                    continue  # unsubscribed while this version was being handed over
                await alerts[job.channel].send(key=job.key, value=job.value)
                sent[job.channel] += 1
            for channel, count in sent.items():
                metrics.JOBS.labels(channel=channel).inc(count)
            planned += sent.total()
            await asyncio.sleep(0)  # let the loop run between chunks
        if planned:
            log.info("planned %s v%d for %s: %d jobs in %.0f ms", incident.incident_id,
                     incident.version, area, planned, (time.perf_counter() - started) * 1e3)
        # Recorded once every job is on Kafka: a crash before this plans the version again, and
        # a record that says "planned" never covers a job still in the producer's memory.
        await app.producer.flush()
        after = planned_after(incident, planned_at, before)
        if after is None:
            if stored is not None:
                del announced[incident_key]
        else:
            announced[incident_key] = after.dump()

    return [
        (topic(SUBSCRIBERS), "route-subscribers", route_subscribers),
        (by_area, "index-audience", index_audience),
        (topic(INCIDENTS), "route-incidents", route_incidents),
        (incidents_by_area, "plan-fanout", plan),
    ]
