"""A loopback TCP proxy that cuts one connection in the middle of a request."""

from __future__ import annotations

import socket
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:port to a target. The first connection whose client sends
    `cut_after` bytes is cut there: the client's side is aborted, and the server gets an
    end of stream in mid-body (as when a cable is pulled and the kernel gives up).

    `cut_done` is set once the server has finished with the cut request and closed its
    side, so a test can ask what the server kept without racing it."""

    def __init__(self, target_port: int, cut_after: int | None = None) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self.cut_done = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

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
            state = {"cut": False}
            threading.Thread(
                target=self._pump_up, args=(client, upstream, state), daemon=True
            ).start()
            threading.Thread(
                target=self._pump_down, args=(upstream, client, state), daemon=True
            ).start()

    def _pump_up(
        self, client: socket.socket, upstream: socket.socket, state: dict[str, bool]
    ) -> None:
        sent = 0
        try:
            while data := client.recv(65536):
                limit = self.cut_after
                if limit is not None and sent + len(data) >= limit:
                    upstream.sendall(data[: max(limit - sent, 0)])
                    self.cut_after = None  # only once
                    self.cuts += 1
                    state["cut"] = True
                    upstream.shutdown(socket.SHUT_WR)  # the server sees the body end early
                    client.shutdown(socket.SHUT_RDWR)  # the client sees the connection drop
                    return
                upstream.sendall(data)
                sent += len(data)
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _pump_down(
        self, upstream: socket.socket, client: socket.socket, state: dict[str, bool]
    ) -> None:
        try:
            while data := upstream.recv(65536):
                if not state["cut"]:
                    client.sendall(data)
        except OSError:
            pass
        finally:
            if state["cut"]:
                self.cut_done.set()
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._listener.close()
