"""The entry point of every child process (server workers and custom processes).

A child gets its identity and settings in a :class:`~runtime.supervisor.messages.WorkerSpec`. It
first detaches from the terminal (own session, so a terminal Ctrl+C reaches only the main process),
asks the kernel to kill it when its parent dies, points stdout/stderr at the pipe the main process
reads, and only then imports the app (so even import-time output is prefixed).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import inspect
import io
import itertools
import logging
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from runtime.server import Server

from runtime import envfile
from runtime import log as vlog
from runtime.compat import assert_never
from runtime.exceptions import ConfigError, LoadError
from runtime.hosting import Hosted, run_fork_hooks
from runtime.loader import load_app
from runtime.supervisor.messages import (
    Ack,
    CallRequest,
    CallResult,
    ChildMessage,
    EarlyExit,
    Handled,
    Heartbeat,
    ParentMessage,
    Request,
    Serving,
    WorkerSpec,
)
from runtime.supervisor.multiplexer import Multiplexer, set_current
from runtime.supervisor.published import TableReader

logger = logging.getLogger("vivace.supervisor")

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int | None) -> None:
    """Have the kernel SIGKILL this process when its parent dies; exit now if it already has.

    ``parent`` is the pid the child was forked from when known (the main process): an orphan is
    re-parented to init or to a subreaper, so only comparing with the real parent is reliable.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # preloaded by the main process before it forks (preload_for_forks)

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    now = os.getppid()
    if (now != parent) if parent is not None else (now == 1):
        os._exit(1)  # the parent died before prctl took effect


def _redirect_output(sock: Any) -> None:
    fd = sock.fileno()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sock.close()
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True
    )


REQUEST_TIMEOUT = 10.0  # seconds a request from app.m waits for the manager's Handled


class Channel:
    """The child's end of the control pipe: locked sends, a reader thread; EOF: main is gone.

    :meth:`request` is a round trip: it sends a :data:`Request` with a fresh ``call_id`` and reads
    the manager's ``Handled`` for it from the reply pipe itself (one request at a time; no thread
    in between, which would add two thread switches to every write).
    """

    def __init__(self, spec: WorkerSpec) -> None:
        self._conn = spec.control
        self._replies = spec.replies
        self._poller = select.poll()  # made once: Connection.poll builds a selector per call
        if spec.replies is not None:
            self._poller.register(spec.replies.fileno(), select.POLLIN)
        self._main_pid = spec.main_pid
        self._lock = threading.Lock()
        self._requesting = threading.Lock()
        self._ids = itertools.count(1)
        self._reading = False
        self.on_message: Callable[[ParentMessage], None] = lambda message: None

    def send(self, message: ChildMessage) -> None:
        with self._lock:
            try:
                self._conn.send(message)
            except (OSError, EOFError):
                os._exit(1)  # the main process is gone

    def request(self, message: Request, timeout: float = REQUEST_TIMEOUT) -> None:
        """Send ``message`` and return once the manager has handled it and published the table."""
        replies = self._replies
        if replies is None:
            raise RuntimeError("only a server worker's requests are answered")
        deadline = time.monotonic() + timeout
        with self._requesting:
            call_id = next(self._ids)
            self.send(message._replace(call_id=call_id))
            while True:
                remaining = deadline - time.monotonic()
                try:
                    ready = remaining > 0 and bool(self._poller.poll(remaining * 1000))
                    answer: Handled | None = replies.recv() if ready else None
                except (EOFError, OSError):
                    os._exit(1)  # the main process is gone
                if answer is None:
                    raise TimeoutError(
                        f"{type(message).__name__}: the manager (main process {self._main_pid}) "
                        f"did not confirm it within {timeout:g} s; it may still be applied later"
                    )
                if answer.call_id == call_id:
                    return
                # the late answer of a request that timed out: skip it

    def start_reader(self) -> None:
        with self._lock:
            if self._reading:
                return
            self._reading = True
        threading.Thread(target=self._read, name="vivace-control", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                os._exit(1)  # no child outlives the main process
            self.on_message(message)


@functools.cache
def _library_prefixes() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    # "scripts": the ``vivace`` console script is the main module of a ``vivace app:app`` run; it
    # is an entry point, not user code for workers to run again
    keys = ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
    return tuple({os.path.join(paths[k], "") for k in keys})


def _is_user_file(path: str) -> bool:
    """Not part of the standard library, site-packages, an entry point or vivace itself.

    Libraries are told by where they are (this interpreter's site-packages), never by being
    beside vivace: an installed vivace shares its site-packages with FastAPI & co., which
    workers must not import again.
    """
    path = os.path.abspath(path)
    if path.startswith(_VIVACE_PACKAGES):  # python -m runtime: decided without sysconfig
        return False
    return not path.startswith(_library_prefixes())


_VIVACE_PACKAGES = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(vlog.__file__))), name, "")
    for name in ("runtime", "repl")
)


