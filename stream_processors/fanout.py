"""Fan-out planning: which subscriber gets which message about an incident version. Pure code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

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
