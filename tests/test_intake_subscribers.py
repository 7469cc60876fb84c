"""Subscriptions from the app (``POST``/``DELETE /subscribers``) and from a CSV import
(``kentongan subscribers import``), on a real broker: on the compacted ``subscribers`` topic
before the answer, idempotent, and refused with a reason when wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.cli import main
from deploy.topics import create_topics
from producers.intake.kannel import subscriber_id_for
from schemas.codec import decode
from schemas.events import Channel, DeadLetter, Subscriber
from schemas.topics import DEADLETTER, SUBSCRIBERS
from tests.kafka_helpers import read_topic
from tests.test_intake_api import APP_KEY, CC_KEY, Intake, intake  # noqa: F401  (fixture)

pytestmark = pytest.mark.kafka


def subscribers_on(found: Intake, min_count: int) -> list[Any]:
    topic = found.topic.replace("reports.raw", SUBSCRIBERS.name)
    return read_topic(found.bootstrap, topic, partitions=SUBSCRIBERS.partitions,
                      min_count=min_count, timeout_s=5)


def post(found: Intake, body: dict[str, Any], key: str = APP_KEY) -> httpx.Response:
    return httpx.post(f"{found.url}/subscribers", json=body, headers={"X-API-Key": key})


def test_the_app_subscribes_a_person_and_the_record_is_on_kafka_before_the_answer(
    intake: Intake,  # noqa: F811
) -> None:
    body = {"phone": "0812-3456-7890", "areas": ["52.71.01.1004"], "language": "en",
            "channels": ["sms", "push"], "push_token": "fcm-abc"}
    answer = post(intake, body)
    assert answer.status_code == 200, answer.text
    sid = subscriber_id_for("+6281234567890")
    assert answer.json() == {"subscriber_id": sid, "areas": ["52.71.01.1004"],
                             "channels": ["sms", "push"], "language": "en"}
    [record] = subscribers_on(intake, 1)
    assert record.key == sid.encode()
    stored = decode(Subscriber, record.value)
    assert (stored.phone, stored.push_token, stored.channels) == (
        "+6281234567890", "fcm-abc", [Channel.SMS, Channel.PUSH])
    # Idempotent: the same body again is the same record (compaction keeps one).
    again = post(intake, body)
    assert again.json() == answer.json()
    records = subscribers_on(intake, 2)
    assert len({(r.key, r.value) for r in records}) == 1


def test_deleting_a_subscriber_puts_a_tombstone_and_is_idempotent(
    intake: Intake,  # noqa: F811
) -> None:
    sid = post(intake, {"phone": "081234567890", "areas": ["52.71.01.1004"]}).json()[
        "subscriber_id"]
    for _ in range(2):
        gone = httpx.delete(f"{intake.url}/subscribers/{sid}", headers={"X-API-Key": APP_KEY})
        assert gone.status_code == 204
    records = subscribers_on(intake, 3)
    assert [(r.key, r.value is None) for r in records] == [
        (sid.encode(), False), (sid.encode(), True), (sid.encode(), True)]


def test_wrong_subscriptions_are_refused_with_the_field_and_nothing_reaches_kafka(
    intake: Intake,  # noqa: F811
) -> None:
    unknown = post(intake, {"phone": "081234567890", "areas": ["52.71.99.9999"]})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == [
        "body", "areas"]
    bad_phone = post(intake, {"phone": "12345", "areas": ["52.71.01.1004"]})
    assert bad_phone.status_code == 422 and bad_phone.json()["detail"][0]["loc"] == [
        "body", "phone"]
    assert post(intake, {"areas": ["52.71.01.1004"]}).status_code == 422  # sms, no phone
    assert post(intake, {"phone": "081234567890", "areas": ["52.71.01.1004"]},
                key=CC_KEY).status_code == 403
    assert post(intake, {"phone": "081234567890", "areas": ["52.71.01.1004"]},
                key="nope").status_code == 401
    assert httpx.delete(f"{intake.url}/subscribers/x", headers={"X-API-Key": CC_KEY}
                        ).status_code == 403
    assert subscribers_on(intake, 0) == []


def test_a_csv_import_publishes_good_rows_and_dead_letters_bad_ones_by_line(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("KENTONGAN_TOPIC_PREFIX", topic_prefix)
    people = tmp_path / "people.csv"
    assert main(["subscribers", "generate", "--total", "40", "--seed", "3",
                 "--out", str(people)]) == 0
    assert "ASSUMPTION" in capsys.readouterr().err
    with people.open("a", encoding="utf-8") as out:
        out.write("0812999,52.71.01.1004,id,sms,\n")  # line 42: not a phone
    assert main(["subscribers", "import", str(people)]) == 1
    captured = capsys.readouterr()
    assert "imported 40 subscribers from 41 rows; 1 bad rows" in captured.out
    assert "people.csv: line 42: phone:" in captured.err and "0812999" not in captured.err
    records = read_topic(kafka_bootstrap, SUBSCRIBERS.full_name(topic_prefix),
                         partitions=SUBSCRIBERS.partitions, min_count=40, timeout_s=10)
    assert len(records) == 40
    assert all(decode(Subscriber, r.value).subscriber_id == r.key.decode() for r in records)
    [letter] = [decode(DeadLetter, r.value) for r in read_topic(
        kafka_bootstrap, DEADLETTER.full_name(topic_prefix), partitions=1, min_count=1)]
    assert (letter.stage, letter.key, letter.value) == (
        "import-subscribers", "people.csv:42", "0812999,52.71.01.1004,id,sms,")
