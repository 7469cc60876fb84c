"""The delivery pipeline as small stages, in the spirit of Alertmanager's notify stages.

A stage takes a batch of items and returns the batch it lets through; what it holds back it
hands to the ``Context`` with the reason (a final outcome, or a retry later). Composites build
the policy: ``Sequence`` (one after another), ``Fanout`` (every branch sees the batch),
``Route`` (each item to the branch its key names). A channel's pipeline reads as its policy::

    Sequence(Dedupe(ledger), Subscribed(directory), Throttled(throttle), Send(sink, retry),
             Record())

The order of jobs (awas first) is decided before a batch enters, by ``consumers.queue``.
No stage knows about Kafka; the runner (``consumers.deliver``) is the ``Context``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import Protocol

from consumers.directory import SubscriberDirectory
from consumers.item import Item
from consumers.ledger import LedgerIndex
from consumers.retry import RetryPolicy
from consumers.sinks.base import SendError, Sink
from consumers.throttle import Throttle
from schemas.events import DeliveryStatus


class Context(Protocol):
    def now(self) -> float: ...

    def stop(self, item: Item, status: DeliveryStatus, detail: str) -> None:
        """Final outcome for an item that will not be sent (FAILED also goes to deadletter)."""

    def retry(self, item: Item, delay_s: float, detail: str) -> None:
        """Put the item back, to enter the pipeline again after ``delay_s``."""

    def hold(self, until: float) -> None:
        """The gateway asked everyone to wait (429/503 with Retry-After)."""

    def invalid_recipient(self, item: Item) -> None:
        """The gateway says this address is gone for good (dead push token)."""

    def record(self, item: Item) -> None:
        """The gateway took the item: remember its key, publish its outcome."""


class Stage(Protocol):
    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]: ...


@dataclass(frozen=True)
class Sequence:
    stages: Seq[Stage]

    def __init__(self, *stages: Stage) -> None:
        object.__setattr__(self, "stages", stages)

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        for stage in self.stages:
            if not items:
                break
            items = await stage(ctx, items)
        return items


@dataclass(frozen=True)
class Fanout:
    """Every branch gets the whole batch, concurrently; the result is what any let through."""

    branches: Seq[Stage]

    def __init__(self, *branches: Stage) -> None:
        object.__setattr__(self, "branches", branches)

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        results = await asyncio.gather(*(branch(ctx, list(items)) for branch in self.branches))
        passed = {id(item) for result in results for item in result}
        return [item for item in items if id(item) in passed]


@dataclass(frozen=True)
class Route:
    """Each item to the branch ``key(item)`` names; an item with no branch fails clearly."""

    key: Callable[[Item], str]
    branches: dict[str, Stage]

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        groups: dict[str, list[Item]] = {}
        for item in items:
            name = self.key(item)
            if name not in self.branches:
                ctx.stop(item, DeliveryStatus.FAILED, f"no route for recipient kind {name!r}")
                continue
            groups.setdefault(name, []).append(item)
        results = await asyncio.gather(*(self.branches[n](ctx, g) for n, g in groups.items()))
        return [item for result in results for item in result]


@dataclass(frozen=True)
class Dedupe:
    """A key the ledger knows (or that is being sent right now) is not sent again."""

    ledger: LedgerIndex

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        passed = []
        for item in items:
            # A retry already holds its claim.
            if item.attempts == 0 and not self.ledger.claim(item.partition, item.job.job_key):
                ctx.stop(item, DeliveryStatus.DUPLICATE, "already accepted by the gateway")
                continue
            passed.append(item)
        return passed


@dataclass(frozen=True)
class Subscribed:
    """Checked right before every attempt, so an unsubscribe stops queued jobs and retries."""

    directory: SubscriberDirectory

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        passed = []
        for item in items:
            reason = self.directory.refuses(item.job)
            if reason is not None:
                ctx.stop(item, DeliveryStatus.UNSUBSCRIBED, reason)
            else:
                passed.append(item)
        return passed


@dataclass(frozen=True)
class Throttled:
    throttle: Throttle

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        passed = []
        for item in items:
            job = item.job
            refusal = None if item.attempts else self.throttle.admit(
                job.channel, job.level, job.recipient, time.time())
            if refusal is not None:
                ctx.stop(item, DeliveryStatus.THROTTLED, str(refusal))
            else:
                passed.append(item)
        return passed


@dataclass
class Send:
    """Every item of the batch to the sink at once (the runner bounds how many are in flight).
    A failure either goes back to the queue for later (backoff with jitter, never sooner than
    Retry-After) or, after the last attempt or a permanent refusal, ends FAILED."""

    sink: Sink
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        results = await asyncio.gather(*(self._one(ctx, item) for item in items))
        return [item for item, ok in zip(items, results, strict=True) if ok]

    async def _one(self, ctx: Context, item: Item) -> bool:
        item.attempts += 1
        try:
            sent = await asyncio.wait_for(self.sink.send(item.job), self.timeout_s)
        except SendError as exc:
            error = exc
        except TimeoutError:
            error = SendError(f"no answer within {self.timeout_s:g} s")
        except Exception as exc:  # a sink bug or a library's surprise: bounded like the rest
            error = SendError(f"sink error {type(exc).__name__}: {str(exc)[:200]}")
        else:
            item.receipt, item.accepted_only = sent.receipt, sent.accepted_only
            return True
        item.last_error = str(error)
        if error.invalid_recipient:
            ctx.invalid_recipient(item)
        if error.hold and error.retry_after:
            ctx.hold(ctx.now() + error.retry_after)
        if error.retryable and item.attempts < self.retry.attempts:
            ctx.retry(item, self.retry.delay(item.attempts, error.retry_after, self.rng),
                      str(error))
        else:
            ctx.stop(item, DeliveryStatus.FAILED,
                     f"gave up after {item.attempts} attempt(s): {error}")
        return False


@dataclass(frozen=True)
class Record:
    async def __call__(self, ctx: Context, items: list[Item]) -> list[Item]:
        for item in items:
            ctx.record(item)
        return items
