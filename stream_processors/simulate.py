"""``kentongan simulate TIMELINE``: the worker's incident rules over a recorded timeline, with
no Kafka. Time in the rules is the timeline's time, so an operator can replay a disaster
against a rule change before deploying it.

A timeline is JSON lines, each with ``at`` (ISO 8601 with a zone) and one input:
``cap``/``quake``/``forecast`` (a file path, relative to the timeline), ``report`` (a report
as POSTed to the intake) or ``action`` (``incident_id`` or ``area_code`` + ``hazard``,
``action``, ``operator``, optional ``reason``). A line with ``at`` alone only moves the clock.
Between inputs the clock ticks every minute, as the worker's timer does, so expiries happen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from producers.bmkg import cap, forecast, quake
from producers.reports import UnlocatedReport, reporter_kind, signal_from_report
from schemas.events import Incident, IncidentAction, Signal
from schemas.geography import Geography, load_geography
from schemas.reports import CitizenReport
from stream_processors.correlation import AreaState, Correlator, RejectedInput
from stream_processors.rules import Rules

TICK = timedelta(minutes=1)
_AT = TypeAdapter(datetime)
INPUTS = ("cap", "quake", "forecast", "report", "action")


@dataclass(frozen=True)
class Rejection:
    """A timeline line the pipeline would dead-letter (or hand to the 112 desk)."""

    line: int
    at: datetime | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "at": None if self.at is None else self.at.isoformat(),
                "rejected": self.reason}


@dataclass(frozen=True)
class Entry:
    line: int
    at: datetime
    fields: dict[str, Any]


def read_timeline(path: Path) -> tuple[list[Entry], list[Rejection]]:
    """The timeline's entries in time order (stable), and the lines that are not entries."""
    entries: list[Entry] = []
    bad: list[Rejection] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            fields = json.loads(text)
            if not isinstance(fields, dict):
                raise ValueError("a line is a JSON object")
            at = _AT.validate_python(fields.get("at"))
            if at.tzinfo is None:
                raise ValueError("'at' needs a time zone (e.g. +08:00)")
            given = [name for name in INPUTS if name in fields]
            if len(given) > 1:
                raise ValueError(f"one input a line, got {', '.join(given)}")
        except (ValueError, ValidationError) as exc:
            bad.append(Rejection(number, None, f"line {number}: {_short(exc)}"))
            continue
        entries.append(Entry(number, at, fields))
    entries.sort(key=lambda entry: entry.at)
    return entries, bad


class Simulation:
    """The worker's normalize + correlate stages, in one process, on the timeline's clock."""

    def __init__(self, rules: Rules, geography: Geography | None = None,
                 base_dir: Path = Path(".")) -> None:
        self.correlator = Correlator(rules)
        self.geography = geography or load_geography()
        self.base_dir = base_dir
        self.areas: dict[str, AreaState] = {}
        self.placements: dict[str, Any] = {}
        self.clock: datetime | None = None

    def run(self, entries: list[Entry]) -> Iterator[Incident | Rejection]:
        for entry in entries:
            yield from self.advance(entry.at)
            try:
                yield from self.feed(entry)
            except (ValueError, OSError) as exc:
                yield Rejection(entry.line, entry.at, _short(exc))

    def advance(self, to: datetime) -> Iterator[Incident]:
        """Tick every minute up to ``to``, as the worker's timer does."""
        if self.clock is not None:
            tick = self.clock + TICK
            while tick <= to:
                for state in self.areas.values():
                    if state.families:
                        yield from self.correlator.on_tick(state, tick)
                tick += TICK
        if self.clock is None or to > self.clock:
            self.clock = to

    def feed(self, entry: Entry) -> Iterator[Incident]:
        now, fields = entry.at, entry.fields
        if "action" in fields:
            action = IncidentAction.model_validate(
                {"action_id": f"timeline-{entry.line}", "at": now.isoformat(),
                 **fields["action"]})
            state = self.areas.get(action.target_area())
            if state is None:
                raise RejectedInput(f"{action.action.value}: no incident in that kelurahan")
            yield from self.correlator.on_action(state, action, now)
            return
        for signal in self.signals(fields):
            state = self.areas.setdefault(signal.area_code, AreaState())
            yield from self.correlator.on_signal(state, signal, now)

    def signals(self, fields: dict[str, Any]) -> list[Signal]:
        if "cap" in fields:
            path = self._path(fields["cap"])
            alert = cap.parse_cap(path.read_bytes(), file_name=path.name)
            return cap.signals_remembering(alert, self.geography, self.placements)
        if "quake" in fields:
            path = self._path(fields["quake"])
            return [s for q in quake.parse_quake(path.read_bytes(), file_name=path.name)
                    for s in quake.signals_from_quake(q, self.geography)]
        if "forecast" in fields:
            path = self._path(fields["forecast"])
            return forecast.signals_from_forecast(
                forecast.parse_forecast(path.read_bytes()), self.geography)
        if "report" in fields:
            report = CitizenReport.model_validate(fields["report"])
            # "identity": how the intake verified the reporter (its Kafka header), if it did.
            kind = reporter_kind(report, fields.get("identity"))
            try:
                return [signal_from_report(report, self.geography, kind)]
            except UnlocatedReport as exc:
                raise RejectedInput(f"{exc} (the worker sends it to the 112 desk)") from None
        return []  # a line with only "at": the clock moved

    def _path(self, name: object) -> Path:
        if not isinstance(name, str):
            raise ValueError("a file input names a path")
        path = Path(name)
        return path if path.is_absolute() else self.base_dir / path


def simulate(path: Path, rules: Rules) -> Iterator[Incident | Rejection]:
    entries, bad = read_timeline(path)
    yield from bad
    yield from Simulation(rules, base_dir=path.parent).run(entries)


def summary(incident: Incident) -> dict[str, Any]:
    """One incident version as ``simulate`` prints it."""
    return {
        "at": incident.updated_at.isoformat(),
        "incident_id": incident.incident_id,
        "version": incident.version,
        "status": incident.status.value,
        "change": incident.change.value,
        "announce": None if incident.announce is None else incident.announce.value,
        "area_code": incident.area_code,
        "area_name": incident.area_name,
        "hazard": incident.hazard.value,
        "level": incident.level.value,
        "verified": incident.verified,
        "proximity": incident.proximity.value,
        "reason": incident.reason,
    }


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
