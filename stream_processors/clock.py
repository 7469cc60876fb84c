"""The correlator's clock: event time that keeps moving while nothing arrives.

A recorded disaster replayed today must run on its own time (its warnings are not "expired" just
because they are from last year), and an idle kelurahan must still see its warnings run out.
So the clock is the latest input time seen, plus the wall-clock time since it was seen.
"""

from __future__ import annotations

from datetime import datetime


class StreamClock:
    def __init__(self) -> None:
        self._event: datetime | None = None
        self._wall: datetime | None = None

    @property
    def started(self) -> bool:
        return self._event is not None

    def now(self, wall: datetime) -> datetime | None:
        if self._event is None or self._wall is None:
            return None
        return self._event + (wall - self._wall)

    def observe(self, event_time: datetime, wall: datetime) -> datetime:
        """Move to ``event_time`` if it is ahead (never back); the clock's time now."""
        current = self.now(wall)
        if current is None or event_time > current:
            self._event, self._wall = event_time, wall
            return event_time
        return current
