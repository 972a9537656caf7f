"""``--env-file PATH``: variables from ``.env`` files, read with python-dotenv.

The files are read in the main process before the app is imported (:func:`load_env_files`) and
again by every child before it imports the app (:func:`reload_env_files`), so a worker started by
a reload sees what the files say now. A variable already set in the environment wins over the
files (as with ``uvicorn --env-file``); between files, the later one wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping, Sequence

from runtime.exceptions import ConfigError

__all__ = ["load_env_files", "read_env_files", "reload_env_files"]


def read_env_files(
    paths: Iterable[str], environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """The variables of ``paths`` (later files win); ``ConfigError`` names a missing file."""
    paths = list(paths)
    if not paths:
        return {}
    from dotenv import dotenv_values  # here: only a run with --env-file pays for the import

    values: dict[str, str] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise ConfigError(f"--env-file {path}: no such file")
        try:
            found = dotenv_values(path, interpolate=True)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--env-file {path}: cannot be read: {exc}") from None
        values.update({key: value for key, value in found.items() if value is not None})
    return values


def load_env_files(
    paths: Sequence[str], environ: MutableMapping[str, str] | None = None
) -> tuple[str, ...]:
    """Set the variables of ``paths`` that the environment does not have; the names set."""
    env = os.environ if environ is None else environ
    values = read_env_files(paths)
    added = tuple(key for key in values if key not in env)
    for key in added:
        env[key] = values[key]
    return added


def reload_env_files(
    paths: Sequence[str], owned: Iterable[str], environ: MutableMapping[str, str] | None = None
) -> tuple[str, ...]:
    """In a child: forget the variables ``owned`` (those the main process took from the files)
    and read the files again, so that a changed value, and a removed one, show."""
    env = os.environ if environ is None else environ
    for key in owned:
        env.pop(key, None)
    return load_env_files(paths, env)
