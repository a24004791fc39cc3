"""The UI benchmark's figures, its README table and the notes on where the time goes."""

from __future__ import annotations

import re
from typing import Any

from _common import ROOT

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- ui-scale:begin -->", "<!-- ui-scale:end -->"
SECTION = "## Evidence web UI at district scale"


def figures(details: dict[str, Any]) -> list[dict[str, Any]]:
    measured = details["measured"]
    pk = measured["pk_select"]["p50_ms"]
    out = []
    for m in measured["measures"]:
        what = "first byte" if m["figure"] == "first_byte" else "time in the app"
        out.append(
            {
                "id": f"{m['key']}_{m['role']}",
                "measure": f"{m['label']}; {m['role_label']} ({what}, n={m['n']})",
                "value": m["p95_ms"],
                "unit": "ms (p95)",
                "goal": f"p95 < {m['goal_ms']:g} ms",
                "met": m["met"],
                "ratio": m["ratio_p95_to_pk"],
                "ratio_meaning": "p95 divided by p50 of one primary-key SELECT of an "
                "evidence_items row on a bare driver connection, interleaved with the requests",
                "table": {
                    "result": f"p50 {m['p50_ms']:.0f} / p95 {m['p95_ms']:.0f} / "
                    f"p99 {m['p99_ms']:.0f} ms",
                    "ratio": f"p50 = {m['ratio_p50_to_pk']:.0f}×, p95 = "
                    f"{m['ratio_p95_to_pk']:.0f}× one PK select ({pk:.3f} ms)",
                },
            }
        )
    return out


