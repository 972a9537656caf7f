"""Static files: ``app.static(uri, file_or_directory, ...)``, ``bp.static(...)`` and ``--simple``.

A static route answers ``GET`` and ``HEAD`` with a ``FileResponse`` (``runtime.response``), so it
gets everything a file response gets from the server: ``sendfile``, validators and 304, ranges
(with ``use_content_range=True``), ``HEAD`` without a body.

Rules:

1. Nothing outside the directory is ever served. The file part of the URL is the percent-decoded
   request path; it is refused when it holds a ``..`` segment, a backslash, a NUL or another
   control character, and the path it names, with every symlink followed, must still be inside
   the directory (a symlink that leaves it is refused, file or directory). Everything refused is a
   plain 404, the same answer as a file that does not exist, so a response never tells what
   exists outside. (``--simple`` also refuses names that start with a dot: ``.git``, ``.env``.)
2. A directory is answered with its ``index`` file(s) when one exists, else with an HTML listing
   when ``directory_view=True``, else 404. Its URL without the trailing slash redirects (301) to
   the one with it, so the relative links of the page work.
3. Route names follow Sanic: ``name`` (``"static"`` unless given; a blueprint's are
   ``"<bp>.<name>"``), so ``app.url_for("static", name="static", filename="css/site.css")``.
4. File-system calls run on the loop: they are ``stat`` and ``realpath`` calls that the page
   cache answers in microseconds; a file's bytes never pass through Python (``sendfile``).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePath
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import quote

from runtime.declarations import DEFAULT_PATTERN
from runtime.exceptions import NotFound
from runtime.response import FileResponse, HTTPResponse, redirect

if TYPE_CHECKING:
    from runtime.request import Request

__all__ = [
    "DEFAULT_PATTERN",
    "Found",
    "StaticOptions",
    "listing",
    "lookup",
    "resolve",
    "static_handler",
]

_REFUSED_CHARS = frozenset(chr(c) for c in range(32)) | {"\\", "\x7f"}


def resolve(root: Path, url_path: str, *, hidden: bool = True) -> Path | None:
    """The file or directory ``url_path`` (percent-decoded) names inside ``root`` (a resolved
    directory), or ``None`` (rule 1). ``hidden=False`` refuses names starting with a dot."""
    found = _resolve(str(root), url_path, hidden)
    return None if found is None else Path(found[0])


def _resolve(root: str, url_path: str, hidden: bool) -> tuple[str, os.stat_result] | None:
    """``(real path, its stat)`` or ``None``. ``root`` is resolved, so only what lies below it is
    checked: one ``lstat`` per part; at the first symlink, ``realpath`` of the whole and a check
    that it stays inside. Strings, not pathlib: this runs for every request of a static route."""
    if any(char in _REFUSED_CHARS for char in url_path):
        return None
    parts = [part for part in url_path.split("/") if part and part != "."]
    path = root
    try:
        info = os.stat(root)
        for part in parts:
            if part == ".." or (not hidden and part[0] == "."):
                return None
            path = f"{path}/{part}" if path != "/" else f"/{part}"
            info = os.lstat(path)
            if S_ISLNK(info.st_mode):
                real = os.path.realpath(os.path.join(root, *parts), strict=True)
                if real != root and not real.startswith(root.rstrip("/") + "/"):
                    return None
                return real, os.stat(real)
    except (OSError, ValueError):
        return None
    return path, info


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def listing(directory: Path, url_path: str, *, hidden: bool = False) -> str:
    """An HTML page listing ``directory`` (shown at ``url_path``, which ends with ``/``)."""
    title = html.escape(f"Index of {url_path}")
    rows: list[str] = []
    if url_path != "/":
        rows.append('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
    entries: list[tuple[bool, str, Path]] = []
    for entry in directory.iterdir():
        if entry.name.startswith(".") and not hidden:
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        entries.append((not is_dir, entry.name.lower(), entry))
    for is_file, _, entry in sorted(entries):
        name = entry.name + ("" if is_file else "/")
        try:
            stat = entry.stat()
        except OSError:
            continue
        modified = datetime.fromtimestamp(stat.st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M")
        size = _human_size(stat.st_size) if is_file else "-"
        href = quote(name)
        rows.append(
            f'<tr><td><a href="{href}">{html.escape(name)}</a></td>'
            f"<td>{modified}</td><td>{size}</td></tr>"
        )
    body = "\n".join(rows)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n"
        f"<table>\n<tr><th>Name</th><th>Modified (UTC)</th><th>Size</th></tr>\n{body}\n"
        "</table></body></html>\n"
    )


class Found(NamedTuple):
    """What a URL path names: a file (with its ``stat``), a listing page, a redirect, nothing."""

    kind: Literal["missing", "redirect", "file", "listing"]
    path: str | Path | None = None
    page: str = ""
    stat: os.stat_result | None = None


class StaticOptions(NamedTuple):
    """What one static registration serves and how (``app.static``'s arguments, checked)."""

    root: Path  # resolved: the directory, or the file itself
    is_file: bool
    indexes: tuple[str, ...] = ()
    directory_view: bool = False
    content_type: str | None = None
    use_modified_since: bool = True
    use_content_range: bool = False
    hidden: bool = True  # serve names starting with a dot (--simple does not)


def lookup(options: StaticOptions, file_part: str, url_path: str) -> Found:
    """Decide what to answer (rules 1 and 2); ``file_part`` is the path below the static URI."""
    if options.is_file:
        return Found("file", options.root)
    root = str(options.root)
    found = _resolve(root, file_part, options.hidden)
    if found is None:
        return Found("missing")
    real, info = found
    if S_ISDIR(info.st_mode):
        if not options.indexes and not options.directory_view:
            return Found("missing")
        if not url_path.endswith("/"):
            return Found("redirect")
        for name in options.indexes:
            index = _resolve(root, f"{file_part}/{name}", options.hidden)
            if index is not None and S_ISREG(index[1].st_mode):
                return Found("file", index[0], stat=index[1])
        if options.directory_view:
            page = listing(Path(real), url_path, hidden=options.hidden)
            return Found("listing", page=page)
        return Found("missing")
    if not S_ISREG(info.st_mode):  # a socket, a fifo, a device: never served
        return Found("missing")
    return Found("file", real, stat=info)


def static_handler(options: StaticOptions) -> Callable[..., Any]:
    """The route handler serving ``options``: ``handler(request, filename="")``."""

    async def static(request: Request, filename: str = "", **_: Any) -> Any:
        url_path = request.path
        found = lookup(options, filename, url_path)
        if found.kind == "redirect":
            query = request.query_string
            return redirect(quote(url_path) + "/" + (f"?{query}" if query else ""), status=301)
        if found.kind == "listing":
            return HTTPResponse(found.page, content_type="text/html; charset=utf-8")
        if found.kind == "missing" or found.path is None:
            raise NotFound(f"{url_path} was not found")
        try:
            response = FileResponse(
                found.path,
                content_type=options.content_type,
                ranges=options.use_content_range,
                conditional=options.use_modified_since,
                stat=found.stat,
            )
            return response.prepare(request.method, request.headers)
        except OSError:  # removed or made unreadable since the lookup
            raise NotFound(f"{url_path} was not found") from None

    return static


def static_options(
    file_or_directory: str | PurePath,
    *,
    pattern: str = DEFAULT_PATTERN,
    use_modified_since: bool = True,
    use_content_range: bool = False,
    stream_large_files: bool | int = False,
    content_type: str | None = None,
    apply: bool = True,
    resource_type: str | None = None,
    index: str | Sequence[str] | None = None,
    directory_view: bool = False,
    directory_handler: Any = None,
) -> StaticOptions:
    """Check ``app.static``'s arguments (clear errors for what vivace does not take)."""
    del stream_large_files  # every file is sent from disk with sendfile: nothing to choose
    if pattern != DEFAULT_PATTERN:
        raise ValueError(
            f"static(pattern={pattern!r}): vivace serves every file below the directory and takes "
            "no pattern; filter names in a request middleware, or register a route of your own "
            "that returns file(...)"
        )
    if not apply:
        raise ValueError(
            "static(apply=False) is not supported: vivace registers a static route at once; "
            "call app.static(...) where you want it registered"
        )
    if directory_handler is not None:
        raise ValueError(
            "static(directory_handler=...) is not supported: use index=... and "
            "directory_view=True, or a route of your own"
        )
    if resource_type not in (None, "file", "dir"):
        raise ValueError(
            f"static(resource_type=...) must be 'file' or 'dir', got {resource_type!r}"
        )
    if not isinstance(file_or_directory, (str, PurePath)):
        raise TypeError(
            f"static() needs a file or directory path, got {type(file_or_directory).__name__}"
        )
    path = Path(file_or_directory)
    try:
        root = path.resolve(strict=True)
    except OSError:
        raise FileNotFoundError(
            f"static(): {str(file_or_directory)!r} does not exist (relative paths are relative to "
            f"the current directory, {os.getcwd()})"
        ) from None
    is_file = root.is_file()
    if not is_file and not root.is_dir():
        raise ValueError(f"static(): {str(file_or_directory)!r} is neither a file nor a directory")
    if resource_type == "file" and not is_file:
        raise ValueError(f"static(resource_type='file'): {str(file_or_directory)!r} is a directory")
    if resource_type == "dir" and is_file:
        raise ValueError(f"static(resource_type='dir'): {str(file_or_directory)!r} is a file")
    indexes = (index,) if isinstance(index, str) else tuple(index or ())
    for name in indexes:
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ValueError(f"static(index=...) takes file names like 'index.html', got {name!r}")
    return StaticOptions(
        root=root,
        is_file=is_file,
        indexes=indexes,
        directory_view=bool(directory_view),
        content_type=content_type,
        use_modified_since=bool(use_modified_since),
        use_content_range=bool(use_content_range),
    )
