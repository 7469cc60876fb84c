"""Fan-out planning: which recipient gets which job about an incident version. Pure code.

Planning a version is proportional to its kelurahan's audience: the audience is chosen from
that kelurahan's members (``stream_processors.audience``), the texts are rendered once per
language and channel, and each job is encoded straight to the JSON of a ``DeliveryJob`` from
a per-version template instead of building one pydantic object per person. :func:`expand`
yields the jobs in chunks, so the worker can hand each chunk over and let its loop breathe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from json.encoder import encode_basestring
from typing import NamedTuple

from producers.reports import CALLCENTRE_DESK
from schemas.codec import decode
from schemas.events import Channel, DeliveryJob, Incident, Subscriber
from stream_processors.audience import (
    AreaIndex,
    Language,
    audience,
    pack_member,
    recipients,
    with_since,
)
from stream_processors.render import LANGUAGES, push_message, sms_text

SUBSCRIBER_CHANNELS = (Channel.SMS, Channel.PUSH)
DEFAULT_CHUNK = 1000


def job_key(incident: Incident, recipient: str, channel: Channel) -> str:
    return f"{incident.incident_id}/{incident.version}/{recipient}/{channel.value}"


def recipient_for(subscriber: Subscriber, channel: Channel) -> str | None:
    return recipients(subscriber).get(channel)


def desk_job(incident: Incident, now: datetime) -> DeliveryJob:
    """Every incident version goes to the 112 desk: adjacent and unverified ones included, so a
    person sees what citizens were not (yet) told."""
    told = f" -> warga: {incident.announce.value}" if incident.announce else ""
    text = (f"[{incident.level.value.upper()}] {incident.change.value} v{incident.version} "
            f"{incident.hazard.value} {incident.area_name} ({incident.kecamatan_name}) "
            f"{'terverifikasi' if incident.verified else 'BELUM diverifikasi'}, "
            f"{incident.proximity.value}{told}. {incident.reason}").strip()
    return DeliveryJob(
        job_key=job_key(incident, CALLCENTRE_DESK, Channel.CALLCENTRE),
        incident_id=incident.incident_id, version=incident.version,
        channel=Channel.CALLCENTRE, recipient=CALLCENTRE_DESK, subscriber_id=CALLCENTRE_DESK,
        area_code=incident.area_code, language="id", text=text, created_at=now,
        level=incident.level,
    )


Texts = Mapping[tuple[Language, Channel], str]


def texts_for(incident: Incident, *, sms_parts: int = 1) -> dict[tuple[Language, Channel], str]:
    """The version's text for each language and subscriber channel (rendered once)."""
    texts: dict[tuple[Language, Channel], str] = {}
    for language in LANGUAGES:
        texts[(language, Channel.SMS)] = sms_text(incident, language, max_parts=sms_parts)
        texts[(language, Channel.PUSH)] = push_message(incident, language).as_text()
    return texts


class EncodedJob(NamedTuple):
    channel: str  # the Channel's value: which alerts.<channel> topic
    subscriber_id: str
    key: bytes  # the Kafka key: the recipient
    value: bytes  # the DeliveryJob, as JSON


_HOLES = ("\x00key", "\x00recipient", "\x00subscriber")
_SMS, _PUSH = Channel.SMS.value, Channel.PUSH.value


def _inner_json(text: str) -> bytes:
    """``text`` as the inside of a JSON string (the C encoder: pydantic's escapes)."""
    escaped: str = encode_basestring(text)
    return escaped[1:-1].encode()


