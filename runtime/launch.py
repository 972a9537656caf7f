"""The composition root: from validated ``RunOptions`` to a serving process.

``run(app, options, console=...)`` is shared by the command line and ``app.run()``: it resolves the
run's ``Settings`` once (runtime/settings.py), applies them to the app's config and hands over to
the single-process server or to the worker manager. ``run_app`` is what
``App.run(...)`` calls: it validates the Sanic-style keyword arguments (cli.md section 5), finds how
worker processes can import the app again, and runs.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from runtime import log
from runtime.appref import AppRef
from runtime.exceptions import ConfigError, LoadError
from runtime.hosting import Hosted
from runtime.options import RunOptions
from runtime.settings import Settings

if TYPE_CHECKING:
    from runtime.app import App

Console = Callable[..., Awaitable[Any]]

SINGLE_PROCESS_ERROR = "Single process cannot be run with multiple workers or auto-reload"
FAST_WORKERS_ERROR = "You cannot use both fast=True and workers=X"


def available_cpus() -> int:
    """CPUs this process may run on (``--fast``): the affinity mask where there is one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_reload_dirs(dirs: Iterable[str]) -> list[str]:
    """Absolute reload directories; a missing one is logged (reload.md 1) and still kept."""
    result: list[str] = []
    for directory in dirs:
        if not Path(directory).is_dir():
            log.reload_logger.warning("Directory %s could not be located", directory)
        result.append(os.path.abspath(directory))
    return result


def run(app: Hosted, options: RunOptions, *, console: Console | None = None) -> int:
    """Serve ``app`` as ``options`` say; returns the process exit code (cli.md section 7).

    The run's :class:`~runtime.settings.Settings` are resolved here, once, and go to the main
    process's parts and every child as they are. Logging was configured by the entry point
    (``runtime.cli.main`` or ``app.run()``).
    """
    try:
        options = resolve_tls(options)
        settings = Settings.resolve(options, app.config, forkable=app.forkable)
    except ConfigError as exc:
        log.error_logger.error("%s", exc)
        return 1
    app.config.update(settings.config_updates())
    try:
        if options.single_process:
            from runtime.server import serve_single
        else:
            from runtime.supervisor.main import serve_multiprocess
    except ImportError as exc:  # a part of vivace that is not installed or not built yet
        log.error_logger.error("vivace cannot serve: %s", exc)
        return 1
    if not options.single_process:
        if app.config.get("INSPECTOR"):  # issue 14: the HTTP inspector (runtime.inspector)
            from runtime.inspector import with_inspector

            console = with_inspector(console, app.config)
        # the manager reports its own failures and returns the exit code (cli.md section 7)
        return serve_multiprocess(app, options, settings, console=console)
    context = None
    if options.tls_cert is not None and options.tls_key is not None:
        from runtime.tls import server_context

        context = server_context(options.tls_cert, options.tls_key, options.tls_ca)
    try:
        return serve_single(
            app,
            ssl=context,
            health_path=options.health_path,
            host=options.host,
            port=options.port,
            unix=options.unix,
            debug=options.debug,
            access_log=options.effective_access_log,
            motd=options.motd,
            backlog=options.backlog,
            console=console,
            configure_logging=False,
        )
    except OSError as exc:  # the server reports bind errors itself; this is the safety net
        log.error_logger.error("Cannot serve on %s: %s", options.url, exc.strerror or exc)
        return 1
    except Exception as exc:  # a start-up listener raised: it was logged with its traceback
        log.error_logger.error("Start-up failed: %s: %s", type(exc).__name__, exc)
        return 1


