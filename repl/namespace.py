"""The console's names, its banner and ``help()``. Pure: no terminal, no loop."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from repl.native import Section, describe_object
from runtime.console import CONSOLE_NAMES, ReplEntry
from runtime.hosting import Hosted

# the one list is owned by runtime.console (app.repl_ctx refuses them)
BUILTIN_NAMES: tuple[str, ...] = CONSOLE_NAMES


@dataclass(frozen=True)
class Name:
    name: str
    description: str


class ExitConsole:
    """``exit()`` / ``quit()``: leave the console (what that means depends on how it was opened)."""

    def __init__(self, name: str, hint: str) -> None:
        self._name = name
        self._hint = hint

    def __call__(self, code: int | None = None) -> None:
        raise SystemExit(code)

    def __repr__(self) -> str:
        return f"Use {self._name}() or Ctrl+D to {self._hint}"


class Help:
    """``help()`` prints the banner again; ``help(obj)`` is Python's help."""

    def __init__(self, banner: Callable[[], str]) -> None:
        self._banner = banner

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if not args and not kwargs:
            print(self._banner())
            return
        builtins.help(*args, **kwargs)

    def __repr__(self) -> str:
        return "Type help() for the console's names, or help(object) for help about object."


def check_user_entries(entries: list[ReplEntry], taken: set[str]) -> None:
    for entry in entries:
        if entry.name in BUILTIN_NAMES or entry.name in taken:
            raise ValueError(
                f"app.repl_ctx name {entry.name!r} collides with a built-in console name; "
                f"add it under another name: app.repl_ctx.add(obj, name='my_{entry.name}')"
            )


def banner(
    app_name: str,
    names: list[Name],
    user: list[ReplEntry],
    *,
    url: str | None,
    exit_hint: str,
    notes: list[str] | None = None,
    sections: list[Section] | None = None,
) -> str:
    sections = sections or []
    width = max(
        [len(n.name) for n in names]
        + [len(e.name) for e in user]
        + [len(name) for s in sections if not s.lines for name in s.names]
        + [4]
    )
    lines = [f"vivace console for {app_name}" + (f" at {url}" if url else ""), ""]
    lines += [f"  {n.name.ljust(width)}  {n.description}" for n in names]
    for section in sections:
        lines += ["", section.title] if section.title else [""]
        if section.lines:
            lines += [line if line.startswith(" ") else f"  {line}" for line in section.lines]
        else:
            lines += [
                f"  {name.ljust(width)}  {describe_object(obj)}"
                for name, obj in section.names.items()
            ]
        lines += section.notes
    if user:
        lines += ["", "From app.repl_ctx:"]
        lines += [f"  {e.name.ljust(width)}  {e.desc}" for e in user]
    lines += [""]
    lines += notes or []
    lines += [
        "Top-level await works; awaitable results are awaited. help() shows this again.",
        f"Ctrl+C cancels the running statement. Ctrl+D or exit() {exit_hint}.",
    ]
    return "\n".join(lines)


def describe(
    *,
    has_client: bool,
    has_control: bool,
    single_process: bool,
    can_refresh: bool,
    framework: str = "vivace",
) -> list[Name]:
    vivace = framework == "vivace"
    app_text = "the application of this process"
    if not vivace:
        app_text = f"the {framework} application object of this process"
    names = [Name("app", app_text), Name("runtime", "the vivace package: import runtime")]
    if has_client:
        names.append(
            Name(
                "client", 'HTTP client for the live server: client.get("/"), await client.post(...)'
            )
        )
    names.append(
        Name("do", 'await do("/path", method="GET", json=...): request through app, no network')
    )
    names.append(Name("routes", "method, path, name and endpoint of every route of app"))
    names.append(Name("history", "requests made with client and do(): history[-1].curl()"))
    names.append(Name("replay", "replay(i=-1, json=..., headers=..., params=...): send again"))
    if has_control:
        example = "app.ctx" if vivace else "os.getpid()"
        names += [
            Name("workers", f'table of every process; workers[0].eval("{example}")'),
            Name("restart", "restart(*names, zero_downtime=False): replace server workers"),
            Name("reload", "reload(): the global restart an auto-reload does"),
            Name("scale", "scale(n): set the number of server workers"),
            Name("manage", "manage(ident, func, kwargs=None, **flags): start a process"),
            Name("stop", "stop(): shut the whole server down gracefully"),
            Name("logs", "logs.tail(name=None, n=50), logs.mute(name), logs.only(name)"),
        ]
    if can_refresh:
        names.append(Name("refresh", "refresh(): re-import the app and your modules, rebind app"))
    if single_process and vivace:
        names.append(Name("app.ctx", "what before_server_start listeners created, live"))
    return names


def user_entries(host: Hosted) -> list[ReplEntry]:
    """The names a vivace app adds with ``app.repl_ctx.add(...)``; other apps have none."""
    from runtime.app import App  # not at import: ``vivace attach`` never builds an app

    target = host.target
    if not isinstance(target, App):
        return []
    entries: list[ReplEntry] = list(target.repl_ctx)
    return entries
