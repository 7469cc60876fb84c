"""Prometheus metrics of the stream stages. Labels are closed vocabularies, never free text."""

from __future__ import annotations

from prometheus_client import Counter

SIGNALS = Counter(
    "kentongan_signals_total", "Signals emitted, by source and hazard", ["source", "hazard"]
)
INCIDENTS = Counter(
    "kentongan_incident_versions_total", "Incident versions published, by change", ["change"]
)
JOBS = Counter("kentongan_delivery_jobs_total", "Delivery jobs planned, by channel", ["channel"])
DEADLETTERS = Counter(
    "kentongan_deadletters_total", "Records sent to the dead-letter topic, by stage", ["stage"]
)
