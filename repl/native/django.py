"""Django in the console: configured once, every installed app's models imported.

Django 5.2's ``manage.py shell`` imports the models of every installed app (its ``shell`` command's
``get_auto_imports``; models of an earlier app in ``INSTALLED_APPS`` win a name collision). The
console asks the project's own ``shell`` command for its namespace, so a project that overrides
``get_auto_imports`` (to add ``Q``, ``F`` or its services, or to import nothing) gets the same
names here; with a Django older than 5.2 the console does what 5.2 does.

Plain statements run on one thread with no event loop (``repl.evaluate``), so the sync ORM works
as in ``manage.py shell``; statements that await run on the console's loop, where the async ORM
(``await Model.objects.acount()``) works.
"""

from __future__ import annotations

import importlib
import os
from collections import defaultdict
from typing import Any

from repl.native import Section

__all__ = ["django_section", "setup_django"]


class DjangoNotConfigured(RuntimeError):
    """Django's settings are not configured: no models to import."""


def setup_django() -> Any:
    """``django.apps.apps``, populated: ``django.setup()`` once if the target did not run it."""
    django = importlib.import_module("django")
    apps = importlib.import_module("django.apps").apps
    if apps.ready:
        return apps
    settings = importlib.import_module("django.conf").settings
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise DjangoNotConfigured(
            "Django's settings are not configured: DJANGO_SETTINGS_MODULE is not set (the "
            "project's asgi.py or wsgi.py sets it before get_asgi_application())"
        )
    django.setup()
    return apps


def _shell_namespace(apps: Any) -> dict[str, Any]:
    """The names ``manage.py shell`` would import (no output)."""
    django = importlib.import_module("django")
    if django.VERSION >= (5, 2):
        management = importlib.import_module("django.core.management")
        app_name = management.get_commands()["shell"]  # the project may override the command
        command = management.load_command_class(app_name, "shell")
        names: dict[str, Any] = command.get_namespace(verbosity=0)
        return names
    # Django 5.2's get_auto_imports and get_namespace, for older versions: earlier apps win
    found: dict[str, Any] = {}
    for model in reversed(apps.get_models()):
        if model.__module__:
            found[model.__name__] = model
    return found


def _import_lines(names: dict[str, Any]) -> list[str]:
    """``from catalog.models import Item, Product`` lines (``manage.py shell -v 2``'s)."""
    by_module: dict[str, list[str]] = defaultdict(list)
    plain: list[str] = []
    for name, obj in names.items():
        module = getattr(obj, "__module__", None)
        if isinstance(obj, type(os)):  # a module
            plain.append(f"import {obj.__name__}")
        elif module and getattr(obj, "__name__", None) == name:
            by_module[module].append(name)
        else:
            plain.append(f"{name} = {type(obj).__name__} object")
    lines = [f"from {module} import {', '.join(sorted(n))}" for module, n in by_module.items()]
    return sorted(plain) + sorted(lines)


def django_section() -> list[Section]:
    apps = setup_django()
    names = _shell_namespace(apps)
    django = importlib.import_module("django")
    count = f"{len(names)} object{'s' if len(names) != 1 else ''}"
    title = f"Django {django.get_version()}: {count} imported as manage.py shell does"
    notes = [
        *_shadowed(apps, names),
        "The ORM works at the prompt: Model.objects.count() on the console's thread (one database\n"
        "connection from one statement to the next), await Model.objects.acount() on its loop.",
    ]
    title += ":" if names else "."
    return [Section(title, names, _import_lines(names), notes, source="Django's shell imports")]


def _shadowed(apps: Any, names: dict[str, Any]) -> list[str]:
    """One line per model left out because an earlier app's model has its name."""
    lines = []
    for model in apps.get_models():
        kept = names.get(model.__name__)
        if kept is not None and kept is not model and isinstance(kept, type):
            lines.append(
                f"{model.__module__}.{model.__name__} is not imported: {model.__name__} is "
                f"{kept.__module__}.{kept.__name__} (the earlier app in INSTALLED_APPS wins)"
            )
    return lines
