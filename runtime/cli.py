"""The ``vivace`` command (``python -m runtime`` is the same thing); spec: cli.md.

Two steps, tested separately: ``parse_command(argv)`` turns the arguments into validated
``RunOptions`` without importing the app or starting anything; ``main(argv)`` loads the app, builds
the console when asked, and calls ``runtime.launch.run``. Exit codes: 0 normal shutdown, 1 start-up
failure or invalid combination, 2 usage error (from argparse).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from runtime import __version__, envfile, launch, log, project
from runtime.exceptions import ConfigError, LoadError
from runtime.hosting import INTERFACES
from runtime.loader import load_app, parse_target
from runtime.options import ReplMode, RunOptions

DESCRIPTION = """\
Serve a Python web app: a vivace App, or any ASGI 3, ASGI 2 or WSGI app (FastAPI, Starlette,
Django, Litestar, Quart, Flask ...), with workers, auto-reload and the developer console.

TARGET is where your app lives:
  pkg.module:app             the variable 'app' of module pkg.module (pkg.module.app works too)
  pkg.module                 the module's variable named 'app'
  pkg.module:create_app()    call a factory (or: pkg.module:create_app --factory)
  app/main.py[:app]          a file's module, as fastapi dev app/main.py finds it
  ./some/dir                 serve a directory's files (or: --simple DIR)
"""

EPILOG = """\
examples:
  vivace app:app                         multi-process (1 worker) on http://127.0.0.1:8000
  vivace app:app -w 4                    four workers
  vivace app:app --single-process        one process, no manager
  vivace app:app --dev                   debug + auto-reload + ENTER opens the console
  vivace main:app --dev                  the same for a FastAPI (or any ASGI/WSGI) app in main.py
  vivace mysite.asgi:application -w 2    a Django project on two workers
  vivace ./public                        serve the files of ./public
  vivace --dev                           the app named by [tool.vivace] app = "..." (pyproject.toml)

Every long option can also be set by a VIVACE_<OPTION> environment variable
(--reload-include: VIVACE_RELOAD_INCLUDE, comma-separated) and in the [tool.vivace] table of
pyproject.toml (reload-include = ["*.html"]). Precedence: command line > environment >
pyproject.toml > defaults.
"""

TLS_ERROR = (
    "TLS certificates must be specified by either of:\n"
    "  --tls-cert certdir/fullchain.pem --tls-key certdir/privkey.pem  (or --cert/--key)\n"
    "  --tls certdir  (equivalent to the above)\n"
    "  --auto-tls     (a local development certificate)"
)


class CliError(Exception):
    """A problem found after parsing: print the message, exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least one worker is needed")
    return value


