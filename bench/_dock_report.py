"""The dock benchmark's figures (each with its goal and its ratio to a raw limit measured
in the same run) and its README section: the table and the "where the time goes" notes."""

from __future__ import annotations

from typing import Any

from _common import ROOT
from _vault_figures import PER_SHA, _fig, mean, size_text

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- dock:begin -->", "<!-- dock:end -->"
SPOOL_GOAL = 0.7  # × raw single-core SHA-256
DOCKING_GOAL_MB_S = 250.0
RSS_GOAL_MIB = 200.0

SECTION = """## Dock offload

`.venv/bin/python bench/dock_bench.py` (about {minutes} minutes on two cores; `--quick`
takes under a minute with a 256 MiB recording instead of 2 GiB: not the goals' size, and
says so under the table) builds a `bwc-msc/1` camera volume in a temporary folder on
disk: `DEVICE.JSON`, `DCIM/100BWC/BWC00001.MP4` (ftyp, moov and mdat box headers, then
incompressible bytes: a random 1 MiB block stamped with each MiB's index), its sidecar
with the true SHA-256, size and times, and `LOGS/EVENTS.LOG` (power on, record start and
stop, and DOCKED at the moment the dock looks, so there is no clock offset). It
measures, in one run:

- **Raw limits**: hashlib SHA-256 in 1 MiB updates, one core, before and after the
  rest (the mean is used); os.write of 1 MiB blocks, as much as the recording, into a
  new file on the spool's disk, then one fsync, the two timed apart, twice before and
  twice after the rest (the mean of the four); one sequential read of the recording in
  1 MiB `readinto` calls with its pages dropped from the page cache first
  (`posix_fadvise` DONTNEED; `mincore` says how much stayed resident).
- **Offload, volume → spool**: `dock.spool.Spool.seal` on the recording as
  `dock.volume.scan_volume` found it, in the benchmark's process: the dock's one read
  pass that hashes (on a helper thread) and encrypts into the spool, then fsyncs the
  spool file and its folder (each fsync timed). Once with the recording's pages
  dropped, once with them cached; and the same pass without the spool's disk
  (`seal_for_ingest` from the recording, pages dropped, to /dev/null).
- **Docking, end to end**: the real service (`bwc serve`, SQLite, local store, shipped
  settings) set up with the CLI (`bwc init`, `bwc schools add NHS North`, `bwc cameras
  add BWC-0002 --profile bwc-msc/1 --school NHS`, `bwc docks add`), the dock enrolled
  with `bwc-dock enroll`, then `bwc-dock run --once --simulated-usb FILE` (every dock
  setting at its default) timed from spawn to exit 0, the recording's pages dropped
  first and every file older than the 2 s stability window. Afterwards the recording
  and its sidecar must be gone from the volume, the session `accept` without errors,
  and the service must hold the item with the recording's SHA-256 (`bwc evidence
  verify` re-reads, decrypts and re-hashes it). MB/s is plaintext bytes (10^6) on the
  volume per second. Phases come from the server's access-log lines, stamped as they
  appear (less their request time), and the spool folder, polled every 20 ms.
- **Agent memory**: peak RSS of the `bwc-dock` process from `wait4`'s `ru_maxrss`
  (and VmHWM polled from /proc while it runs), for the large volume and for a small
  one of 3 clips from `dock.simulate.simulate_volume` (camera BWC-0003). (`wait4` is
  called in a small launcher that forks the agent: spawned straight from the
  benchmark, a child's `ru_maxrss` would start at the benchmark's own peak, since Linux
  keeps the high-water mark of the address space an exec replaces.)

Profiled once with py-spy (100 Hz, 2 GiB docking, 2026-12-01, before the service verified
uploads as they arrive and started writeback early; not part of the script):
in the service's PATCHes about 70% of the samples are `os.write` of the body into the
staged file (`app/staging.py`: the kernel taking the pages into the page cache, as in
the raw disk row's write; the fsync after each PATCH is about 2%) and about 25%
reading and SHA-256ing the body; its verification is `put_file`'s hash (a third) and
`digest_object` (two thirds). In the agent the spool pass splits about evenly between
reading the camera file and encrypting and writing the spool file (with the hash on its
own thread), and the upload thread, when busy, is SHA-256ing each chunk before its
PATCH (about 2.2 s for 2 GiB) or in http.client sending the body in 16 KiB blocks;
most of the upload it waits for the service.
"""


def disk_runs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [*d["raw"]["disk_before"], *d["raw"]["disk_after"]]


