"""The published state table: the manager's latest snapshot, in memory that every process maps.

The manager (main process) is the only writer: it publishes a new version each time the table
changes, before the call that changed it returns or is confirmed to the child that asked for it.
Each process reads the table from its own map of the same memory: a read that finds the version
unchanged costs one integer read; a read after a change unpickles the new snapshot once.

Rules:

1. One writer: :class:`TablePublisher`, in the main process, on the manager's loop.
2. Layout: a header of two native 64-bit words, ``version`` and ``length``, then ``length`` bytes
   of the pickled snapshot. ``version`` is odd while a write is under way (a seqlock): the writer
   makes it odd, writes the snapshot and its length, then makes it even again.
3. A reader (:class:`TableReader`) reads ``version``; unchanged and even: its cached snapshot.
   Otherwise it copies the bytes and reads ``version`` again: unchanged, the copy is whole and is
   unpickled; changed, it reads again.
4. The memory grows, never shrinks: the writer extends it before publishing a larger snapshot; a
   reader whose map is shorter than the header says maps it again.
5. Anonymous memory, handed over as a file descriptor: a ``memfd`` on Linux, an unlinked
   temporary file elsewhere. Children forked from the main process inherit the descriptor; fork
   server and spawn children receive a duplicate through the same ``multiprocessing`` hand-over
   as their sockets and control pipe (:class:`Segment` pickles as a ``DupFd``). It has no name,
   so nothing can be left behind in ``/dev/shm`` (even when the main process is SIGKILLed) and no
   child has to attach or unlink anything; the memory is freed when the last process holding it
   exits. (``multiprocessing.shared_memory`` would need a name, an unlink at shutdown that a
   SIGKILL skips, and, in Python 3.11, registers every attaching process with the resource
   tracker, which warns about or unlinks segments that other processes still use.)
"""

from __future__ import annotations

import mmap
import os
import pickle
import time
import weakref
from typing import Any

__all__ = ["HEADER", "Segment", "TablePublisher", "TableReader"]

Snapshot = dict[str, dict[str, Any]]

HEADER = 16  # version, length: two native unsigned 64-bit words
_INITIAL = 64 * 1024
_STUCK = 1.0  # seconds a reader waits for an odd version to turn even (a writer stopped mid-write)


class Segment:
    """The descriptor of the published table, as a child receives it in its ``WorkerSpec``."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        # fork server / spawn: a duplicate travels with the process's other descriptors
        from multiprocessing.reduction import DupFd

        return (_rebuild, (DupFd(self.fd),))

    def __repr__(self) -> str:
        return f"Segment(fd={self.fd})"


def _rebuild(dup: Any) -> Segment:
    return Segment(dup.detach())


def _anonymous_fd() -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create("vivace-state-table", os.MFD_CLOEXEC)
    import tempfile

    with tempfile.TemporaryFile() as file:  # unlinked at once (or never named: O_TMPFILE)
        return os.dup(file.fileno())


class TablePublisher:
    """The writer (rule 1): ``publish`` writes a snapshot as the next version."""

    def __init__(self, size: int = _INITIAL) -> None:
        self._fd = _anonymous_fd()
        self._release = weakref.finalize(self, os.close, self._fd)  # if close() is never called
        os.ftruncate(self._fd, max(size, mmap.PAGESIZE))
        self._map = mmap.mmap(self._fd, os.fstat(self._fd).st_size)
        self._header = memoryview(self._map)[:HEADER].cast("Q")
        self._version = 0
        self.closed = False

    @property
    def segment(self) -> Segment:
        return Segment(self._fd)

    @property
    def version(self) -> int:
        return self._version

    @property
    def size(self) -> int:
        return len(self._map)

    def publish(self, table: Snapshot) -> int:
        """Write ``table`` as the next version (rule 2); returns that version."""
        if self.closed:
            return self._version
        data = pickle.dumps(table, pickle.HIGHEST_PROTOCOL)
        end = HEADER + len(data)
        if end > len(self._map):
            self._grow(end)
        header = self._header
        header[0] = self._version + 1  # odd: a write is under way
        self._map[HEADER:end] = data
        header[1] = len(data)
        self._version += 2
        header[0] = self._version
        return self._version

    def _grow(self, needed: int) -> None:
        size = len(self._map)
        while size < needed:
            size *= 2
        os.ftruncate(self._fd, size)  # before the header announces a longer snapshot (rule 4)
        self._header.release()
        self._map.close()
        self._map = mmap.mmap(self._fd, size)
        self._header = memoryview(self._map)[:HEADER].cast("Q")

    def close(self) -> None:
        """Unmap and close (the memory itself lives on in the children that still map it)."""
        if self.closed:
            return
        self.closed = True
        self._header.release()
        self._map.close()
        self._release()


class TableReader:
    """A process's view of the published table (rule 3); ``read()`` returns the latest snapshot.

    The snapshot returned is shared by every read of one version: callers copy before changing it.
    """

    def __init__(self, segment: Segment) -> None:
        self._fd = os.dup(segment.fd)  # its own: the spec's may belong to the main's objects (fork)
        self._map = mmap.mmap(self._fd, os.fstat(self._fd).st_size, access=mmap.ACCESS_READ)
        self._header = memoryview(self._map)[:HEADER].cast("Q")
        self._version = -1
        self._table: Snapshot = {}

    def read(self) -> Snapshot:
        if self._header[0] == self._version:
            return self._table
        return self._refresh()

    @property
    def version(self) -> int:
        return self._version

    def _refresh(self) -> Snapshot:
        deadline = 0.0
        while True:
            header = self._header
            version = header[0]
            if version & 1:  # the writer is between its two version writes
                now = time.monotonic()
                if not deadline:
                    deadline = now + _STUCK
                elif now > deadline:
                    return self._table  # the writer stopped mid-write: the last whole version
                time.sleep(0)  # yield to the writer
                continue
            end = HEADER + header[1]
            if end > len(self._map):
                self._remap()
                continue
            data = self._map[HEADER:end]
            if header[0] != version:
                continue  # overwritten while copying
            self._table = pickle.loads(data) if data else {}
            self._version = version
            return self._table

    def _remap(self) -> None:
        size = os.fstat(self._fd).st_size
        self._header.release()
        self._map.close()
        self._map = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ)
        self._header = memoryview(self._map)[:HEADER].cast("Q")

    def close(self) -> None:
        self._header.release()
        self._map.close()
        os.close(self._fd)
