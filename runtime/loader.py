"""Loading the application a command line or a script names.

``AppRef`` is a small picklable value: every worker process loads its own ``App`` from it (the app
module is imported again in each process, as lifecycle.md section 1 says).

``parse_target`` turns the command line's ``TARGET`` into an ``AppRef`` (it may import the parent
package of a dotted name to tell ``pkg.module`` from ``pkg.module.app``); ``load_app`` imports the
module and returns the ``App``, raising ``LoadError`` with a message that says what to type instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import re
import reprlib
import sys
import traceback
import typing
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from runtime.appref import DEFAULT_ATTR, AppRef
from runtime.exceptions import LoadError
from runtime.hosting import Hosted, Interface

if TYPE_CHECKING:
    from runtime.app import App

HINTS = (
    "  Example File: project/server.py -> app\n"
    "  Example Module: project.server:app\n"
    "  Example Factory: project.server:create_app()"
)


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text


def _is_module(name: str) -> bool:
    """Whether ``name`` names an importable module (imports its parent packages, not itself)."""
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:  # the parent package failed to import: load_app will report it
        return False


def parse_target(
    text: str,
    *,
    factory: bool = False,
    simple: bool = False,
    cwd: str | None = None,
    factory_args: tuple[str, ...] = (),
    namespace: dict[str, Any] | None = None,
) -> AppRef:
    """Parse a command-line ``TARGET`` (cli.md section 1).

    ``pkg.module:app``, ``pkg.module.app`` (split at the last dot unless ``pkg.module.app`` is
    itself a module), ``pkg.module`` (its ``app``), ``pkg.module:create_app()`` (a factory), a
    file (``main.py``, ``app/main.py:api``: its module, see :func:`_module_of_file`), a
    directory path (``./static``) or any directory with ``simple=True``.
    """
    cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
    text = text.strip()
    if not text:
        raise LoadError("The target is empty.\n" + HINTS)
    if simple or (_looks_like_path(text) and Path(cwd, text).is_dir()):
        directory = Path(cwd, text).resolve()
        if not directory.is_dir():
            raise LoadError(
                f"--simple needs a directory, and {text!r} is not one.\n"
                "  Example: vivace --simple ./public"
            )
        if factory:
            raise LoadError("--factory cannot be used with a directory target (--simple).")
        return AppRef(simple_dir=str(directory), cwd=cwd, text=text)
    module: str
    attr: str | None
    file, colon, after = text.rpartition(":") if ":" in text else (text, "", "")
    if file.endswith(".py"):
        # a file, as `fastapi dev main.py` and `python app/main.py` take it
        module, cwd = _module_of_file(Path(cwd, file), file, text)
        attr = after if colon else None
    elif _looks_like_path(text) or text.endswith(".py"):
        raise LoadError(
            f"{text!r} is neither a directory nor a module name. Give the module with dots and the "
            f"app after a colon, for example: vivace {_dotted(text) or 'project.server'}:app\n"
            + HINTS
        )
    elif ":" in text:
        module, attr = text.rsplit(":", 1)
    elif "." in text:
        _add_to_path(cwd)
        if _is_module(text):
            module, attr = text, None
        else:
            module, attr = text.rsplit(".", 1)
    else:
        module, attr = text, None
    if attr is not None and attr.endswith("()"):
        factory = True
        attr = attr[:-2]
    if not module or attr == "" or not all(part.isidentifier() for part in module.split(".")):
        raise LoadError(f"{text!r} is not a valid target.\n" + HINTS)
    if attr is not None and not attr.isidentifier():
        raise LoadError(f"{attr!r} in {text!r} is not a Python name.\n" + HINTS)
    return AppRef(
        module=module,
        attr=attr,
        factory=factory,
        cwd=cwd,
        factory_args=tuple(factory_args),
        namespace=namespace,
        text=text,
    )


def _dotted(path: str) -> str:
    """``app/main.py`` as the module name it suggests, ``app.main``."""
    return path.removesuffix(".py").replace("\\", "/").strip("./").replace("/", ".")


def _module_of_file(path: Path, file: str, text: str) -> tuple[str, str]:
    """The module a ``.py`` file is and the directory to import it from, as ``fastapi dev``
    finds them: the file's parent directories that are packages (an ``__init__.py``) are its
    package, and the directory above the topmost one goes on ``sys.path`` (so ``app/main.py`` of
    a package ``app`` is ``app.main`` from the project's directory; without ``app/__init__.py``
    it is ``main`` from ``app/``, where its sibling imports work as under ``python app/main.py``).
    """
    if not path.is_file():
        raise LoadError(
            f"{text!r}: there is no file {str(path)!r}. Run vivace from your project's "
            f"directory, or give the module: vivace {_dotted(file) or 'main'}:app\n" + HINTS
        )
    path = path.resolve()
    parts = [] if path.stem == "__init__" else [path.stem]
    root = path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    bad = [part for part in parts if not part.isidentifier()]
    if not parts or bad:
        name = bad[0] if bad else path.parent.name
        raise LoadError(
            f"{text!r} cannot be imported: {name!r} is not a Python name (rename it with "
            "letters, digits and underscores, e.g. my_app.py)."
        )
    return ".".join(parts), str(root)


def _add_to_path(cwd: str | None) -> None:
    if cwd and (not sys.path or sys.path[0] != cwd):
        if cwd in sys.path:
            sys.path.remove(cwd)
        sys.path.insert(0, cwd)


def _app_class() -> type[App]:
    try:
        from runtime.app import App
    except ImportError as exc:
        raise LoadError(f"vivace's App class cannot be imported: {exc}") from None
    return App


def _user_error(what: str, exc: BaseException) -> LoadError:
    """A LoadError for an exception raised by the user's own code, with its traceback from the
    user's first frame: the frames of this loader and of importlib above it are left out, as
    Python leaves them out of an ``import`` statement's error (a syntax error then shows only its
    file, line and caret)."""
    tb = exc.__traceback__
    while tb is not None and _machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return LoadError(f"{what}:\n{text.rstrip()}")


def _machinery(filename: str) -> bool:
    """A frame of the import machinery between vivace and the user's code."""
    return (
        filename == __file__
        or filename.startswith("<frozen importlib")
        or filename == importlib.__file__
    )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _shadowing(ref: AppRef, name: str) -> str | None:
    """The error when the user's ``./<top>.py`` (or ``./<top>/``) is not what ``<top>`` imports.

    A name the standard library (or anything vivace imported before the working directory went on
    ``sys.path``) already uses is served from ``sys.modules`` or a built-in: the user's file is
    never imported, and the error would otherwise be a confusing "has no attribute 'app'".
    """
    top = name.split(".", 1)[0]
    module = sys.modules.get(top)
    if module is None and top not in sys.builtin_module_names:
        return None
    cwd = ref.cwd or os.getcwd()
    candidates = [(os.path.join(cwd, top + ".py"), f"./{top}.py")]
    candidates.append((os.path.join(cwd, top), f"./{top}/"))
    found = [(path, label) for path, label in candidates if os.path.exists(path)]
    if not found or (found[0][1].endswith("/") and not os.path.isdir(found[0][0])):
        return None
    path, label = found[0]
    loaded = getattr(module, "__file__", None) if module is not None else None
    places = [os.path.dirname(loaded)] if isinstance(loaded, str) else []
    if isinstance(loaded, str) and os.path.basename(loaded) != "__init__.py":
        places = [loaded]
    places += [p for p in getattr(module, "__path__", None) or () if isinstance(p, str)]
    if any(_same_file(place, path) for place in places):
        return None  # it is the user's own module, imported already
    if top in sys.stdlib_module_names:
        what = f"the standard library module {top!r}"
    elif isinstance(loaded, str):
        what = f"the module {top!r} from {loaded}, imported before your project"
    else:
        what = f"the built-in module {top!r}"
    rest = name[len(top) :]
    attr = ref.attr or DEFAULT_ATTR
    return (
        f"{label} is shadowed by {what}; rename your file (for example to {top}_app"
        f"{'.py' if label.endswith('.py') else '/'}) and run: vivace {top}_app{rest}:{attr}"
    )


