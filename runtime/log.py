"""Logger names and the log formats. Only this module knows about colours.

Two formats: ``text`` (the default, for people) and ``json`` (``--log-format json``: one JSON
object per line with ``time``, ``level``, ``process`` (the vivace process name), ``pid``,
``logger`` and ``message``, plus ``method``, ``path``, ``status``, ``size`` and ``duration`` (in
seconds) on access lines, and ``exception`` when there is a traceback). ``--log-config FILE``
hands logging to ``logging.config.dictConfig`` (FILE: JSON, TOML or YAML) instead.
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import os
import sys
from typing import Any, TextIO

from runtime.exceptions import ConfigError

logger = logging.getLogger("vivace.root")  # general messages ("Goin' Fast", "Starting worker")
server_logger = logging.getLogger("vivace.server")  # the HTTP / websocket server
access_logger = logging.getLogger("vivace.access")  # one line per request when ACCESS_LOG is on
error_logger = logging.getLogger("vivace.error")  # handler exceptions and tracebacks
supervisor_logger = logging.getLogger("vivace.supervisor")  # the worker manager
reload_logger = logging.getLogger("vivace.reload")  # the reloader

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S %z"

LOG_FORMATS = ("text", "json")

_configured = False
_handler: logging.StreamHandler[TextIO] | None = None
_dict_configured: str | None = None


class JSONFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": os.environ.get("VIVACE_WORKER_NAME", "main"),
            "pid": record.process,
            "logger": record.name,
        }
        args = record.args
        if record.name == access_logger.name and isinstance(args, tuple) and len(args) >= 6:
            # the access line's arguments: client, method, target, version, status, size
            client, method, target, _version, status, size = args[:6]
            entry["message"] = record.getMessage()
            entry.update(client=client, method=method, path=target, status=status, size=size)
            duration = getattr(record, "duration", None)
            if isinstance(duration, (int, float)):
                entry["duration"] = round(float(duration), 6)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def _console_streams() -> list[object]:
    return [sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__]


def _writes_to_console(handler: logging.Handler, ours: object) -> bool:
    """Whether ``handler`` writes to this process's standard output or error (where vivace's
    handler writes: a worker's output pipe carries both), not to a file or a buffer."""
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    if any(stream is s for s in (ours, *_console_streams()) if s is not None):
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):  # a StringIO, a closed stream
        return False


class ShownOnce(logging.Filter):
    """On vivace's root handler: drop a record that a console handler of its own logger, or of
    one between it and the root, already printed.

    A framework that configures its own logging prints its records itself and lets them
    propagate: Django's default ``LOGGING`` gives the ``django`` logger a console handler (when
    ``DEBUG`` is on), so without this every error of a view, traceback included, came out twice
    in the worker's output. Flask adds its handler only when no handler would print (vivace's
    does), so it prints once either way. A record no other handler printed (vivace's own lines,
    the app's ``logging.getLogger(__name__).info(...)``, Django's errors with ``DEBUG = False``)
    is printed as before. Text format only: ``--log-format json`` keeps every record, as
    collectors want them whole.
    """

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        current = logging.Logger.manager.loggerDict.get(record.name)
        ours = getattr(self.handler, "stream", None)
        while isinstance(current, logging.Logger) and current is not logging.root:
            for handler in current.handlers:
                if (
                    handler is not self.handler
                    and record.levelno >= handler.level
                    and _writes_to_console(handler, ours)
                    and handler.filter(record)  # Django's: only when DEBUG is on
                ):
                    return False
            if not current.propagate:
                break
            current = current.parent
        return True


def _set_dedupe(handler: logging.Handler, log_format: str) -> None:
    """Text: :class:`ShownOnce` on ``handler``; JSON: every record (see there)."""
    for old in [f for f in handler.filters if isinstance(f, ShownOnce)]:
        handler.removeFilter(old)
    if log_format == "text":
        handler.addFilter(ShownOnce(handler))


def load_log_config(path: str) -> dict[str, Any]:
    """The ``dictConfig`` dictionary of ``path`` (``.json``, ``.toml``, ``.yaml``/``.yml``);
    ``ConfigError`` names the file and says what is wrong."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"--log-config {path}: {exc.strerror or exc}") from None
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".json":
            data = json.loads(raw)
        elif suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            data = tomllib.loads(raw.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            try:
                yaml = importlib.import_module("yaml")  # PyYAML, when installed
            except ImportError:
                raise ConfigError(
                    f"--log-config {path}: a YAML file needs PyYAML (pip install pyyaml)"
                ) from None
            data = yaml.safe_load(raw)
        else:
            raise ConfigError(f"--log-config {path}: give a .json, .toml or .yaml file")
    except ConfigError:
        raise
    except Exception as exc:  # the parsers' own errors: JSONDecodeError, TOMLDecodeError...
        raise ConfigError(f"--log-config {path}: cannot be parsed: {exc}") from None
    if not isinstance(data, dict) or "version" not in data:
        raise ConfigError(
            f"--log-config {path}: must hold a logging.dictConfig dictionary (with version = 1)"
        )
    return data


def configure(
    debug: bool = False,
    verbosity: int = 0,
    *,
    log_format: str = "text",
    log_config: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Install vivace's handler once per process and set the levels.

    The root logger gets a handler only when it has none, so that
    ``logging.getLogger("demo").info(...)`` in an app prints like vivace's own lines; a record a
    console handler of its own logger already printed (Django's) is not printed again
    (:class:`ShownOnce`). ``debug`` or ``-v`` shows vivace's DEBUG lines; ``-vv`` shows every
    library's. ``log_format`` is ``text`` or ``json``; ``stream`` (default stdout) is where the
    handler writes. ``log_config``: a ``dictConfig`` file applied instead (levels included).
    """
    global _configured, _handler, _dict_configured
    if log_config is not None:
        if _dict_configured != log_config:
            config = load_log_config(log_config)
            config.setdefault("disable_existing_loggers", False)
            from logging import config as dict_config  # here: only --log-config pays for it

            try:
                dict_config.dictConfig(config)
            except (ValueError, TypeError, AttributeError, ImportError) as exc:
                cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
                raise ConfigError(f"--log-config {log_config}: {exc}{cause}") from None
            _dict_configured = log_config
        return
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"--log-format must be text or json, not {log_format!r}")
    formatter = JSONFormatter() if log_format == "json" else logging.Formatter(FORMAT, DATEFMT)
    if not _configured:
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(formatter)
        _set_dedupe(handler, log_format)
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(handler)
            _handler = handler
        _configured = True
    elif _handler is not None:
        _handler.setFormatter(formatter)
        _set_dedupe(_handler, log_format)
        if stream is not None:
            _handler.setStream(stream)
    # Debug mode opens vivace's own loggers only: other libraries' DEBUG chatter (asyncio's
    # selector line, jedi's stub loading in the console, ...) stays hidden unless -vv asks for it.
    logging.getLogger("vivace").setLevel(logging.DEBUG if debug or verbosity > 0 else logging.INFO)
    logging.getLogger().setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def use_colour(stream: object) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
