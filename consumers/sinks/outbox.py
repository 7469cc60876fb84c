"""The dry-run sink: one JSON object per accepted message, appended to a file.

Group commit: lines are written as messages come and made durable by ``sync()`` (one fsync per
group commit, before the ledger entry), not one fsync per message. A torn last line (a crash
in the middle of a write) is cut off when the file is opened, so a restart is never stopped by
it; the job it belonged to is not in the ledger yet and is written again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from consumers.sinks.base import Sent
from schemas.events import DeliveryJob, utc_now


def repair_torn_tail(path: Path) -> int:
    """Cut a last line with no newline; returns the bytes removed."""
    if not path.exists():
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        # Read back from the end until the last newline.
        pos, chunk = size, 4096
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start)
            newline = data.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            pos = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return size - keep


class OutboxSink:
    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._lines = 0
        self.repaired_bytes = 0

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = repair_torn_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8")

    async def send(self, job: DeliveryJob) -> Sent:
        assert self._file is not None, "outbox sink used before start()"
        record = {
            "recipient": job.recipient,
            "incident_id": job.incident_id,
            "version": job.version,
            "channel": job.channel.value,
            "level": job.level.value if job.level else None,
            "text": job.text,
            "job_key": job.job_key,
            "area_code": job.area_code,
            "accepted_at": utc_now().isoformat(),
        }
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._lines += 1
        return Sent(f"{self.path.name}+{self._lines}")

    async def sync(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    async def close(self) -> None:
        if self._file is not None:
            await self.sync()
            self._file.close()
            self._file = None
