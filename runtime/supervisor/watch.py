"""What the reloader watches, what it ignores, and how bursts of changes become one restart.

Three parts, each testable alone:

* :func:`build_watch_set` turns ``sys.modules`` and the reload directories into a :class:`WatchSet`:
  the source files of the app's own modules (under the working directory or the app's package, never
  the standard library, site-packages or vivace itself) and every directory given with ``-R``.
* :class:`ReloadFilter` is the ``watchfiles`` filter: it drops bytecode caches, VCS metadata and
  editor temporaries, then keeps only paths of the watch set.
* :class:`Batcher` is the pure timing rule (no clock of its own): the first change after a quiet
  period is released at once (lowest latency), changes that follow closely are held until the
  files have been quiet for ``quiet`` seconds and released together, so a burst of saves causes one
  or two restarts, never one per save.

:class:`ChangeStream` runs native ``watchfiles`` watchers (no polling) in threads and yields the
batches; it stops within one ``poll`` interval of ``stop_event`` being set.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import site
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from runtime.log import reload_logger

if TYPE_CHECKING:
    import watchfiles

__all__ = [
    "IGNORED_DIR_NAMES",
    "Batcher",
    "ChangeStream",
    "ReloadFilter",
    "WatchSet",
    "build_watch_set",
    "excluded_roots",
    "is_ignored",
    "module_source_files",
]

#: Directory names whose contents never trigger a reload.
IGNORED_DIR_NAMES: frozenset[str] = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        ".tox",
        ".nox",
        ".venv",
        ".idea",
        ".vscode",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "node_modules",
    }
)
_IGNORED_SUFFIXES = (
    ".pyc",
    ".pyo",
    ".pyd",
    ".swp",
    ".swo",
    ".swx",
    ".swn",
    "~",
    ".tmp",
    ".kate-swp",
    ".___jb_tmp___",
    ".___jb_old___",
    ".bak",
    ".orig",
)
_IGNORED_PREFIXES = (".#", ".~lock.", "flycheck_", ".goutputstream-")
_IGNORED_NAMES = frozenset({"4913", ".DS_Store", "Thumbs.db"})


def is_ignored(path: str) -> bool:
    """True for files the runtime, version control or an editor writes as a side effect.

    ``__pycache__``/``*.pyc`` (written by every restarted worker: watching them would loop),
    ``.git`` and friends, and editor temporaries: vim's ``*.swp`` and ``4913`` probe, ``*~``
    backups, Emacs ``.#lock`` and ``#autosave#`` files, JetBrains safe-write files.
    """
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    if any(part in IGNORED_DIR_NAMES for part in parts[:-1]):
        return True
    if name in IGNORED_DIR_NAMES or name in _IGNORED_NAMES:
        return True
    if name.startswith(_IGNORED_PREFIXES) or name.endswith(_IGNORED_SUFFIXES):
        return True
    return name.startswith("#") and name.endswith("#")


def excluded_roots() -> tuple[str, ...]:
    """Directories whose modules are never watched: stdlib, site-packages, vivace itself."""
    roots: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            roots.add(paths[key])
    try:
        roots.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenv's site module
        pass
    user_site = site.getusersitepackages()
    if isinstance(user_site, str):
        roots.add(user_site)
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # runtime/
    repl = importlib.util.find_spec("repl")
    if repl is not None and repl.origin:
        roots.add(os.path.dirname(repl.origin))
    return tuple(sorted({os.path.realpath(r) for r in roots}))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _source_of(file: str) -> str | None:
    """The regular file that backs a module's ``__file__`` (``.pyc`` mapped back to ``.py``)."""
    if file.endswith((".pyc", ".pyo")):
        try:
            file = importlib.util.source_from_cache(file)
        except ValueError:  # a legacy foo.pyc next to foo.py
            file = file[:-1]
    path = os.path.realpath(file)
    # not a regular file (zip import, frozen): its nearest existing parent
    while not os.path.isfile(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
        if os.path.isdir(path):
            return None
    return path


def module_source_files(
    modules: Mapping[str, ModuleType | None], roots: Iterable[str], exclude: Iterable[str]
) -> frozenset[str]:
    """Source files of the modules under one of ``roots`` and under none of ``exclude``."""
    roots = [os.path.realpath(r) for r in roots]
    exclude = [os.path.realpath(e) for e in exclude]
    files: set[str] = set()
    for module in list(modules.values()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or not file:
            continue
        source = _source_of(file)
        if source is None:
            continue
        if not any(_under(source, root) for root in roots):
            continue
        if any(_under(source, ex) for ex in exclude):
            continue
        if "site-packages" in source.split(os.sep) or "dist-packages" in source.split(os.sep):
            continue
        files.add(source)
    return frozenset(files)


@dataclass(frozen=True)
class WatchSet:
    """What one reloader watches.

    ``module_files`` are watched through their directories (``module_dirs``, not recursively) so
    that editors which save by writing a new file and renaming it keep being seen; ``.py`` files
    created in those directories count too, so a module imported by the next version of the code is
    covered. ``reload_dirs`` are watched recursively; ``missing_dirs`` were given but do not exist.
    """

    module_files: frozenset[str]
    reload_dirs: tuple[str, ...] = ()
    missing_dirs: tuple[str, ...] = ()
    module_dirs: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "module_dirs", frozenset(os.path.dirname(f) for f in self.module_files)
        )

    def recursive_roots(self) -> tuple[str, ...]:
        """Reload dirs with nested duplicates removed."""
        kept: list[str] = []
        for d in sorted(self.reload_dirs, key=len):
            if not any(_under(d, k) for k in kept):
                kept.append(d)
        return tuple(kept)

    def flat_roots(self) -> tuple[str, ...]:
        """Module directories not already covered by a recursive reload dir."""
        recursive = self.recursive_roots()
        return tuple(
            sorted(d for d in self.module_dirs if not any(_under(d, r) for r in recursive))
        )

    def accepts(self, path: str) -> bool:
        """Whether a change of ``path`` (absolute, real) should restart the workers."""
        if is_ignored(path):
            return False
        if path in self.module_files:
            return True
        if path.endswith(".py") and os.path.dirname(path) in self.module_dirs:
            return True
        return any(_under(path, d) for d in self.reload_dirs)


def build_watch_set(
    *,
    roots: Iterable[str],
    reload_dirs: Iterable[str] = (),
    modules: Mapping[str, ModuleType | None] | None = None,
    exclude: Iterable[str] | None = None,
    extra_files: Iterable[str] = (),
    log: logging.Logger = reload_logger,
    missing_level: int = logging.WARNING,
) -> WatchSet:
    """The watch set for the modules loaded now (``sys.modules`` by default) and ``reload_dirs``.

    A reload dir that does not exist logs ``Directory <dir> could not be located`` and is kept in
    ``missing_dirs`` (it is not watched: there is nothing to watch yet).
    """
    files = set(
        module_source_files(
            sys.modules if modules is None else modules,
            roots,
            excluded_roots() if exclude is None else exclude,
        )
    )
    files.update(os.path.realpath(f) for f in extra_files if os.path.isfile(f))
    present: list[str] = []
    missing: list[str] = []
    for d in reload_dirs:
        real = os.path.realpath(os.path.abspath(d))
        if os.path.isdir(real):
            if real not in present:
                present.append(real)
        else:
            log.log(missing_level, "Directory %s could not be located", d)
            missing.append(d)
    return WatchSet(frozenset(files), tuple(present), tuple(missing))


class ReloadFilter:
    """The ``watchfiles`` filter of one :class:`WatchSet` (any ``(change, path) -> bool`` will do;
    not a ``watchfiles.BaseFilter`` so that importing this module does not import watchfiles)."""

    def __init__(self, watch_set: WatchSet) -> None:
        self.watch_set = watch_set

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return self.watch_set.accepts(path)


class Batcher:
    """Turns a stream of change sets into restart batches. Pure: the caller passes the time.

    * A change arriving after ``cooldown`` seconds without any change is released immediately:
      one save restarts as fast as the native notification arrives.
    * A change arriving sooner (a burst: formatter on save, ``git checkout``, many saves in a row)
      is held, together with everything that follows, until no change came for ``quiet`` seconds or
      the oldest held change waited ``max_hold`` seconds; then all of it is released as one batch.
    """

    def __init__(self, *, quiet: float = 0.1, cooldown: float = 0.2, max_hold: float = 1.6) -> None:
        if not 0 < quiet <= max_hold:
            raise ValueError("Batcher needs 0 < quiet <= max_hold")
        self.quiet = quiet
        self.cooldown = cooldown
        self.max_hold = max_hold
        self._held: set[str] = set()
        self._held_since: float | None = None
        self._last_change: float | None = None

    def add(self, paths: Iterable[str], now: float) -> None:
        new = set(paths)
        if not new:
            return
        if not self._held:
            self._held_since = now
            if self._last_change is None or now - self._last_change >= self.cooldown:
                self._held_since = now - self.max_hold  # leading edge: due at once
        self._held |= new
        self._last_change = now

    def deadline(self) -> float | None:
        """When :meth:`pop_due` will next release something (``None``: nothing held)."""
        if not self._held or self._last_change is None or self._held_since is None:
            return None
        return min(self._last_change + self.quiet, self._held_since + self.max_hold)

    def pop_due(self, now: float) -> frozenset[str]:
        """The batch to restart for now, or an empty set."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return frozenset()
        batch = frozenset(self._held)
        self._held.clear()
        self._held_since = None
        return batch


_Item = frozenset[str] | BaseException


class ChangeStream:
    """Native file watching for a :class:`WatchSet`, yielding batches of absolute paths.

    Module directories are watched flat and reload dirs recursively, each by one ``watchfiles``
    watcher in a daemon thread; ``step`` (ms) is how long ``watchfiles`` waits for more events
    before handing over what it saw. Iteration ends within ``poll`` seconds of ``stop_event``.
    """

    def __init__(
        self,
        watch_set: WatchSet,
        stop_event: threading.Event,
        *,
        step: int = 10,
        batcher: Batcher | None = None,
        poll: float = 0.05,
    ) -> None:
        self.watch_set = watch_set
        self.stop_event = stop_event
        self.step = step
        self.batcher = batcher or Batcher()
        self.poll = poll
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def _watch(self, roots: tuple[str, ...], recursive: bool, started: threading.Event) -> None:
        watch_filter = ReloadFilter(self.watch_set)
        try:
            import watchfiles  # here: only the reloader process pays for the import

            changes = watchfiles.watch(
                *roots,
                watch_filter=watch_filter,
                stop_event=self.stop_event,
                debounce=1_600,
                step=self.step,
                rust_timeout=max(1, self.step),
                yield_on_timeout=True,
                recursive=recursive,
                raise_interrupt=False,
                ignore_permission_denied=True,
            )
            # watchfiles creates its native watcher on the first next(); the first (empty) yield
            # on timeout proves the watcher is live, which is what `started` promises.
            for batch in changes:
                started.set()
                if batch:
                    self._queue.put(frozenset(os.path.realpath(path) for _, path in batch))
        except BaseException as exc:  # report to the consuming thread; it re-raises
            self._queue.put(exc)
        finally:
            started.set()

    def start(self) -> None:
        groups = [(self.watch_set.flat_roots(), False), (self.watch_set.recursive_roots(), True)]
        for roots, recursive in groups:
            if not roots:
                continue
            started = threading.Event()
            thread = threading.Thread(
                target=self._watch,
                args=(roots, recursive, started),
                name=f"vivace-watch-{'tree' if recursive else 'modules'}",
                daemon=True,
            )
            thread.start()
            started.wait(5)
            self._threads.append(thread)

    def close(self, timeout: float = 0.4) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __iter__(self) -> Iterator[frozenset[str]]:
        if not self._threads:
            self.start()
        while not self.stop_event.is_set():
            deadline = self.batcher.deadline()
            wait = self.poll
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                item = frozenset()
            if isinstance(item, BaseException):
                raise item
            now = time.monotonic()
            self.batcher.add(item, now)
            # drain what else is already queued (the other watcher's half of the same save)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, BaseException):
                    raise more
                self.batcher.add(more, now)
            batch = self.batcher.pop_due(now)
            if batch and not self.stop_event.is_set():
                yield batch