class JobEncoder:
    """Encodes one version's jobs as exactly the JSON ``DeliveryJob.model_dump_json`` gives.

    One template job per language and channel is dumped by pydantic with placeholders where
    the job key, recipient and subscriber id go; a job fills the holes. Planning a kelurahan is
    ten thousand of these, so the hot path stays in bytes: the phone comes out of the packed
    member as bytes and needs no escaping (E.164 is digits and a plus sign; the index refuses
    anything else), and no enum is hashed (that runs Python code)."""

    def __init__(self, incident: Incident, texts: Texts, now: datetime) -> None:
        self.incident = incident
        prefix = _inner_json(f"{incident.incident_id}/{incident.version}/")
        self._templates: dict[tuple[bool, str], tuple[bytes, bytes, bytes, bytes]] = {}
        for (language, channel), text in texts.items():
            template = DeliveryJob(
                job_key=_HOLES[0], incident_id=incident.incident_id, version=incident.version,
                channel=channel, recipient=_HOLES[1], subscriber_id=_HOLES[2],
                area_code=incident.area_code, language=language, text=text, created_at=now,
                level=incident.level,
            ).model_dump_json().encode()
            pieces: list[bytes] = []
            rest = template
            for hole in _HOLES:
                before, found, rest = rest.partition(_inner_json(hole))
                if not found:  # pydantic changed how it writes strings: fail loudly, here
                    raise RuntimeError(f"job template lost its {hole!r} placeholder")
                pieces.append(before)
            # head ends inside the key's quotes, after the incident/version prefix.
            self._templates[(language == "en", channel.value)] = (
                pieces[0] + prefix, f"/{channel.value}".encode() + pieces[1], pieces[2], rest)

    def sms_templates(self) -> dict[bool, tuple[bytes, bytes, bytes, bytes]]:
        """The SMS templates by "is English", for :func:`expand`'s inlined hot path."""
        return {english: self._templates[(english, _SMS)] for english in (False, True)}

    def encode(self, subscriber_id: str, english: bool, channel: str, recipient: bytes,
               sid_json: bytes | None = None) -> EncodedJob:
        """One job; ``channel`` is a Channel's value; an SMS ``recipient`` is E.164."""
        head, after_key, after_recipient, tail = self._templates[(english, channel)]
        inner = recipient if channel == _SMS else _inner_json(recipient.decode())
        sid = _inner_json(subscriber_id) if sid_json is None else sid_json
        value = b"".join((head, inner, after_key, inner, after_recipient, sid, tail))
        return EncodedJob(channel, subscriber_id, recipient, value)


# Builds an EncodedJob without NamedTuple's Python-level __new__ (a third of the cost per job).
_job = tuple.__new__


def expand(encoder: JobEncoder, members: Iterable[tuple[str, bytes]], *,
           chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[EncodedJob]]:
    """The jobs of ``members`` (subscriber id, packed member), ``chunk_size`` at a time: one
    per recipient and channel (two members with one phone still get one SMS: same job key).
    SMS jobs, the bulk, are :meth:`JobEncoder.encode` inlined."""
    phones: set[bytes] = set()
    tokens: set[bytes] = set()
    encode, sms = encoder.encode, encoder.sms_templates()
    chunk: list[EncodedJob] = []
    for subscriber_id, value in members:
        _, language, flags, phone, token = value.split(b"|", 4)
        english = language == b"en"
        sid = _inner_json(subscriber_id)
        if phone and b"s" in flags and phone not in phones:
            phones.add(phone)
            head, after_key, after_recipient, tail = sms[english]
            chunk.append(_job(EncodedJob, (_SMS, subscriber_id, phone, b"".join(
                (head, phone, after_key, phone, after_recipient, sid, tail)))))
        if token and b"p" in flags and token not in tokens:
            tokens.add(token)
            chunk.append(encode(subscriber_id, english, _PUSH, token, sid))
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def plan_version(incident: Incident, index: AreaIndex, announced_at_ms: int | None,
                 now: datetime, *, sms_parts: int = 1,
                 chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[EncodedJob]]:
    """The subscriber jobs of one version, in chunks, from the kelurahan's members as they are
    at the call (a snapshot). A version that announces nothing costs nothing: no snapshot, no
    text. ``announced_at_ms``: when the incident's last announced version was planned."""
    if incident.announce is None:
        return iter(())
    members = index.members(incident.area_code)
    encoder = JobEncoder(incident, texts_for(incident, sms_parts=sms_parts), now)
    return expand(encoder, audience(incident, members, announced_at_ms), chunk_size=chunk_size)


def plan_deliveries(incident: Incident, subscribers: Iterable[Subscriber], now: datetime,
                    *, sms_parts: int = 1, announced_at_ms: int | None = 0
                    ) -> list[DeliveryJob]:
    """The same plan as the worker's, from a list of subscribers (tests, simulations): one job
    per recipient and channel among the active subscribers of the incident's kelurahan.
    ``announced_at_ms`` stands for when the warning was planned (0: everyone was warned)."""
    if incident.announce is None:
        return []
    members = [(s.subscriber_id, with_since(pack_member(s), 0)) for s in subscribers
               if s.active and incident.area_code in s.areas and recipients(s)]
    encoder = JobEncoder(incident, texts_for(incident, sms_parts=sms_parts), now)
    chosen = audience(incident, members, announced_at_ms)
    return [decode(DeliveryJob, job.value) for chunk in expand(encoder, chosen) for job in chunk]
