"""What has been delivered, by idempotency key: the memory behind "exactly once per recipient"."""

from __future__ import annotations

import json
import os
from pathlib import Path


class NotificationLog:
    """An append-only JSON-lines file of delivered job keys, loaded into a set at start.

    Appends are fsynced before the Kafka offset is committed, so a restart replays only jobs
    whose delivery is not on record.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._keys: set[str] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._keys.add(json.loads(line)["job_key"])

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def record(self, key: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"job_key": key}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self._keys.add(key)
