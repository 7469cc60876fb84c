"""``--sink KIND:ARG`` -> a sink. Secrets come from the settings (environment), never argv."""

from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path
from typing import Any

from consumers.sinks.base import Sink
from consumers.sinks.outbox import OutboxSink
from consumers.sinks.push import FcmSink, ServiceAccount, WebPushSink
from consumers.sinks.sms import DlrSigner, HttpSmsSink, KannelSink
from consumers.sinks.webhook import WebhookSink
from schemas.events import Channel
from schemas.settings import Settings

log = logging.getLogger(__name__)

KINDS = ("outbox", "kannel", "http", "fcm", "webpush", "webhook")
# Which sinks make sense on which channel.
CHANNEL_KINDS: dict[Channel, tuple[str, ...]] = {
    Channel.SMS: ("outbox", "kannel", "http"),
    Channel.PUSH: ("outbox", "fcm", "webpush"),
    Channel.CALLCENTRE: ("outbox", "webhook"),
}


class SinkSpecError(ValueError):
    pass


def parse_spec(spec: str) -> tuple[str, str]:
    kind, sep, arg = spec.partition(":")
    if kind not in KINDS or (not sep and kind != "webpush"):
        raise SinkSpecError(f"--sink {spec!r}: expected one of outbox:PATH, kannel:URL, "
                            "http:URL, fcm:PROJECT, webpush:, webhook:URL")
    return kind, arg


def dlr_signer(settings: Settings) -> DlrSigner:
    delivery = settings.delivery
    if delivery.dlr_secret is not None:
        return DlrSigner(delivery.dlr_secret.get_secret_value().encode())
    if delivery.kannel_password is not None:
        # Stable across restarts, so reports for messages sent before one are still believed.
        seed = b"kentongan-dlr\0" + delivery.kannel_password.get_secret_value().encode()
        return DlrSigner(hashlib.sha256(seed).digest())
    log.warning("no KENTONGAN_DELIVERY_DLR_SECRET: delivery reports for messages sent before "
                "a restart will be refused")
    return DlrSigner(secrets.token_bytes(32))


def build_sink(channel: Channel, spec: str, settings: Settings) -> Sink:
    kind, arg = parse_spec(spec)
    if kind not in CHANNEL_KINDS[channel]:
        raise SinkSpecError(f"--sink {kind} does not deliver {channel.value}; use one of "
                            + ", ".join(CHANNEL_KINDS[channel]))
    d = settings.delivery
    pool: dict[str, Any] = {"concurrency": d.concurrency, "timeout_s": d.request_timeout_s}
    if kind == "outbox":
        return OutboxSink(Path(arg) if arg else settings.outbox_path)
    if kind == "kannel":
        if d.kannel_password is None:
            raise SinkSpecError("--sink kannel needs KENTONGAN_DELIVERY_KANNEL_PASSWORD")
        return KannelSink(arg, username=d.kannel_username,
                          password=d.kannel_password.get_secret_value(), sender=d.kannel_from,
                          signer=dlr_signer(settings), **pool)
    if kind == "http":
        token = d.http_sms_token.get_secret_value() if d.http_sms_token else None
        return HttpSmsSink(arg, token=token, **pool)
    if kind == "fcm":
        if d.fcm_service_account_file is None:
            raise SinkSpecError("--sink fcm needs KENTONGAN_DELIVERY_FCM_SERVICE_ACCOUNT_FILE")
        return FcmSink(ServiceAccount.from_file(d.fcm_service_account_file),
                       project=arg or None, base_url=d.fcm_base_url, **pool)
    if kind == "webpush":
        if d.vapid_private_key is None:
            raise SinkSpecError("--sink webpush needs KENTONGAN_DELIVERY_VAPID_PRIVATE_KEY")
        return WebPushSink(d.vapid_private_key.get_secret_value(), subject=d.vapid_subject,
                           **pool)
    if d.webhook_secret is None:
        raise SinkSpecError("--sink webhook needs KENTONGAN_DELIVERY_WEBHOOK_SECRET")
    return WebhookSink(arg, secret=d.webhook_secret.get_secret_value().encode(), **pool)
