"""A load generator for large downloads that discards the bodies without copying them.

wrk copies every byte it receives into its own memory (and on this 2-core machine it has one
core): for a 10 MiB file it, not the server, is what limits the throughput, so servers that spend
3-5x different CPU per GB measure the same. This client reads each response's head normally and
then drops its body in the kernel with ``recv(MSG_TRUNC)`` (Linux TCP discards the bytes without
copying them to user space), as a download to ``/dev/null`` through ``splice`` would. What is
left is the server's own cost and the loopback's.

    python bench/discard.py PORT PATH [--connections 8] [--duration 5] [--warmup 1]

Prints one JSON object: requests completed in the measured time, req/s, bytes of body, and the
failures by kind (non-200 answers, a connection reset or closed mid-response, a body shorter than
its Content-Length). Each connection is a thread with a blocking keep-alive socket (the threads
spend their time in ``recv``, without the GIL); a response counts when it completes inside the
measured time.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

HEAD_LIMIT = 65536
DROP = 4 * 1024 * 1024  # bytes dropped per recv at most (the buffer is never written)


class Failure(Exception):
    pass


class Connection:
    def __init__(self, port: int, path: str) -> None:
        self.port = port
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: discard\r\n\r\n"
        ).encode()
        self.sock: socket.socket | None = None
        self.drop = bytearray(DROP)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def fetch(self) -> int:
        """One request on the kept-alive connection; the size of the body dropped."""
        if self.sock is None:
            self.sock = self._connect()
        sock = self.sock
        sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(16384)
            if not chunk:
                raise Failure("closed before the head")
            data += chunk
            if len(data) > HEAD_LIMIT:
                raise Failure("head too large")
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)[1]
        length = -1
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length < 0:
            raise Failure("no content-length")
        remaining = length - len(rest)
        view = memoryview(self.drop)
        while remaining > 0:
            n = sock.recv_into(view, min(remaining, DROP), socket.MSG_TRUNC)
            if n == 0:
                raise Failure("body cut short")
            remaining -= n
        if close:
            sock.close()
            self.sock = None
        if status != b"200":
            raise Failure(f"status {status.decode()}")
        return length

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run(
    port: int, path: str, connections: int, duration: float, warmup: float
) -> dict[str, object]:
    start = time.monotonic()
    measure_from = start + warmup
    end = measure_from + duration
    counts = {"requests": 0, "bytes": 0}
    failures: dict[str, int] = {}
    lock = threading.Lock()

    def worker() -> None:
        conn = Connection(port, path)
        requests = size = 0
        mine: dict[str, int] = {}
        try:
            while True:
                began = time.monotonic()
                if began >= end:
                    break
                try:
                    got = conn.fetch()
                except (Failure, OSError) as exc:
                    kind = str(exc) if isinstance(exc, Failure) else type(exc).__name__
                    mine[kind] = mine.get(kind, 0) + 1
                    conn.close()
                    continue
                if measure_from <= time.monotonic() < end:  # completed in the window
                    requests += 1
                    size += got
        finally:
            conn.close()
            with lock:
                counts["requests"] += requests
                counts["bytes"] += size
                for kind, n in mine.items():
                    failures[kind] = failures.get(kind, 0) + n

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + warmup + 60)
    return {
        "requests": counts["requests"],
        "rps": counts["requests"] / duration,
        "bytes": counts["bytes"],
        "mb_s": counts["bytes"] / duration / 1e6,
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(run(args.port, args.path, args.connections, args.duration, args.warmup)))


if __name__ == "__main__":
    main()
