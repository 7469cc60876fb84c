"""The intake's pure parts and its HTTP rules without a broker (in-process ASGI client).

The broker-backed behaviour is in test_intake_api.py; here: rate rules, phone handling, SMS
commands, the 503 when Kafka does not acknowledge, and that no phone number reaches a log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from producers.intake.api import create_app, kannel_sender_e164, openapi_document
from producers.intake.kannel import decide, subscriber_id_for
from producers.intake.phones import InvalidPhone, normalize_reporter, safe_reporter_ref, to_e164
from producers.intake.ratelimit import RateLimiter
from producers.intake.server import ServerThread
from schemas.geography import load_geography
from schemas.reports import RateRule, ReportChannel
from schemas.settings import IntakeSettings

GEO = load_geography()
AT = datetime(2026, 11, 27, 6, 35, tzinfo=UTC)


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error:
            raise self.error


@dataclass
class FakePublisher:
    prefix: str = ""
    error: Exception | None = None
    sent: list[tuple[str, str | None, Any]] = field(default_factory=list)

    def send(self, spec: Any, key: str | None, value: Any, **options: Any) -> _Future:
        if self.error is None:
            self.sent.append((spec.name, key, value))
        return _Future(self.error)


@contextmanager
def serving(publisher: FakePublisher) -> Iterator[httpx.Client]:
    """The real uvicorn server around a fake publisher (no broker needed)."""
    config = IntakeSettings(app_api_key="k-app", callcentre_api_key="k-cc", kannel_secret="sec")
    app = create_app(config, publisher, geography=GEO)  # type: ignore[arg-type]  # duck-typed
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as http:
        yield http


BODY = {"reporter": "0812 3456 7890", "channel": "app", "text": "banjir di Turida",
        "reported_at": AT.isoformat()}


def test_rate_rules_are_data_and_every_rule_must_pass() -> None:
    limiter = RateLimiter({ReportChannel.APP: [RateRule(count=2, per_seconds=10),
                                               RateRule(count=3, per_seconds=100)]})
    assert [limiter.acquire(ReportChannel.APP, "a", t) for t in (0, 1)] == [None, None]
    assert limiter.acquire(ReportChannel.APP, "a", 2) == 8  # until the first ages out at 10
    assert limiter.acquire(ReportChannel.APP, "b", 2) is None  # per reporter
    assert limiter.acquire(ReportChannel.APP, "a", 10.5) is None  # third in 100 s
    assert limiter.acquire(ReportChannel.APP, "a", 20) == 80  # the 100 s rule now binds
    assert limiter.acquire(ReportChannel.SMS, "a", 20) is None  # no rules: no limit


def test_phone_numbers_become_e164_and_accounts_stay_as_they_are() -> None:
    assert to_e164("0812-3456-7890") == "+6281234567890"
    assert to_e164("+62 370 123456") == "+62370123456"
    assert normalize_reporter(" app-user-17 ") == "app-user-17"
    assert kannel_sender_e164("6281234567890") == "+6281234567890"
    assert kannel_sender_e164("081234567890") == "+6281234567890"
    with pytest.raises(InvalidPhone):
        to_e164("0812-34")
    assert safe_reporter_ref("0812-34") == safe_reporter_ref(" 0812-34")  # never raises


def test_sms_commands_decide_subscriptions_and_reports() -> None:
    phone = "+6281234567890"

    def run(text: str, known: list[str] | None = None) -> Any:
        return decide(phone_e164=phone, text=text, received_at=AT, stamp="t1",
                      geography=GEO, known_areas=known or [])

    subscribed = run("Daftar Kebon Sari", ["52.71.02.1008"])
    assert subscribed.subscriber.areas == ["52.71.01.1010", "52.71.02.1008"]
    assert subscribed.subscriber.subscriber_id == subscriber_id_for(phone)
    assert phone not in subscribed.subscriber.subscriber_id
    assert run("DAFTAR Ampenan").reply.startswith("Sebutkan kelurahan, mis. DAFTAR AMPENAN")
    stopped = run("berhenti", ["52.71.01.1010"])
    assert (stopped.subscriber.active, stopped.subscriber.areas) == (False, ["52.71.01.1010"])
    assert run("").reply.startswith("Kirim:")
    report = run("POHON TUMBANG di Gomong")
    assert report.report_id == run("POHON TUMBANG di Gomong").report_id  # Kannel retry: same id
    assert b'"channel": "sms"' in report.report_body
    for decision in (subscribed, stopped, report, run("DAFTAR x")):
        assert len(decision.reply) <= 160 and " / " in decision.reply  # ID first, then EN


def test_no_kafka_ack_is_a_503_with_retry_after_and_nothing_remembered() -> None:
    publisher = FakePublisher(error=TimeoutError("no ack"))
    with serving(publisher) as api:
        _retry_after_503(api, publisher)


def _retry_after_503(api: httpx.Client, publisher: FakePublisher) -> None:
    answer = api.post("/reports", json={**BODY, "report_id": "x1"}, headers={"X-API-Key": "k-app"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    publisher.error = None  # the client retries once Kafka is back: accepted, not a duplicate
    again = api.post("/reports", json={**BODY, "report_id": "x1"}, headers={"X-API-Key": "k-app"})
    assert again.status_code == 201 and not again.json()["duplicate"]


def test_no_phone_number_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    publisher = FakePublisher()
    with serving(publisher) as api, caplog.at_level(logging.DEBUG):
        api.post("/reports", json=BODY, headers={"X-API-Key": "k-app"})
        api.get("/sms/inbound", params={"secret": "sec", "sender": "+6281234567890",
                                        "text": "DAFTAR Turida"})
        api.get("/sms/inbound", params={"secret": "sec", "sender": "+6281234567890",
                                        "text": "banjir Turida"})
        metrics = api.get("/metrics").text
    assert [name for name, _, _ in publisher.sent] == ["reports.raw", "subscribers",
                                                      "reports.raw"]
    # The server side only: the test's own HTTP client (httpx) logs the URLs it calls.
    text = "\n".join(r.getMessage() for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))
    assert "accepted report" in text and "/sms/inbound" in text
    assert 'kentongan_intake_submissions_total{channel="app",outcome="accepted"}' in metrics
    assert 'kentongan_intake_sms_total{kind="subscribe"}' in metrics
    for digits in ("81234567890", "8123456789", "0812 3456 7890"):
        assert digits not in text and digits not in metrics


def test_the_kannel_callback_needs_the_shared_secret() -> None:
    with serving(FakePublisher()) as api:
        assert api.get("/sms/inbound", params={"sender": "0812345678901", "text": "x"}
                       ).status_code == 403
        assert api.get("/sms/inbound", params={"sender": "0812345678901", "text": "x"},
                       headers={"X-Kannel-Secret": "sec"}).status_code == 200


def test_the_openapi_document_describes_the_intake() -> None:
    document = openapi_document()
    post = document["paths"]["/reports"]["post"]
    assert {"200", "201", "401", "409", "413", "422", "429", "503"} <= set(post["responses"])
    assert "ReportSubmission" in document["components"]["schemas"]
