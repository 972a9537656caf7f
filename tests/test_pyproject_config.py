"""``[tool.vivace]`` in pyproject.toml and ``VIVACE_*`` variables: the option layers (issue 15).

Precedence: command line > ``VIVACE_*`` environment > ``[tool.vivace]`` > built-in defaults.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from runtime.cli import CliError, main, parse_command
from runtime.project import OPTIONS, env_name, find_project
from tests.live_vivace import Vivace
from tests.support import free_port

APP = textwrap.dedent(
    """
    import os
    from runtime import App, json

    app = App("Project")

    @app.get("/")
    async def index(request):
        return json({"debug": request.app.config.DEBUG, "pid": os.getpid()})
    """
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    for option in OPTIONS:
        monkeypatch.delenv(env_name(option.key), raising=False)


def write_project(where: Path, table: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\n\n[tool.vivace]\n' + textwrap.dedent(table)
    )
    return where


def test_the_app_and_defaults_come_from_the_nearest_pyproject_with_a_table(tmp_path: Path) -> None:
    write_project(tmp_path, 'app = "service.main:app"\nworkers = 3\nport = 9001\n')
    inner = tmp_path / "src" / "deeper"
    inner.mkdir(parents=True)
    (tmp_path / "src" / "pyproject.toml").write_text('[project]\nname = "no-table"\n')
    options = parse_command([], cwd=str(inner))
    assert (options.target.module, options.target.attr) == ("service.main", "app")
    # the target is imported from the project's directory, not from where vivace was typed
    assert options.target.cwd == str(tmp_path)
    assert (options.workers, options.port) == (3, 9001)


def test_precedence_command_line_then_environment_then_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, 'app = "m:app"\nport = 9001\nworkers = 3\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("VIVACE_PORT", "9002")
    monkeypatch.setenv("VIVACE_WORKERS", "2")
    options = parse_command(["--port", "9003"], cwd=str(tmp_path))
    assert options.port == 9003  # command line
    assert options.workers == 2  # environment
    assert options.host == "0.0.0.0"  # pyproject
    assert options.unix is None  # default
    assert parse_command([], cwd=str(tmp_path)).port == 9002
    monkeypatch.delenv("VIVACE_PORT")
    assert parse_command([], cwd=str(tmp_path)).port == 9001


def test_a_command_line_target_wins_and_lists_and_paths(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        app = "m:app"
        reload-include = ["templates/**/*.html"]
        reload_exclude = "*.tmp.html"
        env-file = [".env"]
        proxy-headers = true
        forwarded-allow-ips = ["10.0.0.0/8"]
        """,
    )
    (tmp_path / ".env").write_text("A=1\n")
    options = parse_command(["other:application"], cwd=str(tmp_path))
    assert options.target.module == "other"
    assert options.reload_include == ("templates/**/*.html",)
    assert options.reload_exclude == ("*.tmp.html",)
    assert options.auto_reload  # an include pattern implies --reload
    assert options.env_files == (str(tmp_path / ".env"),)  # relative to the pyproject
    assert options.proxy_headers and options.forwarded_allow_ips == ("10.0.0.0/8",)


def test_a_higher_layer_mode_overrides_a_lower_one(tmp_path: Path) -> None:
    write_project(tmp_path, 'app = "m:app"\nworkers = 4\nreload = true\n')
    options = parse_command(["--single-process"], cwd=str(tmp_path))
    assert options.single_process and options.workers == 1 and not options.auto_reload
    with pytest.raises(CliError, match="Single process"):
        write_project(tmp_path, 'app = "m:app"\nworkers = 4\nsingle-process = true\n')
        parse_command([], cwd=str(tmp_path))


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("wokers = 4\n", "unknown key 'wokers'"),
        ('workers = "four"\n', "workers must be an integer, not 'four'"),
        ("reload = 1\n", "reload must be a boolean (true or false), not 1"),
        ('log-format = "xml"\n', "log-format must be a string (one of 'text', 'json'), not 'xml'"),
        ("reload-include = [1]\n", "reload-include must be a list of strings"),
        ("console = 3\n", "console must be a list of strings, not 3"),
    ],
)
def test_a_bad_key_names_the_key_the_file_and_the_type(
    tmp_path: Path, table: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 'app = "m:app"\n' + table)
    with pytest.raises(CliError) as caught:
        parse_command([], cwd=str(tmp_path))
    assert str(tmp_path / "pyproject.toml") in caught.value.message
    assert "[tool.vivace]" in caught.value.message
    assert expected in caught.value.message


