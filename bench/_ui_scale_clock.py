"""Where a request's time goes, measured inside the WSGI app.

`WsgiClock` wraps the Flask app's wsgi_app: a request's time runs from the call into
the app to the last byte of its body (pages render before they return), and its first
byte is when the body yields its first non-empty chunk (a stream's first decrypted
bytes). SQLAlchemy's cursor events time every statement (driver, network and server
together) and Flask's template signals the rendering, so each request splits into SQL,
templates (less the SQL run from inside them, such as the alarms in base.html) and the
rest (Flask, sessions, the ORM building objects, the policy). CPU is read from /proc for
this process and for the database server processes serving the app's connections, and
the garbage collector's pauses are timed through gc.callbacks."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from _common import process_cpu_seconds
from flask import Flask, before_render_template, template_rendered
from sqlalchemy import event


@dataclass
class Sample:
    seconds: float = 0.0
    first_byte: float | None = None
    sql_seconds: float = 0.0
    statements: int = 0
    template_seconds: float = 0.0
    template_sql_seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    gc_seconds: float = 0.0  # in the garbage collector, during the request
    full_collections: int = 0  # of them, generation-2 (whole-heap) collections
    status: int = 0
    recorded: bool = False  # a custody event was appended (an INSERT into ledger_leaves)
    # statement text -> [total seconds, count, slowest, parameters of the slowest, rows]
    by_statement: dict[str, list[Any]] = field(default_factory=dict)


class WsgiClock:
    def __init__(self, app: Flask, engine: Any, server_pids: Any) -> None:
        self.current = Sample()
        self._server_pids = server_pids
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._server0 = 0.0
        self._statement_t = 0.0
        self._render_t: float | None = None
        self._render_sql = 0.0
        inner = app.wsgi_app
        app.wsgi_app = self._wrap(inner)  # type: ignore[method-assign]
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        before_render_template.connect(self._render_starts, app)
        template_rendered.connect(self._render_ends, app)
        self._gc_t = 0.0
        gc.callbacks.append(self._collecting)

    # --- requests ----------------------------------------------------------------------

    def _wrap(self, inner: Any) -> Any:
        def timed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            self.current = Sample()
            self._cpu0 = time.process_time()
            self._server0 = process_cpu_seconds(self._server_pids())
            self._t0 = time.perf_counter()
            return self._body(inner(environ, start_response))

        return timed

    def _body(self, result: Iterable[bytes]) -> Iterator[bytes]:
        sample = self.current
        try:
            for chunk in result:
                if chunk and sample.first_byte is None:
                    sample.first_byte = time.perf_counter() - self._t0
                yield chunk
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            sample.seconds = time.perf_counter() - self._t0
            sample.client_cpu = time.process_time() - self._cpu0
            sample.server_cpu = process_cpu_seconds(self._server_pids()) - self._server0

    # --- SQL and templates -------------------------------------------------------------

    def _before(self, *_args: Any) -> None:
        self._statement_t = time.perf_counter()

    def _after(
        self, _conn: Any, cursor: Any, statement: str, params: Any, _ctx: Any, _many: Any
    ) -> None:
        spent = time.perf_counter() - self._statement_t
        sample = self.current
        sample.sql_seconds += spent
        sample.statements += 1
        if self._render_t is not None:
            self._render_sql += spent
        if statement.startswith("INSERT INTO ledger_leaves"):
            sample.recorded = True
        entry = sample.by_statement.setdefault(statement, [0.0, 0, 0.0, None, 0])
        entry[0] += spent
        entry[1] += 1
        entry[4] += max(0, cursor.rowcount or 0)
        if spent >= entry[2]:
            entry[2], entry[3] = spent, params

    def _collecting(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t = time.perf_counter()
            return
        self.current.gc_seconds += time.perf_counter() - self._gc_t
        if info["generation"] == 2:
            self.current.full_collections += 1

    def _render_starts(self, *_args: Any, **_kwargs: Any) -> None:
        self._render_t = time.perf_counter()
        self._render_sql = 0.0

    def _render_ends(self, *_args: Any, **_kwargs: Any) -> None:
        if self._render_t is not None:
            self.current.template_seconds += time.perf_counter() - self._render_t
            self.current.template_sql_seconds += self._render_sql
            self._render_t = None
