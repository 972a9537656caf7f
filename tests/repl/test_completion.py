"""Tab completes route paths inside ``client.get("`` / ``do("`` (in process, then in a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from repl.completion import RouteCompleter, path_context
from repl.routes import RoutesView
from runtime import App, json
from tests.repl.test_repl_terminal import Term


class _Nothing(Completer):
    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Any:
        yield Completion("python-completion")


@pytest.fixture
def app() -> Iterator[App]:
    app = App("completion_app")

    @app.get("/items/<item_id:int>", name="item")
    async def item(request: Any, item_id: int) -> Any:
        return json({})

    @app.route("/items/search", methods=["GET", "POST"])
    async def search(request: Any) -> Any:
        return json({})

    @app.post("/orders")
    async def orders(request: Any) -> Any:
        return json({})

    @app.websocket("/ws")
    async def ws(request: Any, socket: Any) -> None:
        return None

    yield app
    App._registry.pop("completion_app", None)


def _complete(app: App, text: str) -> list[tuple[str, str, str]]:
    namespace = {"routes": RoutesView(lambda: app, lambda: "vivace")}
    completer = RouteCompleter(lambda: namespace, _Nothing())
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return [(c.text, c.display_text, c.display_meta_text) for c in found]


def test_the_call_and_the_prefix_are_recognised() -> None:
    assert path_context('client.get("/it') == ("GET", "/it")
    assert path_context("r = await client.post('") == ("POST", "")
    assert path_context('client.request("PUT", "/x') == ("PUT", "/x")
    assert path_context('await do("/a') == (None, "/a")
    assert path_context('do(path="/a') == (None, "/a")
    assert path_context('ws = await client.websocket("/') == ("WS", "/")
    assert path_context('client.get("/done")') is None
    assert path_context("print('/it") is None
    assert path_context("undo('/x") is None


def test_paths_with_their_parameters_filtered_by_method(app: App) -> None:
    assert _complete(app, 'client.get("/it') == [
        ("/items/", "/items/<item_id:int>", "GET item"),
        ("/items/search", "/items/search", "GET,POST search"),
    ]
    got = {c[1] for c in _complete(app, 'client.post("/')}
    assert got == {"/items/search", "/orders"}
    assert {c[1] for c in _complete(app, 'await do("/')} == {
        "/items/<item_id:int>",
        "/items/search",
        "/orders",
    }
    assert [c[1] for c in _complete(app, 'client.websocket("/')] == ["/ws"]
    assert _complete(app, 'client.get("/items/<it') == [
        ("/items/<item_id:int>", "/items/<item_id:int>", "GET item")
    ]
    assert _complete(app, 'client.get("/items/') == [
        ("/items/<item_id:int>", "/items/<item_id:int>", "GET item"),
        ("/items/search", "/items/search", "GET,POST search"),
    ]
    # elsewhere, ptpython's completer
    assert _complete(app, "app.na") == [("python-completion", "python-completion", "")]


@pytest.mark.slow
def test_tab_in_a_real_terminal(term: Callable[..., Term]) -> None:
    t = term("--repl", "-w", "1", target="console14_app:app")
    t.wait("vivace console for Console14", 30)
    t.wait_prompt()
    t.send('client.get("/ite')
    t.pump(0.2)
    t.send("\t")
    t.wait(lambda: 'client.get("/items/' in t.prompt_line(), 10)
    t.send('7").json()\r')
    t.wait("'id': 7", 10)
    t.wait_prompt()
    t.send('client.websocket("/')
    t.pump(0.2)
    t.send("\t")
    t.wait(lambda: 'client.websocket("/ws' in t.prompt_line(), 10)
    t.send("\x03")
    t.wait_prompt()
    t.send("\x04")
    assert t.exit_code() == 0
