"""``python -m tests.supervisor.serve MODULE WORKERS``: serve a test app on a free port."""

from __future__ import annotations

import importlib
import sys

from runtime import log
from runtime.launch import run
from runtime.loader import AppRef, load_app
from runtime.options import RunOptions


def main() -> None:
    module, workers = sys.argv[1], int(sys.argv[2])
    ref = AppRef(module=module, attr="app")
    app = load_app(ref)
    options = RunOptions(target=ref, port=0, workers=workers)
    console = None
    if len(sys.argv) > 3:
        module_name, _, attr = sys.argv[3].partition(":")
        console = getattr(importlib.import_module(module_name), attr)
    log.configure(debug=options.debug, verbosity=options.verbosity)  # as the entry points do
    sys.exit(run(app, options, console=console))


if __name__ == "__main__":
    main()
