"""Running the UI measures: the service's Flask app on the loaded database, the two
people signed in through the real forms, the requests timed by `WsgiClock`, and each
measure summarised with where its time went.

The app is `create_app(settings, start_worker=False)`: the background checkpointer and
upkeep threads would otherwise share this process with the requests being timed. Each
person has two signed-in sessions: one for pages and first stream reads, one for seeks
(a session remembers 200 streamed item-and-purpose pairs, and a seek must not be the
first read of its pair, which would append a custody event)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from _common import CpuMeter, percentile, process_cpu_seconds
from _ui_scale_clock import Sample, WsgiClock
from _ui_scale_requests import (
    SEEK_PURPOSE,
    STREAM_PURPOSES,
    PkProbe,
    Request,
    Role,
    Spec,
    make_specs,
    one,
    run,
    scoped_items,
    vocabulary,
)
from _ui_scale_world import sign_in
from sqlalchemy import event

from app import create_app
from app.accounts.admin import principal_for
from app.db import Database
from app.server import settle_worker
from evidence.adapters.sql.org import User
from evidence.policy import Action, scope_for

ROLE_LABELS = {
    "supervisor": "supervisor of 3 schools",
    "records": "records officer (whole district)",
}


class _AppBackends:
    """The database server processes behind the app's own pooled connections (and the
    probe's): other sessions on the database are not the app's work."""

    def __init__(self, engine: Any) -> None:
        self.pids: set[int] = set()
        event.listen(engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        self.pids.add(int(dbapi_connection.info.backend_pid))

    def __call__(self) -> list[int]:
        return sorted(self.pids)


class UiBench:
    def __init__(
        self, world: Any, media: list[Any], url: str, first_day: date, last_day: date, sizes: Any
    ) -> None:
        self.sizes = sizes
        self.url = url
        self.world = world
        self.rng = random.Random(7)
        self.app = create_app(world.settings, start_worker=False)
        settle_worker()  # as a gunicorn worker does once its app is built (app/server.py)
        engine = self.app.extensions["bwc.db"].engine
        self.backends = _AppBackends(engine)
        self.clock = WsgiClock(self.app, engine, self.backends)
        self.side = Database(url)  # the benchmark's own queries stay off the app's engine
        self.session = self.side.sessions()
        self.clients: dict[tuple[str, str], Any] = {}
        roles = []
        for name, username in (("supervisor", "bench-supervisor"), ("records", "bench-records")):
            person = world.people[username]
            for offset, kind in enumerate(("pages", "seeks")):
                client = self.app.test_client()
                sign_in(client, person, step_offset=offset)
                self.clients[name, kind] = client
            user = self.session.get(User, person.user_id)
            scope = scope_for(principal_for(self.session, user), Action.VIEW_EVIDENCE)
            schools = list(person.school_ids) or list(world.schools)
            own = [m for m in media if not person.school_ids or m.school_index < 3]
            count = sizes.samples + sizes.warmup + sizes.proposal_samples * 2
            role = Role(
                name,
                scope,
                schools,
                scoped_items(self.session, list(person.school_ids) or None, count),
                own,
            )
            role.first_pairs = [(m, p) for p in STREAM_PURPOSES for m in own]
            random.Random(len(own)).shuffle(role.first_pairs)
            roles.append(role)
        self.session.rollback()
        self.roles = roles
        self.specs = make_specs(world, roles, vocabulary(world), first_day, last_day, self.session)
        self.probe = PkProbe(url, roles[1].items)
        for role in roles:  # each item already playing in the seek session
            for m in role.media:
                path = f"/evidence/{m.evidence_id}/stream?purpose={SEEK_PURPOSE}"
                one(
                    self.clock,
                    self.clients[role.name, "seeks"],
                    Request(path, {"Range": "bytes=0-"}, (m, 0)),
                )

    def _timed_run(
        self, specs: list[Spec], step: Callable[[str], None], **limits: Any
    ) -> dict[str, Any]:
        """run() the specs; their summary and the machine's load meanwhile."""
        meter = CpuMeter()
        meter.start()
        own, started = time.process_time(), time.perf_counter()
        pids = [*self.backends(), int(self.probe.conn.info.backend_pid)]
        server = process_cpu_seconds(pids)
        run(specs, self.clients, self.clock, self.probe, rng=self.rng, step=step, **limits)
        elapsed = time.perf_counter() - started
        busy = meter.busy() * (os.cpu_count() or 1)
        ours = time.process_time() - own
        pids = sorted({*pids, *self.backends()})  # and connections opened meanwhile
        theirs = process_cpu_seconds(pids) - server
        summary = self.summary(specs)
        summary["load"] = {
            "seconds": elapsed,
            "machine_busy_cores": busy,
            "this_process_cores": ours / elapsed,
            "database_server_cores": theirs / elapsed,
            "other_cores": max(0.0, busy - (ours + theirs) / elapsed),
        }
        return summary

    def run_all(self, step: Callable[[str], None]) -> dict[str, Any]:
        sizes = self.sizes
        return self._timed_run(
            self.specs,
            step,
            samples=sizes.samples,
            minimum=sizes.minimum,
            budget_s=sizes.budget_s,
            warmup=sizes.warmup,
        )

    def rerun(self, keys: set[tuple[str, str]], samples: int) -> dict[str, Any]:
        """Fresh samples of some measures (after an index was added, say)."""
        chosen = [
            Spec(s.key, s.role, s.label, s.goal_ms, s.figure, s.make, s.client, s.exhausted)
            for s in self.specs
            if (s.role, s.key) in keys
        ]
        self.probe.seconds.clear()
        return self._timed_run(
            chosen,
            lambda _m: None,
            samples=samples,
            minimum=min(samples, self.sizes.minimum),
            budget_s=self.sizes.budget_s / 2,
            warmup=self.sizes.warmup,
        )

    def summary(self, specs: list[Spec]) -> dict[str, Any]:
        pk = self.probe.seconds
        pk_p50 = percentile(pk, 0.5)
        return {
            "pk_select": {
                "n": len(pk),
                "p50_ms": pk_p50 * 1e3,
                "p95_ms": percentile(pk, 0.95) * 1e3,
                "p99_ms": percentile(pk, 0.99) * 1e3,
            },
            "measures": [summarise(spec, pk_p50) for spec in specs],
        }

    def close(self) -> None:
        self.probe.close()
        self.session.close()
        self.side.dispose()
        self.app.extensions["bwc.db"].dispose()