def _pair(
    group: argparse._ArgumentGroup, name: str, dest: str, on_help: str, off_help: str
) -> None:
    both = group.add_mutually_exclusive_group()
    both.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=on_help)
    both.add_argument(f"--no-{name}", dest=dest, action="store_false", help=off_help)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vivace`` (a fresh one each call: ``--factory`` extends it)."""
    parser = _Parser(
        prog="vivace",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", nargs="?", metavar="TARGET", help="the app to serve (above)")

    app = parser.add_argument_group("application")
    kind = app.add_mutually_exclusive_group()
    kind.add_argument(
        "--factory",
        action="store_true",
        default=None,
        help="TARGET is a function that returns the app",
    )
    kind.add_argument(
        "-s",
        "--simple",
        action="store_true",
        default=None,
        help="TARGET is a directory of files to serve",
    )
    app.add_argument(
        "--interface",
        choices=INTERFACES,
        default=None,
        help="what TARGET is: a vivace App, an ASGI 3 or ASGI 2 app, or a WSGI app "
        "(default: auto, detected)",
    )
    app.add_argument(
        "--root-path",
        default=None,
        metavar="PATH",
        help="the ASGI root_path of an ASGI or WSGI app mounted below a path by a proxy",
    )
    repl = app.add_mutually_exclusive_group()
    repl.add_argument(
        "--repl",
        dest="repl",
        action="store_const",
        const="open",
        default=None,
        help="open the developer console as soon as the workers are ready",
    )
    repl.add_argument(
        "--no-repl",
        dest="repl",
        action="store_const",
        const="off",
        help="never open the console (also with --dev)",
    )
    app.add_argument(
        "--repl-command",
        dest="repl_commands",
        action="append",
        default=None,
        metavar="CODE",
        help="run CODE in the console against the live server, then stop (repeatable)",
    )
    app.add_argument(
        "--json",
        dest="repl_json",
        action="store_true",
        help="scripted console: print one JSON object per statement, nothing else on stdout",
    )

    sock = parser.add_argument_group("socket")
    sock.add_argument("-H", "--host", default=None, help="bind address [127.0.0.1]")
    sock.add_argument("-p", "--port", type=_port, default=None, help="port [8000]")
    sock.add_argument("-u", "--unix", metavar="PATH", help="listen on a unix socket instead")

    tls = parser.add_argument_group("TLS (HTTPS and WSS) and protocol")
    tls.add_argument(
        "--tls-cert", "--cert", dest="tls_cert", metavar="FILE", help="certificate chain (PEM)"
    )
    tls.add_argument("--tls-key", "--key", dest="tls_key", metavar="FILE", help="private key (PEM)")
    tls.add_argument(
        "--tls-ca",
        dest="tls_ca",
        metavar="FILE",
        help="CA bundle (PEM): clients must present a certificate it signed",
    )
    tls.add_argument("--tls", metavar="DIR", action="append", help="fullchain.pem + privkey.pem")
    tls.add_argument(
        "--auto-tls",
        action="store_true",
        default=None,
        help="development: a local CA and a certificate for localhost (kept and reused)",
    )
    tls.add_argument(
        "--tls-strict-host",
        dest="tlshost",
        action="store_true",
        help="Sanic's option: refused (vivace serves one certificate)",
    )
    tls.add_argument(
        "--http",
        dest="http",
        type=int,
        choices=(1, 3),
        action="append",
        help="HTTP version: 1 (3 is refused: not supported yet)",
    )
    tls.add_argument("-1", dest="http", action="append_const", const=1, help="serve HTTP/1.1")
    tls.add_argument(
        "-3",
        dest="http",
        action="append_const",
        const=3,
        help="HTTP/3: refused (not supported yet)",
    )

    proxy = parser.add_argument_group("behind a proxy")
    _pair(
        proxy,
        "proxy-headers",
        "proxy_headers",
        "trust Forwarded / X-Forwarded-For / X-Forwarded-Proto from --forwarded-allow-ips",
        "ignore them [default]",
    )
    proxy.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        default=None,
        help="comma-separated addresses or networks whose proxy headers are trusted, "
        "* for all [127.0.0.1]",
    )

    workers = parser.add_argument_group("workers")
    how = workers.add_mutually_exclusive_group()
    how.add_argument(
        "-w",
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="number of server workers [1]",
    )
    how.add_argument(
        "--fast", action="store_true", default=None, help="one worker per available CPU"
    )
    how.add_argument(
        "--single-process",
        action="store_true",
        default=None,
        help="serve in this process: no manager, no workers",
    )
    _pair(workers, "access-logs", "access_log", "log every request", "never log requests")

    dev = parser.add_argument_group("development")
    dev.add_argument(
        "--debug", action="store_true", default=None, help="debug mode (tracebacks, access logs)"
    )
    dev.add_argument(
        "-r",
        "--reload",
        "--auto-reload",
        dest="auto_reload",
        action="store_true",
        default=None,
        help="restart the workers when a source file changes",
    )
    dev.add_argument(
        "-R",
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=None,
        metavar="DIR",
        help="also watch DIR (repeatable; implies --reload)",
    )
    dev.add_argument(
        "--reload-include",
        action="append",
        default=None,
        metavar="GLOB",
        help="also reload when a file matching GLOB changes (repeatable; ** for any depth; "
        "implies --reload)",
    )
    dev.add_argument(
        "--reload-exclude",
        action="append",
        default=None,
        metavar="GLOB",
        help="never reload for a file matching GLOB (repeatable; wins over everything else)",
    )
    dev.add_argument(
        "-d",
        "--dev",
        action="store_true",
        default=None,
        help="--debug --reload, and ENTER opens the console",
    )
    dev.add_argument(
        "--env-file",
        dest="env_files",
        action="append",
        default=None,
        metavar="PATH",
        help="load environment variables from PATH (a .env file; repeatable) before the app is "
        "imported; under --reload a change restarts the workers",
    )
    # --- issue 14: the control socket (vivace attach / inspect / mcp) ---
    attach = dev.add_mutually_exclusive_group()
    attach.add_argument(
        "--attach",
        dest="attach",
        action="store_true",
        default=None,
        help="listen on a control socket for vivace attach/inspect/mcp (on with --dev)",
    )
    attach.add_argument(
        "--no-attach", dest="attach", action="store_false", help="no control socket (also --dev)"
    )
    dev.add_argument(
        "--attach-tcp",
        metavar="HOST:PORT",
        default=None,
        help="also accept vivace attach over TCP, with a random token (TLS with --tls-cert)",
    )
    # --- end issue 14 ---
    dev.add_argument(
        "--health-path",
        metavar="PATH",
        default=None,
        help="answer GET PATH with 200 from the server itself once the workers serve",
    )

    out = parser.add_argument_group("output")
    _pair(out, "coffee", "coffee", "a different logo", "the usual logo")
    _pair(out, "motd", "motd", "start-up banner [on]", "no start-up banner")
    out.add_argument(
        "-v",
        "--verbosity",
        action="count",
        default=None,
        help="more debug output (repeatable: -vv)",
    )
    out.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="json: one JSON object per line (time, level, process, pid, message; method, path, "
        "status, duration for access lines) [text]",
    )
    out.add_argument(
        "--log-config",
        metavar="FILE",
        default=None,
        help="configure logging with logging.dictConfig from FILE (.json, .toml, .yaml)",
    )
    _pair(
        out,
        "noisy-exceptions",
        "noisy_exceptions",
        "log tracebacks also for quiet exceptions (404s...)",
        "only for errors [default]",
    )
    out.add_argument("--version", action="version", version=version_text())
    return parser


def version_text() -> str:
    # sys.version's first word is what platform.python_version() parses out of it, without the
    # ~1.5 ms import of platform on every start (the parser builds this text for --version)
    return f"vivace {__version__} (Python {sys.version.split()[0]})"


def _parse(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace, list[str]]:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # ``pkg.module:create_app()`` is the same as ``--factory`` (cli.md 1)
    factory = args.factory or str(args.target or "").strip().endswith("()")
    if unknown and factory:
        # unknown --options are passed to the factory in the namespace (cli.md 1)
        known = {opt for action in parser._actions for opt in action.option_strings}
        for arg in unknown:
            name = arg.split("=", 1)[0]
            if arg.startswith("--") and len(arg) > 2 and name not in known:
                parser.add_argument(name, nargs="?", const=True)
                known.add(name)
        args = parser.parse_args(argv)
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{_peer_hints(unknown)}")
    return parser, args, unknown


#: options of uvicorn, gunicorn and granian that people bring along, and vivace's way to the same
PEER_OPTIONS = {
    "--uds": "-u PATH (--unix PATH)",
    "--bind": "-H HOST -p PORT, or -u PATH for a unix socket",
    "-b": "-H HOST -p PORT, or -u PATH for a unix socket",
    "--ssl-keyfile": "--tls-key FILE",
    "--ssl-certfile": "--tls-cert FILE",
    "--ssl-ca-certs": "--tls-ca FILE",
    "--keyfile": "--tls-key FILE",
    "--certfile": "--tls-cert FILE",
    "--log-level": "-v (-vv for more), --debug, --no-access-logs",
    "--access-log": "--access-logs",
    "--no-access-log": "--no-access-logs",
    "--timeout-keep-alive": "the KEEP_ALIVE_TIMEOUT setting: VIVACE_KEEP_ALIVE_TIMEOUT=5",
    "--keep-alive": "the KEEP_ALIVE_TIMEOUT setting: VIVACE_KEEP_ALIVE_TIMEOUT=5",
    "--timeout-graceful-shutdown": (
        "the GRACEFUL_SHUTDOWN_TIMEOUT setting: VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT=15"
    ),
    "--graceful-timeout": (
        "the GRACEFUL_SHUTDOWN_TIMEOUT setting: VIVACE_GRACEFUL_SHUTDOWN_TIMEOUT=15"
    ),
    "--backlog": "the BACKLOG setting: VIVACE_BACKLOG=2048",
    "--ws-max-size": "the WEBSOCKET_MAX_SIZE setting: VIVACE_WEBSOCKET_MAX_SIZE=16777216",
    "--ws-ping-interval": "the WEBSOCKET_PING_INTERVAL setting: VIVACE_WEBSOCKET_PING_INTERVAL=20",
    "--ws-ping-timeout": "the WEBSOCKET_PING_TIMEOUT setting: VIVACE_WEBSOCKET_PING_TIMEOUT=20",
    "--threads": "for a WSGI app, VIVACE_WSGI_THREADS=32 (10 by default)",
    "--loop": "nothing: vivace runs on uvloop when it is installed",
    "--lifespan": "nothing: the lifespan runs when the app speaks it (uvicorn's 'auto')",
    "--preload": "nothing: the main process imports the app's libraries once for every worker",
    "--app-dir": "run vivace from that directory: it imports the app from the current one",
    "--reload-delay": "nothing: a save is seen within ~10 ms and the change-over starts at once",
}


def _peer_hints(unknown: list[str]) -> str:
    """A line per option of another server found in ``unknown``: vivace's way to the same."""
    lines = []
    for arg in unknown:
        name = arg.split("=", 1)[0]
        hint = PEER_OPTIONS.get(name)
        if hint is not None:
            lines.append(f"\n  {name} is another server's option; with vivace: {hint}")
    return "".join(lines)


