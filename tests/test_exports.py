"""The public surface of ``runtime`` is explicit, sorted and complete (httpx's test, adapted)."""

from __future__ import annotations

import importlib
import types

import pytest

import runtime

PUBLIC_MODULES = [
    "runtime.app",
    "runtime.blueprints",
    "runtime.errorpages",
    "runtime.handlers",
    "runtime.middleware",
    "runtime.static",
    "runtime.testing",
    "runtime.views",
    "runtime.websocket",
]


def test_all_is_sorted_and_names_exist() -> None:
    assert runtime.__all__ == sorted(runtime.__all__)
    assert len(set(runtime.__all__)) == len(runtime.__all__)
    for name in runtime.__all__:
        assert hasattr(runtime, name), name


def test_every_public_name_of_the_package_is_exported() -> None:
    public = {
        name
        for name, value in vars(runtime).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(runtime.__all__) - {"__version__"}


def test_the_everyday_names_are_there() -> None:
    expected = {
        "App",
        "Blueprint",
        "BlueprintGroup",
        "Request",
        "HTTPResponse",
        "StreamingResponse",
        "json",
        "text",
        "html",
        "raw",
        "empty",
        "redirect",
        "stream",
        "file",
        "file_stream",
        "FileResponse",
        "HTTPMethodView",
        "__version__",
    }
    assert expected <= set(runtime.__all__)
    assert runtime.__version__ == "0.1.0"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_module_all_lists_only_names_defined_there(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = module.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n)) or names == sorted(names)
    for name in names:
        assert hasattr(module, name), f"{module_name}.{name}"
