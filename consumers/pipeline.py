"""The delivery pipeline: dedupe -> send with retry -> record. No Kafka in here.

In the spirit of Alertmanager's notify stages: each step is small and tested alone; a channel's
consumer is a Kafka shell around ``DeliveryPipeline.deliver``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumers.notification_log import NotificationLog
from consumers.sinks import SendError, Sink
from schemas.events import DeliveryJob, DeliveryOutcome, DeliveryStatus, utc_now


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so a gateway outage is not hammered in step."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


class DeliveryPipeline:
    def __init__(
        self,
        sink: Sink,
        log: NotificationLog,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sink, self.log = sink, log
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def deliver(self, job: DeliveryJob) -> DeliveryOutcome:
        if job.job_key in self.log:
            return self._outcome(job, DeliveryStatus.DUPLICATE, 0, "already delivered")
        attempt, last_error = 0, ""
        while attempt < self.retry.attempts:
            attempt += 1
            try:
                receipt = self.sink.send(job)
            except SendError as exc:
                last_error = str(exc)
                if not exc.retryable:
                    break
                if attempt < self.retry.attempts:
                    self._sleep(self.retry.delay(attempt))
                continue
            self.log.record(job.job_key)
            return self._outcome(job, DeliveryStatus.DELIVERED, attempt, receipt)
        return self._outcome(job, DeliveryStatus.FAILED, attempt, last_error)

    def _outcome(
        self, job: DeliveryJob, status: DeliveryStatus, attempts: int, detail: str
    ) -> DeliveryOutcome:
        return DeliveryOutcome(
            job_key=job.job_key, channel=job.channel, status=status, attempts=attempts,
            sink=self.sink.name, detail=detail, at=utc_now(),
        )