def _check_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The command line's own TLS combinations (the Sanic spellings included)."""
    if (
        bool(args.tls_cert) != bool(args.tls_key)
        or (args.tls and args.tls_cert)
        or (args.tlshost and not args.tls and not args.tls_cert)
    ):
        parser.print_usage(sys.stderr)
        raise CliError(TLS_ERROR)
    if args.tls:
        if len(args.tls) > 1:
            raise CliError("--tls DIR can be given once (several certificates are not supported)")
        args.tls_cert = os.path.join(args.tls[0], "fullchain.pem")
        args.tls_key = os.path.join(args.tls[0], "privkey.pem")
    if args.tlshost:
        raise CliError("--tls-strict-host is not supported by vivace (one certificate only).")
    if 3 in (args.http or []):
        raise CliError("HTTP/3 (--http 3, -3) is not supported yet by vivace; HTTP/1.1 is.")


#: where each option's value came from, highest precedence first
SOURCES = ("command line", "environment", "pyproject.toml", "default")


class _Layers:
    """The value of every option from the command line, ``VIVACE_*`` and ``[tool.vivace]``."""

    def __init__(
        self,
        args: argparse.Namespace,
        environ: dict[str, str],
        found: project.Project | None,
    ) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, int] = {}
        self.file = found.file if found is not None else None
        for option in project.OPTIONS:
            given = getattr(args, option.dest, None)
            if given is not None:
                if option.key == "forwarded-allow-ips":
                    given = [part.strip() for part in str(given).split(",") if part.strip()]
                self.values[option.key], self.sources[option.key] = given, 0
                continue
            from_env = project.env_value(option, environ)
            if from_env is not None:
                if option.key == "repl":
                    from_env = "open" if from_env else "off"
                self.values[option.key], self.sources[option.key] = from_env, 1
                continue
            if found is not None and option.key in found.values:
                value = found.values[option.key]
                if option.key == "repl":
                    value = "open" if value else "off"
                self.values[option.key], self.sources[option.key] = value, 2

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def rank(self, key: str) -> int:
        return self.sources.get(key, 3)

    def where(self, key: str) -> str:
        """``--port``, ``VIVACE_PORT`` or ``<file> [tool.vivace] port``: where a value came from."""
        rank = self.rank(key)
        if rank == 1:
            return project.env_name(key)
        if rank == 2 and self.file is not None:
            return f"{self.file}: [tool.vivace] {key}"
        return f"--{key}"

    def drop(self, key: str) -> None:
        self.values.pop(key, None)
        self.sources.pop(key, None)

    def settle(self, winner: str, loser: str) -> None:
        """Two options that exclude each other: the one from the higher layer wins; from the
        same layer they are an error (raised by the caller's checks)."""
        if winner in self.values and loser in self.values and self.rank(winner) < self.rank(loser):
            self.drop(loser)