def test_the_console_key_is_reserved_for_name_providers(tmp_path: Path) -> None:
    write_project(tmp_path, 'app = "m:app"\nconsole = ["pkg.names:provide"]\n')
    found = find_project(tmp_path)
    assert found is not None
    assert found.reserved == {"console": ["pkg.names:provide"]}
    assert parse_command([], cwd=str(tmp_path)).target.module == "m"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("VIVACE_WORKERS", "many", "VIVACE_WORKERS must be an integer, not 'many'"),
        ("VIVACE_DEBUG", "maybe", "VIVACE_DEBUG must be true or false"),
        ("VIVACE_PORT", "70000", "VIVACE_PORT: 70000 is not a port number"),
    ],
)
def test_a_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(CliError) as caught:
        parse_command(["m:app"], cwd=str(tmp_path))
    assert expected in caught.value.message


def test_a_bad_pyproject_value_checked_later_names_the_file(tmp_path: Path) -> None:
    write_project(tmp_path, 'app = "m:app"\nport = 70000\n')
    with pytest.raises(CliError) as caught:
        parse_command([], cwd=str(tmp_path))
    message = caught.value.message
    assert message.startswith(f"{tmp_path / 'pyproject.toml'}: [tool.vivace] port: 70000")


def test_no_target_anywhere_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "[tool.vivace]" in capsys.readouterr().err


# --- real processes ------------------------------------------------------------------------------


def _get(port: int) -> dict[str, object] | None:
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    return dict(response.json()) if response.status_code == 200 else None


@pytest.mark.slow
def test_vivace_dev_with_no_target_runs_the_project_app(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", 'app = "service:app"\nport = 1\n')
    (project / "service.py").write_text(APP)
    port = free_port()
    (project / "sub").mkdir()
    # typed in a subdirectory: --dev with no target finds service:app upwards; the environment
    # beats pyproject's port
    server = Vivace(project / "sub", "--dev", "--no-repl", env={"VIVACE_PORT": str(port)})
    try:
        body = server.wait_until(lambda: _get(port), "the project's app")
        assert body["debug"] is True
        server.wait_output("Starting worker")
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_a_bad_key_stops_vivace_with_exit_1_and_one_clear_line(tmp_path: Path) -> None:
    project = write_project(tmp_path, 'app = "service:app"\nworkerz = 2\n')
    (project / "service.py").write_text(APP)
    server = Vivace(project)
    assert server.exit_code() == 1
    out = server.output()
    assert f"{project / 'pyproject.toml'}: [tool.vivace] has an unknown key 'workerz'" in out
    assert "Traceback" not in out
    assert "Goin' Fast" not in out  # nothing was started


def test_attach_options_come_from_the_layers_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``attach`` and ``attach-tcp`` (issue 14) are options like the others: pyproject,
    ``VIVACE_ATTACH``, then the command line."""
    write_project(tmp_path, 'app = "m:app"\nattach = true\nattach-tcp = "127.0.0.1:9999"\n')
    options = parse_command([], cwd=str(tmp_path))
    assert (options.attach, options.attach_tcp, options.attach_enabled) == (
        True,
        "127.0.0.1:9999",
        True,
    )
    monkeypatch.setenv("VIVACE_ATTACH", "false")
    assert parse_command([], cwd=str(tmp_path)).attach is False
    monkeypatch.delenv("VIVACE_ATTACH")
    assert parse_command(["--no-attach"], cwd=str(tmp_path)).attach is False
