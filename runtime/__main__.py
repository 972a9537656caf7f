"""``python -m runtime``: the same as the ``vivace`` command."""

from runtime.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
