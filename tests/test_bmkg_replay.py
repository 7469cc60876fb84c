"""Replaying recorded BMKG files of all three feeds: kind by content, original order and
timing, and (through a real broker) each raw document and each signal landing once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.processes import start, stop
from deploy.topics import create_topics
from producers.bmkg import forecast as forecast_mod
from producers.bmkg import quake as quake_mod
from producers.bmkg.cap import parse_cap, signals_from_cap
from producers.bmkg.dedupe import KeyLedger
from producers.bmkg.replay import MAX_GAP_S, Kind, detect_kind, load_directory, replay
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import RawDocument, Signal, SignalSource
from schemas.geography import load_geography
from schemas.topics import FORECAST_RAW, NOWCAST_RAW, QUAKE_RAW, SIGNALS
from tests.bmkg_fakes import RecordingPublisher
from tests.kafka_helpers import read_topic, wait_for, wait_while_running

DATA = Path(__file__).parent / "data" / "bmkg"
MATARAM_CAPS = ("mataram_test_CNB20261127001_alert.xml", "mataram_test_CNB20261127002_alert.xml")


def recorded_copy(tmp_path: Path) -> Path:
    """All recorded files (real and TEST), in one tree as an operator would keep them."""
    target = tmp_path / "recorded"
    for sub in ("cap", "prakiraan", "gempa"):
        shutil.copytree(DATA / sub, target / sub)
    return target


def test_the_kind_comes_from_the_content_not_the_name() -> None:
    samples = {
        "cap/siaga_id_CGT20260924002_alert.xml": Kind.NOWCAST,
        "cap/siaga_rss_id_2026-09-24.xml": Kind.RSS,
        "prakiraan/siaga_prakiraan-32.73.01.1001_2026-09-24.json": Kind.FORECAST,
        "prakiraan/siaga_prakiraan-404.json": Kind.FORECAST,
        "gempa/alfanalfarisy_autogempa_2022-08-22.xml": Kind.QUAKE,
        "gempa/siaga_gempaterkini_2026-09-24_trimmed.json": Kind.QUAKE,
    }
    for name, kind in samples.items():
        body = (DATA / name).read_bytes()
        assert detect_kind(body, name) is kind, name
        assert detect_kind(body, "misleading-gempa-prakiraan.json") is kind, name
    # content too broken to tell: the name decides
    assert detect_kind(b'{"Infoge', "autogempa.json") is Kind.QUAKE
    assert detect_kind(b"", "x_prakiraan.json") is Kind.FORECAST
    assert detect_kind(b"\x00\x01", "x.xml") is Kind.NOWCAST


def test_files_are_ordered_by_their_own_time_and_rejects_come_last(tmp_path: Path) -> None:
    recorded = load_directory(recorded_copy(tmp_path))
    good = [r for r in recorded if r.error is None and r.kind is not Kind.RSS]
    times = [r.at for r in good]
    assert all(t is not None for t in times)
    assert times == sorted(times)  # type: ignore[type-var]
    assert good[0].path.name == "alfanalfarisy_autogempa_2022-08-22.xml"  # 2022-08-22
    rejected = [r.path.name for r in recorded if r.error is not None]
    assert sorted(rejected) == ["afdaapala_autogempa_legacy_2020-06-23.xml",
                                "siaga_prakiraan-404.json"]
    assert [r.path.name for r in recorded][-2:] == sorted(rejected)


def test_replay_keeps_relative_timing_and_caps_long_gaps(tmp_path: Path) -> None:
    directory = tmp_path / "two"
    directory.mkdir()
    for name in MATARAM_CAPS:  # both sent at 14:30 WITA: no gap
        shutil.copy(DATA / "cap" / name, directory)
    for name in ("mataram_test_autogempa_2026-11-27.json",  # 07:10:05Z
                 "mataram_test_gempadirasakan_2026-11-28.json"):  # newest 2026-11-28T02:41:12Z
        shutil.copy(DATA / "gempa" / name, directory)
    sleeps: list[float] = []
    publisher = RecordingPublisher()
    result = replay(directory, publisher, speed=10.0, sleep=sleeps.append,  # type: ignore[arg-type]
                    ledger=KeyLedger())
    assert result.published == 4 and result.rejected == 0
    order = [str(key).split("|")[0] for _, key, _ in publisher.sent]
    # CAPs sent 06:30Z, the quake at 07:10:05Z (gap 40m05s), the felt list's newest event the
    # next day (gap > 1 h, shortened to MAX_GAP_S).
    assert order == ["CNB20261127001", "CNB20261127002", "autogempa", "gempadirasakan"]
    assert sleeps == [pytest.approx(2405 / 10.0), pytest.approx(MAX_GAP_S / 10.0)]


def test_a_second_replay_against_the_same_ledger_publishes_nothing(tmp_path: Path) -> None:
    directory = recorded_copy(tmp_path)
    ledger = KeyLedger()
    first = replay(directory, RecordingPublisher(), ledger=ledger)  # type: ignore[arg-type]
    second_publisher = RecordingPublisher()
    second = replay(directory, second_publisher, ledger=ledger)  # type: ignore[arg-type]
    assert first.published == 17 and first.rejected == 2 and first.skipped == 2
    assert first.duplicates == 1  # the en copy of CGT20260924002: same file code and sent
    assert second.published == 0 and second.duplicates == 18
    assert second_publisher.sent == []


@pytest.fixture
def worker_env(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Iterator[dict[str, object]]:
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap,
           "KENTONGAN_TOPIC_PREFIX": topic_prefix, "KENTONGAN_HOME": str(tmp_path / "home")}
    processes: list[subprocess.Popen[bytes]] = []
    yield {"env": env, "processes": processes, "logs": tmp_path / "logs"}
    for process in processes:
        stop(process)


@pytest.mark.kafka
def test_replaying_twice_lands_each_raw_document_and_each_signal_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, worker_env: dict[str, object],
) -> None:
    env, processes, logs = worker_env["env"], worker_env["processes"], worker_env["logs"]
    assert isinstance(env, dict) and isinstance(processes, list) and isinstance(logs, Path)
    directory = recorded_copy(tmp_path)
    with Publisher(kafka_bootstrap, prefix=topic_prefix) as publisher:
        first = replay(directory, publisher, speed=0)
    assert (first.published, first.rejected) == (17, 2)
    # The second replay goes through the command line an operator uses.
    cli = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "produce", "bmkg", "--replay", str(directory),
         "--speed", "0"], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert cli.stdout.startswith("published 0,"), cli.stdout + cli.stderr

    raw: dict[str, list[RawDocument]] = {}
    for spec in (NOWCAST_RAW, FORECAST_RAW, QUAKE_RAW):
        records = read_topic(kafka_bootstrap, spec.full_name(topic_prefix),
                             partitions=spec.partitions, timeout_s=3.0)
        keys = Counter(r.key.decode() for r in records)
        assert set(keys.values()) == {1}, keys
        raw[spec.name] = [decode(RawDocument, r.value) for r in records]
    assert [len(raw[n]) for n in ("bmkg.nowcast.raw", "bmkg.forecast.raw", "bmkg.quake.raw")] \
        == [7, 2, 8]

    geo = load_geography()
    expected_nowcast = {
        s.signal_id
        for name in MATARAM_CAPS
        for s in signals_from_cap(parse_cap((DATA / "cap" / name).read_bytes(), file_name=name),
                                  geo)
    }
    assert len(expected_nowcast) == 3
    processes.append(start(["worker"], env, logs / "worker.log"))
    # What the worker should emit, computed from the raw records with the same pure functions.
    forecast_ids = Counter(s.signal_id for d in raw["bmkg.forecast.raw"]
                           for s in forecast_mod.signals_from_document(d, geo))
    quake_ids = Counter(s.signal_id for d in raw["bmkg.quake.raw"]
                        for s in quake_mod.signals_from_document(d, geo))
    assert len(forecast_ids) == 3 and set(forecast_ids.values()) == {1}
    # 50 kelurahan for the near event, 50 for the felt-report event. The near event is listed
    # by two feeds (autogempa and gempadirasakan): two raw documents, so its 50 ids come twice
    # (correlation dedupes on signal_id); replaying the directory again adds nothing.
    assert len(quake_ids) == 100 and sum(quake_ids.values()) == 150
    expected_total = len(expected_nowcast) + sum(forecast_ids.values()) + sum(quake_ids.values())

    def signals_on_topic() -> list[Signal]:
        records = read_topic(kafka_bootstrap, SIGNALS.full_name(topic_prefix),
                             partitions=SIGNALS.partitions, timeout_s=1.0)
        return [decode(Signal, r.value) for r in records]

    wait_while_running(lambda: len(signals_on_topic()) >= expected_total, processes, logs,
                       timeout_s=120)
    wait_for(lambda: False, timeout_s=5)  # nothing more may arrive
    landed = signals_on_topic()
    by_source = {source: Counter(s.signal_id for s in landed if s.source is source)
                 for source in (SignalSource.NOWCAST, SignalSource.FORECAST, SignalSource.QUAKE)}
    assert by_source[SignalSource.NOWCAST] == Counter(expected_nowcast)
    assert by_source[SignalSource.FORECAST] == forecast_ids
    assert by_source[SignalSource.QUAKE] == quake_ids
    assert len(landed) == expected_total
    assert all(s.attribution == "Sumber: BMKG" for s in landed)
    assert min(s.effective for s in landed if s.source is SignalSource.QUAKE) == datetime(
        2026, 11, 27, 7, 10, 5, tzinfo=UTC)
