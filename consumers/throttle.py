"""Per-recipient rate limits, GoAlert-style: the rules are data (``schemas.delivery``); this is
the one small engine that reads them. Pure; time is passed in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from schemas.delivery import ThrottleRule, ThrottleTable
from schemas.events import Channel, Level


@dataclass(frozen=True)
class Refusal:
    rule: ThrottleRule

    def __str__(self) -> str:
        return f"more than {self.rule.count} per {self.rule.per_seconds} s for this recipient"


class Throttle:
    def __init__(self, table: ThrottleTable) -> None:
        self.table = table
        # (channel, recipient) -> send times (seconds) within the longest window, oldest first.
        self._sent: dict[tuple[Channel, str], list[float]] = {}
        self._longest = max((r.per_seconds for levels in table.values()
                             for rules in levels.values() for r in rules), default=0)
        self._admitted = 0

    def rules(self, channel: Channel, level: Level | None) -> list[ThrottleRule]:
        if level is Level.AWAS:
            return []  # the highest warning level always goes out
        return self.table.get(channel, {}).get(level or Level.WASPADA, [])

    def admit(self, channel: Channel, level: Level | None, recipient: str,
              now: float) -> Refusal | None:
        """None: admitted and counted. A Refusal names the rule that holds the job back.
        Every admitted message counts against the recipient, whatever its level, so an awas
        burst uses up the room for waspada messages that follow it."""
        key = (channel, recipient)
        times = self._sent.get(key, [])
        for rule in self.rules(channel, level):
            since = now - rule.per_seconds
            if sum(1 for t in times if t > since) >= rule.count:
                return Refusal(rule)
        if self._longest:
            self._sent[key] = [t for t in times if t > now - self._longest] + [now]
            self._admitted += 1
            if self._admitted % 50_000 == 0:
                self.sweep(now)
        return None

    def sweep(self, now: float) -> None:
        """Forget recipients with nothing in any window (keeps memory to the active ones)."""
        cutoff = now - self._longest
        for key in [k for k, times in self._sent.items() if times[-1] <= cutoff]:
            del self._sent[key]

    def __iter__(self) -> Iterator[tuple[Channel, str]]:
        return iter(self._sent)
