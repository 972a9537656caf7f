"""The inspector against real servers: the HTTP service (bearer token, ``GET /``, ``POST /reload``,
``/scale``, ``/shutdown``, a custom command) and ``vivace inspect`` over HTTP and over the control
socket."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.attach.support import Server, env_for, wait_for
from tests.support import free_port

pytestmark = pytest.mark.slow

KEY = "s3cret-token"


@pytest.fixture
def inspected(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    port = free_port()
    env = env_for(
        tmp_path,
        ATTACH_TEST_INSPECTOR="1",
        ATTACH_TEST_INSPECTOR_PORT=str(port),
        ATTACH_TEST_INSPECTOR_KEY=KEY,
    )
    srv = Server(tmp_path, env=env)  # no --dev: no control socket, the HTTP inspector only
    try:
        srv.wait_ready(attach=False)
        wait_for(lambda: f"Inspector @ http://127.0.0.1:{port}" in srv.log(), 10, "the inspector")
        yield srv, f"http://127.0.0.1:{port}"
    finally:
        srv.stop()


def _inspect(srv: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "inspect", *args],
        capture_output=True,
        text=True,
        env=srv.env,
        timeout=90,
    )


def _servers(table: dict[str, dict[str, object]]) -> dict[str, object]:
    return {name: row["pid"] for name, row in table.items() if row.get("server")}


def test_the_http_inspector_needs_the_bearer_token(inspected: tuple[Server, str]) -> None:
    srv, url = inspected
    before = _servers(srv_table(url))
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
        got = httpx.get(url + "/", headers=headers, timeout=10)
        assert got.status_code == 401
        assert "bearer token" in got.json()["error"]
        posted = httpx.post(url + "/shutdown", headers=headers, timeout=10)
        assert posted.status_code == 401
    wait_for(lambda: "Inspector: refused POST /shutdown" in srv.log(), 10, "the refusal logged")
    assert srv.proc.poll() is None and srv.serves()
    assert _servers(srv_table(url)) == before


def srv_table(url: str) -> dict[str, dict[str, object]]:
    got = httpx.get(url + "/", headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["meta"] == {"action": "info"}
    return dict(body["result"]["workers"])


def test_http_info_scale_reload_custom_and_shutdown(inspected: tuple[Server, str]) -> None:
    srv, url = inspected
    auth = {"authorization": f"Bearer {KEY}"}
    info = httpx.get(url + "/", headers=auth, timeout=10).json()["result"]
    assert info["info"]["app"] == "AttachDemo" and info["info"]["pid"] == srv.pid
    first = _servers(info["workers"])
    assert sorted(first) == ["Vivace-Server-0-0", "Vivace-Server-1-0"]

    scaled = httpx.post(url + "/scale", json={"replicas": 3}, headers=auth, timeout=60)
    assert scaled.status_code == 200, scaled.text
    assert scaled.json()["result"].startswith("scale 2 -> 3")
    assert len(_servers(srv_table(url))) == 3

    reloaded = httpx.post(url + "/reload", json={"zero_downtime": True}, headers=auth, timeout=60)
    assert reloaded.status_code == 200, reloaded.text
    after = _servers(srv_table(url))
    assert len(after) == 3 and not set(after.values()) & set(first.values())

    custom = httpx.post(url + "/hello", json={"name": "inspector"}, headers=auth, timeout=10)
    assert custom.json() == {
        "meta": {"action": "hello"},
        "result": f"hello inspector from {srv.pid}",
    }
    unknown = httpx.post(url + "/nope", headers=auth, timeout=10)
    assert unknown.status_code == 404 and "no inspector command 'nope'" in unknown.json()["error"]
    bad = httpx.post(url + "/scale", json={"replicas": 0}, headers=auth, timeout=10)
    assert bad.status_code == 400 and ">= 1" in bad.json()["error"]
    assert srv.serves()

    down = httpx.post(url + "/shutdown", headers=auth, timeout=10)
    assert down.status_code == 200
    assert srv.proc.wait(30) == 0


def test_vivace_inspect_over_http(inspected: tuple[Server, str]) -> None:
    srv, url = inspected
    port = url.rsplit(":", 1)[1]
    refused = _inspect(srv, "--port", port)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr
    args = ("--port", port, "--api-key", KEY)
    shown = _inspect(srv, *args)
    assert shown.returncode == 0, shown.stderr
    assert f"AttachDemo (vivace), pid {srv.pid}" in shown.stdout
    assert "Vivace-Server-1-0" in shown.stdout
    scaled = _inspect(srv, *args, "scale", "1")
    assert scaled.returncode == 0, scaled.stderr
    assert re.fullmatch(r"scale 2 -> 1: stopped Vivace-Server-[01]-0\n", scaled.stdout)
    custom = _inspect(srv, *args, "hello", "name=cli")
    assert custom.stdout.strip() == f"hello cli from {srv.pid}"
    usage = _inspect(srv, *args, "scale", "two")
    assert usage.returncode == 1 and "usage: vivace inspect scale N" in usage.stderr
    down = _inspect(srv, *args, "shutdown")
    assert down.returncode == 0 and "shutting down" in down.stdout
    assert srv.proc.wait(30) == 0


def test_vivace_inspect_over_the_control_socket(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--dev")
    try:
        srv.wait_ready()
        table = json.loads(_inspect(srv, "--json").stdout)["result"]["workers"]
        first = _servers(table)
        reloaded = _inspect(srv, "reload")
        assert reloaded.returncode == 0, reloaded.stderr
        assert reloaded.stdout.startswith("reload: ")
        after = _servers(json.loads(_inspect(srv, "--json").stdout)["result"]["workers"])
        assert sorted(after) == sorted(first) and not set(after.values()) & set(first.values())
        restarted = _inspect(srv, "restart", "Vivace-Server-0-0")
        assert "restart: Vivace-Server-0-0 ready in" in restarted.stdout, restarted.stderr
        assert srv.serves()
        assert _inspect(srv, "shutdown").returncode == 0
        assert srv.proc.wait(30) == 0
        assert "Console attached" not in srv.log()
    finally:
        srv.stop()


def test_the_inspector_over_https(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    env = env_for(
        tmp_path,
        ATTACH_TEST_INSPECTOR="1",
        ATTACH_TEST_INSPECTOR_PORT=str(port),
        ATTACH_TEST_INSPECTOR_KEY=KEY,
        ATTACH_TEST_INSPECTOR_TLS_CERT=str(cert_file),
        ATTACH_TEST_INSPECTOR_TLS_KEY=str(key_file),
    )
    srv = Server(tmp_path, env=env)
    try:
        srv.wait_ready(attach=False)
        wait_for(lambda: f"Inspector @ https://127.0.0.1:{port}" in srv.log(), 10, "HTTPS")
        got = httpx.get(
            f"https://127.0.0.1:{port}/",
            headers={"authorization": f"Bearer {KEY}"},
            verify=ssl.create_default_context(cafile=str(ca_file)),
            timeout=10,
        )
        assert got.status_code == 200 and got.json()["result"]["info"]["pid"] == srv.pid
        args = ("--host", "127.0.0.1", "--port", str(port), "--api-key", KEY)
        shown = _inspect(srv, *args, "--tls-ca", str(ca_file))
        assert shown.returncode == 0, shown.stderr
        assert f"pid {srv.pid}" in shown.stdout
    finally:
        srv.stop()
