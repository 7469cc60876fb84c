"""SMS through real Kannel (bearerbox + smsbox) to a fake operator SMSC on loopback, with the
delivery reports coming back to the consumer's dlr-url: exactly once each, then delivered
(or failed, for a number the SMSC refuses)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import SecretStr

from consumers.sinks.spec import build_sink
from deploy.kannel import KannelPorts, render_kannel_conf
from deploy.topics import create_topics
from schemas.codec import decode
from schemas.events import Channel, DeadLetter
from schemas.topics import DEADLETTER
from tests.delivery_helpers import delivering, final_status, make_job, outcomes, publish_jobs
from tests.delivery_helpers import settings_for as base_settings
from tests.kafka_helpers import free_ports, read_topic, wait_for
from tests.test_kannel import _admin_status, _binary, _boxes

pytestmark = pytest.mark.kafka

PASSWORD = "sendsms-test-password"
DENIED = "+62899"


@dataclass
class Smsc:
    """The operator's side of ``smsc = fake``: collects every MT line bearerbox writes."""

    sock: socket.socket
    lines: list[tuple[str, str]] = field(default_factory=list)  # (receiver, text)

    def read_forever(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                _, receiver, kind, message = line.decode("latin-1").split(" ", 3)
                # Kannel URL-encodes with '+' for a space byte.
                raw = urllib.parse.unquote_to_bytes(message.replace("+", " "))
                if kind == "ucs-2":
                    message = raw.decode("utf-16-be")
                elif kind == "data":
                    message = raw.decode("latin-1")
                self.lines.append((receiver, message))


@pytest.fixture
def kannel(tmp_path: Path) -> Iterator[tuple[Smsc, int]]:
    bearerbox, smsbox = _binary("bearerbox"), _binary("smsbox")
    admin, box, sendsms, fake = free_ports(4)
    conf = tmp_path / "kannel.conf"
    conf.write_text(render_kannel_conf(
        ports=KannelPorts(admin, box, sendsms, fake), sendsms_password=PASSWORD,
        log_dir=tmp_path, denied_prefix=DENIED), encoding="utf-8")
    with ExitStack() as stack:
        processes: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

        stack.callback(stop_all)
        for binary, ready in ((bearerbox, lambda: "Status" in _admin_status(admin)),
                              (smsbox, lambda: "smsbox:" in _boxes(admin))):
            out = stack.enter_context((tmp_path / f"{Path(binary).name}.out").open("wb"))
            processes.append(subprocess.Popen([binary, str(conf)], stdout=out,
                                              stderr=subprocess.STDOUT, cwd=tmp_path))
            assert wait_for(ready, 30), (tmp_path / "bearerbox.log").read_text()[-2000:]
        sock = socket.create_connection(("127.0.0.1", fake), timeout=5)
        sock.settimeout(None)
        stack.callback(sock.close)
        smsc = Smsc(sock)
        threading.Thread(target=smsc.read_forever, daemon=True).start()
        # bearerbox routes nothing until it has seen the SMSC connect.
        assert wait_for(lambda: "online" in _admin_status(admin).split("SMSC connections:")[-1],
                        15)
        yield smsc, sendsms


def test_sms_jobs_reach_the_smsc_once_each_and_delivery_reports_settle_them(
    kannel: tuple[Smsc, int], kafka_bootstrap: str, topic_prefix: str
) -> None:
    smsc, sendsms_port = kannel
    create_topics(kafka_bootstrap, prefix=topic_prefix)
    jobs = [make_job(n, text=f"[KENTONGAN] SIAGA banjir, uji #{n}") for n in range(12)]
    jobs.append(make_job(12, text="Peringatan ⚠ banjir Ampenan Selatan, uji #12"))  # UCS-2
    refused = make_job(13, recipient=f"{DENIED}00000001", text="[KENTONGAN] uji #13")
    jobs.append(refused)
    settings = base_settings(kafka_bootstrap, topic_prefix)
    settings.delivery.kannel_password = SecretStr(PASSWORD)
    sink = build_sink(Channel.SMS, f"kannel:http://127.0.0.1:{sendsms_port}", settings)
    publish_jobs(kafka_bootstrap, topic_prefix, jobs)

    def settled() -> bool:
        final = final_status(outcomes(kafka_bootstrap, topic_prefix, keys=14, timeout_s=0))
        return len(final) == 14 and "accepted" not in final.values()

    with delivering(Channel.SMS, sink, settings):
        assert wait_for(settled, 60)
        time.sleep(1)  # anything sent twice would arrive by now

    final = final_status(outcomes(kafka_bootstrap, topic_prefix, keys=14))
    assert final == {job.job_key: "failed" if job is refused else "delivered" for job in jobs}
    history = [o for o in outcomes(kafka_bootstrap, topic_prefix, keys=14)
               if o.job_key == jobs[0].job_key]
    assert sorted(o.status.value for o in history) == ["accepted", "delivered"]
    assert [o.detail for o in history if o.status.value == "delivered"] == [
        "dlr 1: delivered (smsc FAKE)"]
    received = sorted(smsc.lines)
    assert received == sorted((job.recipient, job.text) for job in jobs if job is not refused)
    letters = [decode(DeadLetter, r.value) for r in read_topic(
        kafka_bootstrap, DEADLETTER.full_name(topic_prefix), partitions=1, min_count=2)]
    assert {letter.key for letter in letters} == {refused.job_key}
    reasons = " | ".join(letter.reason for letter in letters)
    assert "Not routable" in reasons and "dlr 16: refused by the SMSC" in reasons
