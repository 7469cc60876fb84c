"""Phone -> Kannel -> intake -> Kafka, and the reply SMS back: real bearerbox and smsbox.

The test plays the SMSC: it speaks Kannel's fakesmsc line protocol (as read in Kannel's
gw/smsc/smsc_fake.c) to bearerbox's ``smsc = fake`` port. bearerbox listens; the peer connects.
A line is ``sender receiver type message``: type ``text`` carries the message as is (rest of
the line), ``data`` URL-encoded, ``udh`` URL-encoded UDH then URL-encoded message.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.kannel import CONF_PATH, KannelPorts, render_kannel_conf
from deploy.topics import create_topics
from producers.intake.api import create_app
from producers.intake.kannel import subscriber_id_for
from producers.intake.server import ServerThread
from producers.publisher import Publisher
from schemas.codec import decode
from schemas.events import Subscriber
from schemas.settings import IntakeSettings
from schemas.topics import REPORTS_RAW, SUBSCRIBERS
from tests.kafka_helpers import free_ports, read_topic

PHONE, SHORT_CODE, SECRET = "+6281234567890", "1212", "kannel-test-secret"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


def test_the_shipped_kannel_conf_is_the_rendered_template() -> None:
    assert CONF_PATH.read_text(encoding="utf-8") == render_kannel_conf()


def _binary(name: str) -> str:
    found = shutil.which(name, path=SBIN)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed; CI must install the Debian package kannel",
                        pytrace=False)
        pytest.skip(f"{name} not installed (Debian package kannel); CI runs this test")
    return found


def _admin_status(port: int) -> str:
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/status.txt?password=change-me", timeout=2) as answer:
            return str(answer.read().decode(errors="replace"))
    except OSError:
        return ""


def _boxes(admin_port: int) -> str:
    """The "Box connections" part of bearerbox's status page (connected boxes only)."""
    status = _admin_status(admin_port)
    return status.split("Box connections:")[-1].split("SMSC connections:")[0] \
        if "Box connections:" in status else ""


@dataclass
class Phone:
    """The fakesmsc peer: sends MO lines, collects MT lines."""

    sock: socket.socket
    buffer: bytes = b""

    def send(self, sender: str, text: str) -> None:
        # "data" (URL-encoded) keeps any character safe; Kannel decodes it.
        line = f"{sender} {SHORT_CODE} data {urllib.parse.quote(text, safe='')}\n"
        self.sock.sendall(line.encode())

    def receive(self, timeout_s: float = 30) -> tuple[str, str, str]:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                raise AssertionError("no reply SMS from Kannel") from None
            if not chunk:
                raise AssertionError("Kannel closed the fake SMSC connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        sender, receiver, kind, message = line.decode().split(" ", 3)
        if kind == "data":
            message = urllib.parse.unquote_to_bytes(message).decode("latin-1")
        elif kind == "udh":
            message = urllib.parse.unquote(message.split(" ", 1)[1])
        return sender, receiver, message


@pytest.fixture
def kannel(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Phone]:
    bearerbox, smsbox = _binary("bearerbox"), _binary("smsbox")
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    settings = IntakeSettings(kannel_secret=SECRET)
    with ExitStack() as stack:
        publisher = stack.enter_context(Publisher(kafka_bootstrap, prefix=topic_prefix))
        server = stack.enter_context(ServerThread(create_app(settings, publisher)))
        admin, box, sendsms, fake = free_ports(4)
        conf = tmp_path / "kannel.conf"
        conf.write_text(render_kannel_conf(
            ports=KannelPorts(admin, box, sendsms, fake), intake_url=server.url,
            secret=SECRET, log_dir=tmp_path, log_level=0), encoding="utf-8")
        processes: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

        stack.callback(stop_all)
        def logs() -> str:
            return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                             for p in sorted(tmp_path.glob("*.log")))

        def start(binary: str) -> None:
            out = (tmp_path / f"{Path(binary).name}.out").open("wb")
            stack.callback(out.close)
            processes.append(subprocess.Popen([binary, str(conf)], stdout=out,
                                              stderr=subprocess.STDOUT, cwd=tmp_path))

        def wait(what: str, ready: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 30
            while not ready():
                if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                    raise AssertionError(f"Kannel: {what} never happened\n{logs()}")
                time.sleep(0.2)

        # smsbox gives up at once if bearerbox is not listening yet: start them in order.
        start(bearerbox)
        wait("bearerbox admin port open", lambda: "Status" in _admin_status(admin))
        start(smsbox)
        wait("smsbox connected", lambda: "smsbox:" in _boxes(admin))
        sock = socket.create_connection(("127.0.0.1", fake), timeout=5)
        stack.callback(sock.close)
        yield Phone(sock)


pytestmark = pytest.mark.kafka


def test_an_sms_report_goes_through_kannel_to_kafka_and_is_answered(
    kannel: Phone, kafka_bootstrap: str, topic_prefix: str
) -> None:
    text = "BANJIR AMPENAN SELATAN air setinggi lutut"
    kannel.send(PHONE, text)
    sender, receiver, reply = kannel.receive()
    assert (sender, receiver) == (SHORT_CODE, PHONE)
    assert reply.startswith("Laporan sms-") and "/ Report sms-" in reply

    [record] = read_topic(kafka_bootstrap, REPORTS_RAW.full_name(topic_prefix),
                          partitions=REPORTS_RAW.partitions, min_count=1, timeout_s=10)
    body = json.loads(record.value)
    assert record.key.decode() == body["report_id"] and body["report_id"] in reply
    assert (body["reporter"], body["channel"], body["text"]) == (PHONE, "sms", text)


def test_daftar_and_berhenti_subscribe_and_unsubscribe_with_a_reply(
    kannel: Phone, kafka_bootstrap: str, topic_prefix: str
) -> None:
    local = "081234567890"  # the same person, as some SMSCs deliver the number
    kannel.send(PHONE, "DAFTAR AMPENAN SELATAN")
    assert kannel.receive()[2].startswith("Terdaftar: peringatan Ampenan Selatan.")
    kannel.send(local, "daftar pagutan barat")
    assert "Pagutan Barat" in kannel.receive()[2]
    kannel.send(PHONE, "DAFTAR Planet Mars")
    assert kannel.receive()[2].startswith("Kelurahan tidak dikenal.")
    kannel.send(PHONE, "BERHENTI")
    assert kannel.receive()[2].startswith("Anda tidak akan menerima peringatan lagi.")

    records = read_topic(kafka_bootstrap, SUBSCRIBERS.full_name(topic_prefix),
                         partitions=SUBSCRIBERS.partitions, min_count=3, timeout_s=10)
    subscribers = [decode(Subscriber, r.value) for r in records]
    assert {r.key.decode() for r in records} == {subscriber_id_for(PHONE)}
    assert [(s.phone, s.areas, s.active) for s in subscribers] == [
        (PHONE, ["52.71.01.1004"], True),
        (PHONE, ["52.71.01.1004", "52.71.02.1014"], True),
        (PHONE, ["52.71.01.1004", "52.71.02.1014"], False),
    ]
    assert read_topic(kafka_bootstrap, REPORTS_RAW.full_name(topic_prefix),
                      partitions=REPORTS_RAW.partitions, timeout_s=1) == []
