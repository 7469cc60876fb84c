"""Which Debian packages ``make demo`` / ``make test`` need that this machine lacks.

Runs with the system Python before any venv exists (standard library only)::

    python3 deploy/syscheck.py test          # exit 1 and say what to install, if anything
    python3 deploy/syscheck.py test --names  # just the missing package names (for .ci/run)

The README's set-up line is ``apt-get install`` of every package in ``PACKAGES``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


@dataclass(frozen=True)
class Need:
    package: str  # Debian package name
    what: str  # what it gives us, and who needs it
    present: Callable[[], bool]
    targets: tuple[str, ...]


def _tool(*names: str) -> Callable[[], bool]:
    return lambda: all(shutil.which(name, path=SBIN) for name in names)


PACKAGES: tuple[Need, ...] = (
    Need("python3-venv", "python3 -m venv (ensurepip)",
         lambda: importlib.util.find_spec("ensurepip") is not None, ("demo", "test")),
    Need("openjdk-17-jre-headless", "java 17, to run the Kafka broker", _tool("java"),
         ("demo", "test")),
    Need("maven", "mvn, to fetch the Kafka broker jars", _tool("mvn"), ("demo", "test")),
    Need("make", "make", _tool("make"), ("demo", "test")),
    Need("kannel", "bearerbox and smsbox, for the SMS gateway tests",
         _tool("bearerbox", "smsbox"), ("test",)),
)


def missing(target: str) -> list[Need]:
    return [need for need in PACKAGES if target in need.targets and not need.present()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["demo", "test"])
    parser.add_argument("--names", action="store_true", help="print missing package names")
    args = parser.parse_args(argv)
    lacking = missing(args.target)
    if args.names:
        print(" ".join(need.package for need in lacking))
        return 0
    if not lacking:
        return 0
    print(f"make {args.target} needs system packages this machine lacks:", file=sys.stderr)
    for need in lacking:
        print(f"  {need.package:26} {need.what}", file=sys.stderr)
    print("install them (Debian/Ubuntu, as root):\n  apt-get install "
          + " ".join(need.package for need in lacking), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
