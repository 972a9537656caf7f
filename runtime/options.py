"""What the launcher was asked to do: one value shared by the CLI, app.run and the supervisor."""

from __future__ import annotations

from typing import Literal, NamedTuple

from runtime.appref import AppRef

ReplMode = Literal["off", "enter", "open"]


class RunOptions(NamedTuple):
    """Every serving option, after the command line or ``app.run()`` arguments were validated.

    ``access_log`` and ``noisy_exceptions`` are ``None`` when not given, so that debug mode can turn
    access logs on unless ``--no-access-logs`` was given.
    """

    target: AppRef
    host: str = "127.0.0.1"
    port: int = 8000
    unix: str | None = None
    workers: int = 1
    single_process: bool = False
    debug: bool = False
    access_log: bool | None = None
    noisy_exceptions: bool | None = None
    auto_reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    motd: bool = True
    verbosity: int = 0
    backlog: int = 100
    repl: ReplMode = "off"
    repl_commands: tuple[str, ...] = ()
    repl_json: bool = False  # --json: scripted mode prints one JSON object per statement
    #: --reload-include / --reload-exclude globs
    reload_include: tuple[str, ...] = ()
    reload_exclude: tuple[str, ...] = ()
    #: --env-file paths (absolute), and the variables they set in the main process
    env_files: tuple[str, ...] = ()
    env_keys: tuple[str, ...] = ()
    proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    #: --tls-cert / --tls-key / --tls-ca (absolute paths); --auto-tls fills them at launch
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    auto_tls: bool = False
    log_format: str = "text"
    log_config: str | None = None
    health_path: str | None = None
    #: issue 14: --attach / --no-attach (None: on under --dev), --attach-tcp HOST:PORT
    attach: bool | None = None
    attach_tcp: str | None = None

    @property
    def effective_access_log(self) -> bool:
        return self.debug if self.access_log is None else self.access_log

    @property
    def attach_enabled(self) -> bool:
        """The control socket of ``vivace attach`` (issue 14): under ``--dev`` unless
        ``--no-attach``; otherwise with ``--attach`` or ``--attach-tcp``."""
        if self.attach_tcp:
            return self.attach is not False
        if self.attach is None:
            return self.repl == "enter" and not self.repl_commands
        return self.attach

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None or self.auto_tls

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        if self.unix:
            return f"{scheme}://unix:{self.unix}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"
