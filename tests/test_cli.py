"""The ``vivace`` command: parsing and validation in process, a few real-process smoke tests."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from runtime import __version__
from runtime.cli import PEER_OPTIONS, TLS_ERROR, build_parser, main, parse_command
from runtime.config import DEFAULTS, Config
from runtime.launch import (
    FAST_WORKERS_ERROR,
    SINGLE_PROCESS_ERROR,
    available_cpus,
    find_app_ref,
    options_from_run_args,
)
from runtime.loader import AppRef
from runtime.options import RunOptions
from runtime.settings import Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent

# a module-level object that find_app_ref can locate
MODULE_LEVEL_APP = object()


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI puts the current directory first on sys.path, as it should in a real process
    monkeypatch.setattr(sys, "path", list(sys.path))


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)``, assert exit code 2, return stderr."""
    assert main(argv) == 2
    return capsys.readouterr().err


def failure(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)``, assert exit code 1, return stderr."""
    assert main(argv) == 1
    return capsys.readouterr().err


# --- defaults and each flag ----------------------------------------------------------------------


def test_defaults() -> None:
    options = parse_command(["pkg.server:app"])
    target = options.target
    assert target._replace(namespace=None) == AppRef(
        module="pkg.server", attr="app", cwd=os.getcwd(), text="pkg.server:app"
    )
    assert target.namespace is not None and target.namespace["target"] == "pkg.server:app"
    assert (options.host, options.port, options.unix) == ("127.0.0.1", 8000, None)
    assert (options.workers, options.single_process) == (1, False)
    assert (options.debug, options.auto_reload, options.reload_dirs) == (False, False, ())
    assert (options.access_log, options.noisy_exceptions) == (None, None)
    assert options.effective_access_log is False
    assert (options.motd, options.verbosity, options.repl, options.repl_commands) == (
        True,
        0,
        "off",
        (),
    )


def test_socket_flags() -> None:
    options = parse_command(["m:app", "-H", "::1", "-p", "0"])
    assert (options.host, options.port) == ("::1", 0)
    assert options.url == "http://[::1]:0"
    options = parse_command(["m:app", "--host", "0.0.0.0", "--port", "9000", "-u", "/tmp/v.sock"])
    assert (options.host, options.port, options.unix) == ("0.0.0.0", 9000, "/tmp/v.sock")


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "argument -p/--port" in usage_error(["m:app", "-p", port], capsys)


def test_workers_fast_single_process() -> None:
    assert parse_command(["m:app", "-w", "3"]).workers == 3
    assert parse_command(["m:app", "--workers", "2"]).workers == 2
    assert parse_command(["m:app", "--fast"]).workers == available_cpus()
    options = parse_command(["m:app", "--single-process"])
    assert options.single_process and options.workers == 1


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_bad_worker_count(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "argument -w/--workers" in usage_error(["m:app", "-w", workers], capsys)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["-w", "2"], ["--fast"]),
        (["--workers", "2"], ["--single-process"]),
        (["--fast"], ["--single-process"]),
        (["--single-process"], ["-w", "1"]),
    ],
)
def test_worker_modes_are_mutually_exclusive(
    first: list[str], second: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(["m:app", *first, *second], capsys)
    assert "not allowed with argument" in err


@pytest.mark.parametrize(
    "pair",
    [
        ["--access-logs", "--no-access-logs"],
        ["--motd", "--no-motd"],
        ["--repl", "--no-repl"],
        ["--noisy-exceptions", "--no-noisy-exceptions"],
        ["--coffee", "--no-coffee"],
        ["--factory", "--simple"],
    ],
)
def test_boolean_pairs_are_mutually_exclusive(
    pair: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "not allowed with argument" in usage_error(["m:app", *pair], capsys)


def test_debug_turns_access_logs_on_unless_told_otherwise() -> None:
    options = parse_command(["m:app", "--debug"])
    assert options.debug and not options.auto_reload and options.repl == "off"
    assert options.effective_access_log is True
    assert parse_command(["m:app", "--debug", "--no-access-logs"]).effective_access_log is False
    assert parse_command(["m:app", "--access-logs"]).effective_access_log is True


def test_output_flags() -> None:
    assert parse_command(["m:app", "--no-motd"]).motd is False
    assert parse_command(["m:app", "--motd"]).motd is True
    assert parse_command(["m:app", "-v"]).verbosity == 1
    assert parse_command(["m:app", "-vv"]).verbosity == 2
    assert parse_command(["m:app", "-v", "--verbosity"]).verbosity == 2
    assert parse_command(["m:app", "--noisy-exceptions"]).noisy_exceptions is True
    assert parse_command(["m:app", "--no-noisy-exceptions"]).noisy_exceptions is False
    assert parse_command(["m:app", "--coffee"]).target.module == "m"


@pytest.mark.parametrize("flag", ["-r", "--reload", "--auto-reload"])
def test_reload_flags(flag: str) -> None:
    options = parse_command(["m:app", flag])
    assert options.auto_reload and not options.debug


def test_reload_dirs_imply_reload_and_missing_ones_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nope"
    with caplog.at_level(logging.WARNING, logger="vivace.reload"):
        options = parse_command(["m:app", "-R", str(tmp_path), "--reload-dir", str(missing)])
    assert options.auto_reload
    assert options.reload_dirs == (str(tmp_path), str(missing))
    assert f"Directory {missing} could not be located" in caplog.text
    assert f"Directory {tmp_path} could" not in caplog.text


def test_dev_is_debug_reload_and_the_enter_console() -> None:
    options = parse_command(["m:app", "--dev"])
    assert options.debug and options.auto_reload and options.repl == "enter"
    assert options.effective_access_log is True
    assert parse_command(["m:app", "-d", "--repl"]).repl == "open"
    assert parse_command(["m:app", "--dev", "--no-repl"]).repl == "off"
    assert parse_command(["m:app", "--repl"]).repl == "open"
    assert parse_command(["m:app", "--dev", "--no-access-logs"]).effective_access_log is False


def test_repl_commands_repeat() -> None:
    options = parse_command(["m:app", "--repl-command", "1 + 1", "--repl-command", "app.name"])
    assert options.repl_commands == ("1 + 1", "app.name")
    assert options.repl == "off"


@pytest.mark.parametrize(
    "flags",
    [["--reload"], ["-r"], ["--dev"], ["-d"], ["-R", "."], ["--auto-reload", "--debug"]],
)
def test_single_process_cannot_reload(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    err = failure(["m:app", "--single-process", *flags], capsys)
    assert SINGLE_PROCESS_ERROR in err


# --- version, help, usage ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--version"], ["-v"], ["m:app", "--version"]])
def test_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    import platform

    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == (
        f"vivace {__version__} (Python {platform.python_version()})"
    )


def test_help_exits_0_and_names_every_target_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for text in ("pkg.module:app", "create_app()", "--simple", "--single-process", "--dev"):
        assert text in out


def test_missing_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "TARGET" in usage_error([], capsys)
    assert "TARGET" in usage_error(["--debug"], capsys)


def test_unknown_option_without_factory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "unrecognized arguments: --name" in usage_error(["m:app", "--name", "x"], capsys)


@pytest.mark.parametrize("spelling", [["m:create", "--factory"], ["m:create()"]])
def test_factory_receives_unknown_options_in_the_namespace(spelling: list[str]) -> None:
    options = parse_command([*spelling, "--name=blue", "--colour", "red", "--flag", "-p", "0"])
    target = options.target
    assert (target.module, target.attr, target.factory) == ("m", "create", True)
    assert target.namespace is not None
    assert target.namespace["name"] == "blue"
    assert target.namespace["colour"] == "red"
    assert target.namespace["flag"] is True
    assert target.namespace["port"] == 0
    assert target.factory_args == ("--name=blue", "--colour", "red", "--flag")
    assert options.port == 0


def test_inspect_without_a_server_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    err = failure(["inspect", "--host", "127.0.0.1", "--port", "1"], capsys)
    assert "no inspector at 127.0.0.1:1" in err


# --- TLS and HTTP/3 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--cert", "c.pem"],
        ["--key", "k.pem"],
        ["--tls", "certs", "--cert", "c.pem", "--key", "k.pem"],
        ["--tls-strict-host"],
    ],
)
def test_invalid_tls_combinations(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    err = failure(["m:app", *flags], capsys)
    assert TLS_ERROR in err
    assert err.startswith("usage: vivace")


@pytest.mark.parametrize(
    "flags",
    [
        ["-3"],
        ["--http", "3"],
        ["--http", "1", "--http", "3"],
    ],
)
def test_http3_is_not_supported_yet(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert "not supported yet" in failure(["m:app", *flags], capsys)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--cert", "c.pem", "--key", "k.pem"], "--tls-cert"),
        (["--tls-cert", "c.pem", "--tls-key", "k.pem"], "c.pem: no such file"),
        (["--tls", "certs"], "fullchain.pem: no such file"),
    ],
)
def test_missing_tls_files_are_one_clear_error(
    flags: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    err = failure(["m:app", *flags], capsys)
    assert named in err
    assert err.count("\n") == 1, err  # one line, no traceback


def test_http1_is_accepted() -> None:
    assert parse_command(["m:app", "--http", "1"]).target.module == "m"
    assert parse_command(["m:app", "-1"]).target.module == "m"


# --- targets -------------------------------------------------------------------------------------


def test_target_forms() -> None:
    assert parse_command(["a.b:c"]).target.attr == "c"
    factory = parse_command(["a.b:make()"]).target
    assert (factory.module, factory.attr, factory.factory) == ("a.b", "make", True)
    assert parse_command(["a.b:make", "--factory"]).target.factory is True


def test_directory_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "public").mkdir()
    monkeypatch.chdir(tmp_path)
    assert parse_command(["./public"]).target.simple_dir == str(tmp_path / "public")
    assert parse_command(["public", "--simple"]).target.simple_dir == str(tmp_path / "public")
    assert parse_command(["-s", str(tmp_path)]).target.simple_dir == str(tmp_path)


def test_no_target_names_the_projects_app_file_in_its_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No TARGET is a usage error (exit 2); its example is the file `fastapi dev` would find."""
    monkeypatch.chdir(tmp_path)

    def usage() -> str:
        assert main([]) == 2
        return capsys.readouterr().err.splitlines()[-1]

    assert "required: TARGET (for example: vivace app:app)" in usage()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("")
    assert "required: TARGET (for example: vivace app/main.py)" in usage()
    (tmp_path / "main.py").write_text("")
    assert "required: TARGET (for example: vivace main.py)" in usage()