def end_process(code: int) -> int:
    """The ``vivace`` command's last step, once the server has stopped (workers, listeners, sockets
    all done): returns ``code`` for the usual exit, or, when the app left non-daemon threads
    running (the main process imported it too: an SDK's poller started at import time, a
    ``threading.Timer``), ends the process now with ``code`` instead of letting the interpreter
    wait for them, forever for a poller (docs/workers.md, "Signals and exit codes"). It logs a
    warning naming them and still runs the ``atexit`` handlers (log flush, the console's terminal
    modes) and flushes the standard streams."""
    import threading

    current = threading.current_thread()
    if all(t.daemon or t is current for t in threading.enumerate()):
        return code  # the usual case: decided without importing anything
    from runtime.supervisor.worker import exit_leaving_threads, threads_left

    left = threads_left()
    if left:
        exit_leaving_threads(code, left, "The main process", run_atexit=True)
    return code


def warn_threads_left() -> None:
    """``app.run()`` returned: the script owns the process (its code after ``app.run()`` still
    runs), so vivace does not end it; it only says which of the app's non-daemon threads the
    interpreter will wait for when the script ends."""
    import threading

    current = threading.current_thread()
    if all(t.daemon or t is current for t in threading.enumerate()):
        return
    from runtime.supervisor.worker import threads_left

    left = threads_left(0.0, stop_executors=False)
    if left:
        log.logger.warning(
            "The server stopped, but %d non-daemon thread(s) still run: %s. The script will wait "
            "for them when it ends; make them daemon threads (daemon=True) or stop them in a "
            "main_process_stop listener.",
            len(left),
            ", ".join(repr(t.name) for t in left),
        )


def resolve_tls(options: RunOptions) -> RunOptions:
    """``--auto-tls``: the local development certificate, made once and reused (how to trust it
    is printed when it is made); explicit files are checked. ``ConfigError`` when they cannot
    serve."""
    if not options.auto_tls and options.tls_cert is None and options.tls_key is None:
        return options  # no TLS: runtime.tls (and ssl's helpers) stay unimported
    from runtime import tls

    if options.auto_tls:
        made = tls.auto_tls()
        if made.created:
            log.logger.warning("%s", tls.trust_instructions(made))
        else:
            log.logger.debug("--auto-tls: reusing %s (CA %s)", made.cert, made.ca)
        return options._replace(tls_cert=made.cert, tls_key=made.key)
    if options.tls_cert is not None or options.tls_key is not None:
        tls.check_files(options.tls_cert, options.tls_key, options.tls_ca)
    return options


# --- app.run() ---------------------------------------------------------------------------------


