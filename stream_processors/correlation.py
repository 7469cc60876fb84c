"""Incident rules: how signals for one kelurahan open, update, escalate and close incidents.

Pure code. The faust agent keeps one ``AreaState`` per kelurahan in a table and calls ``apply``;
everything here is unit-tested without Kafka.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import (
    SEVERITY_RANK,
    Hazard,
    Incident,
    IncidentStatus,
    MsgType,
    Proximity,
    Severity,
    Signal,
    SignalSource,
)

# Signals about related hazards belong to one incident: a thunderstorm warning and a flood
# report in the same kelurahan are the same emergency to a duty officer.
FAMILY: dict[Hazard, str] = {
    Hazard.HEAVY_RAIN: "hydromet",
    Hazard.THUNDERSTORM: "hydromet",
    Hazard.FLOOD: "hydromet",
    Hazard.LANDSLIDE: "hydromet",
    Hazard.STRONG_WIND: "wind",
    Hazard.FALLEN_TREE: "wind",
    Hazard.HIGH_WAVES: "marine",
    Hazard.FIRE: "fire",
    Hazard.EARTHQUAKE: "earthquake",
    Hazard.OTHER: "other",
}

# Distinct citizens confirming a warned incident raise its severity one step, once.
CONFIRMING_REPORTERS = 2
# How many signal ids an incident remembers for replay dedupe (bounded state per kelurahan).
MAX_SIGNAL_IDS = 500


class AreaState(BaseModel):
    """Open incidents of one kelurahan, by hazard family. The value of the faust table."""

    model_config = ConfigDict(extra="forbid")

    open: dict[str, Incident] = Field(default_factory=dict)
    reporters: dict[str, list[str]] = Field(default_factory=dict)
    confirmed: dict[str, bool] = Field(default_factory=dict)


def incident_id_for(signal: Signal) -> str:
    stamp = signal.effective.strftime("%Y%m%dT%H%M%z")
    return f"INC-{signal.area_code}-{FAMILY[signal.hazard]}-{stamp}"


def _bump(severity: Severity) -> Severity:
    order = list(Severity)
    return order[min(SEVERITY_RANK[severity] + 1, len(order) - 1)]


def _new_version(
    incident: Incident, signal: Signal, status: IncidentStatus, now: datetime, **changes: object
) -> Incident:
    ids = [*incident.signal_ids, signal.signal_id][-MAX_SIGNAL_IDS:]
    expires = incident.expires
    if signal.expires is not None and (expires is None or signal.expires > expires):
        expires = signal.expires
    return incident.model_copy(
        update={
            "version": incident.version + 1,
            "status": status,
            "updated_at": now,
            "signal_ids": ids,
            "expires": expires,
            **changes,
        }
    )


def apply(state: AreaState, signal: Signal, now: datetime) -> tuple[AreaState, list[Incident]]:
    """Fold one signal into a kelurahan's state; return the new state and the incident versions
    to publish (empty when the signal changes nothing, e.g. a replayed duplicate)."""
    family = FAMILY[signal.hazard]
    current = state.open.get(family)
    state = state.model_copy(deep=True)

    if current is not None and current.expires is not None and current.expires <= signal.effective:
        # The old incident ran out before this signal began: close it and start afresh.
        expired = current.model_copy(
            update={"version": current.version + 1, "status": IncidentStatus.EXPIRED,
                    "updated_at": now}
        )
        _forget(state, family)
        new_state, versions = apply(state, signal, now)
        return new_state, [expired, *versions]

    if current is not None and signal.signal_id in current.signal_ids:
        return state, []

    if signal.msg_type is MsgType.CANCEL:
        if current is None:
            return state, []
        resolved = _new_version(current, signal, IncidentStatus.RESOLVED, now)
        _forget(state, family)
        return state, [resolved]

    if current is None:
        opened = Incident(
            incident_id=incident_id_for(signal),
            version=1,
            status=IncidentStatus.OPENED,
            area_code=signal.area_code,
            area_name=signal.area_name,
            kecamatan_name=signal.kecamatan_name,
            hazard=signal.hazard,
            severity=signal.severity,
            proximity=signal.proximity,
            headline=signal.headline,
            opened_at=now,
            updated_at=now,
            expires=signal.expires,
            signal_ids=[signal.signal_id],
            attribution=signal.attribution,
        )
        state.open[family] = opened
        _note_reporter(state, family, signal)
        return state, [opened]

    _note_reporter(state, family, signal)
    severity = current.severity
    status = IncidentStatus.UPDATED
    changes: dict[str, object] = {}
    if SEVERITY_RANK[signal.severity] > SEVERITY_RANK[severity]:
        severity, status = signal.severity, IncidentStatus.ESCALATED
    if current.proximity is Proximity.ADJACENT and signal.proximity is Proximity.INSIDE:
        # The weather crossed the city border: now the kelurahan itself is warned.
        status = IncidentStatus.ESCALATED
        changes["proximity"] = Proximity.INSIDE
    warned = current.attribution is not None
    if (
        warned
        and not state.confirmed.get(family, False)
        and len(state.reporters.get(family, [])) >= CONFIRMING_REPORTERS
    ):
        severity, status = _bump(severity), IncidentStatus.ESCALATED
        state.confirmed[family] = True
    changes["severity"] = severity
    if signal.source is not SignalSource.REPORT:
        changes["headline"] = signal.headline
        changes["attribution"] = signal.attribution
    updated = _new_version(current, signal, status, now, **changes)
    state.open[family] = updated
    return state, [updated]


def _note_reporter(state: AreaState, family: str, signal: Signal) -> None:
    if signal.source is SignalSource.REPORT and signal.reporter_ref:
        seen = state.reporters.setdefault(family, [])
        if signal.reporter_ref not in seen:
            seen.append(signal.reporter_ref)


def _forget(state: AreaState, family: str) -> None:
    state.open.pop(family, None)
    state.reporters.pop(family, None)
    state.confirmed.pop(family, None)
