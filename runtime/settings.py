"""``Settings``: how this run serves, resolved once from the command line and the app's config.

The launcher builds one :class:`Settings` (``Settings.resolve(options, config)``): the flags of
``RunOptions`` (cli.md section 6) and the supervision keys of the app's ``Config``, each checked
once here. The main process uses it as it is (the manager reads its timeouts and limits, never the
config), and every child receives the same record in its ``WorkerSpec``: a worker applies
:meth:`Settings.config_updates` to its own ``app.config`` and configures logging from it. Nothing
downstream parses a setting again.

Precedence, lowest first: ``Config`` defaults, ``VIVACE_*`` environment, values set in code on
``app.config``, then the command-line flags (``debug``, ``auto_reload``, ``verbosity``, ``motd``,
``access_log``, ``noisy_exceptions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from runtime.config import stream_shutdown_grace
from runtime.exceptions import ConfigError

if TYPE_CHECKING:
    from runtime.options import RunOptions

__all__ = ["START_METHODS", "Settings"]

START_METHODS = ("auto", "forkserver", "spawn")


def _seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{key} must be a number of seconds (0 or more), got {value!r}")
    return float(value)


def _optional_seconds(config: Mapping[str, Any], key: str, default: float) -> float | None:
    return None if config.get(key, default) is None else _seconds(config, key, default)


def _count(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a whole number (0 or more), got {value!r}")
    return value


class Settings(NamedTuple):
    """The resolved settings of one run (see the module docstring)."""

    debug: bool = False
    auto_reload: bool = False
    verbosity: int = 0
    motd: bool = True
    #: None: the app's own ``ACCESS_LOG`` / ``NOISY_EXCEPTIONS`` stand
    access_log: bool | None = None
    noisy_exceptions: bool | None = None
    #: None: no limit
    graceful_shutdown_timeout: float | None = 15.0
    #: seconds an open streaming response gets at shutdown (``STREAM_SHUTDOWN_GRACE``; its
    #: default is shorter in debug mode)
    stream_shutdown_grace: float = 2.0
    ack_timeout: float = 30.0
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 10.0
    crash_limit: int = 5
    crash_window: float = 60.0
    #: ``auto`` (fork the main process where safe), ``forkserver`` or ``spawn``
    start_method: str = "auto"
    #: ``--env-file`` paths, read again by every child, and the variables the main process took
    #: from them (a child forgets those first, so that a changed file shows)
    env_files: tuple[str, ...] = ()
    env_keys: tuple[str, ...] = ()
    #: ``--reload-include`` / ``--reload-exclude`` globs (the reloader's)
    reload_include: tuple[str, ...] = ()
    reload_exclude: tuple[str, ...] = ()
    proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    #: the TLS files every worker builds its ``SSLContext`` from (None: plain HTTP)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    log_format: str = "text"
    log_config: str | None = None
    health_path: str | None = None

    @classmethod
    def resolve(
        cls, options: RunOptions, config: Mapping[str, Any], *, forkable: bool = True
    ) -> Settings:
        """The settings of a run of ``options`` for an app with ``config``; ``ConfigError`` names
        a key whose value cannot be used. ``forkable=False`` (``Hosted.forkable``) turns the
        ``auto`` start method into ``forkserver``."""
        method = config.get("WORKER_START_METHOD", "auto")
        if method not in START_METHODS:
            raise ConfigError(
                f"WORKER_START_METHOD must be 'auto', 'forkserver' or 'spawn', not {method!r}"
            )
        if method == "auto" and not forkable:
            method = "forkserver"
        access_log = (
            options.effective_access_log
            if options.access_log is not None or options.debug
            else None
        )
        return cls(
            debug=options.debug,
            auto_reload=options.auto_reload,
            verbosity=options.verbosity,
            motd=bool(options.motd and config.get("MOTD", True)),
            access_log=access_log,
            noisy_exceptions=options.noisy_exceptions,
            graceful_shutdown_timeout=_optional_seconds(config, "GRACEFUL_SHUTDOWN_TIMEOUT", 15.0),
            stream_shutdown_grace=stream_shutdown_grace(
                config.get("STREAM_SHUTDOWN_GRACE"), debug=options.debug
            ),
            ack_timeout=_seconds(config, "WORKER_ACK_TIMEOUT", 30.0),
            heartbeat_interval=_seconds(config, "WORKER_HEARTBEAT_INTERVAL", 1.0),
            heartbeat_timeout=_seconds(config, "WORKER_HEARTBEAT_TIMEOUT", 10.0),
            crash_limit=_count(config, "WORKER_CRASH_LIMIT", 5),
            crash_window=_seconds(config, "WORKER_CRASH_WINDOW", 60.0),
            start_method=str(method),
            env_files=options.env_files,
            env_keys=options.env_keys,
            reload_include=options.reload_include,
            reload_exclude=options.reload_exclude,
            proxy_headers=options.proxy_headers,
            forwarded_allow_ips=options.forwarded_allow_ips,
            tls_cert=options.tls_cert,
            tls_key=options.tls_key,
            tls_ca=options.tls_ca,
            log_format=options.log_format,
            log_config=options.log_config,
            health_path=options.health_path,
        )

    def config_updates(self) -> dict[str, Any]:
        """The keys an ``app.config`` takes from this run (in the main process and each worker)."""
        updates: dict[str, Any] = {
            "DEBUG": self.debug,
            "AUTO_RELOAD": self.auto_reload,
            "VERBOSITY": self.verbosity,
            "MOTD": self.motd,
            "STREAM_SHUTDOWN_GRACE": self.stream_shutdown_grace,
        }
        if self.access_log is not None:
            updates["ACCESS_LOG"] = self.access_log
        if self.noisy_exceptions is not None:
            updates["NOISY_EXCEPTIONS"] = self.noisy_exceptions
        if self.proxy_headers:
            updates["PROXY_HEADERS"] = True
            updates["FORWARDED_ALLOW_IPS"] = ",".join(self.forwarded_allow_ips)
        return updates
