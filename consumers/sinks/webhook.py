"""The 112 desk's webhook: a JSON POST signed with HMAC-SHA256 over timestamp and body.

Headers: ``X-Kentongan-Timestamp`` (Unix seconds) and ``X-Kentongan-Signature``
(``v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``), plus ``Idempotency-Key`` (the job
key). The desk's side checks with ``verify``: the signature, and that the timestamp is within
the replay window, so a captured request cannot be played again later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp

from consumers.sinks.base import HttpSink, Sent, connection_error, http_error
from schemas.events import DeliveryJob

TIMESTAMP_HEADER = "X-Kentongan-Timestamp"
SIGNATURE_HEADER = "X-Kentongan-Signature"
REPLAY_WINDOW_S = 300


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: bytes, timestamp: str | None, signature: str | None, body: bytes, *,
           now: float | None = None, window_s: float = REPLAY_WINDOW_S) -> str | None:
    """None if the request is authentic and fresh, else why not."""
    if not timestamp or not signature:
        return "missing signature headers"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs((time.time() if now is None else now) - sent_at) > window_s:
        return "timestamp outside the replay window"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "bad signature"
    return None


class WebhookSink(HttpSink):
    name = "webhook"

    def __init__(self, url: str, *, secret: bytes, concurrency: int = 16,
                 timeout_s: float = 10.0) -> None:
        super().__init__(concurrency=concurrency, timeout_s=timeout_s)
        self.url, self.secret = url, secret

    def body(self, job: DeliveryJob) -> bytes:
        return json.dumps({
            "job_key": job.job_key, "incident_id": job.incident_id, "version": job.version,
            "area_code": job.area_code, "level": job.level.value if job.level else None,
            "recipient": job.recipient, "language": job.language, "text": job.text,
            "created_at": job.created_at.isoformat(),
        }, ensure_ascii=False, separators=(",", ":")).encode()

    async def send(self, job: DeliveryJob) -> Sent:
        body = self.body(job)
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.secret, timestamp, body),
                   "Idempotency-Key": job.job_key}
        try:
            async with self.session.post(self.url, data=body, headers=headers) as resp:
                text = await resp.text(errors="replace")
                if 200 <= resp.status < 300:
                    return Sent(f"webhook:{resp.status}")
                raise http_error(resp.status, resp.headers.get("Retry-After"), text)
        except aiohttp.ClientError as exc:
            raise connection_error(exc) from exc
