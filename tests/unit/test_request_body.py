"""Reading a PATCH body straight from gunicorn's socket (app/request_body.py), against
gunicorn's own reader classes on a socket pair: exactly the body's bytes, whatever
gunicorn had read ahead; what follows the body stays for gunicorn; and a handler that
stops part way leaves gunicorn's reader counting exactly the rest, so draining it ends
where the next request starts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from app.request_body import body_reader

NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def _gunicorn_body(
    server: socket.socket, client: socket.socket, body: bytes, read_ahead: int
) -> tuple[dict[str, object], SocketUnreader, Body]:
    """The body (and the next request) sent by the client; gunicorn's reader objects on
    the server side, with read_ahead bytes of it already buffered, as after parsing the
    request's head."""
    client.sendall(body + NEXT)
    unreader = SocketUnreader(server)
    if read_ahead:
        unreader.unread(server.recv(read_ahead, socket.MSG_WAITALL))
    wsgi_input = Body(LengthReader(unreader, len(body)))
    return {"gunicorn.socket": server, "wsgi.input": wsgi_input}, unreader, wsgi_input


def _read_all(readinto: object, size: int = 4096) -> bytes:
    buffer, out = memoryview(bytearray(size)), b""
    while got := readinto(buffer):  # type: ignore[operator]
        out += bytes(buffer[:got])
    return out


@pytest.mark.parametrize("read_ahead", [0, 100, 20000 + len(NEXT)])
def test_the_whole_body_and_nothing_after_it(
    pair: tuple[socket.socket, socket.socket], read_ahead: int
) -> None:
    server, client = pair
    body = os.urandom(20000)
    environ, unreader, wsgi_input = _gunicorn_body(server, client, body, read_ahead)
    assert _read_all(body_reader(environ, len(body), wsgi_input)) == body
    assert wsgi_input.read(1024) == b""  # nothing left for gunicorn to drain
    assert unreader.read(len(NEXT)) == NEXT  # the next request is gunicorn's, intact


@pytest.mark.parametrize("read_ahead", [0, 3000, 20000 + len(NEXT)])
def test_a_body_left_part_way_drains_to_the_next_request(
    pair: tuple[socket.socket, socket.socket], read_ahead: int
) -> None:
    server, client = pair
    body = os.urandom(20000)
    environ, unreader, wsgi_input = _gunicorn_body(server, client, body, read_ahead)
    readinto = body_reader(environ, len(body), wsgi_input)
    buffer = memoryview(bytearray(5000))
    assert readinto(buffer) > 0  # the handler reads some, then gives up (a failed write)
    while wsgi_input.read(1024):  # what gunicorn does before the next request
        pass
    assert not wsgi_input.failed
    assert unreader.read(len(NEXT)) == NEXT


def test_a_client_gone_mid_body_marks_the_body_failed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    client.sendall(b"only part")
    client.shutdown(socket.SHUT_WR)
    unreader = SocketUnreader(server)
    wsgi_input = Body(LengthReader(unreader, 1000))
    environ = {"gunicorn.socket": server, "wsgi.input": wsgi_input}
    readinto = body_reader(environ, 1000, wsgi_input)
    with pytest.raises(ConnectionError):
        _read_all(readinto)
    assert wsgi_input.failed  # gunicorn closes the connection rather than parse mid-body