def raw_rates(d: dict[str, Any]) -> dict[str, float]:
    """MB/s of each raw limit (SHA-256: mean of before and after; disk: of its 4 runs)."""
    raw = d["raw"]
    return {
        "sha": mean([raw["sha256_before"]["MB_per_s"], raw["sha256_after"]["MB_per_s"]]),
        "disk": mean([run["MB_per_s"] for run in disk_runs(d)]),
        "read": raw["volume_read"]["MB_per_s"],
    }


def spread(values: list[float], fmt: str = ".1f") -> str:
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if f"{low:{fmt}}" == f"{high:{fmt}}" else f"{low:{fmt}}–{high:{fmt}}"


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0%}"


def raw_figures(d: dict[str, Any]) -> list[dict[str, Any]]:
    r, raw = raw_rates(d), d["raw"]
    read, disks = raw["volume_read"], disk_runs(d)
    return [
        _fig(
            "raw_sha256",
            "Raw hashlib SHA-256, 1 MiB updates, one core",
            r["sha"] / 1e3,
            "GB/s",
            f"{r['sha'] / 1e3:.2f} GB/s",
            1.0,
            "raw SHA-256 itself",
            f"1.00 (before {raw['sha256_before']['MB_per_s'] / 1e3:.2f}, after "
            f"{raw['sha256_after']['MB_per_s'] / 1e3:.2f} GB/s)",
        ),
        _fig(
            "raw_disk",
            "Raw disk: os.write 1 MiB blocks, then one fsync, "
            f"{size_text(disks[0]['bytes'])}, the spool's filesystem (2 runs before, 2 after)",
            r["disk"],
            "MB/s",
            f"{r['disk']:,.0f} MB/s",
            r["disk"] / r["sha"],
            PER_SHA,
            f"{r['disk'] / r['sha']:.2f}× raw SHA-256 (runs "
            f"{spread([x['MB_per_s'] for x in disks], ',.0f')} MB/s: the write "
            f"{spread([x['write_s'] for x in disks])} s, the fsync "
            f"{spread([x['fsync_s'] for x in disks])} s)",
        ),
        _fig(
            "raw_volume_read",
            "Raw read of the recording, 1 MiB readinto, page cache dropped "
            f"({_pct(read['resident_after_drop'])} resident after the drop)",
            r["read"],
            "MB/s",
            f"{r['read']:,.0f} MB/s",
            r["read"] / r["sha"],
            PER_SHA,
            f"{r['read'] / r['sha']:.2f}× raw SHA-256",
        ),
    ]


def offload_figures(d: dict[str, Any]) -> list[dict[str, Any]]:
    r = raw_rates(d)
    off = d["offload"]
    out = []
    for key, seal in (("offload_cold", off["cold"]), ("offload_warm", off["warm"])):
        cold = key.endswith("cold")
        where = (
            f"page cache dropped ({_pct(seal['resident_before'])} resident)"
            if cold
            else f"recording in the page cache ({_pct(seal['resident_before'])} resident)"
        )
        ratio = seal["MB_per_s"] / r["sha"]
        out.append(
            _fig(
                key,
                f"Offload volume → spool: Spool.seal of the {size_text(seal['bytes'])} "
                f"recording (read, SHA-256, AES-GCM, write, fsync), {where}",
                seal["MB_per_s"] / 1e3,
                "GB/s",
                f"{seal['MB_per_s'] / 1e3:.2f} GB/s ({seal['seconds']:.1f} s)",
                ratio,
                PER_SHA,
                f"{ratio:.2f} of raw SHA-256; {seal['MB_per_s'] / r['disk']:.2f} of raw disk "
                "write + fsync",
                f">= {SPOOL_GOAL:g}× raw SHA-256" if cold else None,
                ratio >= SPOOL_GOAL if cold else None,
            )
        )
    null = off["no_disk"]
    ratio = null["MB_per_s"] / r["sha"]
    out.append(
        _fig(
            "offload_no_disk",
            "The same pass without the spool's disk: seal_for_ingest of the recording "
            "(page cache dropped) → /dev/null",
            null["MB_per_s"] / 1e3,
            "GB/s",
            f"{null['MB_per_s'] / 1e3:.2f} GB/s ({null['seconds']:.1f} s)",
            ratio,
            PER_SHA,
            f"{ratio:.2f} of raw SHA-256; {null['MB_per_s'] / r['read']:.2f} of the raw read",
        )
    )
    return out


