"""schemathesis against the intake's own OpenAPI document: no generated request gets a 5xx.

The real server (uvicorn) and a real broker, so generated valid reports really go to Kafka.
Bounded: at most 30 examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from deploy.topics import create_topics
from producers.intake.api import create_app
from producers.intake.server import ServerThread
from producers.publisher import Publisher
from schemas.reports import RateRule, ReportChannel
from schemas.settings import IntakeSettings

pytestmark = pytest.mark.kafka

KEY, SECRET = "schemathesis-app-key", "schemathesis-kannel"


@pytest.fixture
def intake_url(kafka_bootstrap: str, topic_prefix: str) -> Iterator[str]:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    generous = [RateRule(count=10_000, per_seconds=1)]  # find 5xx, not our own 429s
    intake = IntakeSettings(app_api_key=KEY, callcentre_api_key=KEY + "-cc",
                            kannel_secret=SECRET,
                            rate_limits={channel: generous for channel in ReportChannel})
    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher, \
            ServerThread(create_app(intake, publisher)) as server:
        yield server.url


def test_no_generated_request_gets_a_server_error(intake_url: str) -> None:
    # schemathesis.pytest.from_fixture does not work with pytest 9 (it reads Function._nodeid),
    # so each operation's hypothesis strategy is driven directly.
    schema = schemathesis.openapi.from_url(f"{intake_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result.err()}"
        operations.append(result.ok())
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "POST /reports", "GET /reports/{report_id}", "GET /sms/inbound", "POST /subscribers",
        "DELETE /subscribers/{subscriber_id}"}
    statuses: set[int] = set()
    calls: dict[str, int] = {}
    for operation in operations:
        _explore(operation, f"{operation.method.upper()} {operation.path}", calls, statuses)
    assert min(calls.values()) >= 10, calls  # the run really explored every operation
    assert 201 in statuses, "some generated reports must have been accepted (and sent to Kafka)"


def _explore(operation: Any, name: str, calls: dict[str, int], statuses: set[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def no_server_error(case: Any) -> None:
        response = case.call(headers={"X-API-Key": KEY, "X-Kannel-Secret": SECRET})
        calls[name] = calls.get(name, 0) + 1
        statuses.add(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.text)

    no_server_error()
