"""The intake through a real HTTP server (uvicorn) and a real Kafka broker.

What a client relies on: a 201 means the bytes it sent are on ``reports.raw``; the same report
twice is stored once; bad, oversized, unauthenticated and too-frequent submissions are refused
with a 4xx that says why, and none of them reaches Kafka.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy.topics import create_topics
from producers.intake.api import create_app
from producers.intake.server import ServerThread
from producers.publisher import Publisher
from producers.reports import IDENTITY_HEADER
from schemas.reports import RateRule, ReportChannel
from schemas.settings import IntakeSettings
from schemas.topics import INCIDENTS, REPORTS_RAW
from tests import factories
from tests.kafka_helpers import read_topic, wait_for

pytestmark = pytest.mark.kafka

APP_KEY, CC_KEY = "app-key-test", "callcentre-key-test"
ACCOUNT_SECRET = "app-account-signing-key"
AT = datetime(2026, 11, 27, 6, 35, tzinfo=UTC).isoformat()


@dataclass
class Intake:
    url: str
    bootstrap: str
    topic: str

    def post(self, body: Any, *, key: str | None = APP_KEY, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        headers.update(kwargs.pop("headers", {}))
        if isinstance(body, bytes):
            return httpx.post(f"{self.url}/reports", content=body,
                              headers={"Content-Type": "application/json", **headers}, **kwargs)
        return httpx.post(f"{self.url}/reports", json=body, headers=headers, **kwargs)

    def raw(self, min_count: int = 0, timeout_s: float = 10) -> list[Any]:
        return read_topic(self.bootstrap, self.topic, partitions=REPORTS_RAW.partitions,
                          min_count=min_count, timeout_s=timeout_s)


@pytest.fixture
def intake(kafka_bootstrap: str, topic_prefix: str) -> Iterator[Intake]:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    settings = IntakeSettings(
        app_api_key=APP_KEY, callcentre_api_key=CC_KEY, kannel_secret="s3cret",
        app_account_secret=ACCOUNT_SECRET,
        max_body_bytes=4096,
        rate_limits={ReportChannel.APP: [RateRule(count=3, per_seconds=60)],
                     ReportChannel.CALLCENTRE: [RateRule(count=100, per_seconds=60)]},
    )
    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        app = create_app(settings, publisher, follow_bootstrap=kafka_bootstrap)
        with ServerThread(app) as server:
            yield Intake(server.url, kafka_bootstrap, REPORTS_RAW.full_name(topic_prefix))


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"reporter": "0812-3456-7890", "channel": "app",
                            "text": "BANJIR AMPENAN SELATAN air setinggi lutut", "reported_at": AT}
    body.update(changes)
    return body


def test_a_valid_report_is_on_kafka_byte_for_byte_before_the_answer(intake: Intake) -> None:
    sent = b'{ "report_id": "app-1",  "reporter": "081234567890", "channel": "app",\n' \
           b'  "text": "pohon tumbang di Pagutan Barat", "reported_at": "' + AT.encode() + b'" }'
    answer = intake.post(sent)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"report_id": "app-1", "duplicate": False,
                             "state_url": "/reports/app-1"}
    assert answer.headers["location"] == "/reports/app-1"
    # The answer came after the broker's ack, so the record is already readable.
    records = intake.raw(min_count=1, timeout_s=5)
    assert [(r.key, r.value) for r in records] == [(b"app-1", sent)]

    state = httpx.get(f"{intake.url}/reports/app-1", headers={"X-API-Key": CC_KEY}).json()
    assert state["state"] == "located" and state["area_code"] == "52.71.02.1014"
    assert state["hazard"] == "fallen_tree" and state["incident_ids"] == []


def account_token(account: str) -> str:
    return hmac.new(ACCOUNT_SECRET.encode(), account.encode(), hashlib.sha256).hexdigest()


def test_the_intake_records_how_each_reporter_is_known(intake: Intake) -> None:
    """One app key cannot mint citizens: only an account the app signed counts as one."""
    signed = intake.post(report(report_id="id-1", reporter="akun-17"),
                         headers={"X-Account-Token": account_token("akun-17")})
    forged = intake.post(report(report_id="id-2", reporter="akun-18"),
                         headers={"X-Account-Token": account_token("akun-17")})
    bare = intake.post(report(report_id="id-3", reporter="akun-19"))
    agent = intake.post(report(report_id="id-4", channel="callcentre"), key=CC_KEY)
    assert [r.status_code for r in (signed, forged, bare, agent)] == [201] * 4
    kinds = {r.key.decode(): dict(r.headers)[IDENTITY_HEADER].decode()
             for r in intake.raw(min_count=4)}
    assert kinds == {"id-1": "app_account", "id-2": "unverified", "id-3": "unverified",
                     "id-4": "callcentre_ticket"}


def test_a_report_stamped_in_the_future_is_refused(intake: Intake) -> None:
    for year in (2999, 9999):
        answer = intake.post(report(reported_at=f"{year}-01-01T00:00:00+08:00"))
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "reported_at"]
    assert intake.raw(timeout_s=2) == []


def test_a_report_without_an_id_gets_one_and_its_key_on_kafka(intake: Intake) -> None:
    answer = intake.post(report())
    assert answer.status_code == 201
    report_id = answer.json()["report_id"]
    [record] = intake.raw(min_count=1)
    assert record.key == report_id.encode()
    assert "report_id" not in json.loads(record.value)  # as received; the key carries the id


def test_the_same_report_twice_is_accepted_once(intake: Intake) -> None:
    first = intake.post(report(report_id="dup-1"))
    again = intake.post(report(report_id="dup-1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"report_id": "dup-1", "duplicate": True,
                            "state_url": "/reports/dup-1"}
    by_key_1 = intake.post(report(), key=CC_KEY, headers={"Idempotency-Key": "call-77"})
    by_key_1b = intake.post(report(), key=CC_KEY, headers={"Idempotency-Key": "call-77"})
    assert (by_key_1.status_code, by_key_1b.status_code) == (403, 403)  # channel app, cc key
    cc = report(channel="callcentre")
    one = intake.post(cc, key=CC_KEY, headers={"Idempotency-Key": "call-77"})
    two = intake.post(cc, key=CC_KEY, headers={"Idempotency-Key": "call-77"})
    assert (one.status_code, two.status_code) == (201, 200)
    assert one.json()["report_id"] == two.json()["report_id"]
    conflict = intake.post(report(report_id="dup-1", text="kebakaran di Turida"))
    assert conflict.status_code == 409 and "dup-1" in conflict.json()["detail"]
    assert sorted(r.key for r in intake.raw(min_count=3, timeout_s=3)) == sorted(
        [b"dup-1", one.json()["report_id"].encode()])


@pytest.mark.parametrize(("body", "field"), [
    (report(channel="fax"), "channel"),
    ({k: v for k, v in report().items() if k != "reporter"}, "reporter"),
    (report(reported_at="2026-11-27T14:35:00"), "reported_at"),  # naive time
    (report(lat=-8.58), "lat and lon"),
    (report(reporter="0812-34"), "reporter"),  # phone-like but not a number
    (report(report_id="has space"), "report_id"),
    (report(colour="red"), "colour"),
    (report(text=""), "text"),
])
def test_malformed_reports_get_a_422_naming_the_field(
    intake: Intake, body: dict[str, Any], field: str
) -> None:
    answer = intake.post(body)
    assert answer.status_code == 422
    assert field in json.dumps(answer.json()), answer.text


def test_malformed_json_is_a_422_and_nothing_reaches_kafka(intake: Intake) -> None:
    assert intake.post(b'{"reporter": ').status_code == 422
    assert intake.post(report(channel="fax")).status_code == 422
    assert intake.raw(timeout_s=2) == []


def test_oversized_bodies_are_refused_with_413(intake: Intake) -> None:
    big = report(text="banjir " * 1000)
    assert intake.post(big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must still hold
        yield b'{"text": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    answer = httpx.post(f"{intake.url}/reports", content=chunks(),
                        headers={"X-API-Key": APP_KEY, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert intake.raw(timeout_s=2) == []


def test_unauthenticated_and_wrong_channel_submissions_are_refused(intake: Intake) -> None:
    assert intake.post(report(), key=None).status_code == 401
    assert intake.post(report(), key="guess").status_code == 401
    wrong = intake.post(report(channel="callcentre"), key=APP_KEY)
    assert wrong.status_code == 403 and "callcentre" in wrong.json()["detail"]
    assert httpx.get(f"{intake.url}/reports/x").status_code == 401
    assert intake.raw(timeout_s=2) == []


def test_a_reporter_over_the_limit_gets_429_with_retry_after(intake: Intake) -> None:
    codes = [intake.post(report(reporter="+62 812 1111 2222", text=f"banjir {i} Turida")
                         ).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    limited = intake.post(report(reporter="081211112222", text="banjir lagi di Turida"))
    assert limited.status_code == 429  # the same person, typed differently
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert intake.post(report(reporter="081299998888")).status_code == 201  # someone else
    assert len(intake.raw(min_count=4)) == 4


def test_report_state_follows_the_incident_that_includes_it(
    intake: Intake, kafka_bootstrap: str, topic_prefix: str
) -> None:
    assert intake.post(report(report_id="inc-1")).status_code == 201
    now = datetime.now(UTC)
    incident = factories.incident(
        incident_id="INC-52.71.01.1004-hydromet-1", opened_at=now, updated_at=now,
        report_ids=["inc-1"])
    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        publisher.send(INCIDENTS, incident.incident_id, incident)

    def attached() -> bool:
        state = httpx.get(f"{intake.url}/reports/inc-1", headers={"X-API-Key": APP_KEY}).json()
        return bool(state["state"] == "attached"
                    and state["incident_ids"] == [incident.incident_id])

    assert wait_for(attached, timeout_s=20)
    assert httpx.get(f"{intake.url}/reports/nope",
                     headers={"X-API-Key": APP_KEY}).status_code == 404


def test_run_intake_serves_as_its_own_process(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Any
) -> None:
    """What ``kentongan intake`` will run: settings from the environment, uvicorn, Kafka."""
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    port = ServerThread.free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap,
           "KENTONGAN_TOPIC_PREFIX": topic_prefix, "KENTONGAN_INTAKE_PORT": str(port),
           "KENTONGAN_INTAKE_APP_API_KEY": APP_KEY}
    log = (tmp_path / "intake.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", "from producers.intake.api import run_intake; "
         "from schemas.settings import Settings; run_intake(Settings())"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, timeout_s=30), (tmp_path / "intake.log").read_text()
        answer = httpx.post(f"http://127.0.0.1:{port}/reports", json=report(report_id="proc-1"),
                            headers={"X-API-Key": APP_KEY})
        assert answer.status_code == 201, answer.text
        [record] = read_topic(kafka_bootstrap, REPORTS_RAW.full_name(topic_prefix),
                              partitions=REPORTS_RAW.partitions, min_count=1, timeout_s=10)
        assert record.key == b"proc-1"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        log.close()
    assert "0812" not in (tmp_path / "intake.log").read_text()
