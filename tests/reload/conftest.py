"""Fixtures for the reload tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reload_helpers import APP_MODULE, RUNNER, ReloaderProcess


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP_MODULE)
    (tmp_path / "helpers.py").write_text("VALUE = 1\n")
    (tmp_path / "run_reloader.py").write_text(RUNNER)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text("<p>hi</p>\n")
    return tmp_path


@pytest.fixture
def reloader(project: Path) -> Iterator[ReloaderProcess]:
    proc = ReloaderProcess(project, [str(project / "templates")])
    try:
        proc.wait_for("watching")
        yield proc
    finally:
        proc.close()
