"""The topic catalogue: each topic's name, key, value model, partitions, cleanup; declared once."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.delivery import LedgerEntry
from schemas.events import (
    Command,
    DeadLetter,
    DeliveryJob,
    DeliveryOutcome,
    Incident,
    IncidentAction,
    RawDocument,
    Signal,
    Subscriber,
)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: type[BaseModel] | None
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None
    doc: str = ""

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        return configs

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


# Raw documents are kept a year: they are the audit trail and the replay source.
# One partition: an Update or Cancel must be read after the alert it references (keys differ,
# so several partitions could reorder them), and BMKG issues tens of alerts an hour at most.
NOWCAST_RAW = TopicSpec("bmkg.nowcast.raw", "source_id", RawDocument, 1,
                        retention_ms=365 * DAY_MS, doc="BMKG nowcast CAP documents as fetched")
FORECAST_RAW = TopicSpec("bmkg.forecast.raw", "source_id", RawDocument, 3,
                         retention_ms=365 * DAY_MS, doc="BMKG forecast JSON per adm4 as fetched")
QUAKE_RAW = TopicSpec("bmkg.quake.raw", "source_id", RawDocument, 3, retention_ms=365 * DAY_MS,
                      doc="BMKG earthquake feeds as fetched")
# Citizen submissions are raw JSON exactly as received, so no value model is imposed here.
REPORTS_RAW = TopicSpec("reports.raw", "report_id", None, 6, retention_ms=365 * DAY_MS,
                        doc="citizen reports exactly as received")
SIGNALS = TopicSpec("signals", "area_code", Signal, 6, retention_ms=30 * DAY_MS,
                    doc="normalized per-kelurahan signals")
INCIDENTS = TopicSpec("incidents", "incident_id", Incident, 6, compacted=True,
                      doc="incident versions (compacted changelog)")
INCIDENT_ACTIONS = TopicSpec("incident.actions", "incident_id", IncidentAction, 6,
                             retention_ms=365 * DAY_MS,
                             doc="operator actions from the console and `kentongan incident act`")
# The correlator's other input, co-partitioned with signals (same key, same count) so that its
# state table sees actions and clock ticks for a kelurahan in the partition of its signals.
INCIDENT_COMMANDS = TopicSpec("incident.commands", "area_code", Command, SIGNALS.partitions,
                              retention_ms=7 * DAY_MS,
                              doc="operator actions routed by kelurahan, and clock ticks")
SUBSCRIBERS = TopicSpec("subscribers", "subscriber_id", Subscriber, 6, compacted=True,
                        doc="subscribers: channels, kelurahan, language, opt-in")
# Fan-out planning is partitioned by kelurahan: both inputs of the planner are re-keyed by area
# and co-partitioned (same count; the area's partition, murmur2 of the area code, is chosen
# explicitly for the area|id keys). Values are internal: see stream_processors/audience.py.
SUBSCRIBERS_BY_AREA = TopicSpec(
    "subscribers.by-area", "area_code|subscriber_id", None, 6, compacted=True,
    doc="each kelurahan's members (since|language|channels|phone|token); tombstone: left")
INCIDENTS_BY_AREA = TopicSpec("incidents.by-area", "area_code", Incident,
                              SUBSCRIBERS_BY_AREA.partitions, retention_ms=7 * DAY_MS,
                              doc="incident versions re-keyed by kelurahan, for planning")
# The planner's faust tables (stream_processors/planning.py), declared so `topics create` makes
# their changelogs before the worker's first start: a changelog faust creates while starting can
# miss the first partition assignment, and the table then refuses its first writes
# (PartitionsMismatch). Names are faust's, <app id>-<table>-changelog, for the default app id.
WORKER_APP_ID = "kentongan"


def _changelog(table: str, partitions: int, doc: str) -> TopicSpec:
    return TopicSpec(f"{WORKER_APP_ID}-{table}-changelog", "table key", None, partitions,
                     compacted=True, doc=doc)


SUBSCRIBER_AREAS_CHANGELOG = _changelog("subscriber-areas", SUBSCRIBERS.partitions,
                                        "planner: the kelurahan each subscriber is in")
AUDIENCE_CHANGELOG = _changelog("audience", SUBSCRIBERS_BY_AREA.partitions,
                                "planner: each kelurahan's members, stamped with since")
ANNOUNCED_CHANGELOG = _changelog("announced", INCIDENTS_BY_AREA.partitions,
                                 "planner: when each open incident was last announced")
# The correlator's tables (stream_processors/app.py), for the same reason.
AREA_STATE_CHANGELOG = _changelog("area-state", SIGNALS.partitions,
                                  "correlator: each kelurahan's state")
PLACEMENTS_CHANGELOG = _changelog("cap-placements", NOWCAST_RAW.partitions,
                                  "correlator: where each CAP alert lay")
ALERTS_SMS = TopicSpec("alerts.sms", "recipient", DeliveryJob, 6, retention_ms=7 * DAY_MS,
                       doc="SMS delivery jobs")
ALERTS_PUSH = TopicSpec("alerts.push", "recipient", DeliveryJob, 6, retention_ms=7 * DAY_MS,
                        doc="push delivery jobs")
ALERTS_CALLCENTRE = TopicSpec("alerts.callcentre", "recipient", DeliveryJob, 6,
                              retention_ms=7 * DAY_MS, doc="call-centre delivery jobs")
DELIVERIES = TopicSpec("deliveries", "job_key", DeliveryOutcome, 6, retention_ms=90 * DAY_MS,
                       doc="delivery outcomes and receipts")
# The delivery consumers' memory of what a gateway accepted, one entry per group commit. Entry
# for input partition p goes to ledger partition p, so partition counts must match the alerts
# topics'. Kept longer than the alerts topics, so any job that can still be read is on record.
DELIVERY_LEDGER = TopicSpec("deliveries.ledger", "channel:partition", LedgerEntry,
                            ALERTS_SMS.partitions, retention_ms=14 * DAY_MS,
                            doc="job keys each delivery consumer handed to a gateway")
DEADLETTER = TopicSpec("deadletter", "source_topic:partition:offset", DeadLetter, 1,
                       retention_ms=365 * DAY_MS, doc="records a stage rejected, with the reason")

CATALOGUE: tuple[TopicSpec, ...] = (
    NOWCAST_RAW, FORECAST_RAW, QUAKE_RAW, REPORTS_RAW, SIGNALS, INCIDENTS, INCIDENT_ACTIONS,
    INCIDENT_COMMANDS, SUBSCRIBERS, SUBSCRIBERS_BY_AREA, INCIDENTS_BY_AREA,
    SUBSCRIBER_AREAS_CHANGELOG, AUDIENCE_CHANGELOG, ANNOUNCED_CHANGELOG, AREA_STATE_CHANGELOG,
    PLACEMENTS_CHANGELOG, ALERTS_SMS,
    ALERTS_PUSH, ALERTS_CALLCENTRE, DELIVERIES, DELIVERY_LEDGER, DEADLETTER,
)

# What the BMKG producers publish (and dedupe against).
BMKG_RAW_TOPICS: tuple[TopicSpec, ...] = (NOWCAST_RAW, FORECAST_RAW, QUAKE_RAW)

ALERT_TOPICS = {"sms": ALERTS_SMS, "push": ALERTS_PUSH, "callcentre": ALERTS_CALLCENTRE}
assert all(spec.partitions == DELIVERY_LEDGER.partitions for spec in ALERT_TOPICS.values())


def by_name(name: str) -> TopicSpec:
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(f"no topic {name!r} in the catalogue")
