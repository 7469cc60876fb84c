"""One kelurahan's correlator state <-> plain JSON data, for the worker's changelogged table.

Hand-written rather than pydantic: this runs for every signal that changes a kelurahan, and a
model validate + dump of the whole state per signal was the worker's bottleneck.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.events import (
    ActionKind,
    AuditEntry,
    Hazard,
    HazardFamily,
    Level,
    Proximity,
    SignalSource,
)
from stream_processors.correlation import AreaState, Corroboration, FamilyState, Source

FORMAT = 2


# Times are POSIX seconds: formatting ISO strings was most of the cost of encoding a state.
def _parse(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _time(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _parse_opt(value: float | None) -> datetime | None:
    return None if value is None else _parse(value)


def dump_state(state: AreaState) -> dict[str, Any]:
    return {
        "f": FORMAT,
        "area": [state.area_code, state.area_name, state.kecamatan_code, state.kecamatan_name],
        "families": {family.value: _dump_family(fs) for family, fs in state.families.items()},
        "seen": state.seen,
        "due": _time(state.due),
        "outlook": {hazard.value: until.timestamp() for hazard, until in state.outlook.items()},
        "clock": _time(state.clock),
        "opened": state.opened,
    }


def load_state(data: dict[str, Any]) -> AreaState:
    if data.get("f") != FORMAT:
        raise ValueError(f"unknown correlator state format {data.get('f')!r}")
    code, name, kec_code, kec_name = data["area"]
    return AreaState(
        area_code=code, area_name=name, kecamatan_code=kec_code, kecamatan_name=kec_name,
        families={HazardFamily(k): _load_family(v) for k, v in data["families"].items()},
        seen={key: float(until) for key, until in data["seen"].items()},
        due=_parse_opt(data["due"]),
        outlook={Hazard(k): _parse(v) for k, v in data["outlook"].items()},
        clock=_parse_opt(data["clock"]),
        opened=int(data["opened"]),
    )


def _dump_family(fs: FamilyState) -> dict[str, Any]:
    published = list(fs.published)
    if published:
        published[0], published[2] = published[0].value, published[2].value
        published[5] = list(published[5])
    return {
        "id": fs.incident_id,
        "version": fs.version,
        "opened_at": _time(fs.opened_at),
        "sources": [[s.ref, s.keys, s.source.value, s.hazard.value, s.level.value,
                     s.proximity.value, s.headline, s.at.timestamp(), _time(s.expires)]
                    for s in fs.sources.values()],
        "reports": [[r.report_id, r.reporter, r.hazard.value, r.at.timestamp()]
                    for r in fs.reports],
        "bumped": fs.bumped,
        "steps": fs.operator_steps,
        "op_verified": fs.operator_verified,
        "ack": fs.acknowledged_by,
        "audit": [[a.action.value, a.operator, a.reason, a.at.timestamp()] for a in fs.audit],
        "announced": None if fs.announced is None else fs.announced.value,
        "activity": _time(fs.last_activity),
        "published": published,
        "hazards": [hazard.value for hazard in fs.hazards],
    }


def _load_family(data: dict[str, Any]) -> FamilyState:
    published = list(data["published"])
    if published:
        published[0], published[2] = Level(published[0]), Proximity(published[2])
        published[5] = tuple(published[5])
    return FamilyState(
        incident_id=data["id"],
        version=int(data["version"]),
        opened_at=_parse_opt(data["opened_at"]),
        sources={ref: Source(ref=ref, keys=list(keys), source=SignalSource(source),
                             hazard=Hazard(hazard), level=Level(level),
                             proximity=Proximity(proximity), headline=headline,
                             at=_parse(at), expires=_parse_opt(expires))
                 for ref, keys, source, hazard, level, proximity, headline, at, expires
                 in data["sources"]},
        reports=[Corroboration(report_id=rid, reporter=who, hazard=Hazard(hazard), at=_parse(at))
                 for rid, who, hazard, at in data["reports"]],
        bumped=bool(data["bumped"]),
        operator_steps=int(data["steps"]),
        operator_verified=bool(data["op_verified"]),
        acknowledged_by=data["ack"],
        audit=[AuditEntry(action=ActionKind(action), operator=operator, reason=reason,
                          at=_parse(at)) for action, operator, reason, at in data["audit"]],
        announced=None if data["announced"] is None else Level(data["announced"]),
        last_activity=_parse_opt(data["activity"]),
        published=tuple(published),
        hazards=[Hazard(hazard) for hazard in data["hazards"]],
    )
