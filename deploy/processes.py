"""Start and stop Kentongan's own processes (``python -m deploy.cli ...``) as children."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A ``kentongan`` subcommand in its own session, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", *command], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    """SIGTERM (a graceful stop: faust commits, consumers close), SIGKILL after ``timeout_s``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
