"""A delivery job in flight: the job, where it was read, and how its sending has gone so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import DeliveryJob


@dataclass(eq=False)
class Item:
    job: DeliveryJob
    partition: int
    offset: int
    attempts: int = 0
    last_error: str = ""
    # Set by the send stage when a gateway took the message.
    receipt: str = ""
    accepted_only: bool = False  # True: a delivery report (DLR) will say how it ended
    # "" while in the pipeline; "done" once it has its outcome; "queued" when put back.
    state: str = field(default="", repr=False)
