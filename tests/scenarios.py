"""Incident scenarios in the style of Alertmanager's acceptance tests: inputs at t, and the
incident versions each kelurahan x hazard family must show, in order.

Each scenario runs through ``kentongan simulate`` (tests/test_scenarios.py) and through the real
worker on a real broker (tests/test_scenarios_worker.py). Real recorded BMKG files are used where
they exist; the Mataram alerts are the project's BMKG-format test fixtures, varied here (a second
alert, an Update, a Cancel) the way BMKG varies them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import Incident

DATA = Path(__file__).parent / "data" / "bmkg"
WITA = ZoneInfo("Asia/Makassar")
AMPENAN_SELATAN = "52.71.01.1004"
ALERT_FILE = "mataram_test_CNB20261127001_alert.xml"
ALERT_SENT = "2026-11-27T14:30:00+08:00"
ALERT_REF = f"cuaca.ekstrem@bmkg.go.id,2.49.0.1.360.0.2026.11.27.06.52.001,{ALERT_SENT}"
SECOND_REF = ("cuaca.ekstrem@bmkg.go.id,2.49.0.1.360.0.2026.11.27.06.52.901,"
              "2026-11-27T14:40:00+08:00")
AUTOGEMPA = DATA / "gempa" / "mataram_test_autogempa_2026-11-27.json"
FELT_NEXT_DAY = DATA / "gempa" / "mataram_test_gempadirasakan_2026-11-28.json"
FORECAST = DATA / "prakiraan" / "mataram_test_prakiraan-52.71.01.1004_2026-11-27.json"


def t(clock: str, day: int = 27) -> datetime:
    """A WITA time on 2026-11-<day>."""
    hour, minute = (int(part) for part in clock.split(":"))
    return datetime(2026, 11, day, hour, minute, tzinfo=WITA)


def cap_variant(
    *, identifier: str | None = None, sent: str | None = None, msg_type: str | None = None,
    references: str | None = None, severity: str | None = None, expires: str | None = None,
    polygons: bool = True,
) -> str:
    """The Mataram test alert, changed the way BMKG issues a second alert, an Update or a
    Cancel (a Cancel usually has no polygon and names the alert in <references>)."""
    text = (DATA / "cap" / ALERT_FILE).read_text(encoding="utf-8")
    if identifier:
        text = text.replace("2.49.0.1.360.0.2026.11.27.06.52.001", identifier)
    if sent:
        text = text.replace(f"<sent>{ALERT_SENT}</sent>", f"<sent>{sent}</sent>")
    if msg_type:
        text = text.replace("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>")
    if references:
        text = text.replace("<scope>Public</scope>",
                            f"<scope>Public</scope>\n  <references>{references}</references>")
    if severity:
        text = text.replace("<severity>Moderate</severity>", f"<severity>{severity}</severity>")
    if expires:
        text = re.sub(r"<expires>[^<]+</expires>", f"<expires>{expires}</expires>", text)
    if not polygons:
        text = re.sub(r"\s*<polygon>.*?</polygon>", "", text, flags=re.S)
    return text


def report(report_id: str, reporter: str, at: datetime, *, channel: str = "sms",
           text: str = "banjir di Ampenan Selatan, air setinggi lutut") -> dict[str, Any]:
    return {"report_id": report_id, "reporter": reporter, "channel": channel, "text": text,
            "reported_at": at.isoformat()}


@dataclass(frozen=True)
class Step:
    """One expected version: its change, level, what subscribers hear, open or resolved."""

    change: str
    level: str
    announce: str | None = None
    status: str = "open"
    verified: bool = True
    between: tuple[datetime, datetime] | None = None  # simulate only: when it happens


@dataclass
class Scenario:
    name: str
    inputs: list[dict[str, Any]]  # {"at": datetime, "cap_text"|"cap"|"quake"|...: ...}
    expect: dict[tuple[str, str], list[Step]]  # (area_code, family) -> versions in order
    rejected: int = 0
    # Other kelurahan/families may have versions too (a quake felt city-wide); unchecked.
    others: bool = False
    doc: str = ""
    # (source ref prefix, time): no version after that time may stand on that source.
    stale: tuple[str, datetime] | None = None

    def timeline(self, directory: Path) -> Path:
        """Write the scenario as a ``kentongan simulate`` timeline (files beside it)."""
        lines = []
        for n, entry in enumerate(self.inputs):
            fields = {k: v for k, v in entry.items() if k not in ("at", "cap_text")}
            if "cap_text" in entry:
                name = f"{self.name}-{n}.xml"
                (directory / name).write_text(entry["cap_text"], encoding="utf-8")
                fields["cap"] = name
            for kind in ("cap", "quake", "forecast"):
                if isinstance(fields.get(kind), Path):
                    fields[kind] = str(fields[kind])
            lines.append(json.dumps({"at": entry["at"].isoformat(), **fields}))
        path = directory / f"{self.name}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def check(scenario: Scenario, versions: list[Incident], *, timed: bool) -> None:
    """The versions match the expectation per kelurahan x family, exactly and in order."""
    seen: dict[tuple[str, str], list[Incident]] = {}
    for incident in versions:
        seen.setdefault((incident.area_code, incident.hazard.value), []).append(incident)
    for key, steps in scenario.expect.items():
        # Incident ids are Kafka keys: two incidents' versions may interleave across
        # partitions, so order them by incident, then version (each incident's are in order).
        got = sorted(seen.get(key, []), key=lambda i: (i.opened_at, i.incident_id, i.version))
        shown = [(i.change.value, i.level.value, None if i.announce is None else i.announce.value,
                  i.status.value, i.verified) for i in got]
        wanted = [(s.change, s.level, s.announce, s.status, s.verified) for s in steps]
        assert shown == wanted, f"{scenario.name} {key}: got {shown}"
        if timed:
            for step, incident in zip(steps, got, strict=True):
                if step.between is not None:
                    early, late = step.between
                    assert early <= incident.updated_at <= late, (
                        f"{scenario.name} {key} {step.change} at {incident.updated_at}")
        ids = list(dict.fromkeys(i.incident_id for i in got))
        for incident_id in ids:
            numbers = [i.version for i in got if i.incident_id == incident_id]
            assert numbers == list(range(1, len(numbers) + 1)), f"{incident_id}: {numbers}"
        assert len(ids) <= 1 or scenario.name in NEW_IDS, f"{scenario.name}: {ids}"
    if scenario.stale is not None:
        prefix, after = scenario.stale
        again = [i for i in versions if i.updated_at > after
                 and any(a.ref.startswith(prefix) for a in i.alerts)]
        assert not again, f"{scenario.name}: {len(again)} versions re-announce {prefix}"
    if not scenario.others:
        extra = sorted(set(seen) - set(scenario.expect))
        assert not extra, f"{scenario.name}: unexpected incidents for {extra}"


AS = (AMPENAN_SELATAN, "hydromet")
AS_QUAKE = (AMPENAN_SELATAN, "earthquake")

SCENARIOS: list[Scenario] = [
    Scenario(
        "cancel-one-of-two-alerts",
        doc="A Cancel of one alert must not send the all-clear while another is in force.",
        inputs=[
            {"at": t("14:31"), "cap_text": cap_variant()},
            {"at": t("14:40"), "cap_text": cap_variant(
                identifier="2.49.0.1.360.0.2026.11.27.06.52.901",
                sent="2026-11-27T14:40:00+08:00", severity="Severe")},
            {"at": t("15:00"), "cap_text": cap_variant(
                identifier="2.49.0.1.360.0.2026.11.27.06.52.902",
                sent="2026-11-27T15:00:00+08:00", msg_type="Cancel", references=SECOND_REF,
                polygons=False)},
            {"at": t("15:20"), "cap_text": cap_variant(
                identifier="2.49.0.1.360.0.2026.11.27.06.52.903",
                sent="2026-11-27T15:20:00+08:00", msg_type="Cancel", references=ALERT_REF,
                polygons=False)},
        ],
        expect={AS: [
            Step("opened", "waspada", "warning"),
            Step("escalated", "siaga", "raised"),
            Step("deescalated", "waspada", "lowered"),
            Step("resolved", "waspada", "all_clear", status="resolved",
                 between=(t("15:20"), t("15:21"))),
        ]},
    ),
    Scenario(
        "forecast-is-context",
        doc="BMKG's routine forecast never opens an incident nor reaches a citizen; a nowcast "
            "after it opens the incident with the warning's own words.",
        inputs=[
            {"at": t("07:00"), "forecast": FORECAST},
            {"at": t("14:31"), "cap_text": cap_variant()},
        ],
        expect={AS: [Step("opened", "waspada", "warning", between=(t("14:31"), t("14:31")))]},
    ),
    Scenario(
        "relisted-quake-changes-nothing",
        doc="The felt list re-lists yesterday's quake: nothing about it is announced again.",
        inputs=[
            {"at": t("15:12"), "quake": AUTOGEMPA},
            {"at": t("10:50", day=28), "quake": FELT_NEXT_DAY},
        ],
        expect={AS_QUAKE: [
            Step("opened", "awas", "warning", between=(t("15:12"), t("15:12"))),
            Step("expired", "awas", "all_clear", status="resolved"),
            # The felt list's new quake (10:41 WITA, felt III-IV in Mataram) is news.
            Step("opened", "waspada", "warning", between=(t("10:50", 28), t("10:50", 28))),
        ]},
        stale=("gempa|20261127T071005Z", t("00:00", 28)),
        others=True,
    ),
    Scenario(
        "replay-after-cancel-changes-nothing",
        doc="A replay of a cancelled alert changes nothing; a new alert opens a new incident.",
        inputs=[
            {"at": t("14:31"), "cap_text": cap_variant()},
            {"at": t("15:00"), "cap_text": cap_variant(
                identifier="2.49.0.1.360.0.2026.11.27.06.52.902",
                sent="2026-11-27T15:00:00+08:00", msg_type="Cancel", references=ALERT_REF,
                polygons=False)},
            {"at": t("15:05"), "cap_text": cap_variant()},
            {"at": t("15:30"), "cap_text": cap_variant(
                identifier="2.49.0.1.360.0.2026.11.27.06.52.904",
                sent="2026-11-27T15:30:00+08:00", expires="2026-11-27T17:30:00+08:00")},
        ],
        expect={AS: [
            Step("opened", "waspada", "warning"),
            Step("resolved", "waspada", "all_clear", status="resolved"),
            Step("opened", "waspada", "warning"),
        ]},
    ),
    Scenario(
        "expiry-is-announced",
        doc="With no further input, the incident expires when its alert does (and no report "
            "came for 60 minutes), and the all-clear is announced.",
        inputs=[
            {"at": t("14:31"), "cap_text": cap_variant()},
            {"at": t("17:00")},
        ],
        expect={AS: [
            Step("opened", "waspada", "warning"),
            Step("expired", "waspada", "all_clear", status="resolved",
                 between=(t("16:30"), t("16:31"))),
        ]},
    ),
    Scenario(
        "future-report-is-refused",
        doc="A report stamped in the future is refused; the live warning stands.",
        inputs=[
            {"at": t("14:31"), "cap_text": cap_variant()},
            {"at": t("14:40"), "report": report("fut-1", "+6281200000011",
                                                datetime(2999, 1, 1, tzinfo=WITA))},
        ],
        expect={AS: [Step("opened", "waspada", "warning")]},
        rejected=1,
    ),
    Scenario(
        "citizens-confirm-a-warning-once",
        doc="Two distinct verified reporters within 60 minutes escalate one level, once; the "
            "same reporter twice counts once.",
        inputs=[
            {"at": t("14:31"), "cap_text": cap_variant()},
            {"at": t("14:40"), "report": report("c-1", "+6281200000021", t("14:39"))},
            {"at": t("14:42"), "report": report("c-2", "+6281200000021", t("14:41"))},
            {"at": t("14:50"), "report": report("c-3", "+6281200000022", t("14:49"))},
            {"at": t("14:55"), "report": report("c-4", "+6281200000023", t("14:54"))},
        ],
        expect={AS: [
            Step("opened", "waspada", "warning"),
            Step("updated", "waspada"),
            Step("updated", "waspada"),
            Step("escalated", "siaga", "raised"),
            Step("updated", "siaga"),
        ]},
    ),
    Scenario(
        "citizens-without-warning-wait-for-the-desk",
        doc="Three distinct reporters within 30 minutes, no warning: an unverified incident at "
            "waspada that nobody but the desk hears of, until an operator verifies it; then an "
            "operator resolves it and the warned hear the all-clear.",
        inputs=[
            {"at": t("09:00"), "report": report("u-1", "+6281200000031", t("09:00"))},
            {"at": t("09:10"), "report": report("u-2", "+6281200000032", t("09:10"))},
            {"at": t("09:20"), "report": report("u-3", "+6281200000033", t("09:20"))},
            {"at": t("09:25"), "action": {"area_code": AMPENAN_SELATAN, "hazard": "hydromet",
                                          "action": "ack", "operator": "dewi"}},
            {"at": t("09:30"), "action": {"area_code": AMPENAN_SELATAN, "hazard": "hydromet",
                                          "action": "verify", "operator": "dewi",
                                          "reason": "called back u-1: water knee-deep"}},
            {"at": t("11:00"), "action": {"area_code": AMPENAN_SELATAN, "hazard": "hydromet",
                                          "action": "resolve", "operator": "budi"}},
        ],
        expect={AS: [
            Step("opened", "waspada", verified=False),
            Step("acknowledged", "waspada", verified=False),
            Step("verified", "waspada", "warning"),
            Step("resolved", "waspada", "all_clear", status="resolved"),
        ]},
    ),
    Scenario(
        "unverified-reports-do-not-count",
        doc="Three app reports with no verified account are one unknown person, not three.",
        inputs=[
            {"at": t("09:00"), "report": report("a-1", "app:x1", t("09:00"), channel="app"),
             "identity": "unverified"},
            {"at": t("09:05"), "report": report("a-2", "app:x2", t("09:05"), channel="app"),
             "identity": "unverified"},
            {"at": t("09:10"), "report": report("a-3", "app:x3", t("09:10"), channel="app"),
             "identity": "unverified"},
        ],
        expect={},
    ),
]

# Scenarios in which one kelurahan x family sees two incidents (closed, then a new one).
NEW_IDS = {"replay-after-cancel-changes-nothing", "relisted-quake-changes-nothing"}
