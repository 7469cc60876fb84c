"""Who hears about an incident, and what the message says."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode
from schemas.events import (
    Announce,
    Change,
    Channel,
    DeliveryJob,
    Incident,
    IncidentStatus,
    Level,
    Proximity,
    Signal,
)
from stream_processors.correlation import AreaState, Correlator
from stream_processors.fanout import JobEncoder, desk_job, expand, plan_deliveries, texts_for
from stream_processors.render import sms_text
from stream_processors.rules import load_rules
from tests.factories import T0, incident, report, subscriber, warning

AMPENAN_SELATAN = "52.71.01.1004"


def fold(*signals: Signal) -> list[Incident]:
    correlator, state, versions = Correlator(load_rules()), AreaState(), list[Incident]()
    for signal in signals:
        versions += correlator.on_signal(state, signal, signal.effective)
    return versions


def opened() -> Incident:
    return fold(warning())[0]


def test_every_active_subscriber_of_the_kelurahan_gets_one_sms() -> None:
    people = [
        subscriber("s1", "+6281200000001", [AMPENAN_SELATAN]),
        subscriber("s2", "+6281200000002", ["52.71.01.1005", AMPENAN_SELATAN]),
        subscriber("s3", "+6281200000003", ["52.71.03.1005"]),
        subscriber("s4", "+6281200000004", [AMPENAN_SELATAN], active=False),
        # The same phone registered twice still gets one message.
        subscriber("s5", "+6281200000001", [AMPENAN_SELATAN]),
    ]
    jobs = plan_deliveries(opened(), people, T0)
    assert sorted(j.recipient for j in jobs) == ["+6281200000001", "+6281200000002"]
    assert {j.channel for j in jobs} == {Channel.SMS}
    assert all(j.job_key.endswith(f"/{j.recipient}/sms") and "/1/" in j.job_key for j in jobs)


def test_job_keys_are_stable_so_a_replay_plans_the_same_jobs() -> None:
    people = [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])]
    incident = opened()
    first = plan_deliveries(incident, people, T0)
    again = plan_deliveries(incident, people, T0)
    assert [j.job_key for j in first] == [j.job_key for j in again]


def test_routine_updates_do_not_ring_phones_but_reach_the_desk() -> None:
    updated = fold(warning(), report("a"))[-1]
    assert updated.change.value == "updated" and updated.announce is None
    assert plan_deliveries(updated, [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])],
                           T0) == []
    desk = desk_job(updated, T0)
    assert desk.recipient == "callcentre" and desk.channel is Channel.CALLCENTRE
    assert "Ampenan Selatan" in desk.text and desk.job_key.endswith("/2/callcentre/callcentre")


def test_reports_alone_do_not_broadcast_to_citizens() -> None:
    versions = fold(report("a"), report("b"), report("c"))
    assert [v.change.value for v in versions] == ["opened"] and not versions[0].verified
    assert plan_deliveries(versions[0], [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])],
                           T0) == []


def test_message_is_in_the_subscribers_language_with_wita_time_and_source() -> None:
    indonesian = sms_text(opened(), "id")
    assert indonesian.startswith("PERINGATAN WASPADA: hujan lebat & petir di Kel. Ampenan "
                                 "Selatan s/d 27 Nov 16:35 WITA.")
    assert "Sumber: BMKG" in indonesian and indonesian.endswith("BERHENTI")
    english = sms_text(opened(), "en")
    assert english.startswith("ALERT WASPADA 1/3: thunderstorm in Kel. Ampenan Selatan until "
                              "27 Nov 16:35 WITA.")
    # With room for three parts, the other language follows the subscriber's own.
    both = sms_text(opened(), "en", max_parts=3).split("\n")
    assert both[0].startswith("ALERT") and both[1].startswith("PERINGATAN")


def test_all_clear_has_no_until_time() -> None:
    text = sms_text(opened(), "id", announce=Announce.ALL_CLEAR)
    assert text.startswith("SELESAI") and "s/d" not in text and "sudah berakhir" in text


def test_a_warning_over_the_neighbouring_desa_does_not_ring_phones() -> None:
    versions = fold(warning(proximity=Proximity.ADJACENT))
    assert versions[0].announce is None
    people = [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])]
    assert plan_deliveries(versions[0], people, T0) == []


# --- the planner's fast path ----------------------------------------------------------------

NOW = datetime(2026, 11, 27, 6, 40, 12, 345678, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(sid=st.text(min_size=1, max_size=40), token=st.text(min_size=1, max_size=60),
       phone=st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"), language=st.sampled_from(["id", "en"]))
def test_an_encoded_job_is_exactly_the_delivery_job_pydantic_would_write(
    sid: str, token: str, phone: str, language: str
) -> None:
    version = incident(level=Level.AWAS)
    texts = texts_for(version)
    encoder = JobEncoder(version, texts, NOW)
    for channel, recipient in ((Channel.SMS, phone), (Channel.PUSH, token)):
        job = encoder.encode(sid, language == "en", channel.value, recipient.encode())
        expected = DeliveryJob(
            job_key=f"{version.incident_id}/1/{recipient}/{channel.value}",
            incident_id=version.incident_id, version=1, channel=channel, recipient=recipient,
            subscriber_id=sid, area_code=version.area_code, language=language,
            text=texts[("en" if language == "en" else "id", channel)], created_at=NOW,
            level=Level.AWAS)
        assert decode(DeliveryJob, job.value) == expected
        assert job.value == expected.model_dump_json().encode()
        assert job.key == recipient.encode() and job.channel == channel.value


def test_jobs_come_in_chunks_one_per_recipient_and_channel() -> None:
    version = incident()
    encoder = JobEncoder(version, texts_for(version), NOW)
    people = [(f"s{n}", b"1|id|%s|+62812000%05d|%s" % (b"sp" if n % 3 == 0 else b"s", n % 900,
                                                       b"t%d" % n if n % 3 == 0 else b""))
              for n in range(1000)]
    chunks = list(expand(encoder, people, chunk_size=128))
    jobs = [job for chunk in chunks for job in chunk]
    assert all(len(chunk) <= 128 for chunk in chunks) and len(chunks) >= len(jobs) // 128
    # 900 distinct phones (the other 100 share one), 334 tokens: one job each.
    assert sum(job.channel == "sms" for job in jobs) == 900
    assert sum(job.channel == "push" for job in jobs) == 334
    assert len({decode(DeliveryJob, job.value).job_key for job in jobs}) == len(jobs)
    # The inlined SMS path writes what the reference encoder writes.
    for job in jobs:
        assert job == encoder.encode(job.subscriber_id, False, job.channel, job.key)


def test_each_job_carries_its_subscribers_language() -> None:
    people = [subscriber("s-id", "+6281200000001", [AMPENAN_SELATAN]),
              subscriber("s-en", "+6281200000002", [AMPENAN_SELATAN], language="en")]
    jobs = {job.subscriber_id: job for job in plan_deliveries(opened(), people, T0)}
    assert jobs["s-id"].language == "id" and jobs["s-id"].text.startswith("PERINGATAN")
    assert jobs["s-en"].language == "en" and jobs["s-en"].text.startswith("ALERT")


def test_the_all_clear_reaches_only_people_warned_before() -> None:
    over = incident(announce=Announce.ALL_CLEAR, status=IncidentStatus.RESOLVED,
                    change=Change.RESOLVED, version=3)
    people = [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])]
    assert plan_deliveries(over, people, T0, announced_at_ms=None) == []
    [job] = plan_deliveries(over, people, T0, announced_at_ms=10)
    assert job.text.startswith("SELESAI") and job.job_key.endswith("/3/+6281200000001/sms")