def docking_figures(d: dict[str, Any]) -> list[dict[str, Any]]:
    r = raw_rates(d)
    large, small = d["docking"]["large"], d["docking"]["small"]
    size = size_text(d["volume"]["size"])
    return [
        _fig(
            "docking_large",
            f"Docking end to end: `bwc-dock run --once`, {size} volume → verified receipts, "
            "recording wiped (spawn to exit)",
            large["MB_per_s"],
            "MB/s",
            f"{large['MB_per_s']:,.0f} MB/s ({large['seconds']:.1f} s)",
            large["MB_per_s"] / r["sha"],
            PER_SHA,
            f"{large['MB_per_s'] / r['sha']:.2f} of raw SHA-256, "
            f"{large['MB_per_s'] / r['disk']:.2f} of raw disk write + fsync",
            f">= {DOCKING_GOAL_MB_S:g} MB/s",
            large["MB_per_s"] >= DOCKING_GOAL_MB_S,
        ),
        _fig(
            "docking_small",
            f"Docking end to end: {len(small['clips'])} simulated clips "
            f"({_small(small['plaintext_bytes'])} in all, camera BWC-0003)",
            small["seconds"],
            "s",
            f"{small['seconds']:.1f} s",
            None,
            None,
            "—",
        ),
        _rss("rss_large", f"{size} volume", large),
        _rss("rss_small", f"{len(small['clips'])} simulated clips", small),
    ]


def _small(nbytes: int) -> str:
    return size_text(nbytes) if nbytes >= 10 * 2**20 else f"{nbytes / 2**20:.2f} MiB"


def _rss(key: str, what: str, run: dict[str, Any]) -> dict[str, Any]:
    peak = run["peak_rss_mib"]
    return _fig(
        key,
        f"Agent peak RSS (`bwc-dock` process, wait4 ru_maxrss), {what}",
        peak,
        "MiB",
        f"{peak:.0f} MiB",
        None,
        None,
        f"— (VmHWM polled: {run['peak_rss_polled_mib']:.0f} MiB)",
        f"< {RSS_GOAL_MIB:g} MiB",
        peak < RSS_GOAL_MIB,
    )


def figures(d: dict[str, Any]) -> list[dict[str, Any]]:
    return raw_figures(d) + offload_figures(d) + docking_figures(d)


# --- README --------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    rows = [
        "| Measure | Result | Goal | Met | Ratio to raw limit (same run) |",
        "|---|---|---|---|---|",
    ]
    for f in results["figures"]:
        goal = (f["goal"] or "—").replace(">=", "≥")
        met = "—" if f["met"] is None else ("yes" if f["met"] else "**no**")
        rows.append(
            f"| {f['measure']} | {f['table']['result']} | {goal} | {met} | {f['table']['ratio']} |"
        )
    m, d = results["machine"], results["details"]
    mode = "quick mode (smaller sizes: not the goals' sizes)" if results["quick"] else "full run"
    large = d["docking"]["large"]
    report = large["report"]
    notes = "\n".join(f"- {line}" for line in results["where_time_goes"])
    return (
        "\n".join(rows)
        + f"\n\n{mode.capitalize()} of `.venv/bin/python {results['command']}` on {m['date']}, "
        f"{results['seconds']:.0f} s, {m['cores']} × {m['cpu']}, Python {m['python']}, "
        f"gunicorn {m['gunicorn']}, SQLite {m['sqlite']}, cryptography {m['cryptography']}; "
        f"volume, spool and data dir on {d['filesystem']} (one disk: a real camera is read "
        "over USB); other load on the machine: "
        f"{results['background_cpu_busy']:.0%} of its CPUs before the run; the hypervisor "
        f"took {results.get('steal_during_run', 0.0):.0%} of the CPUs' time over the run "
        "(steal). Large docking: "
        f"decision {report['decision']}, {report['entries']} entries, {report['wiped']} "
        f"wiped, {len(report['errors'] or [])} errors, clock offset "
        f"{report['clock_offset_ms']} ms; fixity: {large['verification']['fixity']}. Error "
        f"lines in the server log: {len(d['server_log_errors'])}. Raw figures: "
        "`bench/results/dock.json`.\n\nWhere the time goes in this run:\n\n" + notes
    )


def write_readme(table: str) -> None:
    """Replace the table between the markers, or add the section at the end."""
    text = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + SECTION.format(minutes=2) + "\n" + block + "\n"
    README.write_text(text, encoding="utf-8")
