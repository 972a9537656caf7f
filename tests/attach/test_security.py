"""The control socket's guards, against real servers: another uid is refused before a byte is
read, a wrong token is refused, the socket is 0600 in a 0700 directory, stale sockets are cleaned;
after each refusal the server is unchanged (same processes, serving) and the refusal is logged."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attach.support import AttachTerm, Server, env_for, wait_for

pytestmark = pytest.mark.slow

NOBODY = 65534


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for srv in started:
        srv.stop()


def _attach(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "attach", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _unchanged(srv: Server, before: dict[str, int]) -> None:
    assert srv.proc.poll() is None
    assert srv.serves()
    assert srv.worker_pids() == before


def test_the_socket_is_0600_in_a_0700_directory(tmp_path: Path, servers: list[Server]) -> None:
    srv = Server(tmp_path, "--dev")
    servers.append(srv)
    srv.wait_ready()
    path = srv.socket_path()
    assert f"(control socket {path})" in srv.log()
    info = os.stat(path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


CHILD = r"""
import os, socket, sys, json, struct
os.setgroups([])
os.setgid(%(uid)d)
os.setuid(%(uid)d)
assert os.getuid() == %(uid)d
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(10)
sock.connect(sys.argv[1])
body = json.dumps({"type": "hello", "version": 1, "mode": "console"}).encode()
try:
    sock.sendall(struct.pack("!I", len(body)) + body + b"not even a frame")
    data = sock.recv(65536)
except (ConnectionResetError, BrokenPipeError):
    data = b""
print("RECEIVED", len(data))
"""


@pytest.mark.skipif(os.getuid() != 0, reason="dropping to another uid needs root")
def test_another_uid_is_refused_before_any_byte_is_read(servers: list[Server]) -> None:
    # a runtime directory the other user can reach (under /tmp, not pytest's 0700 tree), with the
    # directory and the socket opened up: only the peer-credential check stands in the way
    top = Path(tempfile.mkdtemp(prefix="vivace-sec-"))
    try:
        os.chmod(top, 0o755)
        (top / ".run").mkdir(mode=0o755)
        env = env_for(top)
        os.chmod(top / ".run", 0o755)
        srv = Server(top, "--dev", env=env)
        servers.append(srv)
        srv.wait_ready()
        before = srv.worker_pids()
        path = srv.socket_path()
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o666)
        child = subprocess.run(
            [sys.executable, "-c", CHILD % {"uid": NOBODY}, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert child.returncode == 0, child.stderr
        assert "RECEIVED 0" in child.stdout  # closed, not one byte answered
        wait_for(lambda: "refused a connection from uid 65534" in srv.log(), 10, "the refusal")
        log = srv.log()
        assert "Console attached" not in log
        assert "not a JSON frame" not in log and "closed pid" not in log  # nothing was parsed
        _unchanged(srv, before)
        # the owner still attaches
        done = _attach(env, "6 * 7\n", "--pid", str(srv.pid))
        assert done.returncode == 0 and done.stdout.strip() == "42", done.stderr
    finally:
        for srv in servers:
            srv.stop()
        subprocess.run(["rm", "-rf", str(top)], check=False, timeout=30)


def test_tcp_needs_the_token(tmp_path: Path, servers: list[Server]) -> None:
    srv = Server(tmp_path, "--dev", "--attach-tcp", "127.0.0.1:0")
    servers.append(srv)
    srv.wait_ready()
    wait_for(lambda: "token (shown once)" in srv.log(), 10, "the TCP listener's line")
    match = re.search(r"vivace attach --tcp (\S+) --token-file (\S+)", srv.log())
    assert match is not None, srv.log()
    address, token_file = match.group(1), Path(match.group(2))
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert f"token (shown once): {token}" in srv.log()
    before = srv.worker_pids()

    wrong = _attach(srv.env, "6 * 7\n", "--tcp", address, "--token", "x" * len(token))
    assert wrong.returncode == 1
    assert "refused" in wrong.stderr and wrong.stdout == ""
    term = AttachTerm(tmp_path, srv.env, "--tcp", address, "--token", "y" * len(token))
    try:  # from a terminal: one line, exit code 1, the terminal as it was
        assert term.exit_code() == 1
        line = f"vivace attach: the server at {address} closed the connection (refused)"
        assert line in term.text
        assert term.stty_restored()
    finally:
        term.close()
    wait_for(lambda: "(wrong or missing token)" in srv.log(), 10, "the refusal")

    # a peer that sends a frame instead of the token line gets nothing back
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b'\x00\x00\x00\x10{"type":"hello"}\n')
        assert raw.recv(65536) == b""
    wait_for(lambda: srv.log().count("(wrong or missing token)") >= 2, 10, "the refusal")
    _unchanged(srv, before)

    right = _attach(
        srv.env, "import os; os.getpid()\n", "--tcp", address, "--token-file", str(token_file)
    )
    assert right.returncode == 0, right.stderr
    assert right.stdout.strip() == str(srv.pid)
    srv.stop()
    assert not token_file.exists()


def test_stale_sockets_are_cleaned(tmp_path: Path, servers: list[Server]) -> None:
    env = env_for(tmp_path)
    directory = Path(env["XDG_RUNTIME_DIR"]) / "vivace"
    directory.mkdir(mode=0o700)
    stale = directory / "4194000.sock"  # above pid_max's default: no such process
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()  # the file stays, nobody listens: what a killed server leaves
    assert stale.exists()

    by_path = _attach(env, "1\n", "--socket", str(stale))
    assert by_path.returncode == 1
    assert "(a stale socket file, removed)" in by_path.stderr
    assert not stale.exists()

    # a server killed with SIGKILL leaves its socket; the next attach removes it
    srv = Server(tmp_path, "--dev", env=env)
    servers.append(srv)
    srv.wait_ready()
    other = Server(tmp_path, "--dev", env=env)
    servers.append(other)
    other.wait_ready()
    before = other.worker_pids()
    path = srv.socket_path()
    os.killpg(srv.pid, 9)
    srv.proc.wait(10)
    assert path.exists()
    found = _attach(env, "import os; os.getpid()\n")  # the only live one is found
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(other.pid)
    assert not path.exists()
    _unchanged(other, before)


def test_tcp_with_tls_when_the_server_has_a_certificate(
    tmp_path: Path, servers: list[Server]
) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    srv = Server(
        tmp_path,
        "--dev",
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        "--attach-tcp",
        "127.0.0.1:0",
    )
    servers.append(srv)
    wait_for(lambda: "Attach over TCP (TLS)" in srv.log(), 30, "the TLS listener's line")
    match = re.search(r"vivace attach --tcp (\S+) --token-file (\S+)", srv.log())
    assert match is not None, srv.log()
    address, token_file = match.group(1), match.group(2)

    plain = _attach(srv.env, "1\n", "--tcp", address, "--token-file", token_file)
    assert plain.returncode == 1 and "refused" in plain.stderr
    wait_for(lambda: "TLS handshake failed" in srv.log(), 10, "the refusal")

    secure = _attach(
        srv.env,
        "import os; os.getpid()\n",
        "--tcp",
        address,
        "--token-file",
        token_file,
        "--tls-ca",
        str(ca_file),
    )
    assert secure.returncode == 0, secure.stderr
    assert secure.stdout.strip() == str(srv.pid)
