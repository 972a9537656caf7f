"""What the reloader watches, what it ignores, and how bursts of changes become one restart.

Three parts, each testable alone:

* :func:`build_watch_set` turns ``sys.modules`` and the reload directories into a :class:`WatchSet`:
  the source files of the app's own modules (under the working directory or the app's package, never
  the standard library, site-packages or vivace itself), every ``.py`` file of the project (the
  same roots, minus virtualenvs, installed packages and hidden or tool directories: see
  :meth:`WatchSet.is_project_dir`), every directory given with ``-R`` and the template
  directories of a Django or Flask app (:func:`runtime.foreign.template_dirs`).
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
import re
import site
import stat
import sys
import sysconfig
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from runtime.log import reload_logger

if TYPE_CHECKING:
    import watchfiles

__all__ = [
    "IGNORED_DIR_NAMES",
    "MAX_PROJECT_DIRS",
    "Batcher",
    "ChangeStream",
    "Glob",
    "GlobError",
    "ReloadFilter",
    "WatchSet",
    "build_watch_set",
    "compile_globs",
    "excluded_roots",
    "is_ignored",
    "module_source_files",
    "precedence_line",
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
#: directories of installed packages: never part of the project, wherever they are
_PACKAGE_DIR_NAMES = frozenset({"site-packages", "dist-packages"})
#: the file that makes a directory a virtualenv (``python -m venv``, virtualenv, uv, poetry)
_VENV_MARKER = "pyvenv.cfg"
#: at most this many project directories are watched for ``.py`` files not imported at start
MAX_PROJECT_DIRS = 2_000


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


class GlobError(ValueError):
    """A ``--reload-include`` / ``--reload-exclude`` pattern that cannot be used; says why."""


def _segment_regex(segment: str, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise GlobError(f"{pattern!r}: '[' at position {i} is never closed by ']'")
            body = segment[i + 1 : end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Glob:
    """One ``--reload-include`` / ``--reload-exclude`` pattern, compiled.

    ``*`` and ``?`` match within one path segment, ``[abc]`` one character of a set, and ``**``
    (a whole segment) any number of directories, none included. A pattern without ``/`` matches
    a file or directory name at any depth (``*.html``, ``.env``, ``node_modules``); one with ``/``
    is anchored at the working directory (``templates/**/*.html``) unless absolute. A path
    matches when it, or one of the directories it is in, matches.
    """

    pattern: str
    cwd: str
    regex: re.Pattern[str]
    anywhere: bool
    #: the literal directory the pattern starts from, and whether what it matches lies deeper
    #: than that directory's own entries (so it must be watched recursively)
    base: str
    recursive: bool

    @classmethod
    def compile(cls, pattern: str, cwd: str) -> Glob:
        """``GlobError`` says what is wrong with ``pattern``."""
        text = pattern.strip()
        if not text:
            raise GlobError("an empty pattern matches nothing; give a glob such as '*.html'")
        if "\x00" in text:
            raise GlobError(f"{pattern!r}: a pattern cannot contain a NUL character")
        text = text.rstrip("/") or "/"
        absolute = text.startswith("/")
        segments = [s for s in text.split("/") if s not in ("", ".")]
        if not segments:
            raise GlobError(f"{pattern!r} matches every file: name what to match, as in '*.html'")
        for segment in segments:
            if segment == "..":
                raise GlobError(f"{pattern!r}: '..' is not allowed; use an absolute path")
            if "**" in segment and segment != "**":
                raise GlobError(
                    f"{pattern!r}: '**' must be a whole path segment, as in 'templates/**/*.html'"
                )
        anywhere = not absolute and "/" not in text
        parts: list[str] = []
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if segment == "**":
                parts.append(".*" if last else "(?:[^/]+/)*")
            else:
                parts.append(_segment_regex(segment, pattern) + ("" if last else "/"))
        regex = re.compile("".join(parts))
        literal: list[str] = []
        for segment in segments:
            if any(c in segment for c in "*?["):
                break
            literal.append(segment)
        root = "/" if absolute else cwd
        if anywhere:
            base, recursive = cwd, True
        elif len(literal) == len(segments):  # no wildcard: one file (or directory)
            base = os.path.join(root, *literal[:-1])
            recursive = False
        else:
            base = os.path.join(root, *literal)
            recursive = len(segments) - len(literal) > 1 or "**" in segments
        return cls(pattern, cwd, regex, anywhere, os.path.normpath(base), recursive)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (absolute), or a directory it is in, matches."""
        if self.anywhere:
            parts = path.split(os.sep)
            return any(self.regex.fullmatch(part) for part in parts if part)
        if os.path.isabs(self.pattern.strip()):
            rel = path.lstrip("/")
        elif _under(path, self.cwd):
            rel = os.path.relpath(path, self.cwd)
        else:
            return False
        parts = rel.split(os.sep)
        return any(self.regex.fullmatch("/".join(parts[:n])) for n in range(len(parts), 0, -1))


