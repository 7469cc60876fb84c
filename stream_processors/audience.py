"""Who lives where: the subscribers of each kelurahan, compact, and who hears a version. Pure.

The ``subscribers`` topic (keyed by subscriber id) is re-keyed onto ``subscribers.by-area``
(key ``area_code|subscriber_id``, partitioned by area, so each area's members sit in the
partition its incidents are planned in). Each member is one short byte string, not a model:

    since|language|channels|phone|push_token      e.g.  b"1764200000000|id|s|+6281234567890|"

``since`` (ms since the epoch) is stamped by the planner's stage when the member first enters
its index, and kept through later updates; it answers "was this person in the audience when
that version was planned?" for the all-clear. ``channels`` is ``s``, ``p`` or ``sp``.

:class:`AreaIndex` is the store the planner reads: a mapping of those keys to those values,
held as one small dict per kelurahan, so planning one version touches that kelurahan only.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Container, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from schemas.events import Announce, Channel, Incident, IncidentStatus, Subscriber

SEPARATOR = "|"
E164 = re.compile(r"\+[1-9]\d{6,14}")  # as ``Subscriber.phone`` (used with fullmatch)
Language = Literal["id", "en"]
_CHANNEL_FLAGS = {Channel.SMS: "s", Channel.PUSH: "p"}


def member_key(area: str, subscriber_id: str) -> bytes:
    return f"{area}{SEPARATOR}{subscriber_id}".encode()


def split_member_key(key: bytes) -> tuple[str, str]:
    """``b"52.71.01.1004|sms-ab12"`` -> (area, subscriber id); ValueError if not of that form."""
    area, sep, subscriber_id = key.decode().partition(SEPARATOR)
    if not sep or not area or not subscriber_id:
        raise ValueError(f"not an area|subscriber key: {key[:80]!r}")
    return area, subscriber_id


class Member(NamedTuple):
    subscriber_id: str
    language: Language
    sms: str | None  # the phone, when the person takes SMS
    push: str | None  # the push token, when the person takes push
    since_ms: int | None


def recipients(subscriber: Subscriber) -> dict[Channel, str]:
    """The channels a subscriber can actually be reached on, with the address for each."""
    found: dict[Channel, str] = {}
    if Channel.SMS in subscriber.channels and subscriber.phone:
        found[Channel.SMS] = subscriber.phone
    if Channel.PUSH in subscriber.channels and subscriber.push_token:
        found[Channel.PUSH] = subscriber.push_token
    return found


def pack_member(subscriber: Subscriber) -> bytes:
    """The by-area value of a subscriber (no ``since`` yet: the planner's index stamps it)."""
    reach = recipients(subscriber)
    flags = "".join(flag for channel, flag in _CHANNEL_FLAGS.items() if channel in reach)
    fields = ("", subscriber.language, flags, reach.get(Channel.SMS, ""),
              reach.get(Channel.PUSH, ""))
    return SEPARATOR.join(fields).encode()


def since_of(value: bytes) -> int | None:
    stamp = value[: value.index(b"|")]
    return int(stamp) if stamp else None


def with_since(value: bytes, since_ms: int) -> bytes:
    return b"%d" % since_ms + value[value.index(b"|"):]


def unpack_member(subscriber_id: str, value: bytes) -> Member:
    """The member a value holds; ValueError if it is not one (the index refuses it)."""
    try:
        since, language, flags, phone, token = value.decode().split(SEPARATOR, 4)
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"member {subscriber_id}: not since|language|channels|phone|token"
                         ) from None
    if language not in ("id", "en"):
        raise ValueError(f"member {subscriber_id}: unknown language {language[:10]!r}")
    if phone and not E164.fullmatch(phone):  # the job encoder writes phones unescaped
        raise ValueError(f"member {subscriber_id}: the phone is not E.164")
    if since and not (since.isascii() and since.isdigit()):
        raise ValueError(f"member {subscriber_id}: since is not a time in ms")
    return Member(subscriber_id, "en" if language == "en" else "id",
                  phone if "s" in flags and phone else None,
                  token if "p" in flags and token else None,
                  int(since) if since else None)


def indexed_value(new: bytes, old: bytes | None, now_ms: int) -> bytes:
    """What the index keeps for a member record: ``since`` survives updates (a new language,
    a re-sent DAFTAR) so the person still hears the all-clear of what they were warned about."""
    kept = since_of(old) if old is not None else None
    return with_since(new, kept if kept is not None else now_ms)


@dataclass(frozen=True)
class Rekeyed:
    """What one ``subscribers`` record means for ``subscribers.by-area``."""

    removed: list[str]  # areas whose ``area|id`` record becomes a tombstone
    members: list[tuple[str, bytes]]  # (area, packed member) to (re)write
    areas: list[str]  # the areas the person is in now: remembered for the next record

    @property
    def forgotten(self) -> bool:
        return not self.areas


