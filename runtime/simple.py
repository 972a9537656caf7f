"""``vivace --simple DIR`` (or ``vivace ./dir``): an app that serves a directory's files.

Rules:

1. ``GET``/``HEAD`` only. A file is served with a type guessed from its name, ``Last-Modified`` and
   a ``304`` for a matching ``If-Modified-Since``.
2. A directory is served as its ``index.html`` when there is one, else as an HTML listing; a
   directory URL without the trailing slash is redirected (301) to the form with it, so relative
   links in the page work.
3. Nothing outside the directory is ever served: ``..`` segments, NUL bytes and backslashes are
   refused, and the resolved path (symlinks followed) must stay inside the root. Names starting
   with a dot (``.git``, ``.env``) are neither listed nor served. Everything refused is a plain 404,
   so the response does not reveal what exists.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from runtime.exceptions import LoadError, NotFound

if TYPE_CHECKING:
    from runtime.app import App
    from runtime.request import Request
    from runtime.response import HTTPResponse

INDEX = "index.html"
_names = itertools.count(1)


def resolve(root: Path, url_path: str) -> Path | None:
    """The file or directory ``url_path`` (percent-decoded) names inside ``root``, or ``None``."""
    if "\x00" in url_path or "\\" in url_path:
        return None
    parts = [part for part in url_path.split("/") if part not in ("", ".")]
    if any(part == ".." or part.startswith(".") for part in parts):
        return None
    try:
        real = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if real != root and not real.is_relative_to(root):
        return None
    return real


def _content_type(path: Path) -> str:
    guessed, encoding = mimetypes.guess_type(path.name)
    if guessed is None or encoding is not None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
        return f"{guessed}; charset=utf-8"
    return guessed


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def listing(directory: Path, url_path: str) -> str:
    """An HTML page listing ``directory`` (shown at ``url_path``, which ends with ``/``)."""
    title = html.escape(f"Index of {url_path}")
    rows: list[str] = []
    if url_path != "/":
        rows.append('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
    entries: list[tuple[bool, str, Path]] = []
    for entry in directory.iterdir():
        if entry.name.startswith("."):
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


def _not_modified(request: Request, mtime: float) -> bool:
    since = request.headers.get("if-modified-since")
    if not since:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(mtime) <= int(when.timestamp())


@dataclass(frozen=True)
class Found:
    """What a URL path names: a file (``path`` and its ``mtime``), a listing page, a redirect."""

    kind: Literal["missing", "redirect", "file", "listing"]
    path: Path | None = None
    mtime: float = 0.0
    page: str = ""


def lookup(root: Path, url_path: str) -> Found:
    """Decide what to answer for ``url_path`` (blocking file-system calls: run it in a thread)."""
    target = resolve(root, url_path)
    if target is None:
        return Found("missing")
    if target.is_dir():
        if not url_path.endswith("/"):
            return Found("redirect")
        index = target / INDEX
        if not index.is_file():
            return Found("listing", page=listing(target, url_path))
        target = index
    if not target.is_file():
        return Found("missing")
    return Found("file", path=target, mtime=target.stat().st_mtime)


def create_simple_app(directory: Path | str, *, name: str | None = None) -> App:
    """An ``App`` that serves the files under ``directory`` (see the module docstring)."""
    from runtime.app import App
    from runtime.response import HTTPResponse, redirect
    from runtime.response import html as html_response

    root = Path(directory).resolve()
    if not root.is_dir():
        raise LoadError(f"--simple needs a directory, and {str(directory)!r} is not one.")
    app = App(name or f"vivace_simple_{next(_names)}")
    app.ctx.simple_root = root

    async def serve(request: Request, **_: Any) -> HTTPResponse:
        url_path = request.path
        found = await asyncio.to_thread(lookup, root, url_path)
        if found.kind == "redirect":
            query = request.query_string
            return redirect(quote(url_path) + "/" + (f"?{query}" if query else ""), status=301)
        if found.kind == "listing":
            return html_response(found.page)
        if found.kind == "missing" or found.path is None:
            raise NotFound(f"{url_path} was not found")
        modified = datetime.fromtimestamp(int(found.mtime), timezone.utc)
        headers = {"Last-Modified": format_datetime(modified, usegmt=True)}
        if _not_modified(request, found.mtime):
            return HTTPResponse(status=304, headers=headers)
        # HEAD reads the body too: the server sends its length and drops it
        try:
            body = await asyncio.to_thread(found.path.read_bytes)
        except OSError:  # removed or made unreadable since the lookup
            raise NotFound(f"{url_path} was not found") from None
        return HTTPResponse(body, headers=headers, content_type=_content_type(found.path))

    serve.__name__ = "simple_serve"
    app.add_route(serve, "/", methods=("GET",), name="simple_root")
    app.add_route(serve, "/<path:path>", methods=("GET",), name="simple_path")
    return app


__all__ = ["Found", "create_simple_app", "listing", "lookup", "resolve"]
