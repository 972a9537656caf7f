"""``App(...)`` with the arguments Sanic code passes, served over real sockets where they change
what a request gets (error_handler, request_class, log_config)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from runtime import App, text
from runtime.config import Config
from runtime.exceptions import NotFound
from runtime.handlers import ErrorHandler
from runtime.request import Request
from tests.server.helpers import RawClient, get, serve


class Monitoring(ErrorHandler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def default(self, request: Request, exception: BaseException) -> Any:
        self.seen.append(type(exception).__name__)
        return super().default(request, exception)


class MyRequest(Request):
    @property
    def greeting(self) -> str:
        return f"hello from {type(self).__name__}"


def test_error_handler_sees_every_unhandled_exception() -> None:
    monitor = Monitoring()
    app = App("monitored", error_handler=monitor)
    assert app.error_handler is monitor

    @app.get("/boom")
    async def boom(request: Request) -> Any:
        raise RuntimeError("bad")

    @app.get("/handled")
    async def handled(request: Request) -> Any:
        raise KeyError("k")

    @app.exception(KeyError)
    async def on_key(request: Request, exc: Exception) -> Any:
        return text("handled", status=409)

    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/boom"))
        assert client.read_response().status == 500
        client.send(get("/nope"))
        assert client.read_response().status == 404
        client.send(get("/handled"))
        assert client.read_response().status == 409
    assert monitor.seen == ["RuntimeError", "NotFound"]
    srv.errors.clear()


def test_error_handler_assigned_after_construction() -> None:
    """Sanic's exception_monitoring.py: ``app.error_handler = CustomHandler()``."""
    app = App("assigned")
    monitor = Monitoring()
    app.error_handler = monitor

    @app.get("/boom")
    async def boom(request: Request) -> Any:
        raise ValueError("bad")

    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/boom"))
        assert client.read_response().status == 500
    assert monitor.seen == ["ValueError"]
    srv.errors.clear()
    with pytest.raises(TypeError, match="ErrorHandler"):
        app.error_handler = object()  # type: ignore[assignment]


def test_request_class_is_what_handlers_get() -> None:
    app = App("custom_request", request_class=MyRequest)

    @app.get("/")
    async def index(request: MyRequest) -> Any:
        return text(request.greeting)

    with serve(app) as srv, RawClient(srv.port) as client:
        client.send(get("/"))
        assert client.read_response().body == b"hello from MyRequest"


def test_log_config_is_applied(capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "LOGGED %(name)s %(message)s"}},
        "handlers": {
            "out": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {"constructor_test": {"level": "INFO", "handlers": ["out"], "propagate": False}},
    }
    app = App("logged", log_config=config)
    assert app.log_config == config
    logging.getLogger("constructor_test").info("hi")
    assert "LOGGED constructor_test hi" in capsys.readouterr().out
    logging.getLogger("constructor_test").handlers.clear()
    App(
        "not_logged",
        log_config={"version": 1, "root": {"level": "CRITICAL"}},
        configure_logging=False,
    )
    assert logging.getLogger().level != logging.CRITICAL


def test_config_ctx_strict_slashes_and_env_prefix() -> None:
    ctx = object()
    app = App("configured", config={"KEEP_ALIVE_TIMEOUT": 7}, ctx=ctx, strict_slashes=True)
    assert app.config.KEEP_ALIVE_TIMEOUT == 7 and app.ctx is ctx and app.strict_slashes
    given = Config()
    assert App("given", config=given).config is given
    env = App("env", env_prefix="MYAPP_")
    assert isinstance(env.config, Config)


@pytest.mark.parametrize(
    ("argument", "value", "advice"),
    [
        ("router", object(), "app.add_route"),
        ("signal_router", object(), "@app.signal"),
        ("dumps", lambda o: "", "json"),
        ("loads", lambda s: None, "request.body"),
        ("inspector", True, "--console"),
        ("inspector_class", object, "--console"),
        ("certloader_class", object, "TLS"),
    ],
)
def test_unsupported_arguments_say_what_to_do(argument: str, value: Any, advice: str) -> None:
    with pytest.raises(TypeError, match=f"App\\({argument}=...\\) is not supported") as caught:
        App("refused", **{argument: value})
    assert advice in str(caught.value)


def test_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError, match="ErrorHandler"):
        App("a", error_handler=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"subclass of runtime\.Request"):
        App("b", request_class=dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dictConfig"):
        App("c", log_config="logging.ini")  # type: ignore[arg-type]
    assert NotFound  # (imported for the handler test's names)
