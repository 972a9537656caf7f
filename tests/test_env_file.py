"""``--env-file PATH``: read with python-dotenv before the app is imported, in the main process and
every child; under ``--reload`` a change restarts the workers with the new values (issue 15)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from runtime.envfile import load_env_files, read_env_files, reload_env_files
from runtime.exceptions import ConfigError
from tests.live_vivace import Vivace
from tests.support import free_port

APP = textwrap.dedent(
    """
    import os
    from runtime import App, json

    AT_IMPORT = os.environ.get("GREETING")  # the file was read before this module ran
    app = App("EnvFile")

    @app.get("/")
    async def index(request):
        return json({
            "at_import": AT_IMPORT,
            "greeting": os.environ.get("GREETING"),
            "gone": os.environ.get("GONE"),
            "config": request.app.config.get("COLOUR"),
            "pid": os.getpid(),
        })
    """
)


def test_later_files_win_and_the_environment_wins_over_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    first.write_text("A=1\nB=1\nQUOTED='x y'\n# a comment\nexport C=1\n")
    second.write_text("B=2\nREF=${B}-ref\n")  # (interpolation is per file)
    assert read_env_files([str(first), str(second)]) == {
        "A": "1",
        "B": "2",
        "QUOTED": "x y",
        "C": "1",
        "REF": "2-ref",
    }
    environ = {"A": "from the environment"}
    added = load_env_files([str(first)], environ)
    assert environ["A"] == "from the environment"
    assert set(added) == {"B", "QUOTED", "C"}


def test_a_child_forgets_what_the_main_process_took_and_reads_again(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("KEEP=1\nGONE=1\n")
    environ = {"OWN": "x"}
    owned = load_env_files([str(env)], environ)
    env.write_text("KEEP=2\n")
    reload_env_files([str(env)], owned, environ)
    assert environ == {"OWN": "x", "KEEP": "2"}


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--env-file .*nope\.env: no such file"):
        read_env_files([str(tmp_path / "nope.env")])


def _body(port: int, greeting: str) -> dict[str, object] | None:
    body = dict(httpx.get(f"http://127.0.0.1:{port}/", timeout=2).json())
    return body if body["greeting"] == greeting else None


@pytest.mark.slow
def test_the_app_sees_the_file_and_a_change_restarts_the_workers(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    env = tmp_path / ".env"
    env.write_text("GREETING=hello\nGONE=soon\nVIVACE_COLOUR=blue\n")
    port = free_port()
    server = Vivace(
        tmp_path, "app:app", "-p", str(port), "--reload", "--env-file", ".env", "-w", "2"
    )
    try:
        first = server.wait_until(lambda: _body(port, "hello"), "the first values")
        assert first["at_import"] == "hello"
        assert first["gone"] == "soon"
        assert first["config"] == "blue"  # VIVACE_* from the file reach app.config
        server.wait_output("Starting worker")
        env.write_text("GREETING=bonjour\nVIVACE_COLOUR=red\n")
        second = server.wait_until(lambda: _body(port, "bonjour"), "the new values")
        assert second["at_import"] == "bonjour"
        assert second["gone"] is None  # removed from the file: gone from the new workers
        assert second["config"] == "red"
        assert second["pid"] != first["pid"]
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / ".env").write_text("GREETING=from-the-file\n")
    port = free_port()
    server = Vivace(
        tmp_path,
        "app:app",
        "-p",
        str(port),
        "--env-file",
        ".env",
        env={"GREETING": "from-the-environment"},
    )
    try:
        server.wait_until(lambda: _body(port, "from-the-environment"), "the environment's value")
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_missing_env_file_stops_vivace_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    server = Vivace(tmp_path, "app:app", "-p", str(free_port()), "--env-file", "missing.env")
    assert server.exit_code() == 1
    out = server.output()
    assert f"Error: --env-file {tmp_path / 'missing.env'}: no such file" in out
    assert "Traceback" not in out