def _import_module(ref: AppRef, name: str) -> ModuleType:
    shadowed = _shadowing(ref, name)
    if shadowed is not None:
        raise LoadError(shadowed)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            here = ref.cwd or os.getcwd()
            raise LoadError(
                f"No module named {missing} found.\n{HINTS}\n"
                f"  (looked in {here} and on sys.path; run vivace from your project's directory)"
            ) from None
        raise _user_error(f"Importing {name!r} failed", exc) from None
    except SyntaxError as exc:
        raise _user_error(f"{name!r} has a syntax error", exc) from None
    except LoadError:  # vivace refused something the module does (app.run() at import time)
        raise
    except Exception as exc:
        raise _user_error(f"Importing {name!r} failed", exc) from None


def _import_path(path: str) -> ModuleType:
    """The running script's module: ``__main__`` itself, or imported again as ``__mp_main__``."""
    main = sys.modules.get("__main__")
    if main is not None and os.path.abspath(getattr(main, "__file__", "") or "") == path:
        return main
    existing = sys.modules.get("__mp_main__")
    if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") == path:
        return existing
    if not os.path.isfile(path):
        raise LoadError(f"The script {path!r} does not exist any more.")
    spec = importlib.util.spec_from_file_location("__mp_main__", path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path!r} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules["__mp_main__"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules["__mp_main__"]
        if isinstance(exc, LoadError):
            raise
        raise _user_error(f"Running {path!r} failed", exc) from None
    return module


#: the names of factories that Flask's command line also finds by itself (``flask --app pkg``)
FACTORY_NAMES = ("create_app", "make_app")


def _candidates(module: ModuleType, app_cls: type) -> list[str]:
    """The module's attributes that look like what the user meant: vivace ``App``s, ASGI/WSGI app
    objects, ``async def app(scope, receive, send)`` functions and a ``create_app``/``make_app``
    factory (the Flask tutorial's package has no ``app``, only ``create_app``)."""
    from runtime.foreign import detect_interface

    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, ModuleType) or inspect.isclass(value):
            continue
        if isinstance(value, app_cls):
            names.append(name)
        elif inspect.isroutine(value):
            if inspect.iscoroutinefunction(value) and detect_interface(value) == "asgi3":
                names.append(name)  # a function ASGI app
            elif name in FACTORY_NAMES and inspect.isfunction(value) and _factory_shaped(value):
                names.append(name)
        elif detect_interface(value) is not None:
            names.append(name)
    return sorted(names)


