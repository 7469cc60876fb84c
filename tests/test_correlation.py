"""Incident rules, signal by signal, without Kafka."""

from __future__ import annotations

from datetime import timedelta

from schemas.events import (
    Hazard,
    Incident,
    IncidentStatus,
    MsgType,
    Proximity,
    Severity,
    Signal,
)
from stream_processors.correlation import AreaState, apply
from tests.factories import T0, report, warning


def fold(*signals: Signal) -> tuple[AreaState, list[Incident]]:
    state, published = AreaState(), list[Incident]()
    for signal in signals:
        state, versions = apply(state, signal, signal.effective)
        published.extend(versions)
    return state, published


def test_a_bmkg_warning_opens_an_incident_for_its_kelurahan() -> None:
    _, published = fold(warning())
    assert [(i.status, i.version, i.area_code) for i in published] == [
        (IncidentStatus.OPENED, 1, "52.71.01.1004")
    ]
    assert published[0].attribution == "Sumber: BMKG"


def test_a_replayed_signal_changes_nothing() -> None:
    signal = warning()
    _, published = fold(signal, signal)
    assert len(published) == 1


def test_two_reports_from_distinct_reporters_escalate_a_warned_incident() -> None:
    _, published = fold(warning(), report("a"), report("b", at=T0 + timedelta(minutes=30)))
    assert [i.status for i in published] == [
        IncidentStatus.OPENED, IncidentStatus.UPDATED, IncidentStatus.ESCALATED,
    ]
    assert published[-1].severity is Severity.SEVERE
    assert published[-1].version == 3


def test_the_same_reporter_twice_does_not_escalate() -> None:
    _, published = fold(warning(), report("a"), report("a", at=T0 + timedelta(minutes=40)))
    assert [i.status for i in published][-1] is IncidentStatus.UPDATED
    assert published[-1].severity is Severity.MODERATE


def test_escalation_by_reporters_happens_once() -> None:
    later = [report(r, at=T0 + timedelta(minutes=20 + n)) for n, r in enumerate("abcd")]
    _, published = fold(warning(), *later)
    assert [i.status for i in published].count(IncidentStatus.ESCALATED) == 1


def test_a_more_severe_warning_escalates() -> None:
    stronger = warning(signal_id="second", severity=Severity.SEVERE,
                       effective=T0 + timedelta(minutes=30))
    _, published = fold(warning(), stronger)
    assert published[-1].status is IncidentStatus.ESCALATED
    assert published[-1].severity is Severity.SEVERE


def test_cancel_resolves_and_a_later_warning_opens_a_new_incident() -> None:
    cancel = warning(signal_id="cancel", msg_type=MsgType.CANCEL,
                     effective=T0 + timedelta(minutes=10))
    again = warning(signal_id="again", effective=T0 + timedelta(minutes=50))
    _, published = fold(warning(), cancel, again)
    assert [i.status for i in published] == [
        IncidentStatus.OPENED, IncidentStatus.RESOLVED, IncidentStatus.OPENED,
    ]
    assert published[0].incident_id == published[1].incident_id != published[2].incident_id


def test_a_signal_after_expiry_closes_the_old_incident_first() -> None:
    late = warning(signal_id="late", effective=T0 + timedelta(hours=3))
    _, published = fold(warning(), late)
    assert [i.status for i in published] == [
        IncidentStatus.OPENED, IncidentStatus.EXPIRED, IncidentStatus.OPENED,
    ]


def test_unrelated_hazards_are_separate_incidents() -> None:
    _, published = fold(warning(), report("a", hazard=Hazard.FIRE))
    assert len({i.incident_id for i in published}) == 2


def test_a_cancel_for_nothing_open_is_ignored() -> None:
    _, published = fold(warning(msg_type=MsgType.CANCEL))
    assert published == []


def test_a_warning_next_door_becomes_inside_when_it_crosses_the_border() -> None:
    nearby = warning(signal_id="near", proximity=Proximity.ADJACENT)
    inside = warning(signal_id="in", effective=T0 + timedelta(minutes=30))
    _, published = fold(nearby, inside)
    assert [(i.status, i.proximity) for i in published] == [
        (IncidentStatus.OPENED, Proximity.ADJACENT),
        (IncidentStatus.ESCALATED, Proximity.INSIDE),
    ]
