"""A polite HTTP fetcher for BMKG's public feeds.

- identifies itself (User-Agent naming Kentongan and a contact URL);
- stays under BMKG's published limit of 60 requests/minute/IP with a token bucket (50/min);
- retries 429, 5xx and connection errors with exponential backoff and full jitter, honouring
  ``Retry-After`` (seconds or an HTTP date);
- sends ``If-None-Match`` with the last ``ETag`` seen for a URL and reports "not modified".

Other 4xx answers are returned, not retried: BMKG's 404 body for an unknown adm4 is data the
caller dead-letters. Clock, sleep and randomness are injectable so tests run without waiting.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

log = logging.getLogger(__name__)

#: Where BMKG can reach the operators. The project has no public home yet: deployments set
#: KENTONGAN_CONTACT_URL (read by ``producers.bmkg.poll``) to a page naming a contact.
CONTACT_URL = "https://example.invalid/kentongan-set-KENTONGAN_CONTACT_URL"


def user_agent(contact_url: str = CONTACT_URL) -> str:
    return f"Kentongan/0.1 (Kota Mataram emergency alerting; +{contact_url})"


USER_AGENT = user_agent()
#: BMKG allows 60 requests/minute/IP; 50 leaves room for a person checking by hand.
REQUESTS_PER_MINUTE = 50.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(Exception):
    """The URL could not be fetched after every retry (network down, BMKG overloaded)."""


@dataclass(frozen=True)
class FetchResult:
    url: str
    status: int
    body: bytes
    etag: str | None = None
    content_type: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up; ``acquire`` blocks."""

    def __init__(
        self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate, self.capacity = rate, capacity
        self._clock, self._sleep = clock, sleep
        self._tokens = capacity
        self._last = clock()
        self._lock = threading.Lock()

    @classmethod
    def per_minute(
        cls, requests_per_minute: float, *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> TokenBucket:
        # A burst of 5 lets one poll of the two RSS indexes and a few CAP files go at once,
        # while a minute never holds more than 5 + rate requests (55 < BMKG's 60).
        return cls(requests_per_minute / 60.0, 5.0, clock=clock, sleep=sleep)

    def acquire(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                # The epsilon absorbs float error: a sleep of (1 - tokens)/rate must yield a token.
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return waited
                wait = (1.0 - self._tokens) / self.rate
                self._sleep(wait)
                waited += wait


class HttpFetcher:
    """GET with rate limit, retries and ETags. One per process; thread-safe enough for one loop."""

    def __init__(
        self,
        *,
        session: requests.Session | None = None,
        user_agent: str = USER_AGENT,
        timeout: tuple[float, float] = (5.0, 20.0),
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.base_delay_s, self.max_delay_s = base_delay_s, max_delay_s
        self.bucket = bucket or TokenBucket.per_minute(REQUESTS_PER_MINUTE)
        self._sleep, self._rng, self._now = sleep, rng, now
        self._etags: dict[str, str] = {}
        self.requests_sent = 0

    def get(self, url: str, *, use_etag: bool = True) -> FetchResult:
        """The response (2xx, 304 or a non-retryable 4xx); raises FetchError when retries run
        out. With ``use_etag`` a 304 means "same as last time", so nothing needs re-publishing."""
        headers: dict[str, str] = {}
        if use_etag and url in self._etags:
            headers["If-None-Match"] = self._etags[url]
        last_problem = ""
        for attempt in range(1, self.max_attempts + 1):
            self.bucket.acquire()
            self.requests_sent += 1
            retry_after: float | None = None
            try:
                response = self.session.get(url, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = type(exc).__name__
            else:
                if response.status_code not in RETRY_STATUSES:
                    etag = response.headers.get("ETag")
                    if use_etag and etag and response.status_code == 200:
                        self._etags[url] = etag
                    return FetchResult(
                        url=url, status=response.status_code, body=response.content,
                        etag=etag or self._etags.get(url),
                        content_type=response.headers.get("Content-Type", ""),
                    )
                last_problem = f"HTTP {response.status_code}"
                retry_after = self._retry_after(response.headers.get("Retry-After"))
            if attempt == self.max_attempts:
                break
            delay = self._backoff(attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_delay_s * 5))
            log.info("retrying %s after %s in %.1fs (attempt %d)", url, last_problem, delay,
                     attempt)
            self._sleep(delay)
        raise FetchError(f"{url}: gave up after {self.max_attempts} attempts ({last_problem})")

    def forget(self, url: str) -> None:
        """Drop the ETag of ``url`` so the next GET fetches the body again."""
        self._etags.pop(url, None)

    def _backoff(self, attempt: int) -> float:
        """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): a uniform
        draw in [0, min(cap, base * 2^(attempt-1))], so clients retrying together spread out."""
        ceiling: float = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return self._rng() * ceiling

    def _retry_after(self, value: str | None) -> float | None:
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - self._now()).total_seconds())
