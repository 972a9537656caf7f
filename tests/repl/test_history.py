"""``history``, ``replay()`` and ``.curl()``: in process, then in a real server's console."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from repl.history import Exchange, History, curl_command, replay_call, with_params
from tests.repl.scripted14 import scripted


def _exchange(n: int, **fields: object) -> Exchange:
    values: dict[str, object] = dict(
        via="client",
        method="GET",
        url=f"/n/{n}",
        status=200,
        size=n,
        elapsed_ms=1.0,
        request=None,
        response=None,
    )
    values.update(fields)
    return Exchange(**values)  # type: ignore[arg-type]


def test_history_is_bounded_and_keeps_the_indexes() -> None:
    history = History(limit=3)
    assert "no requests yet" in repr(history)
    with pytest.raises(IndexError, match="history is empty"):
        history[-1]
    for n in range(5):
        history.add(_exchange(n))
    assert len(history) == 3
    assert history[-1].url == "/n/4"
    assert history[4].url == "/n/4" and history[2].url == "/n/2"
    with pytest.raises(IndexError, match="fell off the history"):
        history[1]
    with pytest.raises(IndexError, match=r"holds 2\.\.4"):
        history[9]
    with pytest.raises(TypeError, match="int index"):
        history["x"]  # type: ignore[index]
    lines = repr(history).splitlines()
    assert lines[0].split() == ["#", "via", "method", "url", "status", "size", "time"]
    assert lines[1].split()[:5] == ["2", "client", "GET", "/n/2", "200"]
    assert len(lines) == 4


def test_curl_quotes_and_leaves_out_the_client_headers() -> None:
    command = curl_command(
        "POST",
        "http://127.0.0.1:8000/echo?a=1&b=2",
        [("host", "x"), ("user-agent", "httpx"), ("x-token", "it's"), ("content-length", "7")],
        b'{"a": 1}',
    )
    assert shlex.split(command) == [
        "curl",
        "-X",
        "POST",
        "http://127.0.0.1:8000/echo?a=1&b=2",
        "-H",
        "x-token: it's",
        "--data-raw",
        '{"a": 1}',
    ]
    assert curl_command("GET", "http://h/") == "curl http://h/"
    assert shlex.split(curl_command("HEAD", "http://h/", unix_socket="/tmp/s"))[:4] == [
        "curl",
        "--unix-socket",
        "/tmp/s",
        "--head",
    ]


def test_replay_changes_merge_headers_and_params_and_replace_the_body() -> None:
    exchange = _exchange(
        1,
        method="POST",
        url="/echo",
        call={"url": "/echo", "json": {"a": 1}, "headers": {"X-Token": "a", "Accept": "x"}},
    )
    method, url, call = replay_call(exchange, {"headers": {"x-token": "b"}, "params": {"q": 1}})
    assert (method, url) == ("POST", "/echo")
    assert call["json"] == {"a": 1} and call["params"] == {"q": 1}
    assert call["headers"] == {"Accept": "x", "x-token": "b"}
    _, _, call = replay_call(exchange, {"body": "raw"})
    assert "json" not in call and call["body"] == "raw"
    method, url, _ = replay_call(exchange, {"method": "put", "url": "/other"})
    assert (method, url) == ("PUT", "/other")
    with pytest.raises(TypeError, match="cannot change timeout"):
        replay_call(exchange, {"timeout": 3})
    assert with_params("/a?x=1", {"y": 2}) == "/a?x=1&y=2"


@pytest.mark.slow
def test_history_replay_and_curl_in_a_live_console(tmp_path: Path) -> None:
    run = scripted(
        tmp_path,
        'client.get("/items/3", params={"q": "shoes"}).json()',
        'client.post("/echo", json={"a": 1}, headers={"X-Token": "t1"}).json()',
        'do("/stats")',
        "print(history)",
        "history[1].request.method, history[1].response.status_code",
        "replay(1, json={'a': 2}).json()",
        "replay(0, params={'q': 'hats'}).json()",
        "(await replay(2)).response.status",
        "history[-1].via, history[-1].url, len(history)",
        "import shlex, subprocess",
        "subprocess.run(shlex.split(history[1].curl()), capture_output=True, text=True).stdout",
        "again = client.post('/echo', json={'a': 1}, headers={'X-Token': 't1'})",
        "history[1].curl() == again.curl()",
        "history[2].curl()",
        "refresh(); len(history)",
        'replay(1, headers={"x-token": "t2"}).json()["token"]',
        "pids = [w.pid for w in workers if w.row.kind == 'server']",
        "restart()",
        "reload()",
        "[w.pid for w in workers if w.row.kind == 'server'] != pids",
        "len(history), replay(0).status_code, history[-1].url",
    )
    assert run.code == 0, run.stdout + run.stderr
    values = run.values()
    assert values[0] == "{'id': 3, 'q': 'shoes'}"
    assert values[1] == "{'json': {'a': 1}, 'token': 't1'}"
    table = run.records[3]["stdout"].splitlines()
    assert table[1].split()[:5] == ["0", "client", "GET", "/items/3?q=shoes", "200"]
    assert table[2].split()[:5] == ["1", "client", "POST", "/echo", "200"]
    assert table[3].split()[:5] == ["2", "do", "GET", "/stats", "200"]
    assert values[4] == "('POST', 200)"
    assert values[5] == "{'json': {'a': 2}, 'token': 't1'}"  # the header stays, the body changed
    assert values[6] == "{'id': 3, 'q': 'hats'}"
    assert values[7] == "200"
    assert values[8] == "('do', '/stats', 6)"
    # the command line does what the request did, against the live server
    assert values[10] == repr('{"json":{"a":1},"token":"t1"}')
    assert values[12] == "True"
    assert values[13].startswith("'curl http://127.0.0.1:") and values[13].endswith("/stats'")
    assert values[14].startswith("app re-imported")
    assert values[15] == "7"  # refresh() keeps the history
    assert values[16] == "'t2'"
    # worker restarts and a reload leave the history as it is; replay goes to the new workers
    changed = run.record("[w.pid for w in workers if w.row.kind == 'server'] != pids")
    assert changed["value"] == "True"
    last = run.record("len(history), replay(0).status_code, history[-1].url")["value"]
    assert last == "(8, 200, '/items/3?q=shoes')"


def test_old_responses_are_let_go_past_the_body_budget() -> None:
    history = History(limit=10, body_budget=250)
    for n in range(4):
        history.add(_exchange(n, size=100, response=f"body {n}"))
    assert [item.response for item in history] == [None, None, "body 2", "body 3"]
    assert history[0].url == "/n/0"  # the line, curl() and replay() stay
    history.add(_exchange(9, size=1000, response="big"))
    assert [item.response for item in history] == [None, None, None, None, "big"]
