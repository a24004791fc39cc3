"""Writing a spool file beside the sealing pass: direct I/O from a writer thread.

The sealing pass hands each sealed segment to `SpoolWriter.write`, which copies it into
one of a few page-aligned blocks; a full block goes to a writer thread that writes it
with O_DIRECT at its offset, so the disk works while the next segments are read, hashed
and encrypted. Direct I/O skips the page cache: taking 2 GiB of ciphertext into it cost
the dock more system time than the disk needed to store it, and the camera's own pages
are what the wipe re-reads. The tail (under one filesystem block) is written padded and
the file cut to its length. Where the filesystem refuses O_DIRECT (tmpfs, some network
file systems), the same thread writes through the page cache instead.

`finish()` returns only when every byte is written and fsynced: the journal may then
record the spool file as complete (dock/journal.py)."""

from __future__ import annotations

import mmap
import os
import queue
import threading

ALIGN = 4096  # covers the logical block size of every disk the dock runs on
BLOCK = 4 * 1024 * 1024
BLOCKS = 4  # one being filled, up to three queued or being written


def _open_target(path: os.PathLike[str] | str) -> tuple[int, bool]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        try:
            return os.open(path, flags | direct, 0o600), True
        except OSError:
            pass  # the filesystem takes no direct I/O; nothing was created
    return os.open(path, flags, 0o600), False


class SpoolWriter:
    """A new spool file at path, written in order by write(); finish() or abort() once."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.fd, self.direct = _open_target(path)
        self._free: queue.Queue[mmap.mmap] = queue.Queue()
        self._full: queue.Queue[tuple[mmap.mmap, int, int] | None] = queue.Queue()
        for _ in range(BLOCKS):
            self._free.put(mmap.mmap(-1, BLOCK))
        self._block: mmap.mmap | None = None
        self._filled = 0
        self._offset = 0  # of the block being filled
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    # --- the sealing pass's side --------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Take all of data (copied: the caller may reuse its buffer at once)."""
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            if self._block is None:
                self._block = self._take_free()
            take = min(BLOCK - self._filled, len(view))
            self._block[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == BLOCK:
                self._hand_over()
        return total

    def flush(self) -> None:
        """Nothing to do: finish() writes the tail (a file object's flush is expected)."""

    def finish(self) -> int:
        """Write what is left, wait for the writer, fsync; return the file's size."""
        size = self._offset + self._filled
        if self._filled:
            self._hand_over()
        self._stop()
        if self._error is not None:
            raise self._error
        if os.fstat(self.fd).st_size != size:
            os.ftruncate(self.fd, size)  # the padded tail
        os.fsync(self.fd)
        return size

    def abort(self) -> None:
        """Stop writing (after a failure); the caller removes the file."""
        self._stop()

    def close(self) -> None:
        os.close(self.fd)

    def _take_free(self) -> mmap.mmap:
        while True:
            if self._error is not None:
                raise self._error
            try:
                return self._free.get(timeout=0.5)
            except queue.Empty:
                continue

    def _hand_over(self) -> None:
        if self._error is not None:
            raise self._error
        assert self._block is not None  # noqa: S101  (write() filled one)
        self._full.put((self._block, self._offset, self._filled))
        self._offset += self._filled
        self._block, self._filled = None, 0

    def _stop(self) -> None:
        if not self._closed:
            self._closed = True
            self._full.put(None)
            self._thread.join()

    # --- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            block, offset, length = item
            if self._error is None:
                try:
                    self._write_block(block, offset, length)
                except BaseException as exc:  # noqa: BLE001  (handed to the sealing pass)
                    self._error = exc
            self._free.put(block)

    def _write_block(self, block: mmap.mmap, offset: int, length: int) -> None:
        # A direct write must cover whole aligned blocks: only the last one is short,
        # and its padding is cut off by finish().
        padded = -(-length // ALIGN) * ALIGN if self.direct else length
        if padded > length:
            block[length:padded] = bytes(padded - length)
        view = memoryview(block)[:padded]
        done = 0
        try:
            while done < padded:
                done += os.pwrite(self.fd, view[done:], offset + done)
        finally:
            view.release()
