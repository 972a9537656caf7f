"""The control socket's frames and directory rules (``runtime.supervisor.attach``), in process."""

from __future__ import annotations

import asyncio
import os
import stat
import struct
from pathlib import Path
from typing import cast

import pytest

from runtime.supervisor import attach as wire


def test_a_frame_is_a_length_and_a_json_object_with_a_type() -> None:
    data = wire.encode({"type": "run", "source": "1 + 1", "id": 3})
    (size,) = struct.unpack("!I", data[:4])
    assert size == len(data) - 4
    assert wire.decode(data[4:]) == {"type": "run", "source": "1 + 1", "id": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x80\x04pickle", "not a JSON frame"),
        (b"[1, 2]", "a JSON object with a string 'type'"),
        (b'{"type": 3}', "a JSON object with a string 'type'"),
        (b'{"source": "x"}', "a JSON object with a string 'type'"),
    ],
)
def test_anything_else_is_a_protocol_error(body: bytes, message: str) -> None:
    with pytest.raises(wire.ProtocolError, match=message):
        wire.decode(body)


def _reader(data: bytes) -> wire.Connection:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return wire.Connection(reader, cast(asyncio.StreamWriter, None), "test")  # reads only


def test_a_frame_over_the_limit_is_refused_before_its_body_is_read() -> None:
    header = struct.pack("!I", wire.MAX_FRAME + 1)

    async def main() -> None:
        with pytest.raises(wire.ProtocolError, match="over the limit"):
            await _reader(header).recv()
        frame = wire.encode({"type": "hello"})
        assert await _reader(frame).recv() == {"type": "hello"}
        with pytest.raises(EOFError):
            await _reader(frame[:-1]).recv()  # cut short: the peer went away

    asyncio.run(main())


def test_the_runtime_directory_is_the_users_and_0700(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    made = wire.runtime_dir()
    assert made == tmp_path / "vivace"
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    os.chmod(made, 0o755)  # opened up by someone: closed again
    wire.runtime_dir()
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    assert wire.socket_path(1234) == made / "1234.sock"


def test_a_runtime_path_that_is_not_a_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "vivace").write_text("not a directory")
    with pytest.raises(wire.AttachError, match="is not a directory of this user"):
        wire.runtime_dir()


def test_without_a_runtime_directory_a_private_one_under_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    made = wire.runtime_dir()
    assert made == tmp_path / f"vivace-{os.getuid()}"
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
