"""Who is in a kelurahan's audience, kept compact and by area, and who hears which version."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import Announce, Change, Channel, IncidentStatus, Subscriber
from stream_processors.audience import (
    AreaIndex,
    Member,
    Planned,
    already_planned,
    audience,
    indexed_value,
    member_key,
    pack_member,
    planned_after,
    rekey,
    split_member_key,
    unpack_member,
    with_since,
)
from tests.factories import incident, subscriber

AMPENAN_SELATAN, AMPENAN_TENGAH, CAKRA = "52.71.01.1004", "52.71.01.1005", "52.71.03.1005"
KNOWN = {AMPENAN_SELATAN, AMPENAN_TENGAH, CAKRA}


def person(sid: str = "s1", areas: list[str] | None = None, **changes: Any) -> Subscriber:
    return subscriber(sid, "+6281200000001", areas or [AMPENAN_SELATAN], **changes)


def test_a_member_packs_to_a_short_line_and_back() -> None:
    push = person(channels=[Channel.SMS, Channel.PUSH], push_token="tok|en:1", language="en")
    value = pack_member(push)
    assert value == b"|en|sp|+6281200000001|tok|en:1"
    assert unpack_member("s1", with_since(value, 1234)) == Member(
        "s1", "en", "+6281200000001", "tok|en:1", 1234)
    # Push chosen but no token yet: only SMS is reachable.
    assert unpack_member("s1", pack_member(person(channels=[Channel.SMS, Channel.PUSH]))) == (
        Member("s1", "id", "+6281200000001", None, None))


@pytest.mark.parametrize("value", [b"nonsense", b"|xx|s|+6281200000001|", b"|id|s|0812 3|",
                                   b"12a|id|s|+6281200000001|", b"\xff|id|s||"])
def test_the_index_refuses_values_the_planner_could_not_read(value: bytes) -> None:
    with pytest.raises(ValueError):
        unpack_member("s1", value)


def test_since_survives_an_update_so_the_all_clear_still_finds_the_person() -> None:
    first = indexed_value(pack_member(person()), None, now_ms=1000)
    again = indexed_value(pack_member(person(language="en")), first, now_ms=5000)
    assert unpack_member("s1", again).since_ms == 1000
    assert unpack_member("s1", again).language == "en"


def test_a_new_subscriber_joins_each_of_their_kelurahan() -> None:
    plan = rekey([], person(areas=[CAKRA, AMPENAN_SELATAN, CAKRA]), KNOWN)
    assert plan.removed == []
    assert [area for area, _ in plan.members] == [AMPENAN_SELATAN, CAKRA]
    assert plan.areas == [AMPENAN_SELATAN, CAKRA]


def test_moving_kelurahan_leaves_the_old_one() -> None:
    plan = rekey([AMPENAN_SELATAN, CAKRA], person(areas=[CAKRA, AMPENAN_TENGAH]), KNOWN)
    assert plan.removed == [AMPENAN_SELATAN]
    assert [area for area, _ in plan.members] == [AMPENAN_TENGAH, CAKRA]


@pytest.mark.parametrize("record", [
    None,  # a tombstone (DELETE /subscribers/{id})
    person(active=False),  # BERHENTI
    person(channels=[Channel.PUSH]),  # push without a token: nobody to reach
], ids=["tombstone", "inactive", "unreachable"])
def test_an_unsubscribe_leaves_every_kelurahan_at_once(record: Subscriber | None) -> None:
    plan = rekey([AMPENAN_SELATAN, CAKRA], record, KNOWN)
    assert plan.removed == [AMPENAN_SELATAN, CAKRA] and plan.members == [] and plan.forgotten


def test_an_unknown_kelurahan_is_refused_with_the_code() -> None:
    with pytest.raises(ValueError, match=r"52\.71\.09\.9999"):
        rekey([], person(areas=[AMPENAN_SELATAN, "52.71.09.9999"]), KNOWN)


def test_the_index_holds_each_area_apart_and_forgets_at_once() -> None:
    index = AreaIndex()
    for n in range(5):
        index[member_key(AMPENAN_SELATAN, f"a{n}")] = with_since(pack_member(person(f"a{n}")), n)
    index[member_key(CAKRA, "c0")] = with_since(pack_member(person("c0", [CAKRA])), 9)
    assert len(index) == 6 and index.count(AMPENAN_SELATAN) == 5
    assert sorted(sid for sid, _ in index.members(CAKRA)) == ["c0"]
    assert sorted(index) == sorted([member_key(AMPENAN_SELATAN, f"a{n}") for n in range(5)]
                                   + [member_key(CAKRA, "c0")])
    del index[member_key(CAKRA, "c0")]
    assert not index.has(CAKRA, "c0") and index.members(CAKRA) == [] and len(index) == 5
    assert index.get(member_key(CAKRA, "c0")) is None


def test_a_snapshot_is_not_disturbed_by_later_changes() -> None:
    index = AreaIndex()
    index[member_key(AMPENAN_SELATAN, "a")] = with_since(pack_member(person("a")), 1)
    snapshot = index.members(AMPENAN_SELATAN)
    index[member_key(AMPENAN_SELATAN, "b")] = with_since(pack_member(person("b")), 2)
    del index[member_key(AMPENAN_SELATAN, "a")]
    assert [sid for sid, _ in snapshot] == ["a"]


def test_a_worker_forgets_the_areas_of_partitions_it_lost() -> None:
    index = AreaIndex()
    index[member_key(AMPENAN_SELATAN, "a")] = with_since(pack_member(person("a")), 1)
    index[member_key(CAKRA, "c")] = with_since(pack_member(person("c", [CAKRA])), 1)
    assert index.drop_areas({CAKRA}) == 1
    assert index.areas() == [CAKRA] and len(index) == 1


@pytest.mark.parametrize("key", [b"no-separator", b"|sid", b"52.71.01.1004|"])
def test_keys_that_are_not_area_and_id_are_refused(key: bytes) -> None:
    with pytest.raises(ValueError):
        split_member_key(key)


def test_planning_reads_the_incidents_kelurahan_only() -> None:
    """The cost is the kelurahan's, not the city's: every other area's values are unreadable
    here, and planning still succeeds, so it never read them."""
    index = AreaIndex()
    for n in range(3):
        index[member_key(AMPENAN_SELATAN, f"a{n}")] = with_since(pack_member(person(f"a{n}")), 1)
    for n in range(1000):
        index[member_key(CAKRA if n % 2 else AMPENAN_TENGAH, f"x{n}")] = b"unreadable"
    chosen = [unpack_member(sid, value) for sid, value in
              audience(incident(), index.members(AMPENAN_SELATAN), None)]
    assert sorted(m.subscriber_id for m in chosen) == ["a0", "a1", "a2"]


def members(*since: int) -> list[tuple[str, bytes]]:
    return [(f"s{n}", with_since(pack_member(person(f"s{n}")), at)) for n, at in enumerate(since)]


def test_warnings_and_changes_of_level_go_to_every_current_member() -> None:
    for announce in (Announce.WARNING, Announce.RAISED, Announce.LOWERED):
        chosen = audience(incident(announce=announce), members(10, 20, 30), announced_at_ms=15)
        assert [sid for sid, _ in chosen] == ["s0", "s1", "s2"]


def test_a_version_that_announces_nothing_costs_nothing() -> None:
    def exploding() -> Any:
        raise AssertionError("the members were read")
        yield

    assert list(audience(incident(announce=None), exploding(), 10)) == []


def test_the_all_clear_goes_only_to_those_who_were_members_when_warned() -> None:
    all_clear = incident(announce=Announce.ALL_CLEAR, status=IncidentStatus.RESOLVED,
                         change=Change.RESOLVED)
    chosen = audience(all_clear, members(10, 20, 21, 30), announced_at_ms=20)
    assert [sid for sid, _ in chosen] == ["s0", "s1"]
    # Never warned (nothing was announced to anyone): nobody is told it is over.
    assert list(audience(all_clear, members(10), announced_at_ms=None)) == []


def test_the_planner_remembers_the_last_version_and_when_it_last_announced() -> None:
    first = planned_after(incident(announce=Announce.WARNING), 100, None)
    assert first == Planned(1, 100)
    raised = planned_after(incident(announce=Announce.RAISED, version=2), 200, first)
    assert raised == Planned(2, 200)
    quiet = planned_after(incident(announce=None, change=Change.UPDATED, version=3), 300, raised)
    assert quiet == Planned(3, 200)  # nothing announced: the all-clear audience stays v2's
    assert Planned.load(quiet.dump()) == quiet and Planned.load(Planned(1, None).dump()) == (
        Planned(1, None))
    assert planned_after(incident(announce=Announce.ALL_CLEAR, version=4,
                                  status=IncidentStatus.RESOLVED), 400, quiet) is None


def test_a_redelivered_version_is_not_planned_twice() -> None:
    done = Planned(2, 100)
    assert already_planned(incident(version=2), done)
    assert already_planned(incident(version=1), done)
    assert not already_planned(incident(version=3), done)
    assert not already_planned(incident(version=1), None)