def _typed_file(ref: AppRef) -> str | None:
    """The file the user typed as the target (``app/main.py`` of ``app/main.py:api``), if any:
    messages name it as typed rather than as the module it is."""
    typed = ref.text or ""
    file = typed.rpartition(":")[0] if ":" in typed else typed
    return file if ref.module is not None and file.endswith(".py") else None


_DJANGO_SETTINGS = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)\.settings['"]""")


def _django_handler(module: ModuleType) -> str:
    """For Django's ``manage.py`` (``vivace manage.py``, as ``python manage.py runserver``): the
    line naming the project's ASGI or WSGI handler to serve instead (empty for anything else)."""
    try:
        source = Path(module.__file__ or "").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    found = _DJANGO_SETTINGS.search(source)
    if found is None or "execute_from_command_line" not in source:
        return ""
    handlers = [
        f"vivace {found[1]}.{kind}:application"
        for kind in ("asgi", "wsgi")
        if _is_module(f"{found[1]}.{kind}")
    ]
    if not handlers:
        return ""
    return (
        "\n  This is Django's command-line script; serve the project's handler instead: "
        + " or ".join(handlers)
    )


def _perhaps(label: str, names: list[str]) -> str:
    """The line ``Perhaps you meant m:a or m:b?`` after a newline (empty without names)."""
    if not names:
        return ""
    return "\n  Perhaps you meant " + " or ".join(f"{label}:{n}" for n in names) + "?"


def _factory_shaped(value: Any) -> bool:
    """A plain function vivace may call as a factory: synchronous, at most one required
    positional argument (the command line's namespace)."""
    if inspect.iscoroutinefunction(value):
        return False
    try:
        params = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):
        return True
    required = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(required) <= 1


def _is_namespace_annotation(annotation: object) -> bool:
    """Whether a parameter is annotated ``argparse.Namespace`` (or ``Namespace | None``,
    ``Optional[Namespace]``; also as the unevaluated string of ``from __future__ import
    annotations`` when it cannot be evaluated)."""
    if annotation is argparse.Namespace:
        return True
    if isinstance(annotation, str):
        words = re.split(r"[\s|\[\],]+", annotation.replace("'", "").replace('"', ""))
        return any(word in ("Namespace", "argparse.Namespace") for word in words)
    return any(arg is argparse.Namespace for arg in typing.get_args(annotation))


def _needs_namespace(factory: Any) -> bool:
    """Whether the factory is called with the command line's namespace (cli.md section 1).

    Only when it needs an argument: its first positional parameter has no default, or is
    ``*args``, or is annotated ``argparse.Namespace``. ``def create_app(test_config=None)`` (the
    Flask tutorial's) is called with no arguments, as Flask's CLI, uvicorn ``--factory`` and
    gunicorn call it.
    """
    try:
        signature = inspect.signature(factory, eval_str=True)
    except Exception:  # an annotation that cannot be evaluated (a TYPE_CHECKING import ...)
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):
            return False
    for p in signature.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return p.default is p.empty or _is_namespace_annotation(p.annotation)
    return False


