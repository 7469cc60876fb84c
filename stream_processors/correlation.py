"""The incident brain: a fold of one kelurahan's inputs into incident versions. Pure code.

An incident is one kelurahan and hazard family. It is made of what is in force: the BMKG alerts
(by CAP message; an Update or Cancel follows its ``<references>``), the quakes seen (by event
id), the citizens' reports that corroborate it (by report id and distinct verified reporter, in
time windows) and the operators' actions. Its level, whether it is verified, and whether it is
still open are derived from that set each time an input or a clock tick arrives; the correlator
also decides what the kelurahan's subscribers are told (``Incident.announce``).

The worker keeps one :class:`AreaState` per kelurahan in a faust table and ``kentongan simulate``
keeps them in a dict; both call :class:`Correlator` with their clock's ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import (
    BMKG_ATTRIBUTION,
    FAMILY,
    LEVEL_RANK,
    ActionKind,
    Announce,
    AuditEntry,
    Change,
    Hazard,
    HazardFamily,
    Incident,
    IncidentAction,
    IncidentStatus,
    Level,
    MsgType,
    Proximity,
    Signal,
    SignalSource,
    SourceRef,
)
from stream_processors.levels import highest, level_of_cap, level_of_quake, shifted
from stream_processors.rules import Rules

#: Bounds that keep one kelurahan's state small whatever arrives (time-pruning comes first).
MAX_REPORTS = 200  # reports kept per family, newest last
MAX_SEEN = 5_000  # inputs remembered per kelurahan for replay dedupe
MAX_AUDIT = 20  # operator actions carried in each version
SHOWN_REPORTS = 20  # report ids named in each version


class RejectedInput(ValueError):
    """An input the rules refuse (stamped in the future, an action on nothing open ...)."""


@dataclass(slots=True)
class Source:
    """A BMKG alert or quake the incident stands on while it is in force."""

    ref: str
    keys: list[str]
    source: SignalSource
    hazard: Hazard
    level: Level
    proximity: Proximity
    headline: str
    at: datetime
    expires: datetime | None


@dataclass(slots=True)
class Corroboration:
    """A citizen's report of the family's hazard; ``reporter`` only when the identity is
    verified (unverified reports are shown, never counted)."""

    report_id: str
    reporter: str | None
    hazard: Hazard
    at: datetime


@dataclass(slots=True)
class FamilyState:
    """One kelurahan x hazard family: the open incident (if any) and what stands behind it."""

    incident_id: str | None = None
    version: int = 0
    opened_at: datetime | None = None
    sources: dict[str, Source] = field(default_factory=dict)
    reports: list[Corroboration] = field(default_factory=list)
    bumped: bool = False  # citizens confirmed the warning: one level up, once
    operator_steps: int = 0
    operator_verified: bool = False
    acknowledged_by: str | None = None
    audit: list[AuditEntry] = field(default_factory=list)
    announced: Level | None = None  # the level subscribers were last told; None: never told
    last_activity: datetime | None = None  # the last report or operator action
    published: tuple[Any, ...] = ()  # what the last version showed, to publish only changes
    hazards: list[Hazard] = field(default_factory=list)  # named so far, main first


@dataclass(slots=True)
class AreaState:
    """Everything the correlator knows about one kelurahan."""

    area_code: str = ""
    area_name: str = ""
    kecamatan_code: str = ""
    kecamatan_name: str = ""
    families: dict[HazardFamily, FamilyState] = field(default_factory=dict)
    # BMKG messages, quakes and actions folded in (id -> forget after, POSIX seconds), so a
    # replay changes nothing; reports are recognised in their family's own list.
    seen: dict[str, float] = field(default_factory=dict)
    due: datetime | None = None  # the next time the clock alone can change an incident
    outlook: dict[Hazard, datetime] = field(default_factory=dict)  # forecast hazard -> until
    clock: datetime | None = None
    opened: int = 0  # incidents ever opened here: part of each new incident id

    def open_incidents(self) -> list[str]:
        return [fs.incident_id for fs in self.families.values() if fs.incident_id]


@dataclass(frozen=True, slots=True)
class _View:
    """An incident's standing derived from what is in force at one moment."""

    level: Level
    verified: bool
    proximity: Proximity
    keep_open: bool
    hazards: list[Hazard]
    headline: str
    expires: datetime | None
    reporters: int
    reason: str


