"""Loading the application a command line or a script names.

``AppRef`` is a small picklable value: every worker process loads its own ``App`` from it (the app
module is imported again in each process, as lifecycle.md section 1 says).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AppRef:
    """Where the app lives.

    * ``module``/``attr``: ``pkg.module:app`` (``attr`` ``None`` means "the module's ``app``").
    * ``path``: a script file run as ``__main__`` (``app.run()``); workers import it by path under
      the name ``__mp_main__`` so its ``if __name__ == "__main__"`` block does not run again.
    * ``factory``: call the attribute (``--factory``, ``create_app()`` or a plain function).
    * ``simple_dir``: serve a directory's files (``--simple DIR``).
    * ``cwd``: put on ``sys.path`` first, as the CLI does in the main process.
    * ``factory_args``: unknown ``--options`` passed through to a factory.
    """

    module: str | None = None
    attr: str | None = None
    path: str | None = None
    factory: bool = False
    simple_dir: str | None = None
    cwd: str | None = None
    factory_args: tuple[str, ...] = field(default_factory=tuple)
