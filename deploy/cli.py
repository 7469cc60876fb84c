"""``kentongan``: one command line for every Kentongan process."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from schemas.settings import Settings


def _stop_on_signals() -> threading.Event:
    """SIGINT/SIGTERM end a long-running loop cleanly (offsets committed, producers flushed)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from deploy.kafka_runner import KafkaRunner, KafkaRunnerError

    runner = KafkaRunner.from_settings(settings)
    try:
        if args.action == "up":
            status = runner.up()
        elif args.action == "down":
            stopped = runner.down()
            print("stopped the broker" if stopped else "no broker of ours was running")
            return 0
        else:
            status = runner.status()
    except KafkaRunnerError as exc:
        print(f"kentongan kafka {args.action}: {exc}", file=sys.stderr)
        return 1
    live = status.running and status.answered
    state = "live" if live else ("running, not answering" if status.running else "stopped")
    print(f"broker: {state}")
    print(f"bootstrap: {status.bootstrap}")
    print(f"pid: {status.pid if status.pid is not None else '-'}")
    print(f"version: {status.version}")
    print(f"cluster_id: {status.cluster_id or '-'}")
    if status.detail:
        print(f"detail: {status.detail}")
    return 0 if live else 1


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from deploy.topics import create_topics

    created = create_topics(settings.kafka_bootstrap, prefix=settings.topic_prefix)
    for name in created:
        print(f"created {name}")
    print(f"{len(created)} created; the catalogue's topics exist on {settings.kafka_bootstrap}")
    return 0


def _intake(args: argparse.Namespace, settings: Settings) -> int:
    from producers.intake.api import run_intake

    run_intake(settings)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream_processors.worker import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def _deliver(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import start_http_server

    from consumers.deliver import run_channel
    from consumers.sinks.spec import SinkSpecError, build_sink
    from schemas.events import Channel

    if args.sink and args.outbox:
        print("kentongan deliver: give --sink or --outbox, not both", file=sys.stderr)
        return 2
    # --outbox PATH is the old spelling of --sink outbox:PATH.
    spec = args.sink or f"outbox:{args.outbox or settings.outbox_path}"
    try:
        sink = build_sink(Channel(args.channel), spec, settings)
    except (SinkSpecError, OSError, ValueError) as exc:
        print(f"kentongan deliver {args.channel}: {exc}", file=sys.stderr)
        return 2
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="127.0.0.1")
    stop = _stop_on_signals()
    print(f"delivering {args.channel} to {spec.partition(':')[2] or spec}", flush=True)
    stats = run_channel(Channel(args.channel), sink, settings, stop)
    print(f"stopped delivering {args.channel}: " + (", ".join(
        f"{status}={count}" for status, count in sorted(stats.outcomes.items())) or "nothing"))
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from producers.feeds import publish_jsonl
    from producers.publisher import Publisher
    from schemas.topics import REPORTS_RAW, SUBSCRIBERS

    with Publisher(settings.kafka_bootstrap, prefix=settings.topic_prefix) as publisher:
        if args.source == "bmkg":
            from producers.bmkg.replay import replay

            if not args.replay:
                from producers.bmkg.poll import run_polling

                stop = _stop_on_signals()
                stats = run_polling(settings, publisher, stop)
                print(f"stopped polling BMKG: published {stats.published}, "
                      f"unchanged {stats.not_modified}, duplicates {stats.duplicates}, "
                      f"dead-lettered {stats.rejected}, failed fetches {stats.failed}")
                return 0
            result = replay(Path(args.replay), publisher, speed=args.speed)
            print(f"published {result.published}, dead-lettered {result.rejected}, "
                  f"skipped {result.skipped} (RSS index), "
                  f"{result.duplicates} already on the raw topics")
            return 0
        spec = REPORTS_RAW if args.source == "reports" else SUBSCRIBERS
        count = publish_jsonl(Path(args.file), spec, publisher)
        print(f"published {count} to {spec.full_name(settings.topic_prefix)}")
    return 0


