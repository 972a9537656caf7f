"""Logging for production (issue 15): ``--log-format json`` (one JSON object per line) and
``--log-config FILE`` (``logging.dictConfig`` from JSON, TOML or YAML), in real processes."""

from __future__ import annotations

import importlib.util
import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime import log
from runtime.exceptions import ConfigError
from tests.live_vivace import Vivace
from tests.support import free_port

APP = textwrap.dedent(
    """
    import logging
    from runtime import App, text

    app = App("Logged")

    @app.get("/hello")
    async def hello(request):
        logging.getLogger("demo").info("a line from the app")
        return text("hi")

    @app.get("/boom")
    async def boom(request):
        raise RuntimeError("kaboom")
    """
)


def records(server: Vivace) -> list[dict[str, Any]]:
    """Every line of the output, each parsed as one JSON object (a line that is not fails)."""
    return [json.loads(line) for line in server.output().splitlines() if line.strip()]


def test_the_json_formatter_fields() -> None:
    formatter = log.JSONFormatter()
    record = logging.LogRecord("vivace.root", logging.INFO, __file__, 1, "Hello %s", ("you",), None)
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "Hello you"
    assert (entry["level"], entry["logger"], entry["process"]) == ("INFO", "vivace.root", "main")
    assert entry["time"].endswith("+00:00") and isinstance(entry["pid"], int)
    access = logging.LogRecord(
        "vivace.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d %d',
        ("1.2.3.4:5", "GET", "/x?y=1", "1.1", 200, 12),
        None,
    )
    access.duration = 0.0123456789
    entry = json.loads(formatter.format(access))
    assert {k: entry[k] for k in ("method", "path", "status", "size", "duration")} == {
        "method": "GET",
        "path": "/x?y=1",
        "status": 200,
        "size": 12,
        "duration": 0.012346,
    }


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("log.json", "{not json", "cannot be parsed"),
        ("log.toml", "version = 1\n[handlers.x]\nclass = 'no.such.Handler'\n", "no.such"),
        ("log.json", '{"handlers": {}}', "with version = 1"),
        ("log.ini", "[loggers]", "give a .json, .toml or .yaml file"),
    ],
)
def test_a_bad_log_config_names_the_file(
    tmp_path: Path, name: str, content: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        log.configure(log_config=str(path))
    assert str(caught.value).startswith(f"--log-config {path}")
    assert reason in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [("-w", "2"), ("--single-process",)])
def test_json_lines_with_access_fields(tmp_path: Path, mode: tuple[str, ...]) -> None:
    (tmp_path / "logged.py").write_text(APP)
    port = free_port()
    server = Vivace(
        tmp_path, "logged:app", "-p", str(port), "--log-format", "json", "--access-logs", *mode
    )
    try:
        server.wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/hello?x=1", timeout=2).text == "hi" or None,
            "an answer",
        )
        assert httpx.get(f"http://127.0.0.1:{port}/boom", timeout=2).status_code == 500
        server.wait_until(
            lambda: [r for r in records(server) if r.get("path") == "/boom"] or None,
            "the access line of /boom",
        )
    finally:
        assert server.stop() == 0
    lines = records(server)
    for entry in lines:
        assert {"time", "level", "process", "pid", "logger", "message"} <= set(entry), entry
    access = next(r for r in lines if r.get("path") == "/hello?x=1")
    assert (access["method"], access["status"], access["logger"]) == ("GET", 200, "vivace.access")
    assert isinstance(access["duration"], float) and 0 <= access["duration"] < 60
    assert any(r["message"] == "a line from the app" and r["logger"] == "demo" for r in lines)
    failure = next(r for r in lines if "exception" in r)
    assert "RuntimeError: kaboom" in failure["exception"]
    if mode[0] == "-w":
        names = {r["process"] for r in lines}
        assert "main" in names and any(name.startswith("Vivace-Server-") for name in names)
        assert len({r["pid"] for r in lines}) >= 3  # the main process and two workers


CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"custom": {"format": "CUSTOM %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "out": {
            "class": "logging.StreamHandler",
            "formatter": "custom",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": "INFO", "handlers": ["out"]},
}

TOML_CONFIG = """
version = 1
disable_existing_loggers = false

[formatters.custom]
format = "CUSTOM %(levelname)s %(name)s: %(message)s"

[handlers.out]
class = "logging.StreamHandler"
formatter = "custom"
stream = "ext://sys.stdout"

[root]
level = "INFO"
handlers = ["out"]
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["json", "toml", "yaml"])
def test_log_config_file(tmp_path: Path, kind: str) -> None:
    if kind == "yaml" and importlib.util.find_spec("yaml") is None:
        pytest.skip("PyYAML is not installed")
    (tmp_path / "logged.py").write_text(APP)
    config = tmp_path / f"logging.{kind}"
    if kind == "toml":
        config.write_text(TOML_CONFIG)
    else:
        config.write_text(json.dumps(CONFIG))  # JSON is YAML too
    port = free_port()
    server = Vivace(tmp_path, "logged:app", "-p", str(port), "--log-config", config.name)
    try:
        server.wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).text == "hi" or None,
            "an answer",
        )
        server.wait_output("CUSTOM INFO demo: a line from the app")
    finally:
        assert server.stop() == 0
    out = server.output()
    assert "CUSTOM INFO vivace.root: Goin' Fast @ http://" in out
    assert "CUSTOM INFO vivace.root: Starting worker" in out  # the workers use it too


@pytest.mark.slow
def test_a_bad_log_config_stops_vivace_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "logged.py").write_text(APP)
    (tmp_path / "logging.json").write_text("{}")
    server = Vivace(tmp_path, "logged:app", "--log-config", "logging.json")
    assert server.exit_code() == 1
    out = server.output()
    assert f"--log-config {tmp_path / 'logging.json'}: must hold a logging.dictConfig" in out
    assert out.count("\n") == 1, out
