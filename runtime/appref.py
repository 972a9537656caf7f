"""``AppRef``: where the app lives, as a small picklable value.

The launcher builds it from the command line (``runtime.loader.parse_target``) or from
``app.run()``; every worker process loads its own app from it (``runtime.loader.load_app``). It
is a plain value so that the supervisor can carry it without importing the app model.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["DEFAULT_ATTR", "AppRef"]

DEFAULT_ATTR = "app"


class AppRef(NamedTuple):
    """Where the app lives.

    * ``module``/``attr``: ``pkg.module:app`` (``attr`` ``None`` means "the module's ``app``").
    * ``path``: a script file run as ``__main__`` (``app.run()``); workers import it by path under
      the name ``__mp_main__`` so its ``if __name__ == "__main__"`` block does not run again.
    * ``factory``: call the attribute (``--factory``, ``create_app()`` or a plain function).
    * ``simple_dir``: serve a directory's files (``--simple DIR``).
    * ``cwd``: put on ``sys.path`` first, as the CLI does in the main process.
    * ``factory_args``: unknown ``--options`` passed through to a factory.
    * ``namespace``: the parsed command line (``vars(argparse.Namespace)``) handed to a factory that
      needs an argument (see ``loader._needs_namespace``); ``None`` outside the CLI.
    * ``text``: the target as the user typed it, for error messages.
    * ``interface``: ``auto`` (detect) or ``vivace``, ``asgi3``, ``asgi2``, ``wsgi``.
    * ``root_path``: the ASGI ``root_path`` of a foreign app (``--root-path``).
    """

    module: str | None = None
    attr: str | None = None
    path: str | None = None
    factory: bool = False
    simple_dir: str | None = None
    cwd: str | None = None
    factory_args: tuple[str, ...] = ()
    namespace: dict[str, Any] | None = None
    text: str | None = None
    interface: str = "auto"
    root_path: str = ""

    def describe(self) -> str:
        """The target in the form the command line accepts."""
        if self.simple_dir is not None:
            return f"--simple {self.simple_dir}"
        where = self.module if self.module is not None else (self.path or "?")
        attr = self.attr or DEFAULT_ATTR
        return f"{where}:{attr}{'()' if self.factory else ''}"