def _subscribers(args: argparse.Namespace, settings: Settings) -> int:
    from producers.subscribers import ASSUMPTIONS, generate_csv, parse_subscriber_csv
    from schemas.geography import load_geography

    geography = load_geography()
    if args.action == "generate":
        if args.total < 1:
            print("kentongan subscribers generate: --total must be at least 1", file=sys.stderr)
            return 2
        lines = generate_csv(args.total, geography, seed=args.seed)
        if args.out:
            with Path(args.out).open("w", encoding="utf-8") as out:
                out.writelines(lines)
        else:
            sys.stdout.writelines(lines)
        # stderr: the CSV on stdout stays importable as it is.
        print(f"generated {args.total} subscribers (seed {args.seed}); ASSUMPTION: "
              f"{ASSUMPTIONS}", file=sys.stderr)
        return 0

    from producers.publisher import Publisher
    from schemas.topics import SUBSCRIBERS

    path = Path(args.file)
    try:
        result = parse_subscriber_csv(path.read_text(encoding="utf-8"), geography)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"kentongan subscribers import: {path}: {exc}", file=sys.stderr)
        return 2
    with Publisher(settings.kafka_bootstrap, prefix=settings.topic_prefix) as publisher:
        sent = [publisher.send(SUBSCRIBERS, s.subscriber_id, s) for s in result.subscribers]
        for bad in result.bad:  # kept, with the reason, on the dead letters
            publisher.dead_letter(source_topic=SUBSCRIBERS.full_name(publisher.prefix),
                                  key=f"{path.name}:{bad.line}", value=bad.text,
                                  stage="import-subscribers", reason=bad.reason)
        publisher.flush()
    failed = sum(1 for future in sent if future.failed())
    for bad in result.bad:  # line numbers and reasons only: no phone number is printed
        print(f"{path.name}: line {bad.line}: {bad.reason}", file=sys.stderr)
    print(f"imported {len(sent) - failed} subscribers from {result.rows} rows; "
          f"{len(result.bad)} bad rows (on the dead letters); {failed} not acknowledged")
    return 1 if result.bad or failed else 0


# ``kentongan parse KIND FILE``: each kind names a pure function ``(data, file_name) -> models``
# that raises a ValueError subclass (the parser's documented rejection) on bad input.
PARSERS: dict[str, str] = {
    "cap": "producers.bmkg.cap:parse_command",
    "forecast": "producers.bmkg.forecast:parse_command",
    "quake": "producers.bmkg.quake:parse_command",
    "report": "producers.reports:parse_command",
}


def _parse(args: argparse.Namespace, settings: Settings) -> int:
    module_name, _, function = PARSERS[args.kind].partition(":")
    parse_command = getattr(importlib.import_module(module_name), function)
    path = Path(args.file)
    try:
        models = parse_command(path.read_bytes(), path.name)
    except (OSError, ValueError) as exc:
        print(f"kentongan parse {args.kind}: {path}: {exc}", file=sys.stderr)
        return 1
    for model in models:
        print(model.model_dump_json())
    return 0


def _load_rules(path: str | None, settings: Settings) -> object:
    from stream_processors.rules import RulesError, load_rules

    try:
        return load_rules(Path(path) if path else settings.rules)
    except RulesError as exc:
        print(f"kentongan: refusing the rules: {exc}", file=sys.stderr)
        return None


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from stream_processors.rules import Rules
    from stream_processors.simulate import Rejection, simulate, summary

    rules = _load_rules(args.rules, settings)
    if not isinstance(rules, Rules):
        return 2
    timeline = Path(args.timeline)
    if not timeline.is_file():
        print(f"kentongan simulate: no timeline at {timeline}", file=sys.stderr)
        return 2
    rejected = 0
    for item in simulate(timeline, rules):
        if isinstance(item, Rejection):
            rejected += 1
            print(json.dumps(item.as_json(), ensure_ascii=False), file=sys.stderr)
        elif args.full:
            print(item.model_dump_json())
        else:
            print(json.dumps(summary(item), ensure_ascii=False))
    return 1 if rejected and args.strict else 0


def _rules(args: argparse.Namespace, settings: Settings) -> int:
    from stream_processors.rules import Rules

    rules = _load_rules(args.file, settings)
    if not isinstance(rules, Rules):
        return 2
    names = ", ".join(rule.name for rule in rules.corroboration) or "none"
    print(f"rules OK: corroboration rules {names}")
    return 0


