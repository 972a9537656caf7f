"""The nine-listener example of lifecycle.md section 7.3."""

import logging

from runtime import App

log = logging.getLogger("demo")
app = App("Demo")


@app.main_process_start
async def listener_0(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_0")


@app.listener("before_server_start")
async def listener_1(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_1")


@app.before_server_start
async def listener_2(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_2")


@app.listener("after_server_start")
async def listener_3(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_3")


@app.after_server_start
async def listener_4(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_4")


@app.listener("before_server_stop")
async def listener_5(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_5")


@app.before_server_stop
async def listener_6(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_6")


@app.listener("after_server_stop")
async def listener_7(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_7")


@app.after_server_stop
async def listener_8(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_8")


@app.main_process_stop
async def listener_9(app, loop):  # type: ignore[no-untyped-def]
    log.info("listener_9")