def input_time(signal: Signal) -> datetime:
    """When the source made its statement: CAP ``sent``, a report's ``reported_at``, a quake's
    origin time (``effective`` for all but CAP, whose effective may lie ahead)."""
    return signal.sent or signal.effective


class Correlator:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        # Read once: the rules' durations are computed properties, and this is the hot path.
        self.report_window = rules.report_window
        self.quiet = rules.clock.quiet
        self.warned_rule = rules.rule_for("warned")
        self.unwarned_rule = rules.rule_for("unwarned")

    # --- inputs --------------------------------------------------------------------------

    def check_time(self, at: datetime, now: datetime, what: str) -> None:
        if at > now + self.rules.clock.future_skew:
            raise RejectedInput(
                f"{what} is stamped {at.isoformat()}, more than "
                f"{self.rules.clock.future_skew_minutes:g} min after now ({now.isoformat()})"
            )

    def admit(self, signal: Signal, received: datetime) -> None:
        """Refuse a signal stamped in the future (forecast steps lie ahead by nature). A shell
        whose clock follows its inputs must call this before it moves the clock."""
        if signal.source is not SignalSource.FORECAST:
            self.check_time(input_time(signal), received,
                            f"{signal.source.value} {signal.source_id}")

    def on_signal(self, state: AreaState, signal: Signal, now: datetime,
                  received: datetime | None = None) -> list[Incident]:
        """Fold one signal in; the incident versions it causes (with any expiries before it).
        ``received`` is the wall clock a live input is checked against (default: ``now``)."""
        self.admit(signal, received or now)
        _name_area(state, signal)
        if signal.source is SignalSource.FORECAST:
            # Context only: a forecast neither moves the clock nor decides anything.
            _note_outlook(state, signal, now)
            return []
        versions = self.on_tick(state, now)
        if signal.source is SignalSource.REPORT:
            kin = state.families.get(FAMILY[signal.hazard])
            report_id = signal.source_id.removeprefix("report:")
            if kin and any(r.report_id == report_id for r in kin.reports):
                return versions  # a replay; one older than every window is ignored anyway
        elif signal.signal_id in state.seen:
            return versions  # a replay: already folded in
        else:
            self._remember(state, signal.signal_id, signal.expires or signal.effective)
        touched: dict[HazardFamily, Change | None] = {}
        if signal.source is SignalSource.NOWCAST:
            self._fold_alert(state, signal, now, touched)
        elif signal.source is SignalSource.QUAKE:
            self._fold_quake(state, signal, now, touched)
        else:
            self._fold_report(state, signal, now, touched)
        for family, hint in touched.items():
            version = self._evaluate(state, family, now, hint)
            if version is not None:
                versions.append(version)
        self._schedule(state)
        return versions

    def on_action(
        self, state: AreaState, action: IncidentAction, now: datetime,
        received: datetime | None = None,
    ) -> list[Incident]:
        """An operator's action: always a new version with the action in its audit trail."""
        self.check_time(action.at, received or now, f"action {action.action_id}")
        versions = self.on_tick(state, now)
        if action.action_id in state.seen:
            return versions
        family, fs = self._addressed(state, action)
        self._remember(state, action.action_id, action.at)
        fs.audit = [*fs.audit, AuditEntry(action=action.action, operator=action.operator,
                                          reason=action.reason, at=action.at)][-MAX_AUDIT:]
        kind = action.action
        if kind is ActionKind.ACK:
            fs.acknowledged_by = action.operator
        elif kind is ActionKind.VERIFY:
            fs.operator_verified = True
        elif kind in (ActionKind.ESCALATE, ActionKind.DEESCALATE):
            # An operator who raises or lowers a level stands behind the incident.
            fs.operator_verified = True
            fs.operator_steps += 1 if kind is ActionKind.ESCALATE else -1
        if kind is not ActionKind.NOTE:
            fs.last_activity = max(fs.last_activity or now, now)
        version = self._evaluate(state, family, now, _ACTION_CHANGE[kind], forced=True)
        self._schedule(state)
        return [*versions, *([version] if version else [])]

    def on_tick(self, state: AreaState, now: datetime) -> list[Incident]:
        """Advance the clock: what ran out by ``now`` expires, and expiry is announced."""
        if state.clock is None or now > state.clock:
            state.clock = now
        if state.due is None or now < state.due:
            return []  # nothing runs out before ``due``: an idle kelurahan costs nothing
        versions: list[Incident] = []
        for family in list(state.families):
            version = self._evaluate(state, family, now, None)
            if version is not None:
                versions.append(version)
        stamp = now.timestamp()
        state.seen = {k: t for k, t in state.seen.items() if t > stamp}
        self._schedule(state)
        return versions

    def _schedule(self, state: AreaState) -> None:
        """When the clock alone may next change something here: a source running out, an
        incident going quiet, the replay memory or the outlook to prune."""
        times = [t for fs in state.families.values() for t in self._deadlines(fs)]
        if state.seen:
            times.append(datetime.fromtimestamp(min(state.seen.values()), UTC))
        state.due = min(times, default=None)

    def _deadlines(self, fs: FamilyState) -> list[datetime]:
        found = [s.expires for s in fs.sources.values() if s.expires is not None]
        if fs.last_activity is not None:
            found.append(fs.last_activity + self.quiet)
        if fs.reports:
            found.append(fs.reports[0].at + self.report_window)
        return found

    # --- folding -------------------------------------------------------------------------

    def _fold_alert(self, state: AreaState, signal: Signal, now: datetime,
                    touched: dict[HazardFamily, Change | None]) -> None:
        if signal.reference_keys:
            # An Update replaces, a Cancel ends, exactly the alerts it names, in any family.
            wanted = set(signal.reference_keys)
            for family, fs in state.families.items():
                gone = [ref for ref, s in fs.sources.items() if wanted.intersection(s.keys)]
                for ref in gone:
                    del fs.sources[ref]
                if gone:
                    cancelled = signal.msg_type is MsgType.CANCEL
                    touched[family] = Change.RESOLVED if cancelled else None
        if signal.msg_type is MsgType.CANCEL:
            return
        if signal.expires is not None and signal.expires <= now:
            return  # already over: nothing to warn of
        family = FAMILY[signal.hazard]
        fs = state.families.setdefault(family, FamilyState())
        fs.sources[signal.source_id] = Source(
            ref=signal.source_id, keys=list(signal.alert_keys), source=signal.source,
            hazard=signal.hazard, level=level_of_cap(signal.severity),
            proximity=signal.proximity, headline=signal.headline, at=input_time(signal),
            expires=signal.expires,
        )
        touched.setdefault(family, None)

    def _fold_quake(self, state: AreaState, signal: Signal, now: datetime,
                    touched: dict[HazardFamily, Change | None]) -> None:
        clock = self.rules.clock
        if now - signal.effective > clock.quake_max_age:
            return  # a feed re-listing an old quake: history, not news
        level = level_of_quake(signal.mmi, signal.tsunami)
        if level is None:
            return
        family = FAMILY[signal.hazard]
        fs = state.families.setdefault(family, FamilyState())
        fs.sources[signal.source_id] = Source(
            ref=signal.source_id, keys=[], source=signal.source, hazard=signal.hazard,
            level=level, proximity=signal.proximity, headline=signal.headline,
            at=signal.effective, expires=signal.effective + clock.quake_in_force,
        )
        touched.setdefault(family, None)

    def _fold_report(self, state: AreaState, signal: Signal, now: datetime,
                     touched: dict[HazardFamily, Change | None]) -> None:
        if now - signal.effective > self.report_window:
            return  # too old to corroborate anything
        family = FAMILY[signal.hazard]
        fs = state.families.setdefault(family, FamilyState())
        verified = signal.reporter_kind is not None and signal.reporter_kind.verified
        fs.reports.append(Corroboration(
            report_id=signal.source_id.removeprefix("report:"),
            reporter=signal.reporter_ref if verified else None,
            hazard=signal.hazard, at=signal.effective,
        ))
        fs.reports.sort(key=lambda r: r.at)
        del fs.reports[:-MAX_REPORTS]
        fs.last_activity = max(fs.last_activity or signal.effective, signal.effective)
        touched[family] = Change.UPDATED  # the desk sees every report an incident gathers

    def _addressed(
        self, state: AreaState, action: IncidentAction
    ) -> tuple[HazardFamily, FamilyState]:
        for family, fs in state.families.items():
            if fs.incident_id is None:
                continue
            if action.incident_id == fs.incident_id or (
                action.incident_id is None and action.hazard is family
            ):
                return family, fs
        target = action.incident_id or f"{action.area_code} {action.hazard}"
        raise RejectedInput(f"{action.action.value}: no open incident {target}")

    def _remember(self, state: AreaState, key: str, until: datetime) -> None:
        forget = until + self.report_window + self.rules.clock.remember
        state.seen[key] = forget.timestamp()
        if len(state.seen) > MAX_SEEN:
            # Forget the inputs that stopped mattering first (bounded state, whatever comes).
            keep = sorted(state.seen.items(), key=lambda item: item[1])[-(MAX_SEEN * 9 // 10):]
            state.seen = dict(keep)

    # --- deriving and publishing ---------------------------------------------------------

    def _evaluate(
        self, state: AreaState, family: HazardFamily, now: datetime, hint: Change | None,
        *, forced: bool = False,
    ) -> Incident | None:
        fs = state.families[family]
        self._prune(fs, now)
        if hint is Change.RESOLVED and forced:  # an operator resolves: over, whatever stands
            return self._close(state, family, fs, now, Change.RESOLVED)
        view = self._derive(fs, now)
        if fs.incident_id is None:
            if view is None:
                if not fs.reports and not fs.sources:
                    del state.families[family]
                return None
            state.opened += 1
            stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
            fs.incident_id = f"INC-{state.area_code}-{family.value}-{stamp}-{state.opened}"
            fs.opened_at = now
            change = Change.OPENED
        elif view is None or not view.keep_open:
            return self._close(state, family, fs, now, hint or Change.EXPIRED)
        else:
            previous = fs.published
            rank, was = LEVEL_RANK[view.level], LEVEL_RANK[previous[0]]
            crossed = previous[2] is Proximity.ADJACENT and view.proximity is Proximity.INSIDE
            if forced and hint is not None:
                change = hint
            elif rank > was or crossed:
                change = Change.ESCALATED
            elif rank < was:
                change = Change.DEESCALATED
            elif hint is None and _published(view, fs) == previous:
                return None
            else:
                change = Change.UPDATED
        return self._version(state, family, fs, view, now, change)

    def _prune(self, fs: FamilyState, now: datetime) -> None:
        fs.sources = {ref: s for ref, s in fs.sources.items()
                      if s.expires is None or s.expires > now}
        horizon = now - self.report_window
        if fs.reports and fs.reports[0].at < horizon:
            fs.reports = [r for r in fs.reports if r.at >= horizon]

    def _reporters(self, fs: FamilyState, now: datetime, within: timedelta) -> int:
        since = now - within
        return len({r.reporter for r in fs.reports if r.reporter and r.at >= since})

    def _derive(self, fs: FamilyState, now: datetime) -> _View | None:
        """The incident's standing now; None when nothing would open it (or keep it open)."""
        sources = list(fs.sources.values())
        inside = [s for s in sources if s.proximity is Proximity.INSIDE]
        near = [s for s in sources if s.proximity is Proximity.ADJACENT]
        reasons: list[str] = []
        rule = self.warned_rule
        if sources and rule and not fs.bumped and (
            self._reporters(fs, now, rule.window) >= rule.distinct_reporters
        ):
            fs.bumped = True
        if fs.bumped and rule:
            reasons.append(f"citizens confirmed ({rule.name})")
        operator_hold = fs.operator_verified or fs.operator_steps != 0
        quiet = fs.last_activity is None or now - fs.last_activity >= self.quiet
        proximity = Proximity.INSIDE
        if inside:
            base = highest([s.level for s in inside])
            assert base is not None
            steps = 1 if fs.bumped else 0
        elif near:
            base = highest([s.level for s in near])
            assert base is not None
            # Citizens inside the kelurahan confirming a warning next door: it is here now.
            proximity = Proximity.INSIDE if fs.bumped else Proximity.ADJACENT
            steps = 0
        else:
            opening = self.unwarned_rule
            reported = bool(opening) and opening is not None and (
                self._reporters(fs, now, opening.window) >= opening.distinct_reporters)
            if fs.incident_id is None and not reported:
                return None
            if fs.incident_id is not None and quiet and not operator_hold:
                return None
            base = (opening.level if opening and opening.level else Level.WASPADA)
            steps = 0
            if reported and opening:
                reasons.append(f"citizens reported without a warning ({opening.name})")
        level = shifted(base, steps + fs.operator_steps)
        if fs.operator_steps:
            reasons.append(f"operator {'+' if fs.operator_steps > 0 else ''}{fs.operator_steps}")
        main = max(sources, key=lambda s: (LEVEL_RANK[s.level], s.at)) if sources else None
        hazards = [main.hazard] if main else []
        # Reports that aged out of the window still named the hazard: the name stays.
        for hazard in [*(s.hazard for s in sources), *(r.hazard for r in reversed(fs.reports)),
                       *fs.hazards]:
            if hazard not in hazards:
                hazards.append(hazard)
        fs.hazards = hazards[:4]
        if main is not None:
            reasons.insert(0, f"{len(sources)} BMKG source(s) in force, "
                              f"highest {main.level.value}")
            headline = main.headline
        else:
            headline = f"Laporan warga: {hazards[0].value}" if hazards else "Laporan warga"
        expiries = [s.expires for s in sources if s.expires is not None]
        return _View(
            level=level,
            verified=bool(sources) or fs.operator_verified,
            proximity=proximity,
            keep_open=bool(sources) or operator_hold or not quiet,
            hazards=hazards or [Hazard.OTHER],
            headline=headline,
            expires=max(expiries) if expiries else None,
            reporters=self._reporters(fs, now, self.report_window),
            reason="; ".join(reasons),
        )

    def _announce(self, fs: FamilyState, view: _View) -> Announce | None:
        """What subscribers hear: the first public version, a level change, nothing else."""
        if not view.verified or view.proximity is not Proximity.INSIDE:
            return None  # unverified or next door: the 112 desk's to watch
        told = fs.announced
        fs.announced = view.level
        if told is None:
            return Announce.WARNING
        if LEVEL_RANK[view.level] > LEVEL_RANK[told]:
            return Announce.RAISED
        if LEVEL_RANK[view.level] < LEVEL_RANK[told]:
            return Announce.LOWERED
        return None

    def _version(self, state: AreaState, family: HazardFamily, fs: FamilyState, view: _View,
                 now: datetime, change: Change) -> Incident:
        fs.version += 1
        fs.published = _published(view, fs)
        assert fs.incident_id is not None and fs.opened_at is not None
        return Incident(
            incident_id=fs.incident_id,
            version=fs.version,
            status=IncidentStatus.OPEN,
            change=change,
            announce=self._announce(fs, view),
            area_code=state.area_code,
            area_name=state.area_name,
            kecamatan_code=state.kecamatan_code,
            kecamatan_name=state.kecamatan_name,
            hazard=family,
            hazards=view.hazards,
            level=view.level,
            verified=view.verified,
            proximity=view.proximity,
            acknowledged_by=fs.acknowledged_by,
            headline=view.headline,
            opened_at=fs.opened_at,
            updated_at=now,
            expires=view.expires,
            alerts=[SourceRef(ref=s.ref, source=s.source, hazard=s.hazard, level=s.level,
                              proximity=s.proximity, headline=s.headline, at=s.at,
                              expires=s.expires) for s in fs.sources.values()],
            report_ids=[r.report_id for r in fs.reports[-SHOWN_REPORTS:]],
            reporters=view.reporters,
            outlook=_outlook_text(state),
            audit=list(fs.audit),
            reason=view.reason,
            attribution=BMKG_ATTRIBUTION if fs.sources else None,
        )

    def _close(self, state: AreaState, family: HazardFamily, fs: FamilyState, now: datetime,
               change: Change) -> Incident | None:
        """The last version: resolved; the all-clear goes only to those who were warned."""
        del state.families[family]
        if fs.incident_id is None or fs.opened_at is None:
            return None
        level, _, proximity, *_ = fs.published
        announce = Announce.ALL_CLEAR if fs.announced is not None else None
        reason = ("resolved by an operator" if change is Change.RESOLVED and fs.audit
                  and fs.audit[-1].action is ActionKind.RESOLVE
                  else "cancelled by BMKG" if change is Change.RESOLVED
                  else "every source ran out")
        hazards = fs.hazards or [s.hazard for s in fs.sources.values()]
        return Incident(
            incident_id=fs.incident_id, version=fs.version + 1,
            status=IncidentStatus.RESOLVED, change=change, announce=announce,
            area_code=state.area_code, area_name=state.area_name,
            kecamatan_code=state.kecamatan_code, kecamatan_name=state.kecamatan_name,
            hazard=family, hazards=hazards[:1] or [_main_hazard(family)], level=level,
            verified=bool(fs.published[1]), proximity=proximity,
            acknowledged_by=fs.acknowledged_by, headline=fs.published[3],
            opened_at=fs.opened_at, updated_at=now, expires=None,
            report_ids=[r.report_id for r in fs.reports[-SHOWN_REPORTS:]],
            reporters=0, outlook=_outlook_text(state), audit=list(fs.audit), reason=reason,
            attribution=fs.published[4],
        )


_ACTION_CHANGE: dict[ActionKind, Change] = {
    ActionKind.ACK: Change.ACKNOWLEDGED,
    ActionKind.VERIFY: Change.VERIFIED,
    ActionKind.ESCALATE: Change.ESCALATED,
    ActionKind.DEESCALATE: Change.DEESCALATED,
    ActionKind.RESOLVE: Change.RESOLVED,
    ActionKind.NOTE: Change.NOTE,
}

_MAIN_HAZARD: dict[HazardFamily, Hazard] = {}
for _hazard, _family in FAMILY.items():
    _MAIN_HAZARD.setdefault(_family, _hazard)


def _main_hazard(family: HazardFamily) -> Hazard:
    return _MAIN_HAZARD[family]


def _published(view: _View, fs: FamilyState) -> tuple[Any, ...]:
    """What a version shows; a new version is published only when this changes."""
    return (view.level, view.verified, view.proximity, view.headline,
            BMKG_ATTRIBUTION if fs.sources else None, tuple(sorted(fs.sources)),
            fs.acknowledged_by)


def _name_area(state: AreaState, signal: Signal) -> None:
    if not state.area_code:
        state.area_code, state.area_name = signal.area_code, signal.area_name
        state.kecamatan_code, state.kecamatan_name = signal.kecamatan_code, signal.kecamatan_name


def _note_outlook(state: AreaState, signal: Signal, now: datetime) -> None:
    """Forecasts are context, never alarms: the outlook the duty officer sees."""
    state.outlook = {h: until for h, until in state.outlook.items() if until > now}
    if signal.expires is None or signal.expires <= now:
        return
    until = state.outlook.get(signal.hazard)
    if until is None or signal.expires > until:
        state.outlook[signal.hazard] = signal.expires


def _outlook_text(state: AreaState) -> str | None:
    if not state.outlook:
        return None
    return "; ".join(f"{hazard.value} until {until.isoformat()}"
                     for hazard, until in sorted(state.outlook.items()))
