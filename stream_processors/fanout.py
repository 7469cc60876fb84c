"""Fan-out planning: which subscriber gets which message about an incident version. Pure code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from producers.reports import CALLCENTRE_DESK
from schemas.events import Channel, DeliveryJob, Incident, Subscriber
from stream_processors.render import render_text


def job_key(incident: Incident, recipient: str, channel: Channel) -> str:
    return f"{incident.incident_id}/{incident.version}/{recipient}/{channel.value}"


def recipient_for(subscriber: Subscriber, channel: Channel) -> str | None:
    if channel is Channel.SMS:
        return subscriber.phone
    if channel is Channel.PUSH:
        return subscriber.push_token
    return None


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


def plan_deliveries(
    incident: Incident, subscribers: Iterable[Subscriber], now: datetime
) -> list[DeliveryJob]:
    """One job per (recipient, channel) among active subscribers of the incident's kelurahan."""
    # The correlator decides what citizens are told (``announce``): nothing for routine updates,
    # adjacent warnings or unverified reports; those reach the 112 desk only.
    if incident.announce is None:
        return []
    text = render_text(incident)
    jobs: dict[str, DeliveryJob] = {}
    for subscriber in subscribers:
        if not subscriber.active or incident.area_code not in subscriber.areas:
            continue
        for channel in subscriber.channels:
            recipient = recipient_for(subscriber, channel)
            if recipient is None:
                continue
            key = job_key(incident, recipient, channel)
            # Two subscriber records with the same phone still get one message.
            jobs.setdefault(
                key,
                DeliveryJob(
                    job_key=key,
                    incident_id=incident.incident_id,
                    version=incident.version,
                    channel=channel,
                    recipient=recipient,
                    subscriber_id=subscriber.subscriber_id,
                    area_code=incident.area_code,
                    language=subscriber.language,
                    text=text,
                    created_at=now,
                    level=incident.level,
                ),
            )
    return list(jobs.values())
