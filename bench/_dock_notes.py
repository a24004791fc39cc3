"""The dock benchmark's "where the time goes" notes, computed from one run's details."""

from __future__ import annotations

from typing import Any

from _dock_report import DOCKING_GOAL_MB_S, SPOOL_GOAL, disk_runs, raw_rates, spread
from _vault_figures import cpu_text, size_text

# SHA-256 passes over a recording's bytes in one docking: the spool pass (plaintext),
# the agent's Upload-Checksum of each PATCH, the service's check of it, its live
# verification's of the ciphertext read back and of the plaintext (app/live_verify.py),
# and the agent's re-hash of the camera file before wiping it.
SHA_PASSES = 6


def _span(spans: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    found = [s for s in spans if s["phase"].startswith(prefix)]
    return {
        "seconds": sum(s["seconds"] for s in found),
        "agent_cpu_s": sum(s["agent_cpu_s"] for s in found),
        "server_cpu_s": sum(s["server_cpu_s"] for s in found),
        "read_MB": sum(s["agent_storage_read_bytes"] for s in found) / 1e6,
    }


def spool_note(d: dict[str, Any]) -> str:
    r, disks = raw_rates(d), disk_runs(d)
    cold, warm, null = d["offload"]["cold"], d["offload"]["warm"], d["offload"]["no_disk"]
    cipher = cold["ciphertext_bytes"] / 1e6
    goal = SPOOL_GOAL * r["sha"]
    null_ratio, read_ratio = null["MB_per_s"] / r["sha"], r["read"] / r["sha"]
    writes, fsyncs = [x["write_s"] for x in disks], [x["fsync_s"] for x in disks]
    fastest = max(x["MB_per_s"] for x in disks)
    if null_ratio >= SPOOL_GOAL:
        alone = "meet the goal by themselves"
    elif read_ratio < SPOOL_GOAL:
        alone = (
            f"fall short already: reading the recording alone runs at {read_ratio:.2f}× raw "
            "SHA-256 (the raw read row), and the pass reads and encrypts each segment in "
            "turn on one thread"
        )
    else:
        alone = (
            "fall short already: it reads and encrypts each segment in turn on one thread "
            "(the hash on a second)"
        )
    if max(writes) > 2 * max(fsyncs):
        cost = (
            ": the cost is the kernel taking the pages into the page cache, "
            f"{max(writes) / max(1e-9, min(writes)):.0f}× between the fastest and slowest "
            "run on this machine, more than the disk itself. "
        )
    else:
        cost = ". "
    if goal > r["disk"]:
        verdict = (
            ", beyond that mean: a spool durable before it returns meets the goal here only "
            f"when the page cache is at its cheapest (the fastest raw run: {fastest:,.0f} "
            "MB/s; the spool writes with direct I/O, which the raw rows do not, so it skips "
            "the page cache's cost but not the disk's)."
        )
    else:
        verdict = (
            ", within it: the spool's writer thread (direct I/O, 4 MiB blocks) overlaps "
            "the reading and encrypting, so what is left is the slower of the two."
        )
    return (
        f"Spool, page cache dropped: {cold['seconds']:.1f} s = reading, hashing, encrypting "
        f"and writing {cold['seconds'] - cold['fsync_s']:.1f} s + fsync of the spool file and "
        f"its folder {cold['fsync_s']:.1f} s; {cold['cpu_s']:.1f} s of CPU "
        f"({cold['cpu_s'] / cold['seconds']:.2f} cores; other processes "
        f"{cold['other_load_cores']:.2f} cores meanwhile), "
        f"{cold['storage_read_bytes'] / 1e6:,.0f} MB fetched from storage. The same pass to "
        f"/dev/null takes {null['seconds']:.1f} s, {null_ratio:.2f} of raw SHA-256 "
        f"({null['cpu_s']:.1f} s of CPU; other processes {null['other_load_cores']:.2f} "
        f"cores): reading, hashing (on its own thread) and encrypting {alone}. The spool "
        f"adds putting {cipher:,.0f} MB of ciphertext onto the disk (O_DIRECT from a "
        "writer thread while the pass goes on, bypassing the page cache) and the fsync "
        "before it may return (the journal records only a durable spool file). In the raw "
        f"runs the write into the page cache took {spread(writes)} s "
        f"({spread([x['system_s'] for x in disks])} s of system time) and the fsync "
        f"{spread(fsyncs)} s{cost}Write + fsync at their mean rate ({r['disk']:,.0f} MB/s) "
        f"take {cipher / r['disk']:.1f} s for the ciphertext; {SPOOL_GOAL:g}× raw SHA-256 is "
        f"{goal:,.0f} MB/s{verdict} With the recording cached: {warm['seconds']:.1f} s "
        f"(fsync {warm['fsync_s']:.1f} s, {warm['cpu_s']:.1f} s of CPU, "
        f"{warm['system_s']:.1f} s of it system time against {cold['system_s']:.1f} s with "
        "the cache dropped)" + _cached(cold, warm)
    )


def _cached(cold: dict[str, Any], warm: dict[str, Any]) -> str:
    if warm["seconds"] >= 0.8 * cold["seconds"]:
        return ", so reading the camera file is not what limits the spool."
    saved, system = cold["seconds"] - warm["seconds"], cold["system_s"] - warm["system_s"]
    if system >= 0.5 * saved:
        return (
            f": of the {saved:.1f} s it saves, {system:.1f} s is system time, the page-cache "
            "write's varying cost as much as the read."
        )
    return "."


def docking_notes(d: dict[str, Any]) -> list[str]:
    r = raw_rates(d)
    large = d["docking"]["large"]
    spans, up = large["phases"]["spans"], large["phases"]["big_upload"]
    mb = d["volume"]["size"] / 1e6
    cipher = d["offload"]["cold"]["ciphertext_bytes"] / 1e6
    timeline = "; ".join(f"{s['phase']} {s['seconds']:.1f} s" for s in spans)
    spool, upload = _span(spans, "spool"), _span(spans, "upload")
    wipe, start = _span(spans, "wipe: re-hash"), _span(spans, "start-up")
    writes = 2 * cipher / r["disk"]
    serial = spool["seconds"] + upload["seconds"] + wipe["seconds"]
    imp = d["imports"]
    return [
        f"Docking {size_text(d['volume']['size'])}: {large['seconds']:.1f} s = {timeline}. "
        f"Agent {cpu_text(large['agent_cpu'], large['seconds'])}; service "
        f"{large['service_cpu_s']:.1f} s of CPU; other processes "
        f"{large['other_load_cores']:.2f} cores meanwhile.",
        "The recording's bytes cross this one disk three times (read from the volume, "
        "written to the spool, written to the service's staged upload, which the store then "
        f"adopts by hard link) and are SHA-256'd {SHA_PASSES} times ("
        f"{SHA_PASSES * mb / r['sha']:.1f} s at the raw rate on one core). At the raw "
        f"write + fsync rate the two writes alone take {writes:.1f} s: at most "
        f"{mb / writes:,.0f} MB/s before any other work"
        + (
            f", so {DOCKING_GOAL_MB_S:g} MB/s is out of reach on one disk of this speed "
            "however the work is arranged. "
            if mb / writes < DOCKING_GOAL_MB_S
            else f": the disk alone would allow {DOCKING_GOAL_MB_S:g} MB/s. "
        )
        + "And the phases run one after another on the one file: spool, then upload, "
        "then the service's verification, then the re-hash before the wipe; none overlaps "
        f"the next (their sum here: {serial:.1f} s, {mb / serial:,.0f} MB/s).",
        f"Spool in the docking: {spool['seconds']:.1f} s (the offload row alone: "
        f"{d['offload']['cold']['seconds']:.1f} s), agent {spool['agent_cpu_s']:.1f} s of "
        f"CPU, {spool['read_MB']:,.0f} MB read from storage. Upload: {up['patches']} PATCHes "
        f"of {up['patch_bytes'] >> 20} MiB one after another (the 2 concurrent uploads "
        f"do not split a file); the service took {up['patch_s_sum']:.1f} s for all but the "
        f"last ({up['bytes_MB_per_s']:,.0f} MB/s; its request thread reads each body in "
        "1 MiB chunks, SHA-256s it, writes it to the staged file with direct I/O and "
        "fsyncs, while a second thread reads each committed PATCH back from the disk and "
        "verifies it), and "
        f"between them the agent spent {up['between_patches_s_sum']:.1f} s "
        f"({up['between_patches_s_sum'] / max(1, up['patches'] - 1) * 1e3:.0f} ms each), "
        "the next chunk having been read from the spool file (direct I/O, into one of two "
        "reused buffers) and SHA-256'd for `Upload-Checksum` on a helper thread while the "
        "one before was sent (in one sendall from memory). The last PATCH took "
        f"{up['last_patch_s']:.1f} s, about "
        f"{up['verify_s']:.1f} s of it the service finishing its verification (the tail "
        "its live verification had not read back yet) and adopting the staged file. CPU in "
        "the upload: agent "
        f"{upload['agent_cpu_s']:.1f} s, service {upload['server_cpu_s']:.1f} s.",
        f"Wipe: {wipe['seconds']:.1f} s to re-hash the recording "
        f"({mb / wipe['seconds']:,.0f} MB/s; {wipe['read_MB']:,.0f} MB of it from storage, "
        "the spool pass having left it in the page cache; 4 MiB preads into two reused "
        "buffers, each hashed on a helper thread while the next is read), then unlink it "
        f"and fsync its folder; SHA-256 alone takes "
        f"{mb / r['sha']:.1f} s. Start-up (interpreter, imports, enrolment, journal, "
        f"simulated USB): {start['seconds']:.1f} s before the first request"
        + (
            f", with {', '.join(imp['media_libraries'])} imported for the simulator."
            if imp["media_libraries"]
            else "."
        ),
        f"For {DOCKING_GOAL_MB_S:g} MB/s the whole docking has "
        f"{mb / DOCKING_GOAL_MB_S:.1f} s: less than the spool and the service's "
        f"verification take back to back here ({spool['seconds'] + up['verify_s']:.1f} s), "
        "so it needs the phases overlapped (uploading while spooling, the re-hash before "
        "the wipe alongside the upload) and a faster PATCH path, which carried "
        f"{up['bytes_MB_per_s']:,.0f} MB/s here"
        + (", under the goal by itself." if up["bytes_MB_per_s"] < DOCKING_GOAL_MB_S else "."),
    ]


def memory_note(d: dict[str, Any]) -> str:
    large, small, imp = d["docking"]["large"], d["docking"]["small"], d["imports"]
    timeline = [v for _, v in large["rss_timeline_mib"]]
    media = imp["media_libraries"]
    return (
        f"Memory: peak RSS {large['peak_rss_mib']:.0f} MiB for the "
        f"{size_text(d['volume']['size'])} volume and {small['peak_rss_mib']:.0f} MiB for "
        f"the small one ({len(small['clips'])} clips, {small['seconds']:.1f} s: start-up "
        "and per-file round trips rather than bytes), so it does not grow with the file; "
        "VmRSS once a second over the large docking ranged "
        f"{min(timeline):.0f}–{max(timeline):.0f} MiB. Importing what `bwc-dock run` "
        f"imports peaks at {imp['peak_rss_mib']:.0f} MiB on its own"
        + (
            f", {', '.join(media)} included: building the parser imports the simulator"
            if media
            else ""
        )
        + f"; the docking adds about {large['peak_rss_mib'] - imp['peak_rss_mib']:.0f} MiB "
        "(`encrypt_stream`'s three 1 MiB segment buffers, the spool writer's four 4 MiB "
        "blocks, two PATCH bodies in memory per upload, the HTTP connections, the "
        "journal's SQLite)."
    )


def where_time_goes(d: dict[str, Any]) -> list[str]:
    return [spool_note(d), *docking_notes(d), memory_note(d)]