def _checked(layers: _Layers, key: str, check: Any) -> Any:
    value = layers.get(key)
    if value is None:
        return None
    try:
        return check(str(value))
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"{layers.where(key)}: {exc}") from None


def _abs(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def _env_files(args: argparse.Namespace, found: project.Project | None) -> list[str]:
    """``--env-file`` resolved first: its variables take part in the ``VIVACE_*`` layer."""
    if args.env_files:
        return [os.path.abspath(p) for p in args.env_files]
    option = project.BY_KEY["env-file"]
    from_env = project.env_value(option, os.environ)
    if from_env:
        return [os.path.abspath(p) for p in from_env]
    if found is not None and "env-file" in found.values:
        return list(found.values["env-file"])
    return []


def parse_command(argv: Sequence[str], *, cwd: str | None = None) -> RunOptions:
    """Validated ``RunOptions`` for ``argv``; nothing is imported or started.

    Every option is taken from the command line, else its ``VIVACE_*`` variable (the process's
    environment, then the ``--env-file`` files), else ``[tool.vivace]`` of the nearest
    ``pyproject.toml`` holding one (from ``cwd``, default the working directory, upwards).

    Raises ``SystemExit`` for usage errors (2), ``--help`` and ``--version`` (0), and ``CliError``
    (1) for invalid combinations, bad configuration and targets that cannot be parsed.
    """
    argv = list(argv)
    if argv == ["-v"]:  # the legacy spelling of --version
        argv = ["--version"]
    parser, args, unknown = _parse(argv)
    _check_tls(parser, args)
    here = os.path.abspath(cwd if cwd is not None else os.getcwd())
    try:
        found = project.find_project(here)
        env_files = _env_files(args, found)
        from_files = envfile.read_env_files(env_files)
        layers = _Layers(args, {**from_files, **os.environ}, found)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    target_text = layers.get("app")
    if target_text is None:
        # the files `fastapi dev` looks for: the example names the one this project has
        usual = ("main.py", "app.py", "api.py", "app/main.py", "app/app.py", "app/api.py")
        example = next((f for f in usual if os.path.isfile(os.path.join(here, f))), "app:app")
        parser.error(
            f"the following arguments are required: TARGET (for example: vivace {example}), "
            'or app = "module:app" in [tool.vivace] of pyproject.toml'
        )
    for mode in ("workers", "fast", "reload", "dev", "reload-dir", "reload-include"):
        layers.settle(mode, "single-process")
        layers.settle("single-process", mode)
    layers.settle("workers", "fast")
    layers.settle("fast", "workers")
    reload_include = tuple(layers.get("reload-include") or ())
    reload_exclude = tuple(layers.get("reload-exclude") or ())
    reload_dirs = list(layers.get("reload-dir") or ())
    auto_reload = bool(layers.get("reload") or layers.get("dev") or reload_dirs or reload_include)
    single_process = bool(layers.get("single-process"))
    workers = _checked(layers, "workers", _workers)
    fast = bool(layers.get("fast"))
    if single_process and (auto_reload or (workers or 1) > 1 or fast):
        raise CliError(launch.SINGLE_PROCESS_ERROR)
    if fast and workers is not None:
        raise CliError(launch.FAST_WORKERS_ERROR)
    debug = bool(layers.get("debug") or layers.get("dev"))
    verbosity = int(layers.get("verbosity") or 0)
    log_format = str(layers.get("log-format") or "text")
    log_config = _abs(layers.get("log-config"))
    try:
        log.configure(
            debug=debug, verbosity=verbosity, log_format=log_format, log_config=log_config
        )
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    repl_given = layers.get("repl")
    repl: ReplMode = (
        repl_given if repl_given is not None else ("enter" if layers.get("dev") else "off")
    )
    namespace = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    from_project = layers.rank("app") == 2 and found is not None
    try:
        target = parse_target(
            str(target_text),
            factory=bool(layers.get("factory")),
            simple=bool(layers.get("simple")),
            cwd=found.directory if from_project and found is not None else here,
            factory_args=tuple(unknown),
            namespace=namespace,
        )
    except LoadError as exc:
        raise CliError(str(exc)) from None
    root_path = str(layers.get("root-path") or "")
    if root_path and not root_path.startswith("/"):
        raise CliError(f"--root-path must start with '/', got {root_path!r}")
    target = target._replace(
        interface=str(layers.get("interface") or "auto"), root_path=root_path.rstrip("/")
    )
    if reload_include or reload_exclude:  # refused with the reason before anything starts
        from runtime.supervisor.watch import GlobError, compile_globs

        try:
            compile_globs(reload_include, here, "--reload-include")
            compile_globs(reload_exclude, here, "--reload-exclude")
        except GlobError as exc:
            raise CliError(str(exc)) from None
    allow = tuple(layers.get("forwarded-allow-ips") or ("127.0.0.1",))
    if layers.get("forwarded-allow-ips") is not None:
        from runtime.proxy import TrustedProxies

        try:
            TrustedProxies.check(allow)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    tls_cert, tls_key, tls_ca = (_abs(layers.get(k)) for k in ("tls-cert", "tls-key", "tls-ca"))
    auto_tls = bool(layers.get("auto-tls"))
    if auto_tls and (tls_cert or tls_key):
        raise CliError("--auto-tls makes its own certificate: give it or --tls-cert/--tls-key")
    if tls_ca and not (tls_cert or auto_tls):
        raise CliError("--tls-ca asks clients for certificates: it needs --tls-cert/--tls-key")
    if tls_cert or tls_key:
        from runtime import tls

        try:
            tls.check_files(tls_cert, tls_key, tls_ca)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
    health_path = layers.get("health-path")
    if health_path is not None and not str(health_path).startswith("/"):
        raise CliError(f"--health-path must start with '/', got {health_path!r}")
    port = _checked(layers, "port", _port)
    return RunOptions(
        target=target,
        host=str(layers.get("host") or "127.0.0.1"),
        port=8000 if port is None else port,
        unix=_abs(layers.get("unix")),
        workers=launch.available_cpus() if fast else (workers or 1),
        single_process=single_process,
        debug=debug,
        access_log=layers.get("access-logs"),
        noisy_exceptions=layers.get("noisy-exceptions"),
        auto_reload=auto_reload,
        reload_dirs=tuple(launch.check_reload_dirs(reload_dirs)),
        motd=layers.get("motd") is not False,
        verbosity=verbosity,
        repl=repl,
        repl_commands=tuple(layers.get("repl-command") or ()),
        attach=layers.get("attach"),  # issue 14
        attach_tcp=_attach_tcp(layers.get("attach-tcp")),  # issue 14
        repl_json=bool(getattr(args, "repl_json", False)),
        reload_include=reload_include,
        reload_exclude=reload_exclude,
        env_files=tuple(env_files),
        proxy_headers=bool(layers.get("proxy-headers")),
        forwarded_allow_ips=allow,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_ca=tls_ca,
        auto_tls=auto_tls,
        log_format=log_format,
        log_config=log_config,
        health_path=health_path,
    )


def _attach_tcp(text: str | None) -> str | None:
    """``--attach-tcp HOST:PORT`` (issue 14)."""
    if text is None:
        return None
    _host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"--attach-tcp {text}: expected HOST:PORT, e.g. 0.0.0.0:6458")
    return text