def short(statement: str, limit: int = 150) -> str:
    """A statement as a person would name it: select lists and long IN lists elided."""
    text = " ".join(statement.split())
    text = re.sub(r"^SELECT (.{40,}?) FROM", "SELECT … FROM", text)  # the ORM's column list
    text = re.sub(r"\(__\[POSTCOMPILE_\w+\]\)|\(%\(\w+\)s(, %\(\w+\)s){3,}\)", "(…)", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def where_time_goes(details: dict[str, Any]) -> list[str]:
    lines = []
    for m in details["measured"]["measures"]:
        mean = m["mean_ms"]
        top = m["top_statements"][:2]
        named = "; ".join(
            f"`{short(t['statement'], 110)}` {_ms(t['ms_per_request'])}"
            + (f" in {t['calls_per_request']:.0f} calls" if t["calls_per_request"] >= 1.5 else "")
            for t in top
        )
        verdict = "meets its goal" if m["met"] else f"**misses** its goal ({m['goal_ms']:g} ms)"
        lines.append(
            f"{m['label']}, {m['role_label']}: p95 {_ms(m['p95_ms'])}, {verdict}. Mean "
            f"{_ms(mean['request'])} = SQL {_ms(mean['sql'])} in "
            f"{m['statements_per_request']:.0f} statements + templates "
            f"{_ms(mean['templates_less_their_sql'])} + the rest (Flask, sessions, ORM objects, "
            f"policy) {_ms(mean['rest'])}; CPU {_ms(mean['client_cpu'])} in the app's process, "
            f"{_ms(mean['server_cpu'])} in PostgreSQL; garbage collection {_ms(mean['gc'])} "
            f"(a full collection in {m['requests_with_a_full_collection']} of {m['n']} "
            f"requests). Most SQL time: {named}."
        )
    return lines


ROLE = {"supervisor": "supervisor", "records": "records officer"}
QUERY_NAMES = {
    "tag": "tag filter",
    "keyset_51": "keyset page 51",
    "search": "text search (FEW_MATCHES: the app's rare-word threshold changed)",
}


def _effect(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "nothing re-run"
    text = "; ".join(
        f"{r['key']} ({ROLE[r['role']]}) p95 {_ms(r['before_p95_ms'])} → {_ms(r['after_p95_ms'])}"
        for r in rows
    )
    return text + f" (n={rows[0]['n']} each; other load {rows[0]['other_load_cores']:.2f} cores)"


def proposal_lines(p: dict[str, Any]) -> list[str]:
    """What each proposal did in this run, one line each."""
    lines = []
    shown: set[str] = set()
    for e in p.get("explain", []):
        if shown.issuperset(e["measures"]):
            continue  # another plan of the same measures is shown already
        shown.update(e["measures"])
        plan = e["plan"]
        nodes = [x.strip() for x in plan if "->" in x or x is plan[0]][:3]
        removed = next((x.strip() for x in plan if "Rows Removed by Filter" in x), "")
        shape = " / ".join(n.split("  (")[0] for n in nodes)
        where = ", ".join(e["measures"][:4]) + (", …" if len(e["measures"]) > 4 else "")
        lines.append(
            f"Plan of `{short(e['statement'], 120)}` (in {where}): {shape}"
            f"{'; ' + removed if removed else ''}; {e['execution_ms']:.1f} ms."
        )
    for i in p.get("indexes", []):
        if not i["created"]:
            lines.append(
                f"Index `{'; '.join(i['ddl'])}`: the schema has it already "
                f"({', '.join(sorted(set(i['already_in_schema'].values())))}), not tried."
            )
            continue
        lines.append(
            f"Index `{'; '.join(i['ddl'])}` ({i['bytes'] / 2**20:.1f} MiB, built in "
            f"{i['build_s']:.1f} s) — {i['why']}: {_effect(i['effect'])}."
        )
    for error in p.get("errors", []):
        lines.append(f"A proposal failed in this run: {error}")
    for key, q in (p.get("queries") or {}).items():
        name, role = key.rsplit("_", 1)
        app = q["variants"]["app"]
        tried = "; ".join(
            f"{v} p50 {_ms(r['p50_ms'])} / p95 {_ms(r['p95_ms'])} (same page in "
            f"{r['same_page_as_app']})"
            for v, r in q["variants"].items()
            if v != "app"
        )
        lines.append(
            f"Query alone, {QUERY_NAMES[name]}, {ROLE[role]}, {q['n']} random inputs: the app's "
            f"p50 {_ms(app['p50_ms'])} / p95 {_ms(app['p95_ms'])} / p99 {_ms(app['p99_ms'])}; "
            f"{tried}."
        )
    if "all" in p:
        lines.append("All proposals at once (the indexes above): " + _effect(p["all"]) + ".")
    return lines


def render(results: dict[str, Any]) -> str:
    d = results["details"]
    proposed = {(r["role"], r["key"]): r for r in d.get("proposals", {}).get("all", [])}
    rows = [
        "| Measure | Result | Goal | Met | Ratio to raw limit (same run) "
        "| p95 with all proposals |",
        "|---|---|---|---|---|---|",
    ]
    for f, m in zip(results["figures"], d["measured"]["measures"], strict=True):
        after = proposed.get((m["role"], m["key"]))
        rows.append(
            f"| {f['measure']} | {f['table']['result']} | {f['goal'].replace('<', '&lt;')} | "
            f"{'yes' if f['met'] else '**no**'} | {f['table']['ratio']} | "
            + (
                f"{after['after_p95_ms']:.0f} ms ({'meets' if after['met_after'] else 'misses'})"
                if after
                else "—"
            )
            + " |"
        )
    m = results["machine"]
    g = d["generation"]
    t = g["timings"]
    db = d["database"]
    mode = "quick mode (100,000 items: not the goals' sizes)" if results["quick"] else "full run"
    notes = "\n".join(f"- {line}" for line in results["where_time_goes"])
    tried = "\n".join(f"- {line}" for line in proposal_lines(d.get("proposals", {})))
    pk = d["measured"]["pk_select"]
    load = d["measured"]["load"]
    return (
        "\n".join(rows)
        + f"\n\n{mode.capitalize()} of `.venv/bin/python bench/ui_scale_bench.py"
        + (" --quick" if results["quick"] else "")
        + f"` on {m['date']}, {results['seconds'] / 60:.0f} min in all, {m['cores']} × "
        f"{m['cpu']}, {m['memory_gib']} GiB, PostgreSQL {m['postgresql']['server_version']} "
        f"(shared_buffers {m['postgresql']['shared_buffers']}, as installed), Python "
        f"{m['python']}, SQLAlchemy {m['sqlalchemy']}; other load on the machine: "
        f"{results['background_cpu_busy']:.0%} of its CPUs before the run, "
        f"{load['other_cores']:.2f} cores during the measurements (the app's process "
        f"{load['this_process_cores']:.2f}, PostgreSQL {load['database_server_cores']:.2f}). "
        f"Generated {g['items']:,} items and {g['item_events']:,} custody events "
        f"({g['incidents']:,} incidents; {g['ledger_size_after_load']:,} ledger leaves in all) in "
        f"{t['generation_wall_s'] / 60:.1f} min: planning {t['plan_s']:.0f} s, custody COPY "
        f"{t['custody_copy_s']:.0f} s, items and the rest {t['items_copy_s']:.0f} s, indexes "
        f"{t['index_build_s']:.0f} s, VACUUM (ANALYZE) {t['vacuum_analyze_s']:.0f} s. "
        f"Database {db['database_bytes'] / 2**30:.1f} GiB. One primary-key SELECT: p50 "
        f"{pk['p50_ms']:.3f} ms, p95 {pk['p95_ms']:.3f} ms ({pk['n']:,} interleaved). Raw "
        f"figures: `bench/results/{'ui_scale_quick' if results['quick'] else 'ui_scale'}.json`."
        "\n\nWhere the time goes in this run:\n\n"
        + notes
        + "\n\nProposals, tried in this run's database and process only:\n\n"
        + tried
    )


def write_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + f"\n\n{SECTION}\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")
