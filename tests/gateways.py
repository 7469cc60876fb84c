"""Local HTTP gateways for delivery tests: real aiohttp servers on 127.0.0.1, in a thread.

Each records what it received; a behaviour function decides the answer per request, so a test
can play a gateway that is slow, refuses, rate-limits or times out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    at: float


@dataclass
class Gateway:
    url: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self, header: str = "Idempotency-Key") -> list[str]:
        with self.lock:
            return [r.headers.get(header, "") for r in self.received]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


Handler = Callable[[Received, web.Request], Awaitable[web.StreamResponse]]


async def accept(_: Received, __: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "accepted"}, status=202)


@contextmanager
def gateway(handler: Handler = accept, *, record: bool = True) -> Iterator[Gateway]:
    """Serve ``handler`` for every path on a free port until the block ends."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    box: dict[str, object] = {}

    async def any_request(request: web.Request) -> web.StreamResponse:
        got = Received(request.path, dict(request.headers), dict(request.query),
                       await request.read(), time.monotonic())
        gw: Gateway = box["gateway"]  # type: ignore[assignment]
        response = await handler(got, request)
        # Recorded once answered, so a request the client gave up on still counts as sent.
        if record:
            with gw.lock:
                gw.received.append(got)
        return response

    async def serve() -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", any_request)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        box["gateway"] = Gateway(f"http://127.0.0.1:{port}")
        box["runner"] = runner
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    ready.wait(10)
    try:
        yield box["gateway"]  # type: ignore[misc]
    finally:
        runner: web.AppRunner = box["runner"]  # type: ignore[assignment]
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
