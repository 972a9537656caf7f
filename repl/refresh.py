"""``refresh()``'s modules: the app imported again with the user's modules, as a new worker does.

A worker started after a save imports every user module afresh (``runtime.supervisor.worker``
``user_modules()``: outside the standard library, site-packages and vivace). ``refresh()`` gives
the console the same: ``forget_user_modules(target)`` takes those modules out of ``sys.modules``,
so that importing the target imports again the ones it uses (a FastAPI router in ``api.py``) and
the others are imported again when first used, as in a new worker (Django imports the URLconf and
the views on the first request, not with ``mysite.asgi``). Names bound in the console keep the
objects they hold.

Django's app registry is filled once per process (``django.setup()``), and importing a models
module again registers its models a second time ("Reloading models is not advised"; relations
then point at the old classes). So in a process where that registry is ready the modules it
holds are kept: the modules defining models or app configs (and their packages), each app's
``admin`` (``admin.site.register`` would refuse the models again) and the settings module
(``django.conf.settings`` was read once). Views, URLconfs, forms, middleware and the rest are
imported again, and Django's URL caches are cleared. What was kept is named in the summary:
the workers, which start from a fresh process, do take it.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = ["CodeFingerprint", "Forgotten", "forget_user_modules"]


class Forgotten:
    """User modules taken out of ``sys.modules`` for one re-import of the app."""

    def __init__(self, saved: dict[str, ModuleType], kept: list[str]) -> None:
        self.saved = saved
        self.kept = kept  # Django's registry: left in sys.modules, not imported again
        # a package left in sys.modules (kept, or a namespace package: no file, never a user
        # module) holds its submodules as attributes, and ``from package import views`` takes
        # the attribute without importing: the forgotten ones are taken off it
        self._detached: list[tuple[ModuleType, str, ModuleType]] = []
        for name, module in saved.items():
            parent_name, _, child = name.rpartition(".")
            parent = sys.modules.get(parent_name) if parent_name else None
            if parent is not None and getattr(parent, child, None) is module:
                delattr(parent, child)
                self._detached.append((parent, child, module))

    def restore(self) -> None:
        """The re-import failed: every module back as it was."""
        sys.modules.update(self.saved)
        for parent, child, module in self._detached:
            setattr(parent, child, module)

    def settle(self) -> None:
        """The re-import succeeded: the other modules are imported again when first used."""
        _clear_django_url_caches()

    @property
    def note(self) -> str:
        """What the summary adds (nothing unless Django's modules were kept)."""
        if not self.kept:
            return ""
        shown = ", ".join(self.kept[:6]) + (", ..." if len(self.kept) > 6 else "")
        return (
            f"; kept as they were: {shown} (Django registers models, app configs, admin and "
            "settings once per process: new workers run their changes, this console after "
            "vivace restarts)"
        )


def _user_module_names(target_module: str) -> set[str]:
    from runtime.supervisor.worker import user_modules

    names = set(user_modules())
    names.update(
        name
        for name in sys.modules
        if name == target_module or name.startswith(target_module + ".")
    )
    return names


def _defines(module: ModuleType, base: type) -> bool:
    """True when ``module`` defines a subclass of ``base`` (not only imports one)."""
    name = module.__name__
    for value in list(vars(module).values()):
        if isinstance(value, type) and issubclass(value, base) and value.__module__ == name:
            return True
    return False


def django_kept(names: set[str]) -> set[str]:
    """The modules of ``names`` that Django's ready app registry holds (none without Django)."""
    registry: Any = getattr(sys.modules.get("django.apps"), "apps", None)
    if registry is None or not getattr(registry, "ready", False):
        return set()
    found = (
        getattr(sys.modules.get("django.db.models"), "Model", None),
        getattr(sys.modules.get("django.apps"), "AppConfig", None),
    )
    bases = [base for base in found if isinstance(base, type)]
    kept: set[str] = set()
    held: list[str] = []  # the models modules (packages included) of every app
    for config in registry.get_app_configs():
        kept.add(config.name)  # the app's package: AppConfig.module is the one imported first
        kept.add(config.name + ".admin")
        if config.models_module is not None:
            held.append(config.models_module.__name__)
    settings = getattr(sys.modules.get("django.conf"), "settings", None)
    settings_module = getattr(settings, "SETTINGS_MODULE", None)
    if settings_module:
        kept.add(str(settings_module))

    def registered(name: str) -> bool:
        if name in kept or any(name == h or name.startswith(h + ".") for h in held):
            return True
        module = sys.modules.get(name)
        return module is not None and any(_defines(module, base) for base in bases)

    return {name for name in names if registered(name)}


def _clear_django_url_caches() -> None:
    """The URL resolver caches the URLconf modules it imported: forget them (Django only)."""
    urls = sys.modules.get("django.urls")
    clear = getattr(urls, "clear_url_caches", None)
    if callable(clear):
        clear()


def forget_user_modules(target_module: str) -> Forgotten:
    """Take the user's modules out of ``sys.modules`` (not those Django's registry holds)."""
    names = _user_module_names(target_module)
    kept = django_kept(names)
    saved = {name: sys.modules[name] for name in names - kept if name in sys.modules}
    for name in saved:
        del sys.modules[name]
    importlib.invalidate_caches()  # files created since the last import are found
    return Forgotten(saved, sorted(kept))  # after the deletions: parents left are known


class CodeFingerprint:
    """What the user's modules loaded in this process hold on disk, to tell whether workers
    started later run other code than the console's (the toolbar's "workers run newer code").

    Taken when the console's app was imported (and at each ``refresh()``): the digest of each
    user module's file. :meth:`differs` reads the files again: a worker started now imports
    what is on disk, so it runs newer code only if some file is not what the console imported
    (a reload with nothing changed, or a ``touch``, is not newer code). A module the console
    imports later (``do()`` importing a view) is counted from then on, as it was read then.
    """

    def __init__(self, target_module: str) -> None:
        self._target = target_module
        self._digests: dict[str, str | None] = {}
        self._add_new()

    def _paths(self) -> set[str]:
        paths = set()
        for name in _user_module_names(self._target):
            path = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(path, str) and path:
                paths.add(path)
        return paths

    def _add_new(self) -> None:
        for path in self._paths() - self._digests.keys():
            self._digests[path] = _digest(path)

    def differs(self) -> bool:
        """True when a user module's file no longer holds what this process imported."""
        changed = any(_digest(path) != digest for path, digest in self._digests.items())
        self._add_new()
        return changed


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.sha1(file.read(), usedforsecurity=False).hexdigest()
    except OSError:
        return None  # gone or unreadable: not what was imported
