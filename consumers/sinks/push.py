"""Push sinks: FCM HTTP v1 (service-account OAuth2) and Web Push (RFC 8030/8291, VAPID)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from consumers.sinks.base import HttpSink, SendError, Sent, connection_error, http_error
from schemas.events import DeliveryJob

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM and APNs truncate long notifications; keep title and body within what a lock screen shows.
TITLE_MAX, BODY_MAX = 65, 240


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def notification_text(job: DeliveryJob) -> tuple[str, str]:
    """Title and body of a push: the first line (or sentence) of the alert is the title."""
    text = " ".join(job.text.split())
    title, _, rest = text.partition(". ")
    if not rest or len(title) > TITLE_MAX:
        title = "Kentongan: peringatan" if job.language == "id" else "Kentongan: warning"
        rest = text
    body = rest if len(rest) <= BODY_MAX else rest[: BODY_MAX - 1].rstrip() + "…"
    return title[:TITLE_MAX], body


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: rsa.RSAPrivateKey
    token_uri: str
    project_id: str

    @classmethod
    def from_file(cls, path: Path) -> ServiceAccount:
        data = json.loads(path.read_text(encoding="utf-8"))
        key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: the service account's private_key is not an RSA key")
        return cls(data["client_email"], key, data["token_uri"], data.get("project_id", ""))

    def assertion(self, now: float) -> str:
        """The JWT (RS256) exchanged at ``token_uri`` for an access token (RFC 7523)."""
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {"iss": self.client_email, "scope": FCM_SCOPE, "aud": self.token_uri,
                  "iat": int(now), "exp": int(now) + 3600}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self.private_key.sign(signing_input.encode(), padding.PKCS1v15(),
                                          hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class FcmSink(HttpSink):
    """``POST {base}/v1/projects/{project}/messages:send`` with a bearer token from the
    service-account flow, cached until shortly before it expires."""

    name = "fcm"

    def __init__(self, account: ServiceAccount, *, project: str | None = None,
                 base_url: str = "https://fcm.googleapis.com", concurrency: int = 64,
                 timeout_s: float = 10.0) -> None:
        super().__init__(concurrency=concurrency, timeout_s=timeout_s)
        self.account = account
        self.project = project or account.project_id
        if not self.project:
            raise ValueError("FCM needs a project id: --sink fcm:PROJECT or project_id in "
                             "the service-account file")
        self.url = f"{base_url.rstrip('/')}/v1/projects/{self.project}/messages:send"
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def access_token(self) -> str:
        async with self._token_lock:
            now = time.time()
            if self._token and self._token[1] - 60 > now:
                return self._token[0]
            form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": self.account.assertion(now)}
            try:
                async with self.session.post(self.account.token_uri, data=form) as resp:
                    text = await resp.text(errors="replace")
                    if resp.status != 200:
                        raise http_error(resp.status, resp.headers.get("Retry-After"),
                                         f"token endpoint: {text}")
                    answer = json.loads(text)
            except aiohttp.ClientError as exc:
                raise connection_error(exc) from exc
            self._token = (answer["access_token"], now + float(answer.get("expires_in", 3600)))
            return self._token[0]

    def message(self, job: DeliveryJob) -> dict[str, Any]:
        title, body = notification_text(job)
        urgent = job.level is not None and job.level.value in ("siaga", "awas")
        return {"message": {
            "token": job.recipient,
            "notification": {"title": title, "body": body},
            "data": {"incident_id": job.incident_id, "version": str(job.version),
                     "level": job.level.value if job.level else "", "job_key": job.job_key},
            "android": {"priority": "high" if urgent else "normal",
                        "collapse_key": job.incident_id, "ttl": "3600s"},
            "apns": {"headers": {"apns-priority": "10" if urgent else "5",
                                 "apns-collapse-id": job.incident_id[:64]}},
        }}

    async def send(self, job: DeliveryJob) -> Sent:
        token = await self.access_token()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self.session.post(self.url, json=self.message(job),
                                         headers=headers) as resp:
                text = await resp.text(errors="replace")
                if resp.status == 200:
                    return Sent(json.loads(text).get("name", "fcm:ok"))
                if resp.status == 401:
                    self._token = None  # revoked or expired early: fetch a new one, retry
                    raise SendError("HTTP 401: access token refused")
                error = _fcm_error(text)
                if resp.status == 404 or error in ("UNREGISTERED", "NOT_FOUND"):
                    raise SendError(f"HTTP {resp.status} {error}: token no longer valid",
                                    retryable=False, invalid_recipient=True)
                raise http_error(resp.status, resp.headers.get("Retry-After"), error or text)
        except aiohttp.ClientError as exc:
            raise connection_error(exc) from exc


def _fcm_error(text: str) -> str:
    """The FCM error code: details[].errorCode (v1), else error.status."""
    try:
        error = json.loads(text).get("error", {})
    except (ValueError, AttributeError):
        return ""
    for detail in error.get("details", []):
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))


class WebPushSink(HttpSink):
    """Web Push: the recipient is the browser's PushSubscription as JSON (endpoint + keys);
    the payload is encrypted with aes128gcm for those keys, the request signed with VAPID."""

    name = "webpush"

    def __init__(self, vapid_private_key: str, *, subject: str, ttl_s: int = 3600,
                 concurrency: int = 64, timeout_s: float = 10.0) -> None:
        super().__init__(concurrency=concurrency, timeout_s=timeout_s)
        self.vapid = Vapid.from_string(private_key=vapid_private_key)
        self.subject, self.ttl_s = subject, ttl_s

    def payload(self, job: DeliveryJob) -> bytes:
        title, body = notification_text(job)
        return json.dumps({"title": title, "body": body, "incident_id": job.incident_id,
                           "version": job.version, "level": job.level.value if job.level else None,
                           "job_key": job.job_key}, ensure_ascii=False).encode()

    async def send(self, job: DeliveryJob) -> Sent:
        try:
            subscription = json.loads(job.recipient)
            endpoint = subscription["endpoint"]
        except (ValueError, KeyError, TypeError):
            raise SendError("recipient is not a Web Push subscription (JSON with endpoint "
                            "and keys)", retryable=False, invalid_recipient=True) from None
        origin = "/".join(endpoint.split("/")[:3])
        claims: dict[str, str | int] = {"sub": self.subject, "aud": origin,
                                        "exp": int(time.time()) + 12 * 3600}
        headers = {**self.vapid.sign(claims), "Urgency": _urgency(job)}
        try:
            pusher = WebPusher(subscription, aiohttp_session=self.session)
            resp = await pusher.send_async(self.payload(job), headers, ttl=self.ttl_s,
                                           content_encoding="aes128gcm",
                                           timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        except WebPushException as exc:
            raise SendError(f"bad subscription: {exc.message}", retryable=False,
                            invalid_recipient=True) from exc
        except aiohttp.ClientError as exc:
            raise connection_error(exc) from exc
        assert not isinstance(resp, str)
        if resp.status in (200, 201, 202):
            return Sent(f"webpush:{resp.status}")
        if resp.status in (404, 410):
            raise SendError(f"HTTP {resp.status}: subscription expired", retryable=False,
                            invalid_recipient=True)
        raise http_error(resp.status, resp.headers.get("Retry-After"))


def _urgency(job: DeliveryJob) -> str:
    level = job.level.value if job.level else "waspada"
    return {"awas": "high", "siaga": "high"}.get(level, "normal")
