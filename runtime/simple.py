"""``vivace --simple DIR`` (or ``vivace ./dir``): an app that serves a directory's files.

It is ``app.static("/", DIR, index="index.html", directory_view=True)`` (``runtime.static``),
with names starting with a dot refused. Rules:

1. ``GET``/``HEAD`` only. A file is served with a type guessed from its name, ``ETag`` and
   ``Last-Modified`` (304 for a matching ``If-None-Match`` / ``If-Modified-Since``), ``Range``
   (206 / 416), and ``sendfile``.
2. A directory is served as its ``index.html`` when there is one, else as an HTML listing; a
   directory URL without the trailing slash is redirected (301) to the form with it, so relative
   links in the page work.
3. Nothing outside the directory is ever served: ``..`` segments, NUL and control characters and
   backslashes are refused, and the resolved path (symlinks followed) must stay inside the root.
   Names starting with a dot (``.git``, ``.env``) are neither listed nor served. Everything
   refused is a plain 404, so the response does not reveal what exists.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from runtime import static
from runtime.exceptions import LoadError
from runtime.static import Found, StaticOptions, listing, lookup, static_handler

if TYPE_CHECKING:
    from runtime.app import App

INDEX = "index.html"
_names = itertools.count(1)


def resolve(root: Path, url_path: str) -> Path | None:
    """The file or directory ``url_path`` names inside ``root``, or ``None`` (rule 3)."""
    return static.resolve(root, url_path, hidden=False)


def create_simple_app(directory: Path | str, *, name: str | None = None) -> App:
    """An ``App`` that serves the files under ``directory`` (see the module docstring)."""
    from runtime.app import App

    root = Path(directory).resolve()
    if not root.is_dir():
        raise LoadError(f"--simple needs a directory, and {str(directory)!r} is not one.")
    app = App(name or f"vivace_simple_{next(_names)}")
    app.ctx.simple_root = root
    options = StaticOptions(
        root=root,
        is_file=False,
        indexes=(INDEX,),
        directory_view=True,
        use_content_range=True,
        hidden=False,
    )
    serve = static_handler(options)
    serve.__name__ = "simple_serve"
    app.add_route(serve, "/", methods=("GET", "HEAD"), name="simple_root")
    app.add_route(serve, "/<filename:path>", methods=("GET", "HEAD"), name="simple_path")
    return app


__all__ = ["Found", "create_simple_app", "listing", "lookup", "resolve"]
