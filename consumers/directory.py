"""Who may still be sent to: the delivery consumer's view of the compacted ``subscribers``
topic. Pure; the runner feeds it records. Only what stops a send is kept (people who left,
people without this channel), so memory grows with unsubscribes, not with the city; the push
consumer also keeps full records, to publish one without ``push`` when a token is dead."""

from __future__ import annotations

from schemas.events import Channel, DeliveryJob, Subscriber


class SubscriberDirectory:
    def __init__(self, channel: Channel, *, keep_records: bool = False) -> None:
        self.channel = channel
        self.keep_records = keep_records
        self._inactive: set[str] = set()
        self._without_channel: set[str] = set()
        self._records: dict[str, Subscriber] = {}

    def apply(self, subscriber_id: str, subscriber: Subscriber | None) -> None:
        """A record of the subscribers topic; None is a tombstone (the person is gone)."""
        self._inactive.discard(subscriber_id)
        self._without_channel.discard(subscriber_id)
        self._records.pop(subscriber_id, None)
        if subscriber is None or not subscriber.active:
            self._inactive.add(subscriber_id)
        elif self.channel not in subscriber.channels:
            self._without_channel.add(subscriber_id)
        if subscriber is not None and self.keep_records:
            self._records[subscriber_id] = subscriber

    def refuses(self, job: DeliveryJob) -> str | None:
        """Why this job must not go out any more, or None. A subscriber the topic has not
        mentioned is allowed: the planner made the job from a subscriber it knew."""
        if job.subscriber_id in self._inactive:
            return "unsubscribed"
        if job.subscriber_id in self._without_channel:
            return f"no longer subscribed on {self.channel.value}"
        return None

    def drop_channel(self, subscriber_id: str) -> Subscriber | None:
        """Stop this channel for the subscriber at once (a dead push token); returns the
        updated record to publish, if the full record is known."""
        self._without_channel.add(subscriber_id)
        record = self._records.get(subscriber_id)
        if record is None:
            return None
        updated = record.model_copy(update={
            "channels": [c for c in record.channels if c is not self.channel],
            **({"push_token": None} if self.channel is Channel.PUSH else {}),
        })
        self._records[subscriber_id] = updated
        return updated