def _value(spec: Spec, sample: Sample) -> float:
    if spec.figure == "first_byte":
        return sample.first_byte if sample.first_byte is not None else sample.seconds
    return sample.seconds


def summarise(spec: Spec, pk_p50: float) -> dict[str, Any]:
    values = [_value(spec, s) for s in spec.samples]
    n = len(spec.samples)
    statements: dict[str, list[Any]] = {}
    for sample in spec.samples:
        for text, (total, count, slowest, params, rows) in sample.by_statement.items():
            entry = statements.setdefault(text, [0.0, 0, 0.0, None, 0])
            entry[0] += total
            entry[1] += count
            entry[4] += rows
            if slowest >= entry[2]:
                entry[2], entry[3] = slowest, params
    top = sorted(statements.items(), key=lambda kv: -kv[1][0])[:5]
    biggest = sorted(statements.items(), key=lambda kv: -kv[1][4])[:3]

    def mean(field: str) -> float:
        return sum(getattr(s, field) for s in spec.samples) / n * 1e3

    template = mean("template_seconds") - mean("template_sql_seconds")
    p95 = percentile(values, 0.95) * 1e3
    return {
        "key": spec.key,
        "role": spec.role,
        "role_label": ROLE_LABELS[spec.role],
        "label": spec.label,
        "figure": spec.figure,
        "goal_ms": spec.goal_ms,
        "n": n,
        "p50_ms": percentile(values, 0.5) * 1e3,
        "p95_ms": p95,
        "p99_ms": percentile(values, 0.99) * 1e3,
        "max_ms": max(values) * 1e3,
        "met": p95 < spec.goal_ms,
        "ratio_p50_to_pk": percentile(values, 0.5) / pk_p50,
        "ratio_p95_to_pk": p95 / 1e3 / pk_p50,
        "mean_ms": {
            "request": mean("seconds"),
            "sql": mean("sql_seconds"),
            "templates_less_their_sql": template,
            "rest": mean("seconds") - mean("sql_seconds") - template,
            "client_cpu": mean("client_cpu"),
            "server_cpu": mean("server_cpu"),
            "gc": mean("gc_seconds"),
        },
        "requests_with_a_full_collection": sum(1 for s in spec.samples if s.full_collections),
        "statements_per_request": sum(s.statements for s in spec.samples) / n,
        "custody_events_appended": sum(1 for s in spec.samples if s.recorded),
        "largest_results": [
            {"statement": text, "rows_per_request": rows / n, "ms_per_request": total / n * 1e3}
            for text, (total, _count, _slowest, _params, rows) in biggest
        ],
        "top_statements": [
            {
                "statement": text,
                "ms_per_request": total / n * 1e3,
                "calls_per_request": count / n,
                "rows_per_request": rows / n,
                "slowest_ms": slowest * 1e3,
                "slowest_params": params,
            }
            for text, (total, count, slowest, params, rows) in top
        ],
    }


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def measure_and_propose(
    world: Any, media: list[Any], url: str, first_day: date, last_day: date, sizes: Any
) -> dict[str, Any]:
    """Run in a fresh process (spawned), as a service worker would be: only the app and
    this benchmark's small modules loaded, none of the generator's data in memory."""
    from _ui_scale_load import Loader
    from _ui_scale_proposals import try_proposals

    bench = UiBench(world, media, url, first_day, last_day, sizes)
    try:
        measured = bench.run_all(_step)
        _step("trying the proposed indexes and queries in this database")
        proposals = try_proposals(bench, Loader(url), measured, sizes, _step)
    finally:
        bench.close()
    return {"measured": measured, "proposals": proposals}