def _subcommand(name: str, argv: list[str]) -> int:
    """``vivace attach``, ``vivace inspect``, ``vivace mcp`` (issue 14)."""
    if name == "inspect":
        from runtime import inspector

        return inspector.main(argv)
    try:
        if name == "attach":
            from repl.attach import main as attach_main

            return attach_main(argv)
        from repl.mcp import main as mcp_main

        return mcp_main(argv)
    except ImportError as exc:
        _error(f"vivace {name} cannot start: {exc}")
        return 1


def _error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vivace`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["attach"], ["inspect"], ["mcp"]):  # issue 14
        return _subcommand(args[0], args[1:])
    try:
        options = parse_command(args)
    except SystemExit as exc:  # argparse: usage error, --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CliError as exc:
        _error(exc.message)
        return exc.code
    if options.env_files:  # before the app is imported; every child reads them again
        try:
            keys = envfile.load_env_files(options.env_files)
        except ConfigError as exc:
            _error(str(exc))
            return 1
        options = options._replace(env_keys=keys)
    try:
        app = load_app(options.target)
    except LoadError as exc:
        _error(str(exc))
        return 1
    console = None
    if options.repl != "off" or options.repl_commands or options.attach or options.attach_tcp:
        try:
            from repl import console_for
        except ImportError as exc:
            _error(f"The console cannot start: {exc}. Run without --repl/--repl-command/--dev.")
            return 1
        console = _with_attach(options, console_for(options))
    code = launch.run(app, options, console=console)
    if argv is None:  # the process's entry point: it ends without waiting for the app's threads
        code = launch.end_process(code)
    return code


def _with_attach(options: RunOptions, hook: Any) -> Any:
    """The console hook with the control socket around it (``repl.attach``, issue 14), imported
    when the hook runs, once the workers serve: not before the first fork (~4 ms of every start
    with a console)."""
    if not options.attach_enabled:
        return hook

    async def attached(host: Any, control: Any = None, *, url: str | None = None) -> int | None:
        from repl.attach import with_attach

        result: int | None = await with_attach(options, hook)(host, control, url=url)
        return result

    if getattr(hook, "opens_early", False):  # --dev --repl: it still opens while workers boot
        from repl.session import OpensEarly

        return OpensEarly(attached)
    return attached


__all__ = ["CliError", "build_parser", "main", "parse_command", "version_text"]
