"""Who hears about an incident, and what the message says."""

from __future__ import annotations

from schemas.events import Channel, Incident, IncidentStatus, Proximity
from stream_processors.correlation import AreaState, apply
from stream_processors.fanout import plan_deliveries
from stream_processors.render import render_text
from tests.factories import T0, report, subscriber, warning

AMPENAN_SELATAN = "52.71.01.1004"


def opened() -> Incident:
    _, versions = apply(AreaState(), warning(), T0)
    return versions[0]


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


def test_routine_updates_do_not_ring_phones() -> None:
    state, _ = apply(AreaState(), warning(), T0)
    _, updated = apply(state, report("a"), T0)
    assert updated[0].status is IncidentStatus.UPDATED
    assert plan_deliveries(updated[0], [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])],
                           T0) == []


def test_a_report_alone_does_not_broadcast_to_citizens() -> None:
    _, versions = apply(AreaState(), report("a"), T0)
    assert versions[0].status is IncidentStatus.OPENED
    assert plan_deliveries(versions[0], [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])],
                           T0) == []


def test_message_is_indonesian_first_then_english_with_wita_time_and_source() -> None:
    text = render_text(opened())
    indonesian, english = text.split("\n")
    assert indonesian.startswith("[KENTONGAN] PERINGATAN hujan lebat disertai petir")
    assert "Kel. Ampenan Selatan, Kec. Ampenan" in indonesian
    assert "s/d 27 Nov 16:35 WITA" in indonesian
    assert "Sumber: BMKG" in indonesian
    assert english.startswith("WARNING: thunderstorm") and "until 27 Nov 16:35 WITA" in english


def test_all_clear_has_no_until_time() -> None:
    resolved = opened().model_copy(update={"status": IncidentStatus.RESOLVED, "version": 2})
    text = render_text(resolved)
    assert text.startswith("[KENTONGAN] SELESAI") and "s/d" not in text


def test_a_warning_over_the_neighbouring_desa_does_not_ring_phones() -> None:
    _, versions = apply(AreaState(), warning(proximity=Proximity.ADJACENT), T0)
    people = [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])]
    assert plan_deliveries(versions[0], people, T0) == []
