"""Application configuration: every default in one place.

Precedence, lowest first: the defaults below, then ``VIVACE_``-prefixed environment variables (read
when the ``Config`` is created, in every process), then values set in code (``app.config.X = ...``,
``app.config.update(...)``) and finally command-line flags applied by the launcher.

Keys are upper case. ``Config`` is a ``dict`` with attribute access, so both ``config.KEY`` and
``config["KEY"]`` work.
"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.exceptions import ConfigError

ENV_PREFIX = "VIVACE_"

#: seconds an open streaming response gets when a worker stops (``STREAM_SHUTDOWN_GRACE`` None)
STREAM_SHUTDOWN_GRACE = 2.0
#: the same in debug mode (``--dev``, ``--debug``), where every save restarts the workers
STREAM_SHUTDOWN_GRACE_DEBUG = 0.5

DEFAULTS: dict[str, Any] = {
    # requests and connections
    "REQUEST_MAX_SIZE": 100 * 1024 * 1024,  # bytes of body; more gets 413
    "REQUEST_MAX_HEADER_SIZE": 8192,  # bytes of request line + headers; more gets 431
    "REQUEST_MAX_HEADER_COUNT": 100,  # header fields; more gets 431
    "REQUEST_BUFFER_SIZE": 65536,  # body bytes buffered before reading pauses (streamed bodies)
    "REQUEST_TIMEOUT": 60.0,  # seconds to receive a whole request; then 408
    "RESPONSE_TIMEOUT": 60.0,  # seconds for the handler to respond; then 503
    "KEEP_ALIVE": True,
    "KEEP_ALIVE_TIMEOUT": 5.0,  # idle seconds before a keep-alive connection is closed
    "GRACEFUL_SHUTDOWN_TIMEOUT": 15.0,  # seconds in-flight requests get at shutdown
    # seconds an open streaming response (SSE ...) gets at shutdown before it is ended;
    # None: STREAM_SHUTDOWN_GRACE below, or STREAM_SHUTDOWN_GRACE_DEBUG in debug mode (--dev)
    "STREAM_SHUTDOWN_GRACE": None,
    "BACKLOG": 100,
    # websockets
    "WEBSOCKET_MAX_SIZE": 2**20,
    "WEBSOCKET_PING_INTERVAL": 20.0,
    "WEBSOCKET_PING_TIMEOUT": 20.0,
    # errors and logging
    "FALLBACK_ERROR_FORMAT": "auto",  # auto | json | html | text
    "NOISY_EXCEPTIONS": False,
    "ACCESS_LOG": False,
    "DEBUG": False,
    "VERBOSITY": 0,
    "MOTD": True,
    # proxies: which header carries the client address, and how many proxies sit in front
    "REAL_IP_HEADER": None,  # e.g. "X-Real-IP"
    "FORWARDED_FOR_HEADER": "X-Forwarded-For",
    "PROXIES_COUNT": 0,  # 0: never trust forwarding headers
    # --proxy-headers: Forwarded / X-Forwarded-For / X-Forwarded-Proto from these peers
    "PROXY_HEADERS": False,
    "FORWARDED_ALLOW_IPS": "127.0.0.1",  # comma-separated addresses or networks; "*": all
    "SERVER_NAME": "",  # host (and port) url_for(_external=True) uses when _server is not given
    # routing
    "STRICT_SLASHES": False,  # False: "/a" and "/a/" are the same route
    # signals
    "EVENT_AUTOREGISTER": False,
    # workers and reload
    "AUTO_RELOAD": False,
    "RELOADED_FILES": "",
    "WORKER_START_METHOD": "auto",  # auto | forkserver | spawn (auto: fork a preloaded process)
    "WORKER_ACK_TIMEOUT": 30.0,  # seconds every server worker gets to acknowledge start-up
    "WORKER_HEARTBEAT_INTERVAL": 1.0,
    "WORKER_HEARTBEAT_TIMEOUT": 10.0,  # a loop blocked longer than this is replaced
    "WORKER_CRASH_LIMIT": 5,  # crashes within WORKER_CRASH_WINDOW before giving up
    "WORKER_CRASH_WINDOW": 60.0,
    "INSPECTOR": False,
    "INSPECTOR_HOST": "localhost",
    "INSPECTOR_PORT": 6457,
}


def stream_shutdown_grace(value: Any, *, debug: bool) -> float:
    """``STREAM_SHUTDOWN_GRACE`` in seconds: ``value`` when set (0 or more), else the default of
    the mode (:data:`STREAM_SHUTDOWN_GRACE`, or :data:`STREAM_SHUTDOWN_GRACE_DEBUG` when
    ``debug``). ``ConfigError`` for anything else."""
    if value is None:
        return STREAM_SHUTDOWN_GRACE_DEBUG if debug else STREAM_SHUTDOWN_GRACE
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or not math.isfinite(value)
    ):
        raise ConfigError(
            "STREAM_SHUTDOWN_GRACE must be a number of seconds (0 or more), or None for the "
            f"default ({STREAM_SHUTDOWN_GRACE} s, {STREAM_SHUTDOWN_GRACE_DEBUG} s in debug mode), "
            f"got {value!r}"
        )
    return float(value)


def _parse_env_value(raw: str) -> Any:
    lowered = raw.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


class Config(dict[str, Any]):
    """A ``dict`` of settings with attribute access; see the module docstring for precedence."""

    def __init__(
        self,
        defaults: Mapping[str, Any] | None = None,
        *,
        env_prefix: str | None = ENV_PREFIX,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(DEFAULTS)
        if defaults:
            self.update(defaults)
        if env_prefix:
            self.load_environment(env_prefix, os.environ if environ is None else environ)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"Config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def load_environment(self, prefix: str, environ: Mapping[str, str]) -> None:
        """Apply every ``<prefix>KEY=value`` variable as ``KEY``, parsing bools and numbers."""
        for name, raw in environ.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                self[name[len(prefix) :]] = _parse_env_value(raw)

    def update_config(self, source: Mapping[str, Any] | object | str | os.PathLike[str]) -> None:
        """Update from a mapping, an object or class (its upper-case attributes), or a Python file.

        Only upper-case keys are taken, so helper names in a settings module are ignored.
        """
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise ConfigError(f"Config file {str(path)!r} does not exist")
            module = types.ModuleType("config")
            module.__file__ = str(path)
            try:
                exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
            except Exception as exc:
                msg = f"Config file {str(path)!r} could not be executed: {exc}"
                raise ConfigError(msg) from exc
            items: Mapping[str, Any] = vars(module)
        elif isinstance(source, Mapping):
            items = source
        else:
            items = {name: getattr(source, name) for name in dir(source)}
        for key, value in items.items():
            if isinstance(key, str) and key.isupper():
                self[key] = value

    # ``update`` is the familiar name; it also accepts objects and files.
    def update(self, *args: Any, **kwargs: Any) -> None:
        for source in args:
            if isinstance(source, Mapping):
                super().update(source)
            else:
                self.update_config(source)
        if kwargs:
            super().update(kwargs)
