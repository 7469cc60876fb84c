"""Prometheus metrics of the delivery consumers. Labels never carry recipients or text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = Counter(
    "kentongan_delivery_outcomes_total", "Delivery outcomes, by channel and status",
    ["channel", "status"],
)
DEADLETTERS = Counter(
    "kentongan_delivery_deadletters_total", "Delivery records dead-lettered, by channel",
    ["channel"],
)
RETRIES = Counter(
    "kentongan_delivery_retries_total", "Send attempts that will be tried again", ["channel"],
)
IN_FLIGHT = Gauge(
    "kentongan_delivery_in_flight", "Jobs being sent right now", ["channel"],
)
QUEUED = Gauge(
    "kentongan_delivery_queued", "Jobs read and waiting to be sent (incl. retries)", ["channel"],
)
GROUP_COMMIT_SECONDS = Histogram(
    "kentongan_delivery_group_commit_seconds",
    "Ledger + outcomes flushed and offsets committed, per group commit", ["channel"],
)
BROKER_RETRIES = Counter(
    "kentongan_delivery_broker_retries_total",
    "Records produced again because the broker did not take them", ["channel"],
)