def test_bad_targets_say_what_to_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    err = failure(["definitely_not_a_module_xyz"], capsys)
    assert "No module named definitely_not_a_module_xyz found." in err
    assert "Example Module: project.server:app" in err
    err = failure(["definitely_not_a_module_xyz.sub:app"], capsys)
    assert "No module named definitely_not_a_module_xyz found." in err
    assert "is not one" in failure(["--simple", "missing"], capsys)
    err = failure(["server.py"], capsys)
    assert f"'server.py': there is no file {str(tmp_path / 'server.py')!r}" in err
    assert "vivace server:app" in err
    assert "not a valid target" in failure(["a b:app"], capsys)
    assert "not a Python name" in failure(["mod:1app"], capsys)


# --- app.run() arguments -------------------------------------------------------------------------


def test_run_args_defaults_and_ref() -> None:
    options = options_from_run_args(MODULE_LEVEL_APP)
    assert options.target.module == __name__
    assert options.target.attr == "MODULE_LEVEL_APP"
    assert (options.host, options.port, options.workers) == ("127.0.0.1", 8000, 1)
    assert options.repl == "off"


def test_run_args_map_like_the_flags(tmp_path: Path) -> None:
    options = options_from_run_args(
        MODULE_LEVEL_APP, "0.0.0.0", 9000, dev=True, noisy_exceptions=True, reload_dir=str(tmp_path)
    )
    assert (options.host, options.port) == ("0.0.0.0", 9000)
    assert options.debug and options.auto_reload and options.noisy_exceptions
    assert options.reload_dirs == (str(tmp_path),)
    assert options_from_run_args(MODULE_LEVEL_APP, fast=True).workers == available_cpus()
    assert options_from_run_args(MODULE_LEVEL_APP, reload_dir=[str(tmp_path)]).auto_reload


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"version": 3},
            "app.run(version=3) is not supported yet by vivace; it serves HTTP/1.1 only "
            "(version=1)",
        ),
        (
            {"version": (1, 3)},
            "app.run(version=(1, 3)) is not supported yet by vivace; it serves HTTP/1.1 only "
            "(version=1)",
        ),
        ({"sock": "a socket"}, "app.run(sock=...) is not supported yet by vivace"),
    ],
)
def test_unsupported_run_arguments_read_well(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(NotImplementedError) as info:
        options_from_run_args(MODULE_LEVEL_APP, **arguments)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_run_args_errors() -> None:
    with pytest.raises(RuntimeError, match=FAST_WORKERS_ERROR):
        options_from_run_args(MODULE_LEVEL_APP, fast=True, workers=2)
    with pytest.raises(TypeError, match="loop"):
        options_from_run_args(MODULE_LEVEL_APP, loop=object())
    with pytest.raises(TypeError, match="colour"):
        options_from_run_args(MODULE_LEVEL_APP, colour="red")
    for kwargs in (
        {"auto_reload": True},
        {"workers": 2},
        {"dev": True},
        {"reload_dir": "."},
    ):
        with pytest.raises(RuntimeError, match=SINGLE_PROCESS_ERROR):
            options_from_run_args(MODULE_LEVEL_APP, single_process=True, **kwargs)
    unsupported: tuple[dict[str, object], ...] = (
        {"ssl": object()},
        {"version": 3},
        {"sock": "a socket"},
    )
    for arguments in unsupported:
        with pytest.raises(NotImplementedError, match="not supported yet"):
            options_from_run_args(MODULE_LEVEL_APP, **arguments)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        options_from_run_args(MODULE_LEVEL_APP, workers=0)


def test_run_args_need_a_module_level_app_for_workers() -> None:
    local = object()
    with pytest.raises(RuntimeError, match="module level"):
        options_from_run_args(local)
    assert options_from_run_args(local, single_process=True).single_process


def test_settings_for_workers() -> None:
    options = RunOptions(target=AppRef(module="m"), debug=True, verbosity=2)
    assert Settings.resolve(options, Config()).config_updates() == {
        "DEBUG": True,
        "AUTO_RELOAD": False,
        "VERBOSITY": 2,
        "MOTD": True,
        "STREAM_SHUTDOWN_GRACE": 0.5,  # the debug default
        "ACCESS_LOG": True,
    }
    quiet = RunOptions(target=AppRef(module="m"), noisy_exceptions=False, motd=False)
    assert Settings.resolve(quiet, Config()).config_updates() == {
        "DEBUG": False,
        "AUTO_RELOAD": False,
        "VERBOSITY": 0,
        "MOTD": False,
        "STREAM_SHUTDOWN_GRACE": 2.0,
        "NOISY_EXCEPTIONS": False,
    }


# --- real processes ------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("VIVACE_DEBUG", None)
    return env


def _run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60
    )


