"""Reading an upload's request body into the caller's buffers, straight from the socket.

A PATCH body is gigabytes that only pass through: hashed, written to the staged file,
forgotten. Read through gunicorn's `wsgi.input`, each MiB is a fresh bytes object that
its buffering copies four or five times more (BytesIO writes, `getvalue`, slices), and
every new MiB is faulted into memory and given back: that, more than hashing, was what
the bytes-arriving part of an upload spent its CPU on. Under gunicorn with a
Content-Length we therefore take over the body from its reader: the bytes it already
holds first, then `recv_into` the caller's buffer, exactly Content-Length bytes
and never past them (a pipelined next request stays on the socket for gunicorn). Its
reader is told of every byte taken, so what the handler leaves unread (a body refused
part way, 413) is still drained by gunicorn before the next request on the connection,
never parsed as one; a failed read marks the body failed, so gunicorn closes the
connection instead of parsing mid-body.

Anywhere else (the development server, the test client, chunked bodies) the body is read
from the WSGI stream, with `readinto` when it has one. Either way the caller gets a
`readinto`, so the bytes land in buffers it reuses (app/staging.py)."""

from __future__ import annotations

import io
import socket
import ssl
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import ClientDisconnected


def body_reader(
    environ: dict[str, Any], length: int | None, stream: Any
) -> Callable[[memoryview], int]:
    """`readinto` for the request body: exactly `length` bytes, or to its end when
    None; 0 once it is over. `stream` is what to read when gunicorn's socket cannot be
    (the server's input stream with a Content-Length, the decoding one without).
    ConnectionError when the client goes away before the end."""
    taken = _take_over_gunicorn_body(environ, length)
    if taken is not None:
        sock, ahead, body = taken
        return _SocketBody(sock, ahead, body, length or 0).readinto
    return _StreamBody(stream, length).readinto


def _take_over_gunicorn_body(environ: dict[str, Any], length: int | None) -> Any:
    """(socket, bytes gunicorn already read, its Body) if this is a gunicorn body of known
    length that nobody has read from yet; None otherwise."""
    if length is None:
        return None
    sock, body = environ.get("gunicorn.socket"), environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    held = getattr(body, "buf", None)
    if (
        sock is None
        or type(reader).__name__ != "LengthReader"
        or getattr(reader, "length", None) != length
        or getattr(unreader, "sock", None) is not sock
        or not callable(getattr(unreader, "take_buffered", None))
        or not callable(getattr(unreader, "unread", None))
        or not hasattr(sock, "recv_into")
        or not isinstance(held, io.BytesIO)
        or held.tell()
    ):
        return None
    ahead = unreader.take_buffered()
    if len(ahead) > length:  # the next pipelined request: gunicorn's to parse
        unreader.unread(ahead[length:])
        ahead = ahead[:length]
    # gunicorn's reader counts what is left on the socket from now on: the bytes taken
    # here are ours (dropped if the handler stops early, as draining would drop them)
    reader.length -= len(ahead)
    return sock, ahead, body


class _SocketBody:
    def __init__(self, sock: Any, ahead: bytes, body: Any, length: int) -> None:
        self._sock, self._ahead, self._body = sock, memoryview(ahead), body
        # gunicorn's LengthReader: its length is kept at what is left of the body on the
        # socket, so it drains exactly that (nothing twice, nothing of the next request)
        # when the handler stops early.
        self._reader = body.reader
        self._left = length
        # Wait for the whole buffer in one call where the socket can (not TLS): each
        # return to Python must take the GIL back from the threads hashing and
        # verifying, which can cost up to the switch interval (5 ms) every time.
        self._flags = 0 if isinstance(sock, ssl.SSLSocket) else socket.MSG_WAITALL

    def readinto(self, buffer: memoryview) -> int:
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        if self._ahead:
            got = min(want, len(self._ahead))
            buffer[:got] = self._ahead[:got]
            self._ahead = self._ahead[got:]
        else:
            try:
                got = self._sock.recv_into(buffer, want, self._flags)
            except OSError as exc:  # reset, timed out
                self._body.failed = True  # where the next request starts is unknown
                raise ConnectionError("client went away") from exc
            if not got:
                self._body.failed = True
                raise ConnectionError("client went away")
            self._reader.length -= got
        self._left -= got
        return int(got)


class _StreamBody:
    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream, self._left = stream, length
        self._readinto = getattr(stream, "readinto", None)

    def readinto(self, buffer: memoryview) -> int:
        want = len(buffer) if self._left is None else min(len(buffer), self._left)
        if want <= 0:
            return 0
        try:
            if self._readinto is not None:
                got = int(self._readinto(buffer[:want]) or 0)
            else:
                chunk = self._stream.read(want)
                got = len(chunk)
                buffer[:got] = chunk
        except ClientDisconnected:
            raise ConnectionError("client went away") from None
        except OSError as exc:  # the socket file: reset, timed out
            raise ConnectionError("client went away") from exc
        if not got:
            if self._left:
                raise ConnectionError("client went away")
            return 0
        if self._left is not None:
            self._left -= got
        return got
