"""The delivery pipeline: dedupe, retry, record; the outbox sink."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from consumers.notification_log import NotificationLog
from consumers.pipeline import DeliveryPipeline, RetryPolicy

from consumers.sinks import OutboxSink, SendError
from schemas.events import Channel, DeliveryJob, DeliveryStatus
from tests.factories import T0


def job(recipient: str = "+6281200000001", version: int = 1) -> DeliveryJob:
    return DeliveryJob(
        job_key=f"INC-1/{version}/{recipient}/sms", incident_id="INC-1", version=version,
        channel=Channel.SMS, recipient=recipient, subscriber_id="s1", area_code="52.71.01.1004",
        language="id", text="[KENTONGAN] PERINGATAN ...", created_at=T0,
    )


class FlakySink:
    name = "flaky"

    def __init__(self, failures: int, retryable: bool = True) -> None:
        self.failures, self.retryable, self.sent = failures, retryable, 0

    def send(self, job: DeliveryJob) -> str:
        if self.failures:
            self.failures -= 1
            raise SendError("gateway 503", retryable=self.retryable)
        self.sent += 1
        return "ok"


def pipeline(sink: object, tmp_path: Path, attempts: int = 3) -> DeliveryPipeline:
    return DeliveryPipeline(sink, NotificationLog(tmp_path / "log.jsonl"),  # type: ignore[arg-type]
                            RetryPolicy(attempts=attempts), sleep=lambda _: None)


def test_outbox_holds_one_object_per_message_with_the_contract_fields(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    outcome = pipeline(OutboxSink(outbox), tmp_path).deliver(job())
    assert outcome.status is DeliveryStatus.DELIVERED
    (line,) = outbox.read_text().splitlines()
    record = json.loads(line)
    assert record["recipient"] == "+6281200000001"
    assert (record["incident_id"], record["version"], record["channel"]) == ("INC-1", 1, "sms")
    assert record["text"].startswith("[KENTONGAN]")


def test_a_job_is_delivered_once_even_after_a_restart(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    pipeline(OutboxSink(outbox), tmp_path).deliver(job())
    restarted = pipeline(OutboxSink(outbox), tmp_path)  # reloads the notification log
    assert restarted.deliver(job()).status is DeliveryStatus.DUPLICATE
    assert restarted.deliver(job(version=2)).status is DeliveryStatus.DELIVERED
    assert len(outbox.read_text().splitlines()) == 2


def test_transient_failures_are_retried(tmp_path: Path) -> None:
    sink = FlakySink(failures=2)
    outcome = pipeline(sink, tmp_path).deliver(job())
    assert (outcome.status, outcome.attempts, sink.sent) == (DeliveryStatus.DELIVERED, 3, 1)


def test_gives_up_after_the_policy_and_reports_failure(tmp_path: Path) -> None:
    sink = FlakySink(failures=10)
    p = pipeline(sink, tmp_path)
    outcome = p.deliver(job())
    assert (outcome.status, outcome.attempts) == (DeliveryStatus.FAILED, 3)
    assert "503" in outcome.detail
    assert job().job_key not in p.log  # a failed job is not recorded, so it can be retried


def test_permanent_failures_are_not_retried(tmp_path: Path) -> None:
    outcome = pipeline(FlakySink(failures=1, retryable=False), tmp_path).deliver(job())
    assert (outcome.status, outcome.attempts) == (DeliveryStatus.FAILED, 1)


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_backoff_stays_within_its_ceiling(attempt: int) -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30)
    assert 0 <= policy.delay(attempt) <= min(30, 0.5 * 2 ** (attempt - 1))