def _in_runtime(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__")
    return isinstance(name, str) and (name == "runtime" or name.startswith("runtime."))


def _ref_from_globals(namespace: Mapping[str, Any], attr: str) -> AppRef | None:
    cwd = os.getcwd()
    name = namespace.get("__name__")
    if name == "__main__" or name == "__mp_main__":
        spec = namespace.get("__spec__")
        spec_name = getattr(spec, "name", None)
        if isinstance(spec_name, str) and spec_name and name == "__main__":
            return AppRef(module=spec_name, attr=attr, cwd=cwd)  # python -m pkg.module
        file = namespace.get("__file__")
        if isinstance(file, str) and file:
            return AppRef(path=os.path.abspath(file), attr=attr, cwd=cwd)
        return None
    if isinstance(name, str) and name:
        return AppRef(module=name, attr=attr, cwd=cwd)
    return None


def find_app_ref(app: object, frame: FrameType | None = None) -> AppRef | None:
    """How another process can import ``app`` again: the module-level variable that holds it.

    Looks at the calling frames first (the script that called ``app.run()``), then every loaded
    module. ``None`` when the app is not bound to a module-level name anywhere.
    """
    current: FrameType | None = frame if frame is not None else sys._getframe(1)
    while current is not None:
        if not _in_runtime(current):
            for attr, value in list(current.f_globals.items()):
                if value is app and not attr.startswith("__"):
                    ref = _ref_from_globals(current.f_globals, attr)
                    if ref is not None:
                        return ref
        current = current.f_back
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if value is app and not attr.startswith("__"):
                ref = _ref_from_globals(namespace, attr)
                if ref is not None:
                    return ref
    return None


def _not_supported(what: str, instead: str = "") -> NotImplementedError:
    message = f"app.run({what}) is not supported yet by vivace"
    return NotImplementedError(f"{message}; {instead}" if instead else message)


def options_from_run_args(
    app: object,
    host: str | None = None,
    port: int | None = None,
    *,
    dev: bool = False,
    debug: bool = False,
    auto_reload: bool | None = None,
    version: int | str | tuple[int, ...] = 1,
    ssl: object = None,
    sock: object = None,
    workers: int = 1,
    protocol: object = None,
    backlog: int = 100,
    register_sys_signals: bool = True,
    access_log: bool | None = None,
    unix: str | None = None,
    reload_dir: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
    noisy_exceptions: bool | None = None,
    motd: bool = True,
    fast: bool = False,
    verbosity: int = 0,
    motd_display: Mapping[str, str] | None = None,
    auto_tls: bool = False,
    single_process: bool = False,
    coffee: bool = False,
    **unexpected: Any,
) -> RunOptions:
    """Validate ``app.run(...)`` arguments (cli.md sections 4 and 5) into ``RunOptions``."""
    if "loop" in unexpected:
        raise TypeError(
            "app.run() does not take loop=: vivace creates the event loop of every worker. To "
            "serve on a loop you own, run the app under an ASGI server (every App is an ASGI app)."
        )
    if unexpected:
        names = ", ".join(sorted(unexpected))
        raise TypeError(f"app.run() got unexpected keyword argument(s): {names}")
    if fast and workers != 1:
        raise RuntimeError(FAST_WORKERS_ERROR)
    tls_files = _ssl_argument(ssl)
    if sock is not None:
        raise _not_supported("sock=...")
    if protocol is not None:
        raise _not_supported("protocol=...")
    versions = version if isinstance(version, tuple) else (version,)
    if any(str(v) != "1" for v in versions):
        raise _not_supported(f"version={version!r}", "it serves HTTP/1.1 only (version=1)")
    if not register_sys_signals:
        raise _not_supported("register_sys_signals=False")
    if motd_display is not None:
        raise _not_supported("motd_display=...")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1, not {workers!r}")
    if port is not None and not (isinstance(port, int) and 0 <= port <= 65535):
        raise ValueError(f"port must be a number from 0 to 65535, not {port!r}")
    if dev:
        debug = True
        auto_reload = True
    dirs: list[str] = []
    if reload_dir is not None:
        given = reload_dir if isinstance(reload_dir, list) else [reload_dir]
        dirs = check_reload_dirs(os.fspath(d) for d in given)
        auto_reload = True
    reload = bool(auto_reload)
    if single_process and (reload or workers > 1):
        raise RuntimeError(SINGLE_PROCESS_ERROR)
    if fast:
        workers = available_cpus()
    ref = find_app_ref(app)
    if ref is None:
        if not single_process:
            raise RuntimeError(
                "app.run() starts worker processes that import your app again, so the App must be "
                "created at module level (app = App(...)) and app.run() called under "
                "'if __name__ == \"__main__\":'. Or use app.run(single_process=True)."
            )
        ref = AppRef(cwd=os.getcwd())
    return RunOptions(
        target=ref,
        host=host or "127.0.0.1",
        port=8000 if port is None else port,
        unix=unix,
        workers=workers,
        single_process=single_process,
        debug=debug,
        access_log=access_log,
        noisy_exceptions=noisy_exceptions,
        auto_reload=reload,
        reload_dirs=tuple(dirs),
        motd=motd,
        verbosity=verbosity,
        backlog=backlog,
        tls_cert=tls_files[0],
        tls_key=tls_files[1],
        auto_tls=bool(auto_tls),
    )


def _ssl_argument(ssl: object) -> tuple[str | None, str | None]:
    """``app.run(ssl=...)``: ``{"cert": ..., "key": ...}`` or a directory holding
    ``fullchain.pem`` and ``privkey.pem`` (Sanic's forms). An ``SSLContext`` cannot reach the
    worker processes: pass the files."""
    if ssl is None:
        return None, None
    if isinstance(ssl, (str, os.PathLike)):
        directory = os.fspath(ssl)
        return (
            os.path.abspath(os.path.join(directory, "fullchain.pem")),
            os.path.abspath(os.path.join(directory, "privkey.pem")),
        )
    if isinstance(ssl, Mapping) and "cert" in ssl and "key" in ssl:
        return os.path.abspath(str(ssl["cert"])), os.path.abspath(str(ssl["key"]))
    raise _not_supported(
        "ssl=" + type(ssl).__name__,
        "pass ssl={'cert': 'fullchain.pem', 'key': 'privkey.pem'} or a directory holding them "
        "(every worker builds its own SSLContext from the files)",
    )


RUN_DURING_IMPORT = (
    'app.run() ran while vivace was importing {module}: put it under `if __name__ == "__main__":` '
    "(vivace imports your module again in every worker process, and the vivace command imports it "
    "to find the app, so a module-level app.run() would start another server there)"
)


def _importing_module(frame: FrameType | None) -> str | None:
    """The module whose import is (directly or through its functions) calling ``app.run()``.

    Module-level code of a module whose ``__name__`` is not ``"__main__"`` runs because the module
    is being imported: by the vivace command, by a worker re-running the script as
    ``__mp_main__``, or by an ``import``. The innermost such frame outside vivace names it.
    """
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if (
            frame.f_code.co_name == "<module>"
            and not _in_runtime(frame)
            and isinstance(name, str)
            and name != "__main__"
        ):
            if name == "__mp_main__":
                file = frame.f_globals.get("__file__")
                return os.path.basename(file) if isinstance(file, str) else "your script"
            return name
        frame = frame.f_back
    return None


UNGUARDED_RUN = (
    'app.run() is not under `if __name__ == "__main__":` in {script}: every worker process runs '
    "{script} again (as __mp_main__) and would start another server there; put it under that if "
    "(or use app.run(single_process=True))"
)


def _unguarded_main_run(frame: FrameType | None) -> str | None:
    """The script's name when ``app.run()`` is a top-level statement of ``__main__`` (no ``if``).

    Conservative: only a call that is not inside any compound statement counts.
    """
    while frame is not None and _in_runtime(frame):
        frame = frame.f_back
    if frame is None or frame.f_code.co_name != "<module>":
        return None
    if frame.f_globals.get("__name__") != "__main__":
        return None
    file = frame.f_globals.get("__file__")
    if not isinstance(file, str) or not os.path.isfile(file):
        return None
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"), file)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    line = frame.f_lineno
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            simple = isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign))
            return os.path.basename(file) if simple else None
    return None


def run_app(app: App, *args: Any, **kwargs: Any) -> int:
    """What ``App.run(...)`` calls: validate, build ``RunOptions`` and serve.

    Returns 0 after a normal shutdown; any other exit code ends the script with ``SystemExit``.
    Raises ``LoadError`` when called by module-level code of a module being imported.
    """
    importing = _importing_module(sys._getframe(1))
    if importing is not None:
        raise LoadError(RUN_DURING_IMPORT.format(module=importing))
    options = options_from_run_args(app, *args, **kwargs)
    script = None if options.single_process else _unguarded_main_run(sys._getframe(1))
    if script is not None:
        raise LoadError(UNGUARDED_RUN.format(script=script))
    log.configure(debug=options.debug, verbosity=options.verbosity)
    code = run(app, options)
    warn_threads_left()
    if code != 0:
        raise SystemExit(code)
    return code


__all__ = [
    "FAST_WORKERS_ERROR",
    "SINGLE_PROCESS_ERROR",
    "available_cpus",
    "end_process",
    "find_app_ref",
    "options_from_run_args",
    "run",
    "run_app",
]