def _incident(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from schemas.events import IncidentAction, utc_now
    from schemas.topics import INCIDENT_ACTIONS

    fields = {"action_id": args.action_id or f"cli-{uuid.uuid4().hex}", "action": args.action,
              "incident_id": args.incident_id, "area_code": args.area_code,
              "hazard": args.hazard, "operator": args.operator, "reason": args.reason or "",
              "at": utc_now()}
    try:
        action = IncidentAction.model_validate(fields)
    except ValidationError as exc:
        print(f"kentongan incident act: {exc}", file=sys.stderr)
        return 2
    from producers.publisher import Publisher

    with Publisher(settings.kafka_bootstrap, prefix=settings.topic_prefix) as publisher:
        publisher.send(INCIDENT_ACTIONS, action.incident_id or action.target_area(), action)
    print(action.model_dump_json())
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from deploy.demo import run_demo

    return run_demo(settings, timeout_s=args.timeout, keep_broker=args.keep_broker)


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(Path(args.directory)):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kentongan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the local single-node Kafka broker (KRaft)")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.set_defaults(func=_kafka)

    topics = sub.add_parser("topics", help="the topic catalogue")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=_topics)

    intake = sub.add_parser(
        "intake", help="HTTP API for citizen reports (app, call centre) and Kannel inbound SMS"
    )
    intake.set_defaults(func=_intake)

    worker = sub.add_parser("worker", help="the faust stream processors")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(func=_worker)

    deliver = sub.add_parser(
        "deliver", help="a delivery consumer",
        description="Deliver one channel's jobs. Gateway secrets come from the environment "
                    "(KENTONGAN_DELIVERY_*), never from the command line.")
    deliver.add_argument("channel", choices=["sms", "push", "callcentre"])
    deliver.add_argument(
        "--sink", metavar="KIND:ARG",
        help="outbox:PATH (dry run, any channel) | kannel:URL | http:URL (SMS) | "
             "fcm:PROJECT | webpush: (push) | webhook:URL (call centre); default: the outbox")
    deliver.add_argument("--outbox", metavar="PATH", help="same as --sink outbox:PATH")
    deliver.set_defaults(func=_deliver)

    produce = sub.add_parser("produce", help="put records on Kafka")
    produce_sub = produce.add_subparsers(dest="source", required=True)
    bmkg = produce_sub.add_parser("bmkg", help="BMKG feeds")
    bmkg.add_argument("--replay", metavar="DIR",
                      help="publish recorded BMKG files (CAP, forecast, earthquake) from DIR; "
                           "without it, poll BMKG live")
    bmkg.add_argument("--speed", type=float, default=1.0,
                      help="1 = original timing, 10 = ten times faster, 0 = as fast as possible")
    for name in ("reports", "subscribers"):
        jsonl = produce_sub.add_parser(name, help=f"publish {name} from a JSON-lines file")
        jsonl.add_argument("file")
    produce.set_defaults(func=_produce)

    subscribers = sub.add_parser("subscribers", help="subscriber lists")
    subscribers_sub = subscribers.add_subparsers(dest="action", required=True)
    importing = subscribers_sub.add_parser(
        "import", help="publish subscribers from a CSV: phone,kelurahan_code,language,channels"
                       "[,push_token]; channels sms, push or sms+push; bad rows are reported "
                       "by line and dead-lettered, good rows imported")
    importing.add_argument("file")
    population = ("a realistic test population as import CSV over Mataram's 50 kelurahan. "
                  "ASSUMPTION (no source gives these): people spread by the kecamatan shares "
                  "of BPS SP2010, evenly over each kecamatan's kelurahan; 5%% read English; "
                  "80%% take sms, 15%% sms+push, 5%% push")
    generating = subscribers_sub.add_parser("generate", help=population,
                                            description=population.replace("%%", "%"))
    generating.add_argument("--total", type=int, required=True, help="how many people")
    generating.add_argument("--out", help="CSV file to write (default: stdout)")
    generating.add_argument("--seed", type=int, default=0, help="same seed, same people")
    subscribers.set_defaults(func=_subscribers)

    parse = sub.add_parser("parse", help="print the signals a document yields (no broker)")
    parse.add_argument("kind", choices=sorted(PARSERS))
    parse.add_argument("file")
    parse.set_defaults(func=_parse)

    demo = sub.add_parser("demo", help="the whole pipeline on a local broker, on a recording")
    demo.add_argument("--timeout", type=float, default=120.0)
    demo.add_argument("--keep-broker", action="store_true",
                      help="leave a broker the demo started running afterwards")
    demo.set_defaults(func=_demo)

    simulate = sub.add_parser(
        "simulate", help="the incident rules over a JSON-lines timeline, without Kafka")
    simulate.add_argument("timeline", help="JSON lines: {at, cap|quake|forecast|report|action}")
    simulate.add_argument("--rules", help="rules YAML (default: KENTONGAN_RULES or the packaged)")
    simulate.add_argument("--full", action="store_true", help="print whole incident versions")
    simulate.add_argument("--strict", action="store_true",
                          help="exit 1 when a line was rejected")
    simulate.set_defaults(func=_simulate)

    rules = sub.add_parser("rules", help="the incident rules")
    rules.add_argument("action", choices=["check"])
    rules.add_argument("file", nargs="?", help="rules YAML (default: the one in force)")
    rules.set_defaults(func=_rules)

    incident = sub.add_parser("incident", help="the duty officer's actions on incidents")
    incident_sub = incident.add_subparsers(dest="incident_command", required=True)
    act = incident_sub.add_parser("act", help="publish an action on incident.actions")
    act.add_argument("action", choices=["ack", "verify", "escalate", "deescalate", "resolve",
                                        "note"])
    act.add_argument("--incident-id", help="the incident (or --area-code and --hazard)")
    act.add_argument("--area-code", help="kelurahan code, e.g. 52.71.01.1004")
    act.add_argument("--hazard", help="hazard family: hydromet, wind, marine, fire, "
                                      "earthquake, other")
    act.add_argument("--operator", required=True, help="who acts (shown in the audit trail)")
    act.add_argument("--reason", help="why")
    act.add_argument("--action-id", help="idempotency key (default: a new one)")
    incident.set_defaults(func=_incident)

    schemas = sub.add_parser("schemas", help="the event contract")
    schemas.add_argument("action", choices=["export"])
    schemas.add_argument("directory")
    schemas.set_defaults(func=_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # kafka-python narrates every connection at INFO; operators need its warnings only.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    status: int = args.func(args, Settings())
    return status


if __name__ == "__main__":
    sys.exit(main())