def rekey(previous: Sequence[str], subscriber: Subscriber | None,
          known_areas: Container[str]) -> Rekeyed:
    """``subscriber`` None is a tombstone. Unsubscribed (tombstone, ``active`` false) or
    unreachable (no phone for SMS, no token for push) people leave every area at once."""
    if subscriber is None or not subscriber.active or not recipients(subscriber):
        return Rekeyed(removed=sorted(set(previous)), members=[], areas=[])
    unknown = [area for area in subscriber.areas if area not in known_areas]
    if unknown:
        raise ValueError(f"subscriber {subscriber.subscriber_id}: unknown kelurahan "
                         f"{', '.join(sorted(unknown))[:200]}")
    now = sorted(set(subscriber.areas))
    value = pack_member(subscriber)
    return Rekeyed(removed=sorted(set(previous) - set(now)),
                   members=[(area, value) for area in now], areas=now)


@dataclass(frozen=True)
class Planned:
    """What the planner remembers of an open incident: the last version it planned, and when
    it planned the last announced one (None: nothing announced yet)."""

    version: int
    announced_at_ms: int | None

    def dump(self) -> bytes:
        return b"%d|%s" % (self.version, b"" if self.announced_at_ms is None
                           else b"%d" % self.announced_at_ms)

    @staticmethod
    def load(value: bytes | None) -> Planned | None:
        if value is None:
            return None
        version, _, announced = value.partition(b"|")
        return Planned(int(version), int(announced) if announced else None)


def already_planned(incident: Incident, planned: Planned | None) -> bool:
    """A version at or below the last one planned is a redelivery (faust is at-least-once; a
    recovering worker can see a record twice): its jobs were handed over already."""
    return planned is not None and incident.version <= planned.version


def planned_after(incident: Incident, planned_at_ms: int,
                  before: Planned | None) -> Planned | None:
    """The record after planning ``incident``; None once it is resolved (nothing to clear)."""
    if incident.status is IncidentStatus.RESOLVED:
        return None
    announced = before.announced_at_ms if before is not None else None
    if incident.announce is not None and incident.announce is not Announce.ALL_CLEAR:
        announced = planned_at_ms
    return Planned(incident.version, announced)


def audience(incident: Incident, members: Iterable[tuple[str, bytes]],
             announced_at_ms: int | None) -> Iterator[tuple[str, bytes]]:
    """Who hears this version, as (subscriber id, packed member): nobody when nothing is
    announced; for the all-clear, those who were members when its last announced version was
    planned (and still are); else every member of the kelurahan."""
    if incident.announce is None:
        return
    if incident.announce is not Announce.ALL_CLEAR:
        yield from members
        return
    if announced_at_ms is None:
        return
    for subscriber_id, value in members:
        since = value[: value.index(b"|")]
        if since and int(since) <= announced_at_ms:
            yield subscriber_id, value


class AreaIndex(MutableMapping[bytes, bytes]):
    """``area|subscriber_id`` -> packed member, stored as one dict per area.

    A plain mapping to faust (it is the data of the planner's table store, filled from the
    changelog on start), and an index to the planner: :meth:`members` of one area is a copy of
    that area's dict, whatever the size of the city."""

    def __init__(self) -> None:
        self._areas: dict[str, dict[str, bytes]] = {}
        self._size = 0

    def __getitem__(self, key: bytes) -> bytes:
        area, subscriber_id = split_member_key(key)
        return self._areas[area][subscriber_id]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        area, subscriber_id = split_member_key(key)
        people = self._areas.get(area)
        if people is None:
            people = self._areas[sys.intern(area)] = {}
        if subscriber_id not in people:
            self._size += 1
        people[subscriber_id] = value

    def __delitem__(self, key: bytes) -> None:
        area, subscriber_id = split_member_key(key)
        people = self._areas[area]
        del people[subscriber_id]
        self._size -= 1
        if not people:
            del self._areas[area]

    def __iter__(self) -> Iterator[bytes]:
        for area, people in list(self._areas.items()):
            for subscriber_id in list(people):
                yield member_key(area, subscriber_id)

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        self._areas.clear()
        self._size = 0

    def members(self, area: str) -> list[tuple[str, bytes]]:
        """A snapshot of one area's members: later changes do not disturb a plan in progress."""
        return list(self._areas.get(area, {}).items())

    def has(self, area: str, subscriber_id: str) -> bool:
        people = self._areas.get(area)
        return people is not None and subscriber_id in people

    def count(self, area: str) -> int:
        return len(self._areas.get(area, ()))

    def areas(self) -> list[str]:
        return list(self._areas)

    def drop_areas(self, keep: Container[str]) -> int:
        """Forget every area not in ``keep`` (partitions this worker no longer holds)."""
        dropped = 0
        for area in [a for a in self._areas if a not in keep]:
            dropped += len(self._areas.pop(area))
        self._size -= dropped
        return dropped
