"""Per-reporter rate limits: rules are data, one small engine reads them (GoAlert's shape).

A reporter is identified by the hash of their normalized phone or account id, never the
number itself. Every rule must pass; the answer on refusal is how long until it would.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence

from schemas.reports import RateRule, ReportChannel


class RateLimiter:
    """Sliding-window log per key, bounded in memory (oldest keys are forgotten first)."""

    def __init__(self, rules: Mapping[ReportChannel, Sequence[RateRule]],
                 *, max_keys: int = 100_000) -> None:
        self._rules = {channel: tuple(r) for channel, r in rules.items()}
        self._log: OrderedDict[tuple[ReportChannel, str], deque[float]] = OrderedDict()
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def acquire(self, channel: ReportChannel, who: str, now: float) -> int | None:
        """Record one submission and return None, or refuse it: seconds to wait (>= 1)."""
        rules = self._rules.get(channel, ())
        if not rules:
            return None
        horizon = max(rule.per_seconds for rule in rules)
        with self._lock:
            log = self._log.setdefault((channel, who), deque())
            self._log.move_to_end((channel, who))
            while log and log[0] <= now - horizon:
                log.popleft()
            waits = []
            for rule in rules:
                recent = [t for t in log if t > now - rule.per_seconds]
                if len(recent) >= rule.count:
                    # The oldest submission in the window must age out before another fits.
                    waits.append(recent[-rule.count] + rule.per_seconds - now)
            if waits:
                return max(1, math.ceil(max(waits)))
            log.append(now)
            while len(self._log) > self._max_keys:
                self._log.popitem(last=False)
            return None
