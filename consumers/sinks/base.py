"""What every sink shares: the result of a send, the error a gateway can answer with, and how
an HTTP status maps to "try again", "wait", "never" or "this address is dead"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp

from consumers.retry import parse_retry_after
from schemas.events import DeliveryJob, utc_now


@dataclass(frozen=True)
class Sent:
    receipt: str  # gateway message id, file position...
    accepted_only: bool = False  # True: a delivery report will follow (Kannel DLR)


class SendError(Exception):
    """The sink could not hand the message over.

    ``retryable``: trying again may help. ``retry_after``: the gateway said when (seconds).
    ``hold``: the gateway as a whole asked us to slow down (429), not just this message.
    ``invalid_recipient``: the address is gone for good (dead push token)."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None,
                 hold: bool = False, invalid_recipient: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.hold = hold
        self.invalid_recipient = invalid_recipient


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def send(self, job: DeliveryJob) -> Sent: ...

    async def sync(self) -> None:
        """Make what was accepted so far durable (group commit); before the ledger entry."""

    async def close(self) -> None: ...


def http_error(status: int, retry_after_header: str | None = None, body: str = "") -> SendError:
    """The error for a non-2xx answer. The body is cut short: gateways echo recipients."""
    retry_after = parse_retry_after(retry_after_header, utc_now())
    snippet = " ".join(body.split())[:120]
    message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status == 429:
        return SendError(message, retry_after=retry_after, hold=True)
    if status in (408, 425) or status >= 500:
        return SendError(message, retry_after=retry_after, hold=retry_after is not None)
    return SendError(message, retryable=False)


def connection_error(exc: BaseException) -> SendError:
    return SendError(f"gateway unreachable: {type(exc).__name__}")


class HttpSink:
    """Base of the HTTP sinks: one pooled aiohttp session per process (keep-alive, at most
    ``concurrency`` connections), started and closed with the runner."""

    name = "http"

    def __init__(self, *, concurrency: int = 64, timeout_s: float = 10.0) -> None:
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"{self.name} sink used before start()")
        return self._session

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers={"User-Agent": "kentongan-deliver"})

    async def sync(self) -> None:
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
