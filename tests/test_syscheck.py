"""`make demo` / `make test` check the system packages first; the README names them all."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from deploy import syscheck

README = Path(__file__).parent.parent / "README.md"


def test_the_readme_set_up_line_names_every_package_the_tests_need() -> None:
    line = re.search(r"`apt-get install ([^`]+)`", README.read_text(encoding="utf-8"))
    assert line is not None
    assert line.group(1).split() == [need.package for need in syscheck.PACKAGES]


def test_a_missing_package_is_named_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None
                        if name == "bearerbox" else which(name, path=path))
    assert [need.package for need in syscheck.missing("test")] == ["kannel"]
    assert syscheck.missing("demo") == []  # the demo runs without Kannel
    assert syscheck.main(["test"]) == 1
    assert "apt-get install kannel" in capsys.readouterr().err
