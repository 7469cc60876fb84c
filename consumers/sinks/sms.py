"""SMS sinks: Kannel's HTTP ``sendsms`` (with delivery reports), and a generic JSON gateway."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import aiohttp

from consumers.sinks.base import HttpSink, Sent, connection_error, http_error
from schemas.events import DeliveryJob

# GSM 03.38 default alphabet and its extension table: text made only of these goes as 7-bit
# (160 characters a part); anything else as UCS-2 (70 a part).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_GSM7 = frozenset(GSM7_BASIC + GSM7_EXTENSION)


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 for ch in text)


# Kannel dlr-mask bits: 1 delivered to phone, 2 not delivered to phone, 4 queued on SMSC,
# 8 delivered to SMSC, 16 not delivered to SMSC. We ask for the final ones.
DLR_DELIVERED, DLR_UNDELIVERED, DLR_QUEUED, DLR_SMSC_ACK, DLR_SMSC_NACK = 1, 2, 4, 8, 16
DLR_MASK = DLR_DELIVERED | DLR_UNDELIVERED | DLR_SMSC_NACK


class DlrSigner:
    """The job key travels in the dlr-url, base64url (no '%': Kannel reserves it for its own
    placeholders) with an HMAC, so only Kannel's callbacks for our own jobs are believed."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, job_key: str) -> str:
        key = base64.urlsafe_b64encode(job_key.encode()).decode().rstrip("=")
        mac = hmac.new(self._secret, job_key.encode(), hashlib.sha256).digest()[:16]
        return f"{key}/{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def job_key(self, key_part: str, mac_part: str) -> str | None:
        try:
            job_key = base64.urlsafe_b64decode(key_part + "=" * (-len(key_part) % 4)).decode()
            mac = base64.urlsafe_b64decode(mac_part + "=" * (-len(mac_part) % 4))
        except (ValueError, UnicodeDecodeError):
            return None
        expected = hmac.new(self._secret, job_key.encode(), hashlib.sha256).digest()[:16]
        return job_key if hmac.compare_digest(mac, expected) else None


class KannelSink(HttpSink):
    """Kannel smsbox ``/cgi-bin/sendsms``. 202 means Kannel queued it; the SMSC's delivery
    report comes back later on the dlr-url (served by ``consumers.dlr``)."""

    name = "kannel"

    def __init__(self, url: str, *, username: str, password: str, sender: str | None,
                 signer: DlrSigner, concurrency: int = 64, timeout_s: float = 10.0) -> None:
        super().__init__(concurrency=concurrency, timeout_s=timeout_s)
        parts = urlsplit(url)
        self.url = url if parts.path not in ("", "/") else url.rstrip("/") + "/cgi-bin/sendsms"
        self.username, self.password, self.sender = username, password, sender
        self.signer = signer
        self.dlr_base: str | None = None  # set by the runner once the DLR listener is up

    def params(self, job: DeliveryJob) -> dict[str, str]:
        params = {"username": self.username, "password": self.password, "to": job.recipient,
                  "text": job.text, "charset": "UTF-8"}
        if not is_gsm7(job.text):
            params["coding"] = "2"  # UCS-2; Kannel converts from the UTF-8 we send
        if self.sender:
            params["from"] = self.sender
        if self.dlr_base:
            params["dlr-mask"] = str(DLR_MASK)
            params["dlr-url"] = (f"{self.dlr_base}/dlr/{self.signer.token(job.job_key)}"
                                 "?type=%d&smsc=%i")
        return params

    async def send(self, job: DeliveryJob) -> Sent:
        try:
            async with self.session.get(self.url, params=self.params(job)) as resp:
                body = await resp.text(errors="replace")
                if resp.status in (200, 202):
                    # "0: Accepted for delivery" or "3: Queued for later delivery".
                    return Sent(f"kannel:{body.strip()[:40]}", accepted_only=bool(self.dlr_base))
                raise http_error(resp.status, resp.headers.get("Retry-After"), body)
        except aiohttp.ClientError as exc:
            raise connection_error(exc) from exc


class HttpSmsSink(HttpSink):
    """A generic HTTP SMS gateway: ``POST URL`` with a JSON body; ``Idempotency-Key`` is the
    job key, so a gateway that honours it never sends a message twice, even after our crash."""

    name = "http-sms"

    def __init__(self, url: str, *, token: str | None = None, concurrency: int = 64,
                 timeout_s: float = 10.0) -> None:
        super().__init__(concurrency=concurrency, timeout_s=timeout_s)
        self.url, self.token = url, token

    async def send(self, job: DeliveryJob) -> Sent:
        body = json.dumps({"to": job.recipient, "text": job.text, "reference": job.job_key,
                           "unicode": not is_gsm7(job.text)}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": job.job_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with self.session.post(self.url, data=body, headers=headers) as resp:
                text = await resp.text(errors="replace")
                if 200 <= resp.status < 300:
                    return Sent(f"http:{resp.status}")
                raise http_error(resp.status, resp.headers.get("Retry-After"), text)
        except aiohttp.ClientError as exc:
            raise connection_error(exc) from exc
