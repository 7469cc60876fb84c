"""Fan-out planning in the real worker (``kentongan worker``) on a real broker.

Incident versions are published straight onto ``incidents`` (the correlator is not what is
under test here): each version must reach exactly the current subscribers of its kelurahan,
once each, in their language; the all-clear only those who were warned and still subscribe;
an unsubscribed person nothing; the 112 desk every version; a version seen twice is planned
once; and a restarted worker must still know everyone (its audience table is recovered from
the changelog)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deploy.readiness import records_on
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import (
    Announce,
    Change,
    Channel,
    DeliveryJob,
    Incident,
    IncidentStatus,
    Level,
    Subscriber,
)
from schemas.settings import Settings
from schemas.topics import (
    ALERTS_CALLCENTRE,
    ALERTS_PUSH,
    ALERTS_SMS,
    INCIDENTS,
    SUBSCRIBERS,
    TopicSpec,
)
from stream_processors.planning import directory_changelog
from tests.factories import T0, incident
from tests.kafka_helpers import read_topic, wait_for, wait_while_running
from tests.test_end_to_end import Pipeline, pipeline  # noqa: F401  (the fixture)

pytestmark = pytest.mark.kafka

AMPENAN_SELATAN, CAKRA_SELATAN = "52.71.01.1004", "52.71.03.1005"
CAKRA = {"area_code": CAKRA_SELATAN, "area_name": "Cakranegara Selatan",
         "kecamatan_code": "52.71.03", "kecamatan_name": "Cakranegara"}


def person(sid: str, n: int, areas: list[str], **changes: object) -> Subscriber:
    return Subscriber.model_validate({"subscriber_id": sid, "phone": f"+62812000000{n:02d}",
                                      "areas": areas, **changes})


PEOPLE = [
    person("ani", 1, [AMPENAN_SELATAN]),
    person("bob", 2, [AMPENAN_SELATAN], language="en", channels=["sms", "push"],
           push_token="fcm-bob"),
    person("cici", 3, [CAKRA_SELATAN]),
    person("dedi", 4, [AMPENAN_SELATAN], active=False),  # sent BERHENTI
    person("eka", 5, [AMPENAN_SELATAN, CAKRA_SELATAN]),
]
MEMBERSHIPS = 5  # ani, bob, eka x2, cici


def jobs(running: Pipeline, spec: TopicSpec, count: int,
         timeout_s: float = 60) -> list[DeliveryJob]:
    env = running.env
    name = spec.full_name(env["KENTONGAN_TOPIC_PREFIX"])
    records = read_topic(env["KAFKA_BOOTSTRAP"], name, partitions=spec.partitions,
                         min_count=count, timeout_s=timeout_s)
    return [decode(DeliveryJob, r.value) for r in records]


def settle(running: Pipeline, spec: TopicSpec, count: int) -> list[DeliveryJob]:
    """Wait until ``count`` jobs are there, then a little longer: no more may come."""
    jobs(running, spec, count)
    wait_for(lambda: False, timeout_s=3)
    return jobs(running, spec, 0, timeout_s=3)


def of(found: list[DeliveryJob], incident_id: str, version: int) -> list[tuple[str, str]]:
    return sorted((j.recipient, j.language) for j in found
                  if j.incident_id == incident_id and j.version == version)


def test_the_worker_plans_by_kelurahan_warns_members_and_clears_only_the_warned(
    pipeline: Pipeline,  # noqa: F811
) -> None:
    env = pipeline.env
    bootstrap, prefix = env["KAFKA_BOOTSTRAP"], env["KENTONGAN_TOPIC_PREFIX"]
    changelog = directory_changelog(Settings(topic_prefix=prefix))

    def wait_for_memberships(count: int) -> None:
        wait_while_running(lambda: records_on(bootstrap, changelog) >= count,
                           pipeline.processes, pipeline.logs, timeout_s=120)

    warning = incident(level=Level.AWAS, announce=Announce.WARNING)
    inc = warning.incident_id
    with Publisher(bootstrap, prefix=prefix) as publisher:
        for p in PEOPLE:
            publisher.send(SUBSCRIBERS, p.subscriber_id, p)
        publisher.flush()
        pipeline.start("worker", log="worker")
        wait_for_memberships(MEMBERSHIPS)

        publisher.send(INCIDENTS, inc, warning)
        publisher.flush()
        sms = settle(pipeline, ALERTS_SMS, 3)
        assert of(sms, inc, 1) == [("+6281200000001", "id"), ("+6281200000002", "en"),
                                   ("+6281200000005", "id")]
        texts = {j.recipient: j.text for j in sms}
        assert texts["+6281200000001"].startswith("PERINGATAN AWAS")
        assert texts["+6281200000002"].startswith("ALERT AWAS")
        assert all(j.level is Level.AWAS and j.area_code == AMPENAN_SELATAN for j in sms)
        [push] = settle(pipeline, ALERTS_PUSH, 1)
        assert (push.recipient, push.channel, push.language) == ("fcm-bob", Channel.PUSH, "en")
        [desk] = jobs(pipeline, ALERTS_CALLCENTRE, 1)
        assert (desk.recipient, desk.version) == ("callcentre", 1)

        # The same version again (a correlator replay, a redelivery): nothing is planned twice.
        publisher.send(INCIDENTS, inc, warning)
        publisher.flush()
        assert len(settle(pipeline, ALERTS_SMS, 3)) == 3
        assert len(jobs(pipeline, ALERTS_CALLCENTRE, 1)) == 1

        # Ani unsubscribes through the app (a tombstone); Gita subscribes after the warning.
        publisher.send(SUBSCRIBERS, "ani", None)
        gita = person("gita", 7, [AMPENAN_SELATAN])
        publisher.send(SUBSCRIBERS, gita.subscriber_id, gita)
        publisher.flush()
        wait_for_memberships(MEMBERSHIPS + 2)  # ani's tombstone, gita's entry

        later = T0 + timedelta(hours=1)
        routine = incident(level=Level.AWAS, announce=None, change=Change.UPDATED, version=2,
                           updated_at=later)
        over = incident(level=Level.AWAS, announce=Announce.ALL_CLEAR, version=3,
                        change=Change.RESOLVED, status=IncidentStatus.RESOLVED,
                        updated_at=later)
        publisher.send(INCIDENTS, inc, routine)
        publisher.send(INCIDENTS, inc, over)
        publisher.flush()
        desk_jobs = jobs(pipeline, ALERTS_CALLCENTRE, 3)
        assert sorted(j.version for j in desk_jobs) == [1, 2, 3]
        sms = settle(pipeline, ALERTS_SMS, 5)
        assert of(sms, inc, 2) == []  # a routine update rings no phone
        # Bob and Eka were warned and still subscribe; Ani left; Gita was never warned.
        assert of(sms, inc, 3) == [("+6281200000002", "en"), ("+6281200000005", "id")]
        assert all(j.text.startswith(("SELESAI", "ALL CLEAR")) for j in sms if j.version == 3)
        assert len(sms) == 5

        # A restarted worker still knows who lives where: its table comes from the changelog.
        worker = pipeline.processes.pop()
        worker.terminate()
        worker.wait(timeout=60)
        pipeline.start("worker", log="worker-restarted")
        elsewhere = incident(incident_id=f"INC-{CAKRA_SELATAN}-hydromet-20261127T0735Z-1",
                             level=Level.SIAGA, **CAKRA)
        publisher.send(INCIDENTS, elsewhere.incident_id, elsewhere)
        publisher.flush()
    sms = settle(pipeline, ALERTS_SMS, 7)
    assert of(sms, elsewhere.incident_id, 1) == [("+6281200000003", "id"),
                                                 ("+6281200000005", "id")]
    assert len(sms) == 7
    assert all(decode(Incident, i.value).incident_id for i in read_topic(
        bootstrap, INCIDENTS.full_name(prefix), partitions=INCIDENTS.partitions, min_count=4))
