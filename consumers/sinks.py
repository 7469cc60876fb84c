"""Where a delivery job's message finally goes. Each sink has one method: ``send(job)``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from schemas.events import DeliveryJob, utc_now


class SendError(Exception):
    """The sink could not take the message; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sink(Protocol):
    name: str

    def send(self, job: DeliveryJob) -> str:
        """Hand the message over; return a receipt (gateway id, file position...)."""
        ...


class OutboxSink:
    """The dry-run channel: one JSON object per accepted message, appended to a file.

    Always available, so the pipeline can be run and audited without any gateway.
    """

    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, job: DeliveryJob) -> str:
        record = {
            "recipient": job.recipient,
            "incident_id": job.incident_id,
            "version": job.version,
            "channel": job.channel.value,
            "text": job.text,
            "job_key": job.job_key,
            "area_code": job.area_code,
            "accepted_at": utc_now().isoformat(),
        }
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
            return f"{self.path.name}@{out.tell()}"
