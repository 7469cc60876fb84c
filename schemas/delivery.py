"""Delivery-side contract: throttle rules as data, and the delivery ledger's records."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import Channel, Event, Level


class ThrottleRule(BaseModel):
    """At most ``count`` messages per recipient in any ``per_seconds`` window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1)
    per_seconds: int = Field(ge=1)


# GoAlert-style: a short table of data, read by one engine (consumers/throttle.py), selected by
# channel and level. ``awas`` is never throttled, whatever the table says; a job without a level
# is treated as ``waspada``. A channel or level missing here is not throttled (the 112 desk must
# see everything).
ThrottleTable = dict[Channel, dict[Level, list[ThrottleRule]]]

DEFAULT_THROTTLES: ThrottleTable = {
    Channel.SMS: {
        Level.WASPADA: [ThrottleRule(count=5, per_seconds=15 * 60),
                        ThrottleRule(count=11, per_seconds=3600)],
        Level.SIAGA: [ThrottleRule(count=8, per_seconds=15 * 60),
                      ThrottleRule(count=20, per_seconds=3600)],
    },
    Channel.PUSH: {
        Level.WASPADA: [ThrottleRule(count=10, per_seconds=15 * 60),
                        ThrottleRule(count=30, per_seconds=3600)],
        Level.SIAGA: [ThrottleRule(count=20, per_seconds=15 * 60),
                      ThrottleRule(count=60, per_seconds=3600)],
    },
}


def key_digest(job_key: str) -> str:
    """What the ledger stores for a job key: 96 bits of BLAKE2b, hex. Short, and no phone
    number or push token on the ledger topic; a collision is negligible at city scale."""
    return hashlib.blake2b(job_key.encode(), digest_size=12).hexdigest()


class LedgerEntry(Event):
    """One group commit of one input partition (``deliveries.ledger``): the jobs a gateway
    accepted from ``alerts.<channel>`` partition ``partition`` since the previous entry.

    Written to the ledger partition with the same number as the input partition, so the ledger
    moves with the partition: whichever host is assigned it reads that one partition back."""

    schema_version: Literal[1] = 1
    channel: Channel
    partition: int = Field(ge=0)
    keys: list[str] = Field(description="key_digest of each accepted job key")
    first_offset: int = Field(ge=0)
    last_offset: int = Field(ge=0)
    at: AwareDatetime