def compile_globs(patterns: Iterable[str], cwd: str, option: str) -> tuple[Glob, ...]:
    """Compile ``patterns``; ``GlobError`` names the option and the pattern."""
    globs = []
    for pattern in patterns:
        try:
            globs.append(Glob.compile(pattern, cwd))
        except GlobError as exc:
            raise GlobError(f"{option}: {exc}") from None
    return tuple(globs)


def precedence_line(watch_set: WatchSet) -> str:
    """The reloader's start-up line: what it watches and which rule wins."""
    include = ", ".join(g.pattern for g in watch_set.include) or "none"
    exclude = ", ".join(g.pattern for g in watch_set.exclude) or "none"
    dirs = ", ".join(watch_set.reload_dirs) or "none"
    project = ", ".join(watch_set.project_roots)
    python = f" and the .py files under {project}" if project else ""
    templates = ", ".join(watch_set.template_dirs)
    if templates:
        dirs += f"; template dirs: {templates}"
    return (
        f"Watching {len(watch_set.module_files)} module files{python}, reload dirs: {dirs}; "
        f"include: {include}; exclude: {exclude} "
        "(exclude > include > built-in ignores > modules and reload dirs)"
    )


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


def _skipped_dir_name(name: str) -> bool:
    """A directory name that never holds the project's own modules: hidden (``.venv``, ``.git``,
    ``.tox``, any ``.name``), a tool's (``__pycache__``, ``node_modules``) or installed packages."""
    return name.startswith(".") or name in IGNORED_DIR_NAMES or name in _PACKAGE_DIR_NAMES


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, _VENV_MARKER))


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
    covered. ``reload_dirs`` are watched recursively; ``missing_dirs`` were given but do not exist
    (they are watched once they do). ``template_dirs`` are watched as reload dirs are: every file
    below them counts (Django's and Flask's template caches keep an edited template until the
    workers restart). ``include`` globs add files (their base directories are watched),
    ``exclude`` globs remove them.

    ``project_roots`` (the working directory, the app's package): every ``.py`` file below them
    counts as one of the user's modules, imported or not, except below a directory
    :meth:`is_project_dir` rejects (virtualenvs, site-packages, hidden and tool directories,
    ``installed_roots``, ``--reload-exclude`` matches). The reloader imports the app once, but a
    worker imports more later (a Django URLconf and its views on the first request, a module
    imported inside a handler, a router written during the session): only the project's files,
    not the reloader's ``sys.modules``, can say what the workers run. This is uvicorn's rule
    (``*.py`` under the working directory), minus the directories that are not the user's code.

    Precedence, highest first: ``--reload-exclude`` > ``--reload-include`` > the built-in ignores
    (:func:`is_ignored`) > module files and reload dirs.
    """

    module_files: frozenset[str]
    reload_dirs: tuple[str, ...] = ()
    missing_dirs: tuple[str, ...] = ()
    include: tuple[Glob, ...] = ()
    exclude: tuple[Glob, ...] = ()
    project_roots: tuple[str, ...] = ()
    installed_roots: tuple[str, ...] = ()
    #: the framework's template directories (:func:`runtime.foreign.template_dirs`), watched as
    #: reload dirs are, existing or not (a missing one is watched once it is created)
    template_dirs: tuple[str, ...] = ()
    module_dirs: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "module_dirs", frozenset(os.path.dirname(f) for f in self.module_files)
        )

    def recursive_roots(self) -> tuple[str, ...]:
        """Reload dirs and recursive include bases, nested duplicates removed (existing or not:
        :class:`ChangeStream` watches a missing one once it is created)."""
        wanted = [
            *self.reload_dirs,
            *self.template_dirs,
            *(os.path.abspath(d) for d in self.missing_dirs),
            *(g.base for g in self.include if g.recursive),
        ]
        kept: list[str] = []
        for d in sorted(set(wanted), key=len):
            if not any(_under(d, k) for k in kept):
                kept.append(d)
        return tuple(kept)

    def flat_roots(self) -> tuple[str, ...]:
        """Module directories and flat include bases not already covered by a recursive root."""
        recursive = self.recursive_roots()
        flat = set(self.module_dirs) | {g.base for g in self.include if not g.recursive}
        return tuple(sorted(d for d in flat if not any(_under(d, r) for r in recursive)))

    def accepts(self, path: str) -> bool:
        """Whether a change of ``path`` (absolute, real) should restart the workers."""
        if self.exclude and any(g.matches(path) for g in self.exclude):
            return False
        if self.include and any(g.matches(path) for g in self.include):
            return True
        if is_ignored(path):
            return False
        if path in self.module_files:
            return True
        if path.endswith(".py") and os.path.dirname(path) in self.module_dirs:
            return True
        if path.endswith(".py") and self.is_project_dir(os.path.dirname(path)):
            return True
        return (
            any(_under(path, d) for d in self.reload_dirs)
            or any(_under(path, d) for d in self.template_dirs)
            or any(_under(path, os.path.abspath(d)) for d in self.missing_dirs)
        )

    def _pruned(self, path: str) -> bool:
        """A directory whose tree is not the user's code, judged by itself (not its parents)."""
        return (
            _skipped_dir_name(os.path.basename(path))
            or _is_virtualenv(path)
            or any(_under(path, r) for r in self.installed_roots)
            or (bool(self.exclude) and any(g.matches(path) for g in self.exclude))
        )

    def is_project_dir(self, path: str) -> bool:
        """Whether directory ``path`` (absolute, real) holds the user's own modules.

        It is a project root or below one, and neither it nor a directory between them is pruned:
        hidden or a tool's, site-packages, a virtualenv, vivace or the standard library, or
        matched by ``--reload-exclude``.
        """
        for root in self.project_roots:
            if not _under(path, root):
                continue
            if any(_under(path, r) for r in self.installed_roots):
                return False
            current = root
            rel = os.path.relpath(path, root)
            names = [] if rel == "." else rel.split(os.sep)
            for name in names:
                current = os.path.join(current, name)
                if self._pruned(current):
                    break
            else:
                return True
        return False

    def walk_project(self, tops: Iterable[str], limit: int) -> tuple[list[str], bool]:
        """The project directories at and below ``tops`` (each top in turn, breadth first),
        pruned subtrees left out (they are never entered); at most ``limit``, and whether the
        limit cut the walk short. Symbolic links to directories are not followed."""
        found: list[str] = []
        seen: set[str] = set()
        for top in tops:
            if top in seen or not self.is_project_dir(top):
                continue
            pending = deque([top])
            seen.add(top)
            while pending:
                where = pending.popleft()
                if len(found) >= limit:
                    return found, True
                found.append(where)
                try:
                    with os.scandir(where) as entries:
                        names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
                except OSError:
                    continue
                for name in sorted(names):
                    child = os.path.join(where, name)
                    if child not in seen and not self._pruned(child):
                        seen.add(child)
                        pending.append(child)
        return found, False


def build_watch_set(
    *,
    roots: Iterable[str],
    reload_dirs: Iterable[str] = (),
    modules: Mapping[str, ModuleType | None] | None = None,
    exclude: Iterable[str] | None = None,
    extra_files: Iterable[str] = (),
    log: logging.Logger = reload_logger,
    missing_level: int = logging.WARNING,
    include_globs: Iterable[Glob] = (),
    exclude_globs: Iterable[Glob] = (),
    template_dirs: Iterable[str] = (),
) -> WatchSet:
    """The watch set for the modules loaded now (``sys.modules`` by default), the ``.py`` files
    below ``roots`` (the project), ``reload_dirs`` and ``template_dirs``; ``exclude`` (by default
    :func:`excluded_roots`) is never part of any.

    A reload dir that does not exist logs ``Directory <dir> could not be located`` and is kept in
    ``missing_dirs`` (it is not watched: there is nothing to watch yet). A template dir that does
    not exist is kept quietly (a framework's settings often name a directory not created yet);
    one under ``exclude`` (an installed package's templates, such as Django's admin) is left out.
    """
    roots = list(roots)
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
    project = tuple(dict.fromkeys(os.path.realpath(os.path.abspath(r)) for r in roots))
    installed = excluded_roots() if exclude is None else tuple(exclude)
    for d in reload_dirs:
        real = os.path.realpath(os.path.abspath(d))
        if os.path.isdir(real):
            if real not in present:
                present.append(real)
        else:
            log.log(missing_level, "Directory %s could not be located", d)
            missing.append(d)
    installed_real = tuple(os.path.realpath(r) for r in installed)
    templates = dict.fromkeys(os.path.realpath(os.path.abspath(d)) for d in template_dirs)
    return WatchSet(
        frozenset(files),
        tuple(present),
        tuple(missing),
        tuple(include_globs),
        tuple(exclude_globs),
        project,
        installed_real,
        tuple(d for d in templates if not any(_under(d, r) for r in installed_real)),
    )


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


class _AnyEvent:
    """Set when either event is: the stream's stop and one watcher's own (``watchfiles`` only
    calls ``is_set``)."""

    def __init__(self, first: threading.Event, second: threading.Event) -> None:
        self.first = first
        self.second = second

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()


#: seconds between checks that the watched directories still (or now) exist
ROOT_CHECK_INTERVAL = 0.25


def _describe(dirs: list[str], most: int = 8) -> str:
    if not dirs:
        return "none"
    shown = ", ".join(dirs[:most])
    return shown if len(dirs) <= most else f"{shown} and {len(dirs) - most} more"


class ChangeStream:
    """Native file watching for a :class:`WatchSet`, yielding batches of absolute paths.

    Module directories are watched flat and reload dirs recursively, each by one ``watchfiles``
    watcher in a daemon thread; ``step`` (ms) is how long ``watchfiles`` waits for more events
    before handing over what it saw. Iteration ends within ``poll`` seconds of ``stop_event``.

    A native watch ends with the directory it watches: every ``ROOT_CHECK_INTERVAL`` seconds the
    stream checks which roots exist, and when that changes (a directory deleted, created again, or
    created for the first time) it restarts the watcher of that group on the roots that exist and
    reports the files found in a directory that appeared.

    The project's directories (:meth:`WatchSet.walk_project`, at most ``MAX_PROJECT_DIRS``) are
    flat roots too, each watched on its own rather than the project recursively: a recursive native
    watch would also take one inotify watch per directory of every virtualenv, ``node_modules`` and
    ``.git`` below the working directory, and walk them at start. A directory created in a watched
    one (a new package, a ``mkdir -p a/b``) is seen by its parent's watcher and joins at the next
    root check, with the new ``.py`` files already in it reported.
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
        # queue.Queue, not SimpleQueue: SimpleQueue.get(timeout=...) waits forever when its
        # deadline passes between taking the lock and finding the queue empty again (the
        # negative rest becomes "no timeout"), which a loaded machine hits: the reloader then
        # never saw its stop and held the server's shutdown for its whole grace
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._watching: dict[bool, tuple[tuple[tuple[str, int, int], ...], threading.Event]] = {}
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._stale: set[str] = set()
        self._started = False
        #: project directories watched flat; ``_grown``: directories created in a watched one,
        #: noted by the watcher threads (under ``_lock``) for the next root check
        self._tree: set[str] = set()
        self._grown: set[str] = set()
        self._flat: tuple[str, ...] = ()
        self._warned_limit = False

    def _watch(
        self,
        roots: tuple[str, ...],
        recursive: bool,
        started: threading.Event,
        own_stop: threading.Event,
    ) -> None:
        accepts = ReloadFilter(self.watch_set)
        root_set = frozenset(roots)

        def watch_filter(change: watchfiles.Change, path: str) -> bool:
            if path in root_set and change.name == "deleted":
                # the watched directory itself went away: its native watch ends with it, so the
                # next root check starts this group again (the inode may be reused at once)
                with self._lock:
                    self._stale.add(path)
            if accepts(change, path):
                return True
            if not recursive and change.name == "added" and os.path.isdir(path):
                real = os.path.realpath(path)
                if self.watch_set.is_project_dir(real):  # a new package: watch it too
                    with self._lock:
                        self._grown.add(real)
            return False

        try:
            import watchfiles  # here: only the reloader process pays for the import

            changes = watchfiles.watch(
                *roots,
                watch_filter=watch_filter,
                stop_event=_AnyEvent(self.stop_event, own_stop),
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
        except FileNotFoundError:
            pass  # a root went away as the watcher started: the next root check restarts it
        except BaseException as exc:  # report to the consuming thread; it re-raises
            if not own_stop.is_set():
                self._queue.put(exc)
        finally:
            started.set()

    def _existing(self) -> dict[bool, tuple[tuple[str, int, int], ...]]:
        """The roots of each group that exist now, with their identity (device and inode): a
        directory deleted and created again between two checks is another directory."""
        found: dict[bool, tuple[tuple[str, int, int], ...]] = {}
        for recursive, roots in (
            (False, self._flat),
            (True, self.watch_set.recursive_roots()),
        ):
            present = []
            for root in roots:
                try:
                    st = os.stat(root)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    present.append((root, st.st_dev, st.st_ino))
            found[recursive] = tuple(present)
        return found

    def _launch(self, present: tuple[tuple[str, int, int], ...], recursive: bool) -> None:
        previous = self._watching.pop(recursive, None)
        own_stop = threading.Event()
        self._watching[recursive] = (present, own_stop)
        roots = tuple(root for root, _, _ in present)
        if roots:
            started = threading.Event()
            thread = threading.Thread(
                target=self._watch,
                args=(roots, recursive, started, own_stop),
                name=f"vivace-watch-{'tree' if recursive else 'modules'}",
                daemon=True,
            )
            thread.start()
            started.wait(5)
            # (the threads of watchers stopped at earlier change-overs are gone: not kept)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        if previous is not None:
            # stopped once its successor is live (it ends within one step): a save made while
            # the watchers change over is seen by one of them, perhaps both (a set: no harm)
            previous[1].set()

    def _set_tree(self, dirs: Iterable[str]) -> None:
        self._tree = set(dirs)
        recursive = self.watch_set.recursive_roots()
        flat = set(self.watch_set.flat_roots())
        flat.update(d for d in self._tree if not any(_under(d, r) for r in recursive))
        self._flat = tuple(sorted(flat))

    def _grow(self, tops: Iterable[str]) -> set[str]:
        """Add the project directories at and below ``tops`` to the tree; the ones that are new."""
        found, cut = self.watch_set.walk_project(sorted(tops), MAX_PROJECT_DIRS)
        new = [d for d in found if d not in self._tree]
        room = MAX_PROJECT_DIRS - len(self._tree)
        if len(new) > room:
            new, cut = new[: max(0, room)], True
        if cut:
            self._warn_limit()
        if new:
            self._set_tree(self._tree | set(new))
        return set(new)

    def _warn_limit(self) -> None:
        if not self._warned_limit:
            self._warned_limit = True
            reload_logger.warning(
                "More than %d directories under %s: new .py files are watched in the first %d "
                "only (imported modules and -R directories are always watched); leave large "
                "directories out with --reload-exclude, or start vivace in the project directory",
                MAX_PROJECT_DIRS,
                ", ".join(self.watch_set.project_roots),
                MAX_PROJECT_DIRS,
            )

    def start(self) -> None:
        self._started = True
        # the app's own package first (the deepest root), then the working directory
        tops = sorted(self.watch_set.project_roots, key=lambda r: -r.count(os.sep))
        found, cut = self.watch_set.walk_project(tops, MAX_PROJECT_DIRS)
        if cut:
            self._warn_limit()
        self._set_tree(found)
        for recursive, roots in self._existing().items():
            self._launch(roots, recursive)
        self._next_check = time.monotonic() + ROOT_CHECK_INTERVAL

    def _check_roots(self, now: float) -> None:
        """Restart a group's watcher when the set of its existing roots changed."""
        if now < self._next_check:
            return
        self._next_check = now + ROOT_CHECK_INTERVAL
        with self._lock:
            stale, self._stale = self._stale, set()
            grown, self._grown = self._grown, set()
        if grown:
            self._grow(grown)
        existing = self._existing()
        # a project directory created again may hold subdirectories the tree does not know
        watched = self._watching.get(False, ((), threading.Event()))[0]
        again = [r for r, dev, ino in existing[False] if (r, dev, ino) not in watched]
        if self._grow(r for r in again if r in self._tree):
            existing = self._existing()
        # project directories that are gone leave the tree (if created again, their parent's
        # watcher finds them); the project roots stay
        alive = {root for root, _, _ in existing[False]} | set(self.watch_set.project_roots)
        if not self._tree <= alive:
            self._set_tree(self._tree & alive)
        for recursive, present in existing.items():
            current = self._watching.get(recursive, ((), threading.Event()))[0]
            # new roots, roots created again (another inode, or a root whose deletion was seen)
            appeared = [
                root
                for root, dev, ino in present
                if (root, dev, ino) not in current or root in stale
            ]
            if present == current and not appeared:
                continue
            self._launch(present, recursive)
            reload_logger.debug(  # after the launch: the new native watcher is live
                "Watched directories changed: now %s",
                _describe([root for root, _, _ in present]),
            )
            found = self._contents(appeared, recursive)
            if found:
                self._queue.put(found)

    def _contents(self, dirs: list[str], recursive: bool, limit: int = 10_000) -> frozenset[str]:
        """The accepted files in directories that appeared (they were created while unwatched)."""
        found: set[str] = set()
        for top in dirs:
            for where, subdirs, files in os.walk(top):
                subdirs[:] = [d for d in subdirs if d not in IGNORED_DIR_NAMES]
                for name in files:
                    path = os.path.realpath(os.path.join(where, name))
                    if self.watch_set.accepts(path):
                        found.add(path)
                if not recursive or len(found) >= limit:
                    break
        return frozenset(found)

    def close(self, timeout: float = 0.4) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __iter__(self) -> Iterator[frozenset[str]]:
        if not self._started:
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
            self._check_roots(now)
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
