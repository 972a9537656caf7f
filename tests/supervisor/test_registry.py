"""The registry of names (runtime/supervisor/registry.py), with plain values."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.supervisor.messages import ProcessState
from runtime.supervisor.registry import RELOADER_NAME, Registry, WorkerRecord
from tests.supervisor.apps import countdown


def _register(registry: Registry, ident: str, **flags: Any) -> WorkerRecord:
    values: dict[str, Any] = {
        "transient": False,
        "restartable": None,
        "tracked": True,
        "auto_start": True,
        "workers": 1,
        "taken": (),
    }
    values.update(flags)
    return registry.register(ident, countdown, None, **values)


def test_server_names_count_up_and_are_never_reused() -> None:
    registry = Registry()
    assert [registry.add_server() for _ in range(3)] == [
        "Vivace-Server-0-0",
        "Vivace-Server-1-0",
        "Vivace-Server-2-0",
    ]
    assert registry.shrink(3) and registry.server_names == []
    assert registry.add_server() == "Vivace-Server-3-0"
    assert registry.kind("Vivace-Server-3-0") == "server"


def test_the_reloader_is_registered_once() -> None:
    registry = Registry()
    assert registry.kind(RELOADER_NAME) == "server" and not registry.reloads
    assert registry.add_reloader(["/src"]) is True
    assert registry.add_reloader(["/other"]) is False
    assert registry.reload_dirs == ["/src"] and registry.kind(RELOADER_NAME) == "reloader"


def test_register_names_replicas_and_refuses_taken_names() -> None:
    registry = Registry()
    record = _register(registry, "JOBS", workers=2, transient=True)
    assert record.names == ["Vivace-JOBS-0", "Vivace-JOBS-1"] and record.restartable
    assert registry.kind("Vivace-JOBS-1") == "custom"
    with pytest.raises(ValueError, match="Worker JOBS already exists"):
        _register(registry, "JOBS")
    with pytest.raises(ValueError, match="process name Vivace-X-0 is already taken"):
        _register(registry, "X", taken={"Vivace-X-0"})
    assert "X" not in registry.records


@pytest.mark.parametrize(
    ("ident", "flags", "error", "match"),
    [
        ("", {}, ValueError, "ident must be a non-empty string"),
        ("T", {"transient": True, "restartable": False}, ValueError, "transient=True with"),
        ("W", {"workers": True}, ValueError, "workers must be an integer >= 1"),
    ],
)
def test_register_validation(
    ident: str, flags: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        _register(Registry(), ident, **flags)


def test_start_order_and_global_restart() -> None:
    registry = Registry()
    registry.add_server()
    _register(registry, "DURABLE")
    _register(registry, "LATER", auto_start=False, transient=True)
    _register(registry, "JOBS", transient=True)
    registry.add_reloader([])
    assert registry.start_order() == [
        "Vivace-Server-0-0",
        "Vivace-JOBS-0",
        RELOADER_NAME,
        "Vivace-DURABLE-0",
    ]
    assert registry.global_restart() == ["Vivace-Server-0-0", "Vivace-LATER-0", "Vivace-JOBS-0"]


def test_a_restart_by_name_takes_durable_processes_only_once_they_ended() -> None:
    registry = Registry()
    registry.add_server()
    _register(registry, "DURABLE", restartable=True)
    _register(registry, "FIXED")  # durable and not restartable
    _register(registry, "JOBS", transient=True)
    states = {"Vivace-DURABLE-0": ProcessState.ACKED}
    names = ["Vivace-Server-0-0", "Vivace-DURABLE-0", "Vivace-FIXED-0", "Vivace-JOBS-0", "nope"]

    def state(name: str) -> ProcessState:
        return states.get(name, ProcessState.IDLE)

    chosen, refused = registry.select(names, state)
    assert chosen == ["Vivace-Server-0-0", "Vivace-JOBS-0"]
    assert refused == [("Vivace-DURABLE-0", ProcessState.ACKED)]
    for ended in (ProcessState.COMPLETED, ProcessState.FAILED, ProcessState.NONE):
        states["Vivace-DURABLE-0"] = ended
        assert registry.select(["Vivace-DURABLE-0"], state) == (["Vivace-DURABLE-0"], [])


def test_untracked_groups_are_forgotten_once_none_is_alive() -> None:
    registry = Registry()
    _register(registry, "KEPT")
    _register(registry, "GONE", tracked=False, workers=2)
    alive = {"Vivace-GONE-1"}
    assert registry.forget("Vivace-KEPT-0", lambda n: False) is None
    assert registry.forget("Vivace-GONE-0", alive.__contains__) is None
    alive.clear()
    record = registry.forget("Vivace-GONE-0", alive.__contains__)
    assert record is not None and record.ident == "GONE"
    assert "GONE" not in registry.records and "Vivace-GONE-1" not in registry.custom_names
    assert registry.forget("Vivace-GONE-0", alive.__contains__) is None
