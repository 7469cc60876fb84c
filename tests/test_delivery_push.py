"""Push (FCM HTTP v1, Web Push) and the 112 desk's webhook against local servers that check
the wire contract: tokens from the service-account flow, encrypted payloads that decrypt,
VAPID and HMAC signatures that verify; a dead push token switches the person's push off."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import http_ece
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import SecretStr

from consumers.sinks.push import BODY_MAX, TITLE_MAX
from consumers.sinks.spec import build_sink
from consumers.sinks.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from deploy.topics import create_topics
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import Channel, Subscriber
from schemas.topics import SUBSCRIBERS
from tests.delivery_helpers import (
    delivering,
    final_status,
    make_job,
    outcomes,
    publish_jobs,
    settings_for,
)
from tests.gateways import Received, gateway
from tests.kafka_helpers import read_topic, wait_for

pytestmark = pytest.mark.kafka
PROJECT = "kentongan-test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def publish_subscribers(bootstrap: str, prefix: str, people: list[Subscriber]) -> None:
    with Publisher(bootstrap, prefix=prefix) as publisher:
        for person in people:
            publisher.send(SUBSCRIBERS, person.subscriber_id, person)


def latest_subscribers(bootstrap: str, prefix: str, count: int) -> dict[str, Subscriber]:
    records = read_topic(bootstrap, SUBSCRIBERS.full_name(prefix),
                         partitions=SUBSCRIBERS.partitions, min_count=count, timeout_s=15)
    return {r.key.decode(): decode(Subscriber, r.value) for r in records}


def settle(bootstrap: str, prefix: str, keys: int) -> dict[str, str]:
    assert wait_for(lambda: len(final_status(outcomes(bootstrap, prefix, keys=keys,
                                                      timeout_s=0))) >= keys, 40)
    return final_status(outcomes(bootstrap, prefix, keys=keys))


def test_fcm_v1_with_the_service_account_token_flow_and_a_dead_token_switched_off(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    problems: list[str] = []
    tokens_issued: list[str] = []

    async def fcm(got: Received, request: web.Request) -> web.StreamResponse:
        if got.path == "/token":
            form = {k: v[0] for k, v in parse_qs(got.body.decode()).items()}
            header, claims, signature = form["assertion"].split(".")
            try:
                key.public_key().verify(unb64url(signature), f"{header}.{claims}".encode(),
                                        padding.PKCS1v15(), hashes.SHA256())
            except Exception:
                problems.append("assertion signature does not verify")
                return web.json_response({"error": "invalid_grant"}, status=400)
            body = json.loads(unb64url(claims))
            if (form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer"
                    or body["aud"] != f"{gw.url}/token" or body["iss"] != "deliver@test"
                    or "firebase.messaging" not in body["scope"]):
                problems.append(f"bad assertion claims {body}")
            tokens_issued.append(f"ya29.token-{len(tokens_issued)}")
            return web.json_response({"access_token": tokens_issued[-1], "expires_in": 3600,
                                      "token_type": "Bearer"})
        if got.path != f"/v1/projects/{PROJECT}/messages:send":
            return web.Response(status=404)
        if got.headers.get("Authorization") != f"Bearer {tokens_issued[-1]}":
            return web.json_response({"error": {"status": "UNAUTHENTICATED"}}, status=401)
        message = json.loads(got.body)["message"]
        note = message["notification"]
        if not (0 < len(note["title"]) <= TITLE_MAX and 0 < len(note["body"]) <= BODY_MAX):
            problems.append(f"notification out of limits: {note}")
        if message["android"]["priority"] not in ("high", "normal"):
            problems.append("android priority")
        if message["token"] == "dead-token":
            return web.json_response({"error": {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "UNREGISTERED"}]}}, status=404)
        return web.json_response({"name": f"projects/{PROJECT}/messages/{message['token']}"})

    people = [Subscriber(subscriber_id=f"p{n}", push_token=token, areas=["52.71.01.1004"],
                         channels=[Channel.SMS, Channel.PUSH], phone=f"+6281200000{n:03d}")
              for n, token in enumerate(["good-token-1", "dead-token", "good-token-2"])]
    publish_subscribers(kafka_bootstrap, topic_prefix, people)
    jobs = [make_job(n, channel=Channel.PUSH, recipient=p.push_token,
                     subscriber_id=p.subscriber_id, text="[KENTONGAN] SIAGA banjir. " + "x" * 400)
            for n, p in enumerate(people)]
    with gateway(fcm) as gw:
        account = tmp_path / "service-account.json"
        account.write_text(json.dumps({
            "type": "service_account", "project_id": PROJECT, "client_email": "deliver@test",
            "token_uri": f"{gw.url}/token", "private_key": key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode()}), encoding="utf-8")
        settings = settings_for(kafka_bootstrap, topic_prefix, fcm_service_account_file=account,
                                fcm_base_url=gw.url)
        publish_jobs(kafka_bootstrap, topic_prefix, jobs)
        with delivering(Channel.PUSH, build_sink(Channel.PUSH, f"fcm:{PROJECT}", settings),
                        settings):
            final = settle(kafka_bootstrap, topic_prefix, 3)
    assert problems == []
    assert len(tokens_issued) == 1  # cached, not fetched per message
    assert [final[j.job_key] for j in jobs] == ["delivered", "failed", "delivered"]
    after = latest_subscribers(kafka_bootstrap, topic_prefix, 4)["p1"]
    assert (after.active, after.channels, after.push_token) == (True, [Channel.SMS], None)


def test_web_push_payload_decrypts_with_the_subscription_keys_and_vapid_verifies(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    browser_key = ec.generate_private_key(ec.SECP256R1())
    auth_secret = os.urandom(16)
    vapid_key = ec.generate_private_key(ec.SECP256R1())
    vapid_public = vapid_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    decrypted: list[dict[str, Any]] = []
    problems: list[str] = []

    async def push_service(got: Received, request: web.Request) -> web.StreamResponse:
        scheme, _, params = got.headers.get("Authorization", "").partition(" ")
        fields = dict(part.split("=", 1) for part in params.split(","))
        token, k = fields.get("t", ""), fields.get("k", "")
        head, claims, signature = token.split(".")
        raw = unb64url(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k)).verify(
                der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except Exception:
            problems.append("VAPID signature does not verify")
        body = json.loads(unb64url(claims))
        if (scheme != "vapid" or unb64url(k) != vapid_public or body["aud"] != gw.url
                or body["exp"] < time.time() or not body["sub"].startswith("mailto:")):
            problems.append(f"bad VAPID {scheme} {body}")
        if got.path == "/push/gone":
            return web.Response(status=410)
        headers = {name.lower(): value for name, value in got.headers.items()}
        if headers.get("content-encoding") != "aes128gcm" or not headers.get("ttl"):
            problems.append(f"headers {sorted(headers)}")
        plain = http_ece.decrypt(got.body, private_key=browser_key, auth_secret=auth_secret,
                                 version="aes128gcm")
        decrypted.append(json.loads(plain))
        return web.Response(status=201)

    def subscription(path: str) -> str:
        p256dh = browser_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return json.dumps({"endpoint": f"{gw.url}{path}",
                           "keys": {"p256dh": b64url(p256dh), "auth": b64url(auth_secret)}})

    with gateway(push_service) as gw:
        people = [Subscriber(subscriber_id=f"w{n}", push_token=subscription(path),
                             areas=["52.71.01.1004"], channels=[Channel.PUSH])
                  for n, path in enumerate(["/push/a", "/push/gone"])]
        publish_subscribers(kafka_bootstrap, topic_prefix, people)
        jobs = [make_job(n, channel=Channel.PUSH, recipient=p.push_token,
                         subscriber_id=p.subscriber_id) for n, p in enumerate(people)]
        settings = settings_for(kafka_bootstrap, topic_prefix,
                                vapid_subject="mailto:ops@kentongan.example",
                                vapid_private_key=SecretStr(b64url(
                                    vapid_key.private_numbers().private_value.to_bytes(32))))
        publish_jobs(kafka_bootstrap, topic_prefix, jobs)
        with delivering(Channel.PUSH, build_sink(Channel.PUSH, "webpush:", settings), settings):
            final = settle(kafka_bootstrap, topic_prefix, 2)
    assert problems == []
    assert [final[j.job_key] for j in jobs] == ["delivered", "failed"]
    assert [(d["job_key"], d["title"], d["body"]) for d in decrypted] == [
        (jobs[0].job_key, "Kentongan: peringatan", jobs[0].text)]
    gone = latest_subscribers(kafka_bootstrap, topic_prefix, 3)["w1"]
    assert gone.channels == [] and gone.push_token is None


def test_the_112_desk_webhook_is_signed_and_the_signature_verifies(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    secret = "desk-shared-secret"
    accepted: list[dict[str, Any]] = []

    async def desk(got: Received, request: web.Request) -> web.StreamResponse:
        why = verify(secret.encode(), got.headers.get(TIMESTAMP_HEADER),
                     got.headers.get(SIGNATURE_HEADER), got.body)
        if why is not None:
            return web.Response(status=401, text=why)
        accepted.append(json.loads(got.body))
        return web.Response(status=204)

    jobs = [make_job(n, channel=Channel.CALLCENTRE, recipient="112-desk",
                     incident=f"INC-52.71.01.1004-hydromet-{n}") for n in range(3)]
    with gateway(desk) as gw:
        settings = settings_for(kafka_bootstrap, topic_prefix,
                                webhook_secret=SecretStr(secret))
        publish_jobs(kafka_bootstrap, topic_prefix, jobs)
        with delivering(Channel.CALLCENTRE,
                        build_sink(Channel.CALLCENTRE, f"webhook:{gw.url}/incidents", settings),
                        settings):
            final = settle(kafka_bootstrap, topic_prefix, 3)
    assert set(final.values()) == {"delivered"}
    assert sorted(a["job_key"] for a in accepted) == sorted(j.job_key for j in jobs)
