"""The polite fetcher against a real local HTTP server (never BMKG)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from producers.bmkg.http import (
    REQUESTS_PER_MINUTE,
    FetchError,
    HttpFetcher,
    TokenBucket,
    user_agent,
)

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Script:
    """What the server answers, in order per path (the last answer repeats), and what it saw."""

    answers: dict[str, list[Callable[[dict[str, str]], Reply]]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k: v for k, v in self.headers.items()}
            script.seen.append((self.path, headers))
            queue = script.answers.get(self.path)
            extra: dict[str, str] = {}
            if not queue:
                status, body = 404, b'{"message":"Data not found"}'
            else:
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                status, extra, body = answer(headers)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client timed out on purpose
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def reply(status: int, body: bytes = b"", **headers: str) -> Callable[[dict[str, str]], Reply]:
    return lambda _: (status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def fetcher(sleeps: list[float], **kwargs: Any) -> HttpFetcher:
    fast = TokenBucket(1000.0, 1000.0)
    return HttpFetcher(bucket=fast, sleep=sleeps.append, rng=lambda: 1.0, **kwargs)


def test_it_names_itself_and_a_contact(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers["/x"] = [reply(200, b"ok")]
    sleeps: list[float] = []
    fetch = HttpFetcher(user_agent=user_agent("https://example.org/contact"),
                        bucket=TokenBucket(100.0, 10.0), sleep=sleeps.append)
    assert fetch.get(f"{base}/x").body == b"ok"
    agent = script.seen[0][1]["User-Agent"]
    assert agent.startswith("Kentongan/") and "https://example.org/contact" in agent


def test_etag_turns_an_unchanged_document_into_not_modified(server: tuple[str, Script]) -> None:
    base, script = server

    def conditional(headers: dict[str, str]) -> Reply:
        if headers.get("If-None-Match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return 200, {"ETag": '"v1"', "Content-Type": "application/json"}, b"{}"

    script.answers["/f"] = [conditional]
    fetch = fetcher([])
    first = fetch.get(f"{base}/f")
    assert first.ok and first.etag == '"v1"' and first.content_type == "application/json"
    second = fetch.get(f"{base}/f")
    assert second.not_modified and second.body == b""
    assert script.seen[1][1]["If-None-Match"] == '"v1"'
    fetch.forget(f"{base}/f")
    assert fetch.get(f"{base}/f").ok
    assert "If-None-Match" not in script.seen[2][1]
    assert "If-None-Match" not in {k for k, _ in script.seen[0][1].items()}


def test_5xx_is_retried_with_exponential_backoff(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers["/r"] = [reply(503), reply(502), reply(500), reply(200, b"finally")]
    sleeps: list[float] = []
    result = fetcher(sleeps, base_delay_s=1.0).get(f"{base}/r")
    assert result.body == b"finally"
    assert sleeps == [1.0, 2.0, 4.0]  # rng = 1.0: the top of each full-jitter window


def test_full_jitter_draws_below_the_window() -> None:
    draws = iter([0.0, 0.5, 0.25])
    fetch = HttpFetcher(rng=lambda: next(draws), base_delay_s=2.0, max_delay_s=5.0)
    assert [fetch._backoff(1), fetch._backoff(2), fetch._backoff(5)] == [0.0, 2.0, 1.25]


def test_429_honours_retry_after_seconds_and_dates(server: tuple[str, Script]) -> None:
    base, script = server
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    script.answers["/slow"] = [reply(429, Retry_After="7"), reply(429, Retry_After=later),
                               reply(200, b"ok")]
    sleeps: list[float] = []
    fetch = fetcher(sleeps, base_delay_s=0.1, now=lambda: now)
    assert fetch.get(f"{base}/slow").ok
    assert sleeps == [7.0, 30.0]


def test_404_is_returned_not_retried(server: tuple[str, Script]) -> None:
    base, script = server
    sleeps: list[float] = []
    result = fetcher(sleeps).get(f"{base}/missing")
    assert result.status == 404 and b"Data not found" in result.body
    assert len(script.seen) == 1 and sleeps == []


def test_connection_errors_give_up_after_max_attempts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    sleeps: list[float] = []
    with pytest.raises(FetchError, match="ConnectionError"):
        fetcher(sleeps, max_attempts=3).get(f"http://127.0.0.1:{port}/x")
    assert sleeps == [1.0, 2.0]


def test_a_slow_server_times_out_and_is_retried(server: tuple[str, Script]) -> None:
    base, script = server

    def slow(_: dict[str, str]) -> Reply:
        time.sleep(0.6)
        return 200, {}, b"late"

    script.answers["/t"] = [slow]
    sleeps: list[float] = []
    with pytest.raises(FetchError, match="Timeout"):
        fetcher(sleeps, timeout=(1.0, 0.2), max_attempts=2).get(f"{base}/t")
    assert len(sleeps) == 1


def test_the_token_bucket_keeps_every_minute_under_bmkgs_limit() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket.per_minute(REQUESTS_PER_MINUTE, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(200):
        bucket.acquire()
        stamps.append(now[0])
    for i, start in enumerate(stamps):
        in_window = sum(1 for t in stamps[i:] if t < start + 60.0)
        assert in_window <= 56 < 60  # burst 5 + 50/min (+1 at the window's edge)
    assert stamps[-1] == pytest.approx((200 - 5) * 60.0 / REQUESTS_PER_MINUTE)


def test_the_fetcher_waits_for_the_bucket(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers["/b"] = [reply(200, b"ok")]
    waits: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    bucket = TokenBucket(1.0, 1.0, clock=lambda: clock[0], sleep=sleep)
    fetch = HttpFetcher(bucket=bucket)
    for _ in range(3):
        fetch.get(f"{base}/b")
    assert waits == [pytest.approx(1.0), pytest.approx(1.0)]
