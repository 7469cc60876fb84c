"""Run the faust app as a long-lived worker process (``kentongan worker``)."""

from __future__ import annotations

import faust
from prometheus_client import start_http_server

from schemas.settings import Settings
from stream_processors.app import create_app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="127.0.0.1")
    app = create_app(settings)
    # faust creates only the last path component of its datadir.
    app.conf.datadir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Blocks until SIGINT/SIGTERM; faust stops its agents and commits offsets on the way out.
    worker.execute_from_commandline()
