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
from typing import NoReturn

from runtime import __version__, launch, log
from runtime.exceptions import LoadError
from runtime.hosting import INTERFACES
from runtime.loader import load_app, parse_target
from runtime.options import ReplMode, RunOptions

DESCRIPTION = """\
Serve a vivace app.

TARGET is where your app lives:
  pkg.module:app             the variable 'app' of module pkg.module (pkg.module.app works too)
  pkg.module                 the module's variable named 'app'
  pkg.module:create_app()    call a factory (or: pkg.module:create_app --factory)
  ./some/dir                 serve a directory's files (or: --simple DIR)
"""

EPILOG = """\
examples:
  vivace app:app                    multi-process (1 worker) on http://127.0.0.1:8000
  vivace app:app -w 4               four workers
  vivace app:app --single-process   one process, no manager
  vivace app:app --dev              debug + auto-reload + ENTER opens the console
  vivace ./public                   serve the files of ./public
"""

TLS_ERROR = (
    "TLS certificates must be specified by either of:\n"
    "  --cert certdir/fullchain.pem --key certdir/privkey.pem\n"
    "  --tls certdir  (equivalent to the above)"
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
        "--factory", action="store_true", help="TARGET is a function that returns the app"
    )
    kind.add_argument(
        "-s", "--simple", action="store_true", help="TARGET is a directory of files to serve"
    )
    app.add_argument(
        "--interface",
        choices=INTERFACES,
        default="auto",
        help="what TARGET is: a vivace App, an ASGI 3 or ASGI 2 app, or a WSGI app "
        "(default: auto, detected)",
    )
    app.add_argument(
        "--root-path",
        default="",
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
        default=[],
        metavar="CODE",
        help="run CODE in the console against the live server, then stop (repeatable)",
    )

    sock = parser.add_argument_group("socket")
    sock.add_argument("-H", "--host", default="127.0.0.1", help="bind address [127.0.0.1]")
    sock.add_argument("-p", "--port", type=_port, default=None, help="port [8000]")
    sock.add_argument("-u", "--unix", metavar="PATH", help="listen on a unix socket instead")

    tls = parser.add_argument_group("TLS and protocol (not supported yet)")
    tls.add_argument("--cert", metavar="FILE", help="certificate chain (PEM)")
    tls.add_argument("--key", metavar="FILE", help="private key (PEM)")
    tls.add_argument("--tls", metavar="DIR", action="append", help="fullchain.pem + privkey.pem")
    tls.add_argument("--tls-strict-host", dest="tlshost", action="store_true")
    tls.add_argument("--http", dest="http", type=int, choices=(1, 3), action="append")
    tls.add_argument("-1", dest="http", action="append_const", const=1, help="serve HTTP/1.1")
    tls.add_argument("-3", dest="http", action="append_const", const=3, help="serve HTTP/3")

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
    how.add_argument("--fast", action="store_true", help="one worker per available CPU")
    how.add_argument(
        "--single-process",
        action="store_true",
        help="serve in this process: no manager, no workers",
    )
    _pair(workers, "access-logs", "access_log", "log every request", "never log requests")

    dev = parser.add_argument_group("development")
    dev.add_argument("--debug", action="store_true", help="debug mode (tracebacks, access logs)")
    dev.add_argument(
        "-r",
        "--reload",
        "--auto-reload",
        dest="auto_reload",
        action="store_true",
        help="restart the workers when a source file changes",
    )
    dev.add_argument(
        "-R",
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="also watch DIR (repeatable; implies --reload)",
    )
    dev.add_argument(
        "-d", "--dev", action="store_true", help="--debug --reload, and ENTER opens the console"
    )
    dev.add_argument("--auto-tls", action="store_true", help=argparse.SUPPRESS)

    out = parser.add_argument_group("output")
    _pair(out, "coffee", "coffee", "a different logo", "the usual logo")
    _pair(out, "motd", "motd", "start-up banner [on]", "no start-up banner")
    out.add_argument(
        "-v", "--verbosity", action="count", default=0, help="more debug output (repeatable: -vv)"
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
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return parser, args, unknown


def _check_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (
        bool(args.cert) != bool(args.key)
        or (args.tls and args.cert)
        or (args.tlshost and not args.tls and not args.cert)
    ):
        parser.print_usage(sys.stderr)
        raise CliError(TLS_ERROR)
    if args.cert or args.tls:
        raise CliError("TLS (--cert/--key/--tls) is not supported yet by vivace.")
    if args.auto_tls:
        raise CliError("--auto-tls is not supported yet by vivace.")
    if 3 in (args.http or []):
        raise CliError("HTTP/3 (--http 3, -3) is not supported yet by vivace; HTTP/1.1 is.")


def parse_command(argv: Sequence[str]) -> RunOptions:
    """Validated ``RunOptions`` for ``argv``; nothing is imported or started.

    Raises ``SystemExit`` for usage errors (2), ``--help`` and ``--version`` (0), and ``CliError``
    (1) for invalid combinations and targets that cannot be parsed.
    """
    argv = list(argv)
    if argv == ["-v"]:  # the legacy spelling of --version
        argv = ["--version"]
    if argv[:1] == ["inspect"]:
        raise CliError("vivace inspect is not supported yet (the inspector is not built).")
    parser, args, unknown = _parse(argv)
    if args.target is None:
        parser.error("the following arguments are required: TARGET (for example: vivace app:app)")
    _check_tls(parser, args)
    auto_reload = bool(args.auto_reload or args.dev or args.reload_dirs)
    if args.single_process and auto_reload:
        raise CliError(launch.SINGLE_PROCESS_ERROR)
    debug = bool(args.debug or args.dev)
    log.configure(debug=debug, verbosity=args.verbosity)
    repl: ReplMode = args.repl if args.repl is not None else ("enter" if args.dev else "off")
    namespace = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    try:
        target = parse_target(
            args.target,
            factory=args.factory,
            simple=args.simple,
            cwd=os.getcwd(),
            factory_args=tuple(unknown),
            namespace=namespace,
        )
    except LoadError as exc:
        raise CliError(str(exc)) from None
    if args.root_path and not args.root_path.startswith("/"):
        raise CliError(f"--root-path must start with '/', got {args.root_path!r}")
    target = target._replace(interface=args.interface, root_path=args.root_path.rstrip("/"))
    return RunOptions(
        target=target,
        host=args.host,
        port=8000 if args.port is None else args.port,
        unix=args.unix,
        workers=launch.available_cpus() if args.fast else (args.workers or 1),
        single_process=args.single_process,
        debug=debug,
        access_log=args.access_log,
        noisy_exceptions=args.noisy_exceptions,
        auto_reload=auto_reload,
        reload_dirs=tuple(launch.check_reload_dirs(args.reload_dirs)),
        motd=args.motd is not False,
        verbosity=args.verbosity,
        repl=repl,
        repl_commands=tuple(args.repl_commands),
    )


def _error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vivace`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        options = parse_command(args)
    except SystemExit as exc:  # argparse: usage error, --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CliError as exc:
        _error(exc.message)
        return exc.code
    try:
        app = load_app(options.target)
    except LoadError as exc:
        _error(str(exc))
        return 1
    console = None
    if options.repl != "off" or options.repl_commands:
        try:
            from repl import console_for
        except ImportError as exc:
            _error(f"The console cannot start: {exc}. Run without --repl/--repl-command/--dev.")
            return 1
        console = console_for(options)
    return launch.run(app, options, console=console)


__all__ = ["CliError", "build_parser", "main", "parse_command", "version_text"]
