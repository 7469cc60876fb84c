"""Test doubles for the BMKG producers: a local HTTP server serving recorded files, a
publisher that records instead of sending (for unit tests without a broker), hostile XML."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel

from schemas.topics import TopicSpec


def billion_laughs(root: str, xmlns: str = "") -> bytes:
    """An XML bomb ("billion laughs"): ``<root>`` holds an entity expanding to 10^9 "lol"s."""
    entities = "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    attribute = f' xmlns="{xmlns}"' if xmlns else ""
    return (f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY lol0 "lol">{entities}]>'
            f"<{root}{attribute}>&lol9;</{root}>").encode()


@dataclass
class Route:
    status: int
    body: bytes
    etag: str | None = None
    content_type: str = "application/xml"


@dataclass
class FakeBmkg:
    """path (with query) -> Route; records every request path and its headers."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@contextmanager
def serve(fake: FakeBmkg) -> Iterator[FakeBmkg]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = dict(self.headers.items())
            fake.requests.append((self.path, headers))
            route = fake.routes.get(self.path) or Route(404, b"Not Found", None, "text/plain")
            if route.etag and headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.send_header("ETag", route.etag)
                self.end_headers()
                return
            self.send_response(route.status)
            if route.etag:
                self.send_header("ETag", route.etag)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class RecordingPublisher:
    """Duck-types ``producers.publisher.Publisher`` for unit tests."""

    prefix: str = ""
    sent: list[tuple[str, str | None, Any]] = field(default_factory=list)
    letters: list[dict[str, Any]] = field(default_factory=list)

    def send(self, spec: TopicSpec, key: str | None, value: BaseModel | bytes) -> None:
        self.sent.append((spec.name, key, value))

    def dead_letter(self, **kwargs: Any) -> None:
        self.letters.append(kwargs)

    def flush(self, timeout: float | None = 30.0) -> None:
        pass
