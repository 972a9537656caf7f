"""Per-request cost of the built-in signal machinery when no handler is registered.

    python bench/signals.py [--rounds 15] [--n 200000] [--no-sanic]

The request path guards every built-in dispatch with a boolean (``router.guards.X``), so an app
without signal handlers pays one attribute test per built-in event. This prints medians (ns) of:

* ``guard``: one ``if guards.HTTP_LIFECYCLE_HANDLE:`` test (net of an empty loop);
* ``has_handlers``: ``router.has_handlers(Event.HTTP_LIFECYCLE_HANDLE)`` (the contract's guard);
* ``dispatch``: a full ``await router.dispatch(Event..., inline=True)`` with no handler, i.e. what
  an unguarded call would cost;
* ``App.handle``: ``GET /`` through the in-process pipeline (``App.handle``), with no signal
  handlers, and with a no-op handler on each of the 8 in-process ``http.*`` events;
* ``sanic dispatch``: Sanic's ``app.dispatch("http.lifecycle.handle", inline=True)`` with no
  handler, for reference: Sanic calls it unguarded in ``handle_request`` and, with ``TOUCHUP`` on
  (the default), rewrites that method's source at start-up to drop calls that have no handler.
  Uses ``bench/.peers/sanic`` (``sanic>=23.12,<24``) when it exists, else this interpreter's.

Each round interleaves every measurement; the whole run stays well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from runtime import App, Event, text  # noqa: E402
from runtime.datastructures import ConnInfo, Headers  # noqa: E402
from runtime.request import Request  # noqa: E402

SANIC_PYTHON = HERE / ".peers" / "sanic" / "bin" / "python"

IN_PROCESS_EVENTS = [
    Event.HTTP_LIFECYCLE_REQUEST,
    Event.HTTP_LIFECYCLE_HANDLE,
    Event.HTTP_ROUTING_BEFORE,
    Event.HTTP_ROUTING_AFTER,
    Event.HTTP_HANDLER_BEFORE,
    Event.HTTP_HANDLER_AFTER,
    Event.HTTP_LIFECYCLE_RESPONSE,
    Event.HTTP_LIFECYCLE_READ_BODY,
]

SANIC_SCRIPT = """
import asyncio, sys, time, statistics, sanic
from sanic import Sanic
app = Sanic("BenchSignals")
n, rounds = int(sys.argv[1]), int(sys.argv[2])
async def main():
    app.signal_router.allow_fail_builtin = False  # as after app start-up (signalize)
    app.signal_router.finalize()
    out = []
    ctx = {"request": None}
    for _ in range(rounds):
        t = time.perf_counter_ns()
        for _ in range(n):
            await app.dispatch("http.lifecycle.handle", inline=True, context=ctx)
        out.append((time.perf_counter_ns() - t) / n)
    print(sanic.__version__, statistics.median(out))
asyncio.run(main())
"""


def make_app(name: str, with_handlers: bool) -> App:
    app = App(name)

    @app.get("/")
    async def home(request: Any) -> Any:
        return text("ok")

    if with_handlers:

        async def noop(**context: Any) -> None:
            return None

        for event in IN_PROCESS_EVENTS:
            app.add_signal(noop, event)
    app.finalize()
    return app


def make_request(app: App) -> Request:
    conn = ConnInfo("127.0.0.1", 50000, "127.0.0.1", 8000, scheme="http", ssl=False)
    request = Request(
        app, "GET", b"/", Headers.from_raw([(b"host", b"bench")]), "1.1", conn_info=conn
    )
    request.body_channel.feed_eof()
    return request


def time_sync(fn: Callable[[int], None], n: int, repeat: int = 3) -> float:
    """Best of ``repeat`` runs (the least disturbed by other processes), in ns per iteration."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


async def time_async(fn: Callable[[int], Awaitable[None]], n: int) -> float:
    start = time.perf_counter_ns()
    await fn(n)
    return (time.perf_counter_ns() - start) / n


async def run(rounds: int, n: int) -> dict[str, list[float]]:
    bare = make_app("BenchSignalsBare", with_handlers=False)
    hooked = make_app("BenchSignalsHooked", with_handlers=True)
    router = bare.signal_router
    guards = router.guards
    event = Event.HTTP_LIFECYCLE_HANDLE

    def empty_loop(k: int) -> None:
        for _ in range(k):
            pass

    def guard_loop(k: int) -> None:
        for _ in range(k):
            if guards.HTTP_LIFECYCLE_HANDLE:
                raise AssertionError

    def has_loop(k: int) -> None:
        has = router.has_handlers
        for _ in range(k):
            if has(event):
                raise AssertionError

    async def dispatch_loop(k: int) -> None:
        dispatch = router.dispatch
        ctx = {"request": None}
        for _ in range(k):
            await dispatch(event, context=ctx, inline=True, fail_not_found=False)

    def handle_loop(app: App) -> Callable[[int], Awaitable[None]]:
        async def loop(k: int) -> None:
            for _ in range(k):
                response = await app.handle(make_request(app))
                assert response.status == 200

        return loop

    results: dict[str, list[float]] = {
        k: [] for k in ("empty", "guard", "has_handlers", "dispatch", "handle", "handle+hooks")
    }
    handle_n = max(n // 20, 1000)
    for _ in range(rounds):
        empty = time_sync(empty_loop, n)
        results["empty"].append(empty)
        results["guard"].append(time_sync(guard_loop, n) - empty)
        results["has_handlers"].append(time_sync(has_loop, n) - empty)
        results["dispatch"].append(await time_async(dispatch_loop, n // 4))
        results["handle"].append(await time_async(handle_loop(bare), handle_n))
        results["handle+hooks"].append(await time_async(handle_loop(hooked), handle_n))
    return results


def sanic_dispatch(n: int, rounds: int) -> tuple[str, float] | None:
    python = str(SANIC_PYTHON) if SANIC_PYTHON.exists() else sys.executable
    try:
        out = subprocess.run(
            [python, "-c", SANIC_SCRIPT, str(n), str(rounds)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return None
    return out[0], float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=200_000, help="iterations per round (guards)")
    parser.add_argument("--no-sanic", action="store_true")
    args = parser.parse_args()

    results = asyncio.run(run(args.rounds, args.n))
    med = {k: statistics.median(v) for k, v in results.items()}
    guards_per_request = 8
    print(f"median of {args.rounds} rounds, ns per operation")
    print(f"  guard (attribute test, net)        {med['guard']:8.1f}")
    print(f"  has_handlers(Event) (net)          {med['has_handlers']:8.1f}")
    print(f"  dispatch(), no handler, inline     {med['dispatch']:8.1f}")
    print(f"  App.handle GET /, no handlers      {med['handle']:8.1f}")
    print(f"  App.handle GET /, 8 no-op handlers {med['handle+hooks']:8.1f}")
    per_request = guards_per_request * med["guard"]
    print(
        f"signal machinery per request with no handlers: ~{per_request:.0f} ns "
        f"({guards_per_request} guards); unguarded it would be "
        f"~{guards_per_request * med['dispatch']:.0f} ns"
    )
    if not args.no_sanic:
        sanic = sanic_dispatch(args.n // 4, args.rounds)
        if sanic is None:
            print("sanic: not available (python -m venv bench/.peers/sanic; pip install sanic<24)")
        else:
            version, ns = sanic
            print(
                f"sanic {version}: dispatch('http.lifecycle.handle') no handler {ns:8.1f} ns "
                "(what each built-in dispatch costs Sanic unless TOUCHUP removed it)"
            )


if __name__ == "__main__":
    main()
