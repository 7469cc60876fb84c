"""Run a single-node Apache Kafka broker (KRaft, broker+controller in one JVM) from Maven jars.

No Docker, no tarball: `mvn` copies the broker jars once into a cache, `java` runs `kafka.Kafka`.
Everything lives under ``<home>/kafka``::

    jars/<version>/      jar cache (shared by test sessions)
    data/                log.dirs and the KRaft metadata log
    server.properties    rendered on every up(), so port changes apply
    broker.log           JVM stdout/stderr (WARN and up, crashes)
    logs/                log4j output (server.log, INFO)
    broker.pid           pid of the broker this runner started
    cluster.id           the id the data dir was formatted with
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import functools
import importlib.resources
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.settings import Settings

log = logging.getLogger(__name__)

NODE_ID = 1
_MAIN_CLASS = "kafka.Kafka"
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]*$")
_MVN_TIMEOUT_S = 900.0
_FORMAT_TIMEOUT_S = 120.0


class KafkaRunnerError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool  # the broker this runner started is alive (pid file + /proc check)
    answered: bool  # an admin request to `bootstrap` succeeded
    pid: int | None
    bootstrap: str
    version: str
    cluster_id: str | None
    detail: str


def _prop_value(value: str) -> str:
    # java.util.Properties reads ISO-8859-1 and treats backslash as an escape.
    out = value.replace("\\", "\\\\")
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04x}" for c in out)


def render_server_properties(
    *, node_id: int, port: int, controller_port: int, data_dir: Path
) -> str:
    """The broker's server.properties for a single node listening on 127.0.0.1 only."""
    # Static quorum (controller.quorum.voters) rather than the dynamic one: the voter set is read
    # from this file on every start instead of being frozen into the metadata log at format time,
    # so a changed controller port just works. Consequently StorageTool runs WITHOUT --standalone.
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": f"{node_id}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": _prop_value(str(data_dir)),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Internal topics default to 3 replicas, which one node can never satisfy: consumer
        # groups, idempotent/transactional producers and faust's exactly-once would all fail.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tests join groups constantly; the default 3 s delay would be paid on every join.
        "group.initial.rebalance.delay.ms": "0",
        # On restart the controller rejects the new broker incarnation
        # (DUPLICATE_BROKER_REGISTRATION) until the previous one's session expires: 9 s by
        # default, which made restarts take 12 s.
        # Heartbeats never leave this JVM, so a shorter session is still generous.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
        # Topics come from the catalogue (schemas.topics) and faust declares its internal topics
        # through CreateTopics, so a typo'd topic name must fail loudly instead of appearing.
        "auto.create.topics.enable": "false",
    }
    lines = ["# Written by deploy/kafka_runner.py; re-rendered on every start, do not edit."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """16 random bytes as URL-safe base64 without padding, like `kafka-storage random-uuid`."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
        # A leading '-' would be parsed as an option by StorageTool's argument parser.
        if not cid.startswith("-"):
            return cid


def _packaged(name: str) -> contextlib.AbstractContextManager[Path]:
    return importlib.resources.as_file(importlib.resources.files("deploy") / "kafka" / name)


def _require_tool(name: str, package: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaRunnerError(
            f"`{name}` was not found on PATH; it is needed {why}. "
            f"Install it (Debian/Ubuntu: `sudo apt-get install {package}`) "
            "or set KAFKA_BOOTSTRAP to use a broker you already have."
        )
    return path


def _jar_marker(version: str) -> str:
    return f"kafka_2.13-{version}.jar"


def _check_version(version: str) -> None:
    if not _VERSION_RE.match(version):
        raise KafkaRunnerError(f"not a Kafka version: {version!r} (expected e.g. 4.0.2)")


def ensure_jars(version: str, jars_dir: Path) -> Path:
    """Make `jars_dir` hold the broker jars for `version` (fetched with mvn), and return it.

    The copy goes to a temporary sibling directory that is renamed into place only when complete,
    so an interrupted fetch never leaves a cache that looks valid but is not; two concurrent
    fetches into the same cache are safe too (the loser discards its copy).
    """
    _check_version(version)
    jars_dir = Path(jars_dir)
    marker = _jar_marker(version)
    if (jars_dir / marker).is_file():
        return jars_dir
    if jars_dir.exists() and any(jars_dir.iterdir()):
        raise KafkaRunnerError(
            f"{jars_dir} exists but does not contain {marker}; it was not written by this runner. "
            "Delete it and try again."
        )
    mvn = _require_tool("mvn", "maven", "to fetch the Kafka broker jars from Maven Central")
    jars_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{jars_dir.name}.partial-", dir=jars_dir.parent))
    try:
        with _packaged("pom.xml") as pom:
            cmd = [
                mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                "-DincludeScope=runtime", f"-Dkafka.version={version}", f"-DoutputDirectory={tmp}",
            ]
            log.info("fetching Kafka %s jars into %s", version, jars_dir)
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired as exc:
                raise KafkaRunnerError(
                    f"mvn did not finish fetching Kafka {version} within {_MVN_TIMEOUT_S:.0f} s; "
                    "check network access to Maven Central (or your mirror in ~/.m2/settings.xml)."
                ) from exc
        if proc.returncode != 0 or not (tmp / marker).is_file():
            output = _tail_text(proc.stdout + proc.stderr, 30)
            raise KafkaRunnerError(
                f"mvn could not fetch Kafka {version} (exit {proc.returncode}); is {version} a "
                f"released version and Maven Central reachable? Command: {' '.join(cmd)}\n{output}"
            )
        try:
            # rename() replaces an empty directory but never a populated one, hence atomic.
            tmp.rename(jars_dir)
        except OSError as exc:
            lost_race = exc.errno in (errno.ENOTEMPTY, errno.EEXIST)
            if not lost_race or not (jars_dir / marker).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return jars_dir


def broker_answers(bootstrap: str, timeout_s: float = 5.0) -> str | None:
    """The cluster id if a broker at `bootstrap` answers an admin request, else None."""
    from kafka import KafkaAdminClient  # slow import; keep `import deploy.kafka_runner` cheap

    timeout_ms = max(int(timeout_s * 1000), 100)
    admin = None
    # "Is anyone there?" is a question: refused connections are the expected answer while a
    # broker starts, not warnings for the operator's screen.
    with _quiet("kafka"):
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="kentongan-kafka-runner",
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                reconnect_backoff_max_ms=500,
            )
            cluster_id = admin.describe_cluster().get("cluster_id")
        # kafka-python 3 errors no longer subclass RuntimeError; any failure: "not answering".
        except Exception as exc:
            log.debug("no broker answered at %s: %s", bootstrap, exc)
            return None
        finally:
            if admin is not None:
                with contextlib.suppress(Exception):
                    admin.close()
    return str(cluster_id) if cluster_id else None


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _tail_file(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 64 * 1024, 0))
            return _tail_text(f.read().decode("utf-8", "replace"), lines)
    except OSError:
        return f"(no log at {path})"


@functools.cache
def _java_major(java: str) -> int:
    proc = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        raise KafkaRunnerError(f"could not read the Java version from `{java} -version`:\n"
                               f"{proc.stderr.strip()}")
    major = int(match.group(1))
    # Java 8 and earlier report "1.8.0_…".
    return int(match.group(2) or 0) if major == 1 else major


def _require_java(version: str) -> str:
    java = _require_tool("java", "openjdk-17-jre-headless", f"to run the Kafka {version} broker")
    needed = 17 if int(version.split(".")[0]) >= 4 else 8
    found = _java_major(java)
    if found < needed:
        raise KafkaRunnerError(
            f"Kafka {version} needs Java {needed} or newer, but {java} is Java {found}. "
            "Install a newer JDK (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`) "
            "and put it first on PATH."
        )
    return java


def _port_free(port: int) -> bool:
    # Bind, not connect: a half-started process may hold the port without accepting yet.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the JVM, ignore TIME_WAIT leftovers of a broker that just stopped.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg]


class KafkaRunner:
    """Starts, checks and stops the one broker that lives under `home`/kafka."""

    def __init__(
        self,
        home: Path,
        *,
        version: str = "4.0.2",
        port: int = 9092,
        controller_port: int = 9093,
        heap: str = "512m",
        jars_dir: Path | None = None,
    ) -> None:
        _check_version(version)
        if port == controller_port:
            raise KafkaRunnerError(f"the broker and controller ports must differ (both {port})")
        if not re.fullmatch(r"\d+[kKmMgG]?", heap):
            raise KafkaRunnerError(f"not a JVM heap size: {heap!r} (expected e.g. 512m)")
        # Absolute paths: they are matched against /proc/<pid>/cmdline to recognise our broker.
        self.home = Path(home).expanduser().resolve()
        self.version = version
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.kafka_dir = self.home / "kafka"
        self.jars_dir = (
            Path(jars_dir).expanduser().resolve() if jars_dir else self.kafka_dir / "jars" / version
        )
        self.data_dir = self.kafka_dir / "data"
        self.props_path = self.kafka_dir / "server.properties"
        self.log_path = self.kafka_dir / "broker.log"
        self.logs_dir = self.kafka_dir / "logs"
        self.pid_path = self.kafka_dir / "broker.pid"
        self.cluster_id_path = self.kafka_dir / "cluster.id"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaRunner:
        return cls(
            settings.home,
            version=settings.kafka_version,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            heap=settings.kafka_heap,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- public ---------------------------------------------------------------------------------

    def up(self, timeout_s: float = 120.0) -> BrokerStatus:
        """Start the broker unless it already runs; return once it answers an admin request."""
        with self._lock():
            pid = self._our_pid()
            if pid is not None:
                # Ours and alive: maybe still starting (another process called up()), so wait.
                self._wait_ready(pid, timeout_s, started_here=False)
                return self.status()
            self._start(timeout_s)
            return self.status()

    def down(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker that up() started (never anything else); True if one was stopped."""
        with self._lock():
            pid = self._our_pid()
            if pid is None:
                # A pid file naming anything else is stale: drop it, never signal that process.
                self.pid_path.unlink(missing_ok=True)
                self._release_proc()
                return False
            self._stop_pid(pid, timeout_s)
            self.pid_path.unlink(missing_ok=True)
            return True

    def status(self) -> BrokerStatus:
        pid = self._our_pid()
        answered_id = broker_answers(self.bootstrap) if pid is not None else None
        cluster_id = answered_id or self._stored_cluster_id()
        if pid is None:
            detail = "not running"
            if not _port_free(self.port):
                detail += f"; {self.bootstrap} is in use by another process"
        elif answered_id:
            detail = f"broker pid {pid} answers on {self.bootstrap}"
        else:
            detail = (f"broker pid {pid} runs but does not answer on {self.bootstrap}; "
                      f"see {self.log_path}")
        return BrokerStatus(
            running=pid is not None,
            answered=answered_id is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            version=self.version,
            cluster_id=cluster_id,
            detail=detail,
        )

    # -- internals ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Serialises up()/down() across processes sharing this home (CLI, test sessions).
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        with (self.kafka_dir / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _is_our_broker(self, pid: int) -> bool:
        args = _cmdline(pid)
        return _MAIN_CLASS in args and str(self.props_path) in args

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            self._proc.poll()  # reap our own child so it does not linger as a zombie
        return _pid_alive(pid)

    def _our_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and is our broker."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid > 0 and self._alive(pid) and self._is_our_broker(pid):
            return pid
        return None

    def _stored_cluster_id(self) -> str | None:
        meta = self.data_dir / "meta.properties"
        with contextlib.suppress(OSError):
            for line in meta.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "cluster.id" and value.strip():
                    return value.strip()
        with contextlib.suppress(OSError):
            return self.cluster_id_path.read_text().strip() or None
        return None

    def _java_cmd(self, java: str, log4j: Path, heap: str) -> list[str]:
        return [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            f"{self.jars_dir}/*",  # expanded by the JVM, not a shell
        ]

    def _check_ports(self) -> None:
        for name, port in (("broker", self.port), ("controller", self.controller_port)):
            if _port_free(port):
                continue
            hint = "stop it, or choose another port (KENTONGAN_KAFKA_PORT / _CONTROLLER_PORT)"
            other = broker_answers(f"127.0.0.1:{port}", timeout_s=1.0) if name == "broker" else None
            if other:
                hint = (f"a Kafka broker (cluster {other}) that this runner did not start answers "
                        f"there; use it with KAFKA_BOOTSTRAP=127.0.0.1:{port}, or {hint}")
            raise KafkaRunnerError(
                f"cannot start the broker: {name} port 127.0.0.1:{port} is already in use by "
                f"another process; {hint}."
            )

    def _format_storage(self, java: str, log4j: Path) -> str:
        """Format data_dir once; return the cluster id it is formatted with."""
        existing = self._stored_cluster_id()
        if (self.data_dir / "meta.properties").is_file() and existing:
            self.cluster_id_path.write_text(existing + "\n")
            return existing
        cluster_id = existing or new_cluster_id()
        self.cluster_id_path.write_text(cluster_id + "\n")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # No --standalone: the quorum is static (controller.quorum.voters), see
        # render_server_properties.
        cmd = [
            *self._java_cmd(java, log4j, "256m"),
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.props_path),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT_S,
                              check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise KafkaRunnerError(
                f"formatting {self.data_dir} failed (exit {proc.returncode}):\n"
                f"{_tail_text(proc.stdout + proc.stderr, 30)}"
            )
        return cluster_id

    def _start(self, timeout_s: float) -> None:
        java = _require_java(self.version)
        self._check_ports()  # before the jar fetch, which may take minutes on a cold cache
        ensure_jars(self.version, self.jars_dir)
        self.pid_path.unlink(missing_ok=True)  # stale: its process is gone or is not our broker
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.props_path.write_text(render_server_properties(
            node_id=NODE_ID, port=self.port, controller_port=self.controller_port,
            data_dir=self.data_dir,
        ))
        with _packaged("log4j2.xml") as log4j:
            self._format_storage(java, log4j)
            cmd = [*self._java_cmd(java, log4j, self.heap), _MAIN_CLASS, str(self.props_path)]
            with self.log_path.open("ab") as out:
                out.write(f"--- starting Kafka {self.version}: {' '.join(cmd)}\n".encode())
                out.flush()
                # Own session: Ctrl-C in the terminal that ran `up` must not kill the broker.
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, cwd=self.kafka_dir,
                )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        self._wait_ready(self._proc.pid, timeout_s, started_here=True)

    def _wait_ready(self, pid: int, timeout_s: float, *, started_here: bool) -> None:
        expected = self._stored_cluster_id()
        deadline = time.monotonic() + timeout_s
        while True:
            if not self._alive(pid):
                self.pid_path.unlink(missing_ok=True)
                self._release_proc()
                raise KafkaRunnerError(
                    f"the Kafka broker (pid {pid}) exited during startup. Last lines of "
                    f"{self.log_path}:\n{_tail_file(self.log_path)}"
                )
            remaining = deadline - time.monotonic()
            # Short probes: a JVM that dies right away must be reported right away.
            cluster_id = broker_answers(self.bootstrap, timeout_s=max(min(1.0, remaining), 0.2))
            if cluster_id is not None:
                if expected and cluster_id != expected:
                    raise KafkaRunnerError(
                        f"{self.bootstrap} answered with cluster id {cluster_id}, not ours "
                        f"({expected}); another broker holds the port."
                    )
                return
            if time.monotonic() >= deadline:
                tail = _tail_file(self.log_path)
                if started_here:
                    # Do not leave a half-started JVM behind that the next up() would wait on.
                    self._stop_pid(pid, 10.0)
                    self.pid_path.unlink(missing_ok=True)
                raise KafkaRunnerError(
                    f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} within "
                    f"{timeout_s:.0f} s{'; stopped it' if started_here else ''}. Last lines of "
                    f"{self.log_path}:\n{tail}"
                )
            time.sleep(0.3)

    def _stop_pid(self, pid: int, timeout_s: float) -> None:
        # Only this pid, never its process group: the caller verified it is our broker.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # controlled shutdown: flushes logs and metadata
        deadline = time.monotonic() + timeout_s
        while self._alive(pid):
            if time.monotonic() >= deadline:
                log.warning("Kafka broker pid %d ignored SIGTERM for %.0f s; killing",
                            pid, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10.0
                while self._alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                break
            time.sleep(0.1)
        self._release_proc()

    def _release_proc(self) -> None:
        # Forget our child once it has exited (and been reaped), so Popen never warns about it.
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
