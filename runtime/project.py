"""``[tool.vivace]`` in ``pyproject.toml`` and ``VIVACE_*`` variables: the option layers.

Every long command-line option of ``vivace`` (see :data:`OPTIONS`) can also come from a
``VIVACE_<OPTION>`` environment variable (``--reload-include`` -> ``VIVACE_RELOAD_INCLUDE``) and
from the ``[tool.vivace]`` table of the nearest ``pyproject.toml`` holding one (found from the
working directory upwards), under the option's name (``reload-include = ["*.html"]``;
``reload_include`` is the same key). The app target is the key ``app``.

Precedence, highest first: command line > ``VIVACE_*`` environment > ``[tool.vivace]`` >
built-in defaults. This module only reads and checks the values (:func:`find_project`,
:func:`env_value`); ``runtime.cli`` puts the layers together.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from runtime.exceptions import ConfigError

__all__ = [
    "ENV_PREFIX",
    "OPTIONS",
    "Option",
    "Project",
    "env_name",
    "env_value",
    "find_project",
    "load_project",
]

ENV_PREFIX = "VIVACE_"

Kind = Literal["bool", "int", "str", "list"]


class Option(NamedTuple):
    """One layered option: its key (the long option without ``--``), where argparse stores it,
    its type, and whether its values are paths (relative to the ``pyproject.toml`` there)."""

    key: str
    dest: str
    kind: Kind
    path: bool = False
    choices: tuple[str, ...] = ()


_KINDS = {
    "bool": "a boolean (true or false)",
    "int": "an integer",
    "str": "a string",
    "list": "a list of strings",
}

#: every option that the environment and ``[tool.vivace]`` may set
OPTIONS: tuple[Option, ...] = (
    Option("app", "target", "str"),
    Option("factory", "factory", "bool"),
    Option("simple", "simple", "bool"),
    Option("interface", "interface", "str", choices=("auto", "vivace", "asgi3", "asgi2", "wsgi")),
    Option("root-path", "root_path", "str"),
    Option("host", "host", "str"),
    Option("port", "port", "int"),
    Option("unix", "unix", "str", path=True),
    Option("workers", "workers", "int"),
    Option("fast", "fast", "bool"),
    Option("single-process", "single_process", "bool"),
    Option("access-logs", "access_log", "bool"),
    Option("debug", "debug", "bool"),
    Option("reload", "auto_reload", "bool"),
    Option("reload-dir", "reload_dirs", "list", path=True),
    Option("reload-include", "reload_include", "list"),
    Option("reload-exclude", "reload_exclude", "list"),
    Option("dev", "dev", "bool"),
    Option("env-file", "env_files", "list", path=True),
    Option("proxy-headers", "proxy_headers", "bool"),
    Option("forwarded-allow-ips", "forwarded_allow_ips", "list"),
    Option("tls-cert", "tls_cert", "str", path=True),
    Option("tls-key", "tls_key", "str", path=True),
    Option("tls-ca", "tls_ca", "str", path=True),
    Option("auto-tls", "auto_tls", "bool"),
    Option("log-config", "log_config", "str", path=True),
    Option("log-format", "log_format", "str", choices=("text", "json")),
    Option("health-path", "health_path", "str"),
    Option("attach", "attach", "bool"),
    Option("attach-tcp", "attach_tcp", "str"),
    Option("motd", "motd", "bool"),
    Option("coffee", "coffee", "bool"),
    Option("noisy-exceptions", "noisy_exceptions", "bool"),
    Option("verbosity", "verbosity", "int"),
    Option("repl", "repl", "bool"),
    Option("repl-command", "repl_commands", "list"),
)

BY_KEY: dict[str, Option] = {option.key: option for option in OPTIONS}

#: keys of ``[tool.vivace]`` that are not command-line options, with their kind
RESERVED: dict[str, Kind] = {
    "console": "list",  # "module:function" providers of console names (the console's feature)
}


class Project(NamedTuple):
    """The ``[tool.vivace]`` table of one ``pyproject.toml``, checked."""

    file: str
    #: option key -> value (paths made absolute against the file's directory)
    values: dict[str, Any]
    #: reserved keys (``console``) -> value
    reserved: dict[str, Any]

    @property
    def directory(self) -> str:
        return os.path.dirname(self.file)


def _type_error(key: str, file: str, kind: Kind, value: object, choices: tuple[str, ...]) -> str:
    expected = _KINDS[kind]
    if choices:
        expected += " (one of " + ", ".join(repr(c) for c in choices) + ")"
    return f"{file}: [tool.vivace] {key} must be {expected}, not {value!r}"


def _check(key: str, value: object, kind: Kind, file: str, choices: tuple[str, ...] = ()) -> Any:
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if kind == "list" and isinstance(value, str):  # one string is a list of one
        value, ok = [value], True
    if not ok or (choices and value not in choices):
        raise ConfigError(_type_error(key, file, kind, value, choices))
    return value


def load_project(file: str | os.PathLike[str]) -> Project | None:
    """The checked ``[tool.vivace]`` table of ``file`` (``None`` when it has none).

    ``ConfigError`` names the file, the key and the expected type for an unknown key or a wrong
    value, or says why the file cannot be read.
    """
    path = os.path.abspath(file)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if b"vivace" not in raw:  # no [tool.vivace] table: not worth a TOML parser (~1.3 ms)
        return None
    if sys.version_info >= (3, 11):  # here: only a project that names vivace pays for it
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    tool = data.get("tool")
    table = tool.get("vivace") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.vivace] must be a table")
    base = os.path.dirname(path)
    values: dict[str, Any] = {}
    reserved: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        if key in RESERVED:
            reserved[key] = _check(raw_key, value, RESERVED[key], path)
            continue
        option = BY_KEY.get(key)
        if option is None:
            known = ", ".join(sorted([*BY_KEY, *RESERVED]))
            raise ConfigError(
                f"{path}: [tool.vivace] has an unknown key {raw_key!r} (known: {known})"
            )
        if key in values:
            raise ConfigError(f"{path}: [tool.vivace] sets {key!r} twice ({raw_key!r})")
        checked = _check(raw_key, value, option.kind, path, option.choices)
        if option.path:
            if isinstance(checked, list):
                checked = [os.path.join(base, os.path.expanduser(v)) for v in checked]
            else:
                checked = os.path.join(base, os.path.expanduser(checked))
        values[key] = checked
    return Project(path, values, reserved)


def find_project(start: str | os.PathLike[str] | None = None) -> Project | None:
    """The ``[tool.vivace]`` of the nearest ``pyproject.toml`` that has one, from ``start`` (the
    working directory) upwards; ``None`` when there is none."""
    here = Path(os.path.abspath(start if start is not None else os.getcwd()))
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            project = load_project(candidate)
            if project is not None:
                return project
    return None


def env_name(key: str) -> str:
    """``reload-include`` -> ``VIVACE_RELOAD_INCLUDE``."""
    return ENV_PREFIX + key.upper().replace("-", "_")


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def env_value(option: Option, environ: Mapping[str, str]) -> Any:
    """The value ``VIVACE_<KEY>`` gives ``option`` (``None`` when unset); ``ConfigError`` names the
    variable and what it must be. Lists are comma-separated."""
    name = env_name(option.key)
    raw = environ.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if option.kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), not {raw!r}")
    if option.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if option.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if option.choices and text not in option.choices:
        allowed = ", ".join(option.choices)
        raise ConfigError(f"{name} must be one of {allowed}, not {raw!r}")
    return text