_NEVER_USER_PACKAGES = sys.stdlib_module_names | {"runtime", "repl"}


def user_modules() -> tuple[str, ...]:
    """The user modules loaded in this process (outside the standard library, site-packages and
    vivace). Called in the main process before each fork: walking ``sys.modules`` in the child
    would copy every page holding a module object (measured 1-4 ms per worker start)."""
    skip = _NEVER_USER_PACKAGES  # by name first: most modules are decided without their path
    names = []
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.partition(".")[0] in skip:
            continue
        path = getattr(module, "__file__", None)
        if path and _is_user_file(path):
            names.append(name)
    return tuple(names)


def _forget_main_process(modules: tuple[str, ...]) -> None:
    """In a child forked from the main process: drop the main's loop and its user ``modules``,
    so that loading the app imports them fresh: module-level code runs in each worker, exactly as
    with the fork server or spawn."""
    asyncio.events._set_running_loop(None)
    run_fork_hooks()
    for name in modules:
        sys.modules.pop(name, None)


def user_main_ref() -> tuple[str, str] | None:
    """How to re-run the main process's ``__main__`` in a child, if it is user code."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not _is_user_file(path):
        return None
    name = getattr(getattr(main, "__spec__", None), "name", None)
    return ("name", name) if name else ("path", os.path.abspath(path))


def _run_user_main(ref: tuple[str, str]) -> None:
    """Run the user's main script as ``__mp_main__`` (its ``if __name__ == "__main__"`` block does
    not run) and alias it as ``__main__``, as ``multiprocessing`` does for spawned children; done
    here, after the output is redirected, so that its output is prefixed too."""
    import runpy

    kind, where = ref
    module = types.ModuleType("__mp_main__")
    sys.modules["__mp_main__"] = sys.modules["__main__"] = module
    try:
        if kind == "name":
            content = runpy.run_module(where, run_name="__mp_main__", alter_sys=True)
        else:
            content = runpy.run_path(where, run_name="__mp_main__")
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    module.__dict__.update(content)


_channel: Channel | None = None


def send_to_manager(message: ChildMessage) -> None:
    """Send a typed message to the manager from any child process (e.g. a reloader's
    ``RestartRequest(changed=(...))``). Raises ``RuntimeError`` outside a vivace child."""
    if _channel is None:
        raise RuntimeError("send_to_manager() works only inside a process started by the manager")
    _channel.send(message)


def child_main(spec: WorkerSpec) -> None:
    """``multiprocessing`` target of every child."""
    global _channel
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # started with them blocked (spawner.stop_signals_blocked): one sent meanwhile acts now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        os.setsid()
    except OSError:  # pragma: no cover - already a session leader
        pass
    _die_with_parent(spec.main_pid if spec.forked_from_main else None)
    settings = spec.settings
    json_stream = None
    if settings.log_format == "json" and settings.log_config is None and spec.kind != "custom":
        # one JSON object per line, straight to the main process's stdout (not through the
        # pipe, which puts the process name in front of every line)
        json_stream = os.fdopen(os.dup(1), "w", buffering=1)
    _redirect_output(spec.output)
    os.environ["VIVACE_WORKER_NAME"] = spec.name
    if settings.env_files:  # read again: a reload after the file changed sees the new values
        try:
            envfile.reload_env_files(settings.env_files, settings.env_keys)
        except ConfigError as exc:
            print(f"Error: {exc}", file=sys.stderr, flush=True)
            if spec.kind == "server":
                Channel(spec).send(EarlyExit(str(exc)))
            sys.exit(1)
    if spec.forked_from_main:
        _forget_main_process(spec.user_modules)
    if spec.main_ref is not None:
        _run_user_main(spec.main_ref)
    channel = _channel = Channel(spec)
    if spec.kind != "custom":  # logging, once, from the run's settings (custom code: its own)
        try:
            vlog.configure(
                debug=settings.debug,
                verbosity=settings.verbosity,
                log_format=settings.log_format,
                log_config=settings.log_config,
                stream=json_stream,
            )
        except ConfigError as exc:  # checked by the main process; the file changed since
            print(f"Error: {exc}", file=sys.stderr, flush=True)
    if spec.kind == "custom":
        channel.start_reader()
        _exit(spec, lambda: _run_custom(spec))
    if spec.kind == "reloader":
        channel.start_reader()  # EOF on the pipe: the main process is gone, so is the reloader
        _exit(spec, lambda: _run_reloader(spec))
    _exit(spec, lambda: _run_server(spec, channel))


def _exit(spec: WorkerSpec, run: Callable[[], int]) -> NoReturn:
    """Run the child's part, then end the process with its exit code, as ``multiprocessing`` would
    (an exception is printed and exits 1), except that it does not wait for the non-daemon threads
    the app left running (:func:`exit_leaving_threads`): the part is over, its teardown done."""
    try:
        code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr, flush=True)
    except BaseException:
        print(f"Process {spec.name}:", file=sys.stderr)
        traceback.print_exc()
        code = 1
    left = threads_left()
    if not left:
        sys.exit(code)  # the usual way out: nothing would wait
    import multiprocessing

    # a spawned child ends as a script does (atexit handlers run); a forked one never runs them
    spawned = multiprocessing.get_start_method(allow_none=True) == "spawn"
    exit_leaving_threads(code, left, f"{spec.name} [{os.getpid()}]", run_atexit=spawned)


#: seconds the threads left at exit get to end by themselves (an executor's idle threads, woken)
THREAD_GRACE = 0.2


def threads_left(
    grace: float = THREAD_GRACE, *, stop_executors: bool = True
) -> list[threading.Thread]:
    """The non-daemon threads (other than this one) still running after ``grace`` seconds; the
    interpreter would wait for them at exit, forever if one never ends (an SDK's poller started at
    import time, a ``threading.Timer``). With ``stop_executors`` the idle ``concurrent.futures``
    threads (an event loop's default executor) are told to end first, as the interpreter does at
    exit (no executor can be used afterwards); without, they are not counted and not waited for
    (the interpreter ends them at exit)."""
    current = threading.current_thread()
    waiting = [t for t in threading.enumerate() if t is not current and not t.daemon]
    if not waiting:
        return []
    executors = sys.modules.get("concurrent.futures.thread")
    queues = getattr(executors, "_threads_queues", None)
    lock = getattr(executors, "_global_shutdown_lock", None)
    if queues is not None and lock is not None:
        if stop_executors:
            with lock:
                executors.__dict__["_shutdown"] = True  # what concurrent.futures does at exit
            for queue in list(queues.values()):
                queue.put(None)
        else:
            pool = set(queues)
            waiting = [t for t in waiting if t not in pool]
    deadline = time.monotonic() + grace
    for thread in waiting:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in waiting if t.is_alive()]


def exit_leaving_threads(
    code: int, left: list[threading.Thread], where: str, *, run_atexit: bool
) -> NoReturn:
    """End this process now with ``code``, not waiting for the threads ``left``: log one warning
    naming them, run the process's exit work (multiprocessing's finalizers; the ``atexit``
    handlers when ``run_atexit``: logging's flush, the console's terminal modes, the app's own),
    flush the log handlers and the standard streams, then ``os._exit``."""
    logger.warning(
        "Not waiting for %d non-daemon thread(s) left running by the app: %s. %s exits now "
        "(make them daemon threads, daemon=True, or stop them in an after_server_stop or "
        "main_process_stop listener).",
        len(left),
        ", ".join(repr(t.name) for t in left),
        where,
    )
    steps: list[Callable[[], object] | None] = [
        getattr(sys.modules.get("multiprocessing.util"), "_exit_function", None),
        getattr(atexit, "_run_exitfuncs", None) if run_atexit else None,
        logging.shutdown,
    ]
    for step in steps:
        if step is not None:
            try:
                step()
            except Exception:  # pragma: no cover - exit work must not keep the process alive
                traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code)


def _run_reloader(spec: WorkerSpec) -> int:
    """``Vivace-Reloader-0``: watch the app's files and reload dirs, ask the manager to reload."""
    from runtime.supervisor.reloader import reloader_main

    assert spec.app_ref is not None
    dirs = [str(d) for d in spec.kwargs.get("reload_dirs", ())]
    since = spec.kwargs.get("since")
    settings = spec.settings
    return reloader_main(
        spec.app_ref,
        send=send_to_manager,
        reload_dirs=dirs,
        since=float(since) if since is not None else None,
        include=settings.reload_include,
        exclude=settings.reload_exclude,
        extra_files=settings.env_files,  # a change of an --env-file restarts the workers
    )


def _set_up_django() -> None:
    """Run ``django.setup()`` in a custom process of an app the main process set Django up for
    (it says so in ``runtime.hosting.DJANGO_SETUP_ENV``). Server workers load the app, whose
    ``asgi.py``/``wsgi.py`` sets Django up; a custom process only unpickles its function, in a
    process started from the fork server (or spawned), so without this the ORM raises
    ``AppRegistryNotReady``. Done before the unpickling, which imports the function's module
    (often ``from .models import ...`` at its top). Other apps never import Django here."""
    from runtime.hosting import DJANGO_SETUP_ENV

    settings_module = os.environ.get(DJANGO_SETUP_ENV)
    if not settings_module:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import importlib

    importlib.import_module("django").setup()


def _run_custom(spec: WorkerSpec) -> int:
    assert spec.func is not None
    _set_up_django()
    func = pickle.loads(spec.func)
    kwargs = dict(spec.kwargs)
    if spec.restarted:
        params = inspect.signature(func).parameters.values()
        if any(p.name == "config" or p.kind is p.VAR_KEYWORD for p in params):
            kwargs["config"] = {"RELOADED_FILES": ",".join(spec.reloaded_files)}
    func(**kwargs)
    return 0


def preload_for_forks() -> None:
    """In the main process, before it forks workers: import what every worker needs at once (its
    event loop, uvloop; ctypes for the parent-death signal), so that each fork inherits them
    rather than importing them itself, copying every page the import touches (measured: 4-9 ms
    less to the first 200 with ``-w 1`` and ``-w 2``, 24 -> 16 ms per restart)."""
    import ctypes  # noqa: F401

    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


def _run_server(spec: WorkerSpec, channel: Channel) -> int:
    stop_requested = False
    server: Server | None = None
    acked = False
    main_task: asyncio.Task[int] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True
        if server is not None:
            server.stop()
        if not acked and main_task is not None:
            # still in before_server_start: nothing to drain, abandon the start-up at once;
            # decided again on the loop: a start-up that completed (acked) meanwhile is stopped
            # the normal way, so that its teardown (an ASGI app's lifespan shut-down, the
            # after_server_stop listeners) runs. Cancelled there, the server left without it.
            task = main_task

            def abandon() -> None:
                if not acked:
                    task.cancel()

            task.get_loop().call_soon_threadsafe(abandon)

    def ack() -> None:
        nonlocal acked
        acked = True
        channel.send(Ack())

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    settings = spec.settings
    try:
        assert spec.app_ref is not None
        from runtime.server import Server

        app = load_app(spec.app_ref)
        app.config.update(settings.config_updates())
        app.config.RELOADED_FILES = ",".join(spec.reloaded_files)  # what user code reads
        app.install_shared(spec.shared_ctx)
        loop = _new_loop()
        asyncio.set_event_loop(loop)
        assert spec.table is not None
        table = TableReader(spec.table)
        m = Multiplexer(spec.name, channel.request, table.read)
        app.attach_process(multiplexer=m)
        set_current(m)
        context = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            from runtime.tls import server_context

            context = server_context(settings.tls_cert, settings.tls_key, settings.tls_ca)
        server = Server(
            app,
            list(spec.sockets),
            on_ack=ack,
            ssl=context,
            health_path=settings.health_path,
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) or stop_requested:
            return 0
        if isinstance(exc, LoadError):  # its message holds the user's own traceback already
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
        channel.send(EarlyExit(f"{type(exc).__name__}: {exc}"))
        return 1

    def on_message(message: ParentMessage) -> None:
        match message:
            case CallRequest():
                loop.call_soon_threadsafe(lambda: loop.create_task(_answer(app, message, channel)))
            case _:
                assert_never(message)

    channel.on_message = on_message
    channel.start_reader()
    if stop_requested:
        return 0
    interval = settings.heartbeat_interval
    main_task = loop.create_task(_serve(server, channel, interval))
    try:
        return loop.run_until_complete(main_task)
    except asyncio.CancelledError:
        return 0


async def _serve(server: Any, channel: Channel, interval: float) -> int:
    serving = False

    async def heartbeat() -> None:
        while True:
            channel.send(Heartbeat())
            await asyncio.sleep(interval)

    async def mark_serving() -> None:
        nonlocal serving
        await server.started.wait()
        serving = True
        channel.send(Serving(True))

    beat = asyncio.create_task(heartbeat())
    marker = asyncio.create_task(mark_serving())
    try:
        await server.run()
    except Exception as exc:
        if not serving:
            if not _logged_by_listeners(exc):  # a failing listener's traceback is already out
                traceback.print_exc()
            channel.send(EarlyExit(f"{type(exc).__name__}: {exc}"))
            return 1
        raise
    finally:
        beat.cancel()
        marker.cancel()
    channel.send(Serving(False))
    return 0


def _logged_by_listeners(exc: BaseException) -> bool:
    """True when ``exc`` came out of a listener: ``runtime.lifecycle.run_listeners`` has logged it
    with its traceback before re-raising it (lifecycle.py, "Errors")."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        code = frame.f_code
        if code.co_name == "run_listeners" and code.co_filename.endswith(
            os.path.join("runtime", "lifecycle.py")
        ):
            return True
    return False


async def _answer(app: Hosted, request: CallRequest, channel: Channel) -> None:
    try:
        if request.expr is not None:
            namespace: dict[str, Any] = {"app": app.target, "asyncio": asyncio, "os": os}
            result = eval(request.expr, namespace)
        else:
            assert request.fn is not None
            result = pickle.loads(request.fn)(*request.args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        channel.send(CallResult(request.call_id, ok=False, error=f"{type(exc).__name__}: {exc}"))
        return
    try:
        pickle.dumps(result)
    except Exception:
        result = repr(result)
    channel.send(CallResult(request.call_id, ok=True, value=result))