def _call_factory(ref: AppRef, name: str, factory: Any) -> Any:
    if not callable(factory):
        raise LoadError(
            f"{name} was given as a factory but it is a {type(factory).__name__}, not a callable. "
            f"Drop --factory (and the trailing '()') to use it as the app."
        )
    args: tuple[Any, ...] = ()
    if _needs_namespace(factory):
        namespace = argparse.Namespace(**(ref.namespace or {}))
        if ref.namespace is None:
            namespace.target = ref.describe()
        args = (namespace,)
    try:
        result = factory(*args)
    except Exception as exc:
        raise _user_error(f"The factory {name}() raised an exception", exc) from None
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise LoadError(f"The factory {name}() is async; it must return the App directly.")
    return result


def _found(value: object) -> str:
    """What the target is, in words, for the "not an app" message."""
    if inspect.isfunction(value) or inspect.ismethod(value):
        kind = "an async function" if inspect.iscoroutinefunction(value) else "a function"
        try:
            signature = str(inspect.signature(value))
        except (TypeError, ValueError):
            signature = "(...)"
        return f"is {kind} {value.__name__}{signature}, which is not an app signature:"
    if inspect.isclass(value):
        return f"is the class {value.__name__}, which is not an ASGI 2 application class:"
    if callable(value):
        return f"is a callable {type(value).__name__} with an unknown signature:"
    return f"is a {type(value).__name__}, which is not callable:"


def _what(value: object) -> str:
    """A short noun phrase for a value: ``None``, ``{'a': 1} (a dict)``, ``the module json``."""
    if value is None:
        return "None"
    if isinstance(value, ModuleType):
        return f"the module {value.__name__}"
    if inspect.isclass(value):
        return f"the class {value.__name__}"
    if inspect.isfunction(value) or inspect.ismethod(value):
        kind = "an async function" if inspect.iscoroutinefunction(value) else "a function"
        try:
            signature = str(inspect.signature(value))
        except (TypeError, ValueError):
            signature = "(...)"
        return f"{kind} {value.__name__}{signature}"
    type_name = type(value).__name__
    article = "an" if type_name[:1].lower() in "aeiou" else "a"
    return f"{reprlib.repr(value)} ({article} {type_name})"


def _returned(name: str, value: object) -> str:
    """The detail line when a factory's result is not an app."""
    line = f"  vivace called the factory {name}() and it returned {_what(value)}, not an app"
    if value is None:
        line += " (does the factory end with 'return app'?)"
    return line + "; the factory must return the app:"


#: what a forced ``--interface`` expects: the kind of app, the arguments it is called with (and
#: what happens next), an example
INTERFACES = {
    "asgi3": (
        "an ASGI 3 application",
        "(scope, receive, send)",
        "",
        "async def app(scope, receive, send): ...  (FastAPI(), Starlette(), Quart())",
    ),
    "asgi2": (
        "an ASGI 2 application",
        "(scope)",
        ", the result awaited with (receive, send)",
        "class App: def __init__(self, scope) + async def __call__(self, receive, send)",
    ),
    "wsgi": (
        "a WSGI application",
        "(environ, start_response)",
        "",
        "def app(environ, start_response): ...  (Flask(__name__), Django WSGI)",
    ),
}


def _unfit(value: object, interface: str) -> str | None:
    """Why ``value`` cannot be served as the forced ``interface`` (``None``: it may be).

    A forced interface overrides the detection for an unusual callable, so only what surely
    fails is refused: no callable, the wrong number of arguments, an async function where a
    synchronous call must return the app (ASGI 2, WSGI).
    """
    if not callable(value):
        return "is not callable"
    kind, arguments, _, _ = INTERFACES[interface]
    if interface != "asgi3" and inspect.iscoroutinefunction(value):
        return f"is async, and {kind} is not"
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return None  # a builtin or an extension type: let it run
    try:
        signature.bind(*([None] * (arguments.count(",") + 1)))
    except TypeError:
        return f"cannot be called with {arguments}"
    return None


def _forced_error(
    subject: str, value: object, interface: str, reason: str, detected: str | None
) -> LoadError:
    """The message for a value that ``--interface`` forced but that cannot be served so."""
    kind, arguments, then, example = INTERFACES[interface]
    message = (
        f"{subject} {_what(value)}, which {reason}: it cannot be served as {kind} "
        f"(--interface {interface}).\n"
        f"  --interface {interface} expects {kind}, called with {arguments}{then}, for example:\n"
        f"    {example}\n"
    )
    if detected is not None:
        message += f"  It looks like {INTERFACES[detected][0]}: use --interface {detected}, or drop"
        message += " --interface to have vivace detect it."
    else:
        message += "  Drop --interface to have vivace detect the app and say what it found."
    return LoadError(message)


