"""Who hears about an incident, and what the message says."""

from __future__ import annotations

from schemas.events import Announce, Channel, Incident, Proximity, Signal
from stream_processors.correlation import AreaState, Correlator
from stream_processors.fanout import desk_job, plan_deliveries
from stream_processors.render import render_text
from stream_processors.rules import load_rules
from tests.factories import T0, report, subscriber, warning

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


def test_message_is_indonesian_first_then_english_with_wita_time_and_source() -> None:
    text = render_text(opened())
    indonesian, english = text.split("\n")
    assert indonesian.startswith("[KENTONGAN] PERINGATAN WASPADA hujan lebat disertai petir")
    assert "Kel. Ampenan Selatan, Kec. Ampenan" in indonesian
    assert "s/d 27 Nov 16:35 WITA" in indonesian
    assert "Sumber: BMKG" in indonesian
    assert english.startswith("WARNING WASPADA: thunderstorm")
    assert "until 27 Nov 16:35 WITA" in english


def test_all_clear_has_no_until_time() -> None:
    text = render_text(opened(), Announce.ALL_CLEAR)
    assert text.startswith("[KENTONGAN] SELESAI") and "s/d" not in text


def test_a_warning_over_the_neighbouring_desa_does_not_ring_phones() -> None:
    versions = fold(warning(proximity=Proximity.ADJACENT))
    assert versions[0].announce is None
    people = [subscriber("s1", "+6281200000001", [AMPENAN_SELATAN])]
    assert plan_deliveries(versions[0], people, T0) == []
