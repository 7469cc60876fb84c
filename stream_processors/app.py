"""The faust worker: reads like the pipeline diagram; the logic lives in plain modules.

    bmkg.{nowcast,forecast,quake}.raw ─ normalize_bmkg ───┐
    reports.raw ─────────────────────── normalize_reports ┴─> signals ─────┐
    incident.actions ─ route_actions ─> incident.commands, ticks ──┴─ correlate ─> incidents
    subscribers, incidents ─ planning.stages (by kelurahan) ─> alerts.{sms,push,callcentre}
    any failure ─> deadletter (the record and the reason; the agent keeps going)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust

from producers.bmkg import cap, forecast, quake
from producers.publisher import dead_letter
from producers.reports import (
    IDENTITY_HEADER,
    UnlocatedReport,
    callcentre_job,
    report_from_raw,
    reporter_kind,
    signal_from_report,
)
from schemas.codec import decode, encode
from schemas.events import (
    Command,
    Incident,
    IncidentAction,
    RawDocument,
    Signal,
    SignalSource,
    dead_letter_key,
    utc_now,
)
from schemas.geography import Geography, load_geography
from schemas.settings import Settings
from schemas.topics import (
    ALERT_TOPICS,
    DEADLETTER,
    FORECAST_RAW,
    INCIDENT_ACTIONS,
    INCIDENT_COMMANDS,
    INCIDENTS,
    NOWCAST_RAW,
    QUAKE_RAW,
    REPORTS_RAW,
    SIGNALS,
    TopicSpec,
)
from stream_processors import metrics, planning
from stream_processors.clock import StreamClock
from stream_processors.correlation import AreaState, Correlator, input_time
from stream_processors.partitions import partition_of
from stream_processors.planning import directory_changelog as directory_changelog
from stream_processors.rules import Rules, load_rules
from stream_processors.state_codec import dump_state, load_state

log = logging.getLogger(__name__)
Event = faust.EventT[bytes]
# Each BMKG feed's pure parser: a raw document in, the kelurahan signals out (ValueError if bad).
BmkgNormalizer = Callable[[RawDocument, Geography], list[Signal]]



def _header(event: Event, name: str) -> bytes | None:
    headers: Any = event.message.headers or []
    pairs: list[tuple[str, bytes]] = list(
        headers.items() if isinstance(headers, dict) else headers)
    return next((value for key, value in pairs if key == name), None)


def create_app(settings: Settings, rules: Rules | None = None) -> faust.App:
    prefix = settings.topic_prefix
    app = faust.App(
        f"{prefix}{settings.app_id}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=SIGNALS.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        # A killed worker's partitions move to the restarted one after the session timeout:
        # faust's 60 s default is a minute of silence after every crash of an alerting system.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        web_enabled=False,
        datadir=str(settings.home / "faust" / f"{prefix}{settings.app_id}"),
    )
    geography = load_geography()
    correlator = Correlator(rules or load_rules(settings.rules))

    def topic(spec: TopicSpec) -> faust.TopicT:
        return app.topic(
            spec.full_name(prefix),
            key_serializer="raw",
            value_serializer="raw",
            partitions=spec.partitions,
        )

    reports_raw = topic(REPORTS_RAW)
    signals, incidents, deadletter = topic(SIGNALS), topic(INCIDENTS), topic(DEADLETTER)
    commands = topic(INCIDENT_COMMANDS)
    # The correlator reads its kelurahan's signals and commands (actions, ticks) in one stream:
    # both topics are keyed by area_code with the same partition count.
    correlator_input = app.topic(
        SIGNALS.full_name(prefix), INCIDENT_COMMANDS.full_name(prefix),
        key_serializer="raw", value_serializer="raw",
    )
    alerts = {channel: topic(spec) for channel, spec in ALERT_TOPICS.items()}

    # faust gives a table's changelog the key codec of its key_type ("json" unless bytes), not
    # the app's raw default, and writes bytes keys raw whatever the codec: without key_type=bytes
    # a bytes-keyed table fails to recover (JSON-decoding raw keys) and a restarted worker is
    # never ready. The placements are keyed by str (JSON both ways); key_type=bytes there would
    # recover bytes keys that str lookups miss. Values are JSON.
    area_state = app.Table("area-state", partitions=SIGNALS.partitions, key_type=bytes)
    # Where each CAP alert lay, so an Update or Cancel naming it in <references> (possibly with
    # no polygon of its own) reaches the same kelurahan, whichever worker parsed the original.
    placements = app.GlobalTable("cap-placements", partitions=NOWCAST_RAW.partitions,
                                 key_type=str)

    async def reject(event: Event, stage: str, reason: str) -> None:
        message = event.message
        letter = dead_letter(source_topic=message.topic, partition=message.partition,
                             offset=message.offset, key=message.key, value=message.value,
                             stage=stage, reason=reason)
        metrics.DEADLETTERS.labels(stage=stage).inc()
        # The reason may quote the record (a phone, free text): it goes to Kafka, not the log.
        log.warning("dead-lettered %s:%s:%s at %s", message.topic, message.partition,
                    message.offset, stage)
        await deadletter.send(
            key=dead_letter_key(message.topic, message.partition, message.offset).encode(),
            value=encode(letter),
        )

    async def emit_signals(found: list[Signal]) -> None:
        for signal in found:
            metrics.SIGNALS.labels(source=signal.source.value, hazard=signal.hazard.value).inc()
            await signals.send(key=signal.area_code.encode(), value=encode(signal))

    def guarded(stage: str, handle: Callable[[Event], Awaitable[None]]) -> Callable[..., Any]:
        """One bad record never stops an agent: it is dead-lettered with the reason."""

        async def agent(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
            async for event in stream.events():
                try:
                    await handle(event)
                # Expected, explainable rejections: CapError, UnlocatedReport and pydantic's
                # ValidationError are all ValueErrors.
                except ValueError as exc:
                    await reject(event, stage, f"{type(exc).__name__}: {exc}")
                except Exception as exc:  # a bug must not silently lose a citizen's record
                    log.error("unexpected %s in %s", type(exc).__name__, stage)
                    trace = "".join(traceback.format_exception(exc))
                    await reject(event, stage, f"unexpected {type(exc).__name__}: {exc}\n{trace}")
                yield None

        agent.__name__ = stage
        agent.__qualname__ = stage
        return agent

    async def normalize_nowcast(event: Event) -> None:
        document = decode(RawDocument, event.message.value)
        alert = cap.parse_cap(document.body.encode(), file_name=document.name)
        await emit_signals(cap.signals_remembering(alert, geography, placements))

    def normalize_bmkg(to_signals: BmkgNormalizer) -> Callable[[Event], Awaitable[None]]:
        async def normalize(event: Event) -> None:
            document = decode(RawDocument, event.message.value)
            await emit_signals(to_signals(document, geography))

        return normalize

    async def normalize_reports(event: Event) -> None:
        # The intake keeps the body as received; a body without report_id has it in the key.
        report = report_from_raw(event.message.key, event.message.value)
        kind = reporter_kind(report, _header(event, IDENTITY_HEADER))
        try:
            found = signal_from_report(report, geography, kind)
        except UnlocatedReport:
            # Nobody's report is dropped: a person at the 112 desk reads it and calls back.
            # It is dead-lettered as well (re-raised), so the audit trail shows why.
            job = callcentre_job(report, geography, utc_now())
            metrics.JOBS.labels(channel=job.channel.value).inc()
            await alerts[job.channel.value].send(key=job.recipient.encode(), value=encode(job))
            raise
        await emit_signals([found])

    # Decoded states of the kelurahan this worker holds; the table (changelogged) is the truth.
    states: dict[str, AreaState] = {}
    # One clock for the worker: Mataram is one place, and any input's time is news of the hour.
    clock = StreamClock()

    async def _forget_states(sender: Any, *args: Any, **kwargs: Any) -> None:
        states.clear()

    app.on_partitions_revoked.connect(_forget_states)  # type: ignore[arg-type]

    def state_of(area: str) -> AreaState:
        state = states.get(area)
        if state is None:
            stored = area_state.get(area.encode())
            state = states[area] = load_state(stored) if stored else AreaState()
        return state

    async def publish(area: str, state: AreaState, versions: list[Incident]) -> None:
        # Versions before the state that records them: a crash in between replays the input
        # and publishes the same versions again (consumers dedupe), never none at all.
        for incident in versions:
            metrics.INCIDENTS.labels(change=incident.change.value).inc()
            await incidents.send(key=incident.incident_id.encode(), value=encode(incident))
        area_state[area.encode()] = dump_state(state)

    async def correlate(event: Event) -> None:
        message, wall = event.message, utc_now()
        if message.topic == signals.get_topic_name():
            signal = decode(Signal, message.value)
            correlator.admit(signal, wall)  # before a future stamp could move the clock
            state = state_of(signal.area_code)
            if signal.source is SignalSource.FORECAST:
                # Forecast steps lie ahead: they are context and must not move the clock.
                now = clock.now(wall) or state.clock or signal.effective
            else:
                now = clock.observe(max(input_time(signal), state.clock or input_time(signal)),
                                    wall)
            versions = correlator.on_signal(state, signal, now, received=wall)
            await publish(signal.area_code, state, versions)
            return
        command = decode(Command, message.value)
        if command.kind == "action" and command.action is not None:
            area = command.action.target_area()
            state = state_of(area)
            at = clock.now(wall) or wall
            await publish(area, state, correlator.on_action(state, command.action, at,
                                                            received=wall))
            return
        # A tick: expire what ran out in every kelurahan of this partition. A replayed
        # timeline's clock lines arrive as ticks that move the clock to their time.
        if command.advance_to is not None:
            clock.observe(command.advance_to, wall)
        mine = [key.decode() for key in list(area_state.keys())
                if partition_of(key.decode(), SIGNALS.partitions) == message.partition]
        if not clock.started:
            known = [c for c in (state_of(area).clock for area in mine) if c is not None]
            if not known:
                return
            clock.observe(max(known), wall)
        ticked = clock.now(wall)
        assert ticked is not None
        for area in mine:
            state = state_of(area)
            if state.families:
                versions = correlator.on_tick(state, ticked)
                if versions:
                    await publish(area, state, versions)

    async def route_actions(event: Event) -> None:
        action = decode(IncidentAction, event.message.value)
        area = action.target_area()
        command = Command(kind="action", action=action, at=utc_now())
        await commands.send(key=area.encode(), value=encode(command))

    @app.timer(interval=settings.tick_seconds, on_leader=True)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        # Punctuation on the wall clock: one tick to every partition the correlator reads.
        command = encode(Command(kind="tick", at=utc_now()))
        for partition in range(INCIDENT_COMMANDS.partitions):
            await commands.send(value=command, partition=partition)

    wiring = [
        (topic(NOWCAST_RAW), "normalize-nowcast", normalize_nowcast),
        (topic(FORECAST_RAW), "normalize-forecast",
         normalize_bmkg(forecast.signals_from_document)),
        (topic(QUAKE_RAW), "normalize-quake", normalize_bmkg(quake.signals_from_document)),
        (reports_raw, "normalize-reports", normalize_reports),
        (correlator_input, "correlate", correlate),
        (topic(INCIDENT_ACTIONS), "route-actions", route_actions),
        # --- fan-out planning by kelurahan (issue #8): stream_processors/planning.py ---
        *planning.stages(app, settings, topic, alerts),
    ]
    for source, stage, handle in wiring:
        app.agent(source, name=stage)(guarded(stage, handle))
    return app