def test_python_m_runtime_version() -> None:
    result = _run(["-m", "runtime", "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"vivace {__version__}")


def test_python_m_runtime_bad_target(tmp_path: Path) -> None:
    result = _run(["-m", "runtime", "no_such_module_abc:app"], cwd=tmp_path)
    assert result.returncode == 1
    assert "No module named no_such_module_abc found." in result.stderr
    assert "Traceback" not in result.stderr


def test_find_app_ref_in_a_script_and_under_python_m(tmp_path: Path) -> None:
    code = (
        "from runtime.launch import find_app_ref\nmy_app = object()\nprint(find_app_ref(my_app))\n"
    )
    (tmp_path / "script_mod.py").write_text(code)
    result = _run([str(tmp_path / "script_mod.py")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"path='{tmp_path / 'script_mod.py'}'" in result.stdout
    assert "attr='my_app'" in result.stdout
    result = _run(["-m", "script_mod"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "module='script_mod'" in result.stdout and "attr='my_app'" in result.stdout


def test_find_app_ref_none_for_an_unbound_app() -> None:
    assert find_app_ref(object()) is None


@pytest.mark.slow
def test_single_process_serves_the_demo_app_and_stops_on_sigint() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime",
            "examples.hello:app",
            "--single-process",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/items/7?q=x", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)  # no readiness signal from outside the process but the socket
        assert response is not None, proc.stdout.read() if proc.stdout else ""
        assert response.status_code == 200
        assert response.json() == {"id": 7, "q": "x"}
        assert httpx.get(f"http://127.0.0.1:{port}/hello/Ada", timeout=5).text == "Hello, Ada!"
        stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
        assert stats["hellos"] == 1 and stats["pid"] == proc.pid  # app.ctx from the listener
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.slow
def test_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(["-m", "runtime", "examples.hello:app", "--single-process", "-p", str(port)])
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if str(port) in line]
    assert len(error_lines) == 1, output


def _serve_and_stop(args: list[str], cwd: Path, path: str, expect: dict[str, object]) -> str:
    """Start a vivace process, GET ``path`` once it answers, SIGINT it; returns its output."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = int(args[args.index("-p") + 1]) if "-p" in args else int(args[-1])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the server exited before answering"
                assert time.monotonic() < deadline, "no answer within 30 s"
                time.sleep(0.05)  # polling the socket is the readiness signal from outside
        assert response.status_code == 200
        assert response.json() == expect
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        return output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


@pytest.mark.slow
def test_multi_process_default_serves_and_stops_on_sigint() -> None:
    port = free_port()
    output = _serve_and_stop(
        ["-m", "runtime", "examples.hello:app", "-p", str(port), "--no-motd"],
        ROOT,
        "/",
        {"hello": "world"},
    )
    assert "Goin' Fast" not in output


FLASK_TUTORIAL = """
import os

from flask import Flask


def create_app(test_config=None):
    # the Flask tutorial's factory (flask.palletsprojects.com/tutorial/factory)
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(SECRET_KEY="dev", DATABASE=os.path.join(app.instance_path, "x.db"))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)

    @app.route("/")
    def hello():
        return {"hello": "flask", "testing": app.config.get("TESTING", False)}

    return app
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "target", [["flaskr:create_app()", "--single-process"], ["flaskr:create_app", "--factory"]]
)
def test_the_flask_tutorial_factory_is_served(tmp_path: Path, target: list[str]) -> None:
    """Called with no arguments, as ``flask run``, uvicorn --factory and gunicorn call it: before,
    it was given vivace's namespace and Flask failed in ``from_mapping(test_config)``."""
    (tmp_path / "flaskr").mkdir()
    (tmp_path / "flaskr" / "__init__.py").write_text(FLASK_TUTORIAL)
    port = free_port()
    _serve_and_stop(
        ["-m", "runtime", *target, "-H", "127.0.0.1", "-p", str(port), "--no-motd"],
        tmp_path,
        "/",
        {"hello": "flask", "testing": False},
    )


@pytest.mark.slow
def test_a_forced_interface_that_does_not_fit_exits_1(tmp_path: Path) -> None:
    """Before, the server started, answered 500 to every request and exited 0 when stopped."""
    (tmp_path / "settings_mod.py").write_text("settings = {'debug': True}\n")
    args = ["-m", "runtime", "settings_mod:settings", "--interface", "asgi3", "--single-process"]
    result = subprocess.run(
        [sys.executable, *args, "-p", str(free_port()), "--no-motd"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,  # kills the server that the bug started
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "Error: settings_mod:settings is {'debug': True} (a dict), which is not callable: it cannot"
        " be served as an ASGI 3 application (--interface asgi3)."
    ), result.stderr
    assert "async def app(scope, receive, send)" in result.stderr


SCRIPT = """
import sys
from runtime import App, json

app = App("run_script")


@app.get("/")
async def index(request):
    return json({"mode": sys.argv[1], "debug": request.app.config.DEBUG})


if __name__ == "__main__":
    app.run(port=int(sys.argv[2]), single_process=sys.argv[1] == "single", debug=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "workers"])
def test_app_run_in_a_script(tmp_path: Path, mode: str) -> None:
    (tmp_path / "server_script.py").write_text(SCRIPT)
    port = free_port()
    _serve_and_stop(
        ["server_script.py", mode, str(port)], tmp_path, "/", {"mode": mode, "debug": True}
    )


BROKEN_START = """
from runtime import App

app = App("broken_start")


@app.before_server_start
async def fail(app):
    raise RuntimeError("cannot reach the database")
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", [["--single-process"], ["-w", "1"]])
def test_failing_start_up_listener_exits_1(tmp_path: Path, mode: list[str]) -> None:
    (tmp_path / "broken_start.py").write_text(BROKEN_START)
    result = _run(["-m", "runtime", "broken_start:app", "-p", "0", *mode], cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach the database" in result.stdout + result.stderr


@pytest.mark.slow
def test_repl_commands_run_against_the_live_single_process_server() -> None:
    args = ["-m", "runtime", "examples.hello:app", "--single-process", "-p", "0"]
    commands = ["--repl-command", "app.ctx.hits", "--repl-command", "app.config.NOISY_EXCEPTIONS"]
    result = _run([*args, "--noisy-exceptions", *commands])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "0" in lines and "True" in lines  # before_server_start ran; the flag reached config
    failed = _run([*args, "--repl-command", "1 / 0"])
    assert failed.returncode == 1
    assert "ZeroDivisionError" in failed.stdout + failed.stderr


SETTINGS_APP = """
import os
from runtime import App, json

app = App("settings_app")


@app.get("/")
async def index(request):
    config = request.app.config
    keys = ("DEBUG", "ACCESS_LOG", "NOISY_EXCEPTIONS", "AUTO_RELOAD", "VERBOSITY", "MOTD")
    return json({"pid": os.getpid(), **{key: config[key] for key in keys}})
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_flags_reach_every_serving_process(tmp_path: Path, workers: int) -> None:
    (tmp_path / "settings_app.py").write_text(SETTINGS_APP)
    port = free_port()
    mode = ["-w", str(workers)] if workers else ["--single-process"]
    flags = ["--debug", "--no-access-logs", "--noisy-exceptions", "-vv", "--no-motd"]
    expect = {
        "DEBUG": True,
        "ACCESS_LOG": False,
        "NOISY_EXCEPTIONS": True,
        "AUTO_RELOAD": False,
        "VERBOSITY": 2,
        "MOTD": False,
    }
    args = [sys.executable, "-m", "runtime", "settings_app:app", *mode, *flags, "-p", str(port)]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        seen: dict[int, dict[str, object]] = {}
        deadline = time.monotonic() + 30
        while len(seen) < max(workers, 1):
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, f"only {len(seen)} process(es) answered"
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.05)  # polling the socket is the readiness signal from outside
                continue
            seen[body.pop("pid")] = body
        assert all(body == expect for body in seen.values()), seen
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


@pytest.mark.parametrize(
    "target", [["examples.factory:create_app", "--factory"], ["examples.factory:create_app()"]]
)
def test_the_factory_example_gets_its_own_option(
    monkeypatch: pytest.MonkeyPatch, target: list[str]
) -> None:
    from runtime.app import App
    from runtime.loader import load_app
    from runtime.testing import TestClient

    monkeypatch.chdir(ROOT)
    options = parse_command([*target, "--greeting=Hi"])
    app = load_app(options.target)
    try:
        with TestClient(app) as client:
            assert client.get("/greet/Ada").json() == {"message": "Hi, Ada!"}
    finally:
        App._registry.pop(app.name, None)


def test_console_unavailable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "repl", None)  # as if the console were not installed
    assert main(["examples.hello:app", "--repl", "-p", "0"]) == 1
    assert "The console cannot start" in capsys.readouterr().err


def test_console_script_points_at_main(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib
    import re

    # (tomllib is 3.11+, and vivace supports 3.10)
    found = re.search(r'^vivace = "([\w.]+):(\w+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert found is not None
    module, attr = found.groups()
    entry = getattr(importlib.import_module(module), attr)
    assert entry is main
    assert entry(["--version"]) == 0
    assert capsys.readouterr().out.startswith("vivace ")


NOGUARD_APP = """
from runtime import App, json

app = App("noguard_app")


@app.get("/")
async def index(request):
    return json({"ok": True})


app.run(port=PORT, motd=False)  # not under if __name__ == "__main__":
"""

RUN_DURING_IMPORT = "app.run() ran while vivace was importing"


@pytest.mark.slow
def test_app_run_at_module_level_under_the_cli_is_a_clear_error(tmp_path: Path) -> None:
    module_port, cli_port = free_port(), free_port()
    (tmp_path / "noguard.py").write_text(NOGUARD_APP.replace("PORT", str(module_port)))
    result = _run(["-m", "runtime", "noguard:app", "-p", str(cli_port)], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{RUN_DURING_IMPORT} noguard: put it under" in output
    assert 'if __name__ == "__main__":' in output
    assert "Goin' Fast" not in output and "Traceback" not in output


@pytest.mark.slow
def test_app_run_at_module_level_of_a_script_fails_before_serving(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "noguard.py").write_text(NOGUARD_APP.replace("PORT", str(port)))
    result = _run([str(tmp_path / "noguard.py")], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'app.run() is not under `if __name__ == "__main__":` in noguard.py' in output
    assert "already in use" not in output and "Goin' Fast" not in output


@pytest.mark.slow
def test_app_run_in_a_function_of_a_script_fails_clearly_in_the_worker(tmp_path: Path) -> None:
    """Called from a function at module level, only the worker's re-run can tell."""
    port = free_port()
    source = NOGUARD_APP.replace("PORT", str(port)).replace(
        "app.run(port=", "def serve():\n    app.run(port="
    )
    (tmp_path / "noguard.py").write_text(source + "\nserve()\n")
    result = _run([str(tmp_path / "noguard.py")], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "already in use" not in output
    assert f"{RUN_DURING_IMPORT} noguard.py: put it under" in output, output


def test_another_servers_options_are_refused_with_vivaces_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uvicorn's and gunicorn's options that people bring along: a usage error (exit 2) naming
    vivace's way to the same, one line each; an option nobody knows gets no such line."""
    err = usage_error(
        ["m:app", "--ssl-keyfile", "k.pem", "--timeout-keep-alive=5", "--frobnicate"], capsys
    )
    assert "unrecognized arguments: --ssl-keyfile k.pem --timeout-keep-alive=5 --frobnicate" in err
    assert "--ssl-keyfile is another server's option; with vivace: --tls-key FILE" in err
    assert "--timeout-keep-alive is another server's option; with vivace: the KEEP_ALIVE" in err
    assert "--frobnicate is" not in err
    options = {o for action in build_parser()._actions for o in action.option_strings}
    for name, hint in PEER_OPTIONS.items():  # every hint names something vivace has
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", hint):
            assert option in options, (name, option)
        for setting in re.findall(r"the ([A-Z_]+) setting", hint):
            assert setting in DEFAULTS, (name, setting)
