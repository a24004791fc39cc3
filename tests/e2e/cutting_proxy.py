"""A loopback TCP proxy that breaks one connection in the middle of a request.

Modes, applied once, when the client has sent `cut_after` bytes on one connection:
- "cut": the server gets an end of stream in mid-body, the client's side is dropped;
- "reset": both sides get a TCP reset (SO_LINGER 0), as from a middlebox that died;
- "stall": nothing more is forwarded; when the client gives up and closes, the server's
  side is closed too (a path that went silent).

One thread per connection multiplexes both directions with a selector, so closing a
socket never races another thread blocked on it. `done` is set once the broken
connection is fully closed, so a test can look at what the server kept without racing
it."""

from __future__ import annotations

import selectors
import socket
import struct
import threading

_RESET = struct.pack("ii", 1, 0)


class CuttingProxy:
    def __init__(self, target_port: int, cut_after: int | None = None, mode: str = "cut") -> None:
        if mode not in ("cut", "reset", "stall"):
            raise ValueError(mode)
        self.target_port = target_port
        self.cut_after = cut_after
        self.mode = mode
        self.cuts = 0
        self.forwarded = 0  # client-to-server bytes that reached the server
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def cut_done(self) -> threading.Event:  # the name the tus tests use
        return self.done

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _claim_break(self, sent: int, incoming: int) -> int | None:
        """How many of the incoming bytes to forward before breaking, or None."""
        with self._lock:
            if self.cut_after is None or sent + incoming < self.cut_after:
                return None
            keep = max(self.cut_after - sent, 0)
            self.cut_after = None
            self.cuts += 1
            return keep

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ)
        selector.register(upstream, selectors.EVENT_READ)
        sent = 0
        broken = False
        try:
            while True:
                for key, _ in selector.select():
                    sock = key.fileobj
                    try:
                        data = sock.recv(65536)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if sock is client:
                        if broken:  # stalled: swallow until the client gives up
                            if not data:
                                return
                            continue
                        if not data:
                            upstream.shutdown(socket.SHUT_WR)
                            selector.unregister(client)
                            continue
                        keep = self._claim_break(sent, len(data))
                        if keep is None:
                            upstream.sendall(data)
                            sent += len(data)
                            with self._lock:
                                self.forwarded += len(data)
                            continue
                        upstream.sendall(data[:keep])
                        with self._lock:
                            self.forwarded += keep
                        broken = True
                        if self.mode == "cut":
                            upstream.shutdown(socket.SHUT_WR)
                            client.shutdown(socket.SHUT_RDWR)
                            self._drain(upstream)
                            return
                        if self.mode == "reset":
                            for s in (client, upstream):
                                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                            return
                        # stall: keep both open, forward nothing more
                    else:
                        if not data:
                            return
                        if not broken:
                            client.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for s in (client, upstream):
                s.close()
            if broken:
                self.done.set()

    @staticmethod
    def _drain(upstream: socket.socket) -> None:
        """Wait for the server to finish with the cut request and close its side."""
        try:
            while upstream.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