def load_app(ref: AppRef) -> Hosted:
    """Import (or build) the app ``ref`` names: a vivace ``App``, or a foreign ASGI/WSGI app
    wrapped in a :class:`~runtime.foreign.ForeignApp`; ``LoadError`` says what is wrong and what
    to do."""
    _add_to_path(ref.cwd)
    if ref.simple_dir is not None:
        from runtime.simple import create_simple_app

        return create_simple_app(Path(ref.simple_dir))
    file: str | None = None  # a target typed as a file (app/main.py), named so in messages
    if ref.path is not None:
        module = _import_path(os.path.abspath(ref.path))
        label = ref.path
    elif ref.module is not None:
        module = _import_module(ref, ref.module)
        file = _typed_file(ref)
        label = file or ref.module
    else:
        raise LoadError("The app reference names neither a module nor a script.")
    app_cls = _app_class()
    attr = ref.attr or DEFAULT_ATTR
    name = f"{label}:{attr}"
    missing = object()
    value = getattr(module, attr, missing)
    if value is missing:
        also = _perhaps(label, _candidates(module, app_cls)) or _django_handler(module)
        if ref.attr is None and file is not None:
            from runtime.foreign import EXPECTED

            raise LoadError(
                f"{file} has no application instance named 'app'. Name the one to serve after a "
                f"colon ({file}:name), or a callable that returns one.{also}\n{EXPECTED}"
            )
        if file is not None:
            raise LoadError(f"{file} has no attribute {attr!r}.{also}\n{HINTS}")
        if ref.attr is None:
            from runtime.foreign import EXPECTED

            raise LoadError(
                "Looks like you only supplied a module name. vivace tried to locate an "
                f"application instance named {label}:app, but was unable to locate an application "
                "instance. Please provide a path to a global instance of App() (or of an ASGI or "
                f"WSGI application), or a callable that will return one.{also}\n{EXPECTED}"
            )
        if ref.text is not None and ":" not in ref.text and ref.text == f"{label}.{attr}":
            raise LoadError(
                f"No module named {ref.text} found.\n  (and module {label!r} has no attribute "
                f"{attr!r}){also}\n{HINTS}"
            )
        raise LoadError(f"Module {label!r} has no attribute {attr!r}.{also}\n{HINTS}")
    interface = ref.interface
    # runtime.foreign is imported only for what is not plainly a vivace App (start-up time)
    if not ref.factory and interface in ("auto", "vivace") and isinstance(value, app_cls):
        return value
    from runtime.foreign import EXPECTED, ForeignApp, detect_interface

    called = ref.factory or (
        interface == "auto"
        and inspect.isfunction(value)
        and detect_interface(value) is None
        and _factory_shaped(value)
    )
    if called:
        value = _call_factory(ref, name, value)
    if interface in ("auto", "vivace") and isinstance(value, app_cls):
        return value
    subject = f"{name}() returned" if called else f"{name} is"
    if interface == "vivace":
        raise LoadError(
            f"{subject} {_what(value)}, not a vivace App (--interface vivace).\n"
            "  Drop --interface to have vivace detect an ASGI or WSGI app."
        )
    if interface != "auto":
        if interface not in INTERFACES:
            choices = ", ".join(["auto", "vivace", *INTERFACES])
            raise LoadError(f"Unknown interface {interface!r}: use one of {choices}.")
        reason = _unfit(value, interface)
        if reason is not None:
            raise _forced_error(subject, value, interface, reason, detect_interface(value))
        return ForeignApp(value, cast(Interface, interface), name=name, root_path=ref.root_path)
    detected = detect_interface(value)
    if detected is None:
        message = f"Module is not a vivace app, it is a {type(value).__name__}"
        if called:
            message += f" returned by the factory {name}()\n{_returned(name, value)}"
        elif isinstance(value, ModuleType):
            message += f"\n  Perhaps you meant {value.__name__}:app?"
            message += f"\n  {name} is the module {value.__name__}, which is not an app:"
        else:
            message += _perhaps(label, [n for n in _candidates(module, app_cls) if n != attr])
            message += f"\n  {name} {_found(value)}"
        raise LoadError(f"{message}\n{EXPECTED}")
    return ForeignApp(value, detected, name=name, root_path=ref.root_path)


__all__ = ["AppRef", "load_app", "parse_target"]
