"""Prometheus metrics of the delivery consumers. Labels never carry recipients or text."""

from __future__ import annotations

from prometheus_client import Counter

OUTCOMES = Counter(
    "kentongan_delivery_outcomes_total", "Delivery outcomes, by channel and status",
    ["channel", "status"],
)
DEADLETTERS = Counter(
    "kentongan_delivery_deadletters_total", "Delivery records dead-lettered, by channel",
    ["channel"],
)
