"""The vault ingest benchmark's README section: the table of figures and the "where the
time goes" notes, computed from one run's details."""

from __future__ import annotations

from typing import Any

from _common import ROOT
from _vault_figures import (
    SHA_PASSES,
    cpu_text,
    mean,
    phases,
    raw_rates,
    size_text,
)

from app.live_verify import PARTS_IN_FLIGHT
from evidence.adapters.s3_store import ADOPT_LIMIT, STREAMED_PART_SIZE

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- vault-ingest:begin -->", "<!-- vault-ingest:end -->"

SECTION = """## Vault ingest and reads

`.venv/bin/python bench/vault_ingest_bench.py` (about {minutes} minutes on two cores;
`--quick` takes under a minute with a 256 MiB file, 20 small files, 64 MiB and 5 small
files on S3 and 100 reads: not the goals' sizes, and says so under the table) runs the
real server, `bwc serve` (gunicorn with its shipped settings: 2 gthread workers of 4
threads, the 1 s checkpointer; SQLite), on a fresh data dir in a temporary folder on
disk, and drives it from the benchmark's process with a lean tus client: requests on
one keep-alive connection, 64 MiB PATCHes, each with `Upload-Checksum`, the next chunk
read from the sealed file while one is in flight. It measures, in one run:

- **Raw limits**: hashlib SHA-256 and `AESGCM` on 1 MiB, one core; one TCP stream over
  127.0.0.1 into a receiver process; one HTTP stream (the same client, 64 MiB PUT
  bodies) into a raw-socket sink process that only counts the bytes; os.write of 1 MiB
  blocks with an fsync every 64 MiB on the data dir's disk, as much as the large file,
  before and after the rest. SHA-256 and disk figures are the mean of the two runs.
- **The same stack without the service**: the large file's bytes, sent the same way, to
  a Flask handler under the same gunicorn settings that only reads each PATCH in 1 MiB
  chunks, SHA-256s, writes it with the service's own writer (`app.staging`, direct I/O)
  and fsyncs it (`bench/_vault_sink_app.py`).
- **Ingest, local store** (b): one 2 GiB file, then 200 × 10 MiB files one after
  another, each timed from its first POST to a receipt that says `verified`; the
  service stores, reads back, authenticates and hashes a file before it answers its
  last PATCH. Sealing (`seal_for_ingest` plus the PATCH checksums) is the dock's side,
  timed apart. MB/s is plaintext bytes (10^6) per second. Each file is shaped like a
  camera's MP4, as the dock benchmark's recording: ftyp/moov/mdat box headers, then
  incompressible bytes (`Footage`), so the playback check every new item gets (in the
  service process, embedded mode) reads an MP4's boxes rather than running FFmpeg's
  format probe over noise.
- **Ingest, S3** (c): the same sizes (one 2 GiB file, 200 × 10 MiB) against a moto
  server in its own process (bucket with Object Lock; its peak memory is reported);
  the ratio is to the machine's `aws s3 cp` (CLI v1 defaults: 8 MiB parts, 10 at a
  time) of the same ciphertext to the same endpoint, before and after the service
  (mean), start-up included; one boto3 GetObject of that copy gives the read-back's.
  The small files go one after another, then as many others 10 at a time, each upload
  on its own connection, as `aws s3 cp --recursive` sends a folder.
- **Ranged reads** (d): 1 MiB ranges at random offsets of the 2 GiB item through
  `/evidence/<id>/stream?purpose=investigation`, signed in as a supervisor (password +
  TOTP) on one keep-alive session, each body checked against the footage, then a raw
  `pread` of 1 MiB of the stored object file at that place; the ratio is to reading
  and decrypting the two 1 MiB segments a range covers at the raw rates.
- **Service memory and CPU** (e): VmHWM of the gunicorn master and of each worker, read
  after the ingests and before anyone signs in (an argon2id verification alone takes
  64 MiB), and utime + stime of them all, from /proc.
"""


def where_time_goes(d: dict[str, Any], patch_bytes: int) -> list[str]:
    r = raw_rates(d)
    local, s3 = d["local"], d["s3"]
    big, sink = local["large"], local["sink"]
    p = phases(big, patch_bytes)
    mb = big["ciphertext_bytes"] / 1e6
    arrive_floor = mb / r["http"] + mb / r["disk"] + mb / r["sha"]
    verify_floor = mb * (2 / r["sha"] + 1 / r["aes_dec"])
    lines = [
        f"Local {size_text(big['plaintext_bytes'])}: {big['seconds']:.1f} s = POST "
        f"{big['post_s'] * 1e3:.0f} ms + {len(big['patch_s']) - 1} PATCHes of 64 MiB in "
        f"{p['bytes_s']:.1f} s ({p['bytes_MB_per_s']:,.0f} MB/s) + the last PATCH "
        f"({p['last_patch_bytes']:,} bytes) {p['last_patch_s']:.1f} s, nearly all of it "
        f"verifying + receipt {big['receipt_s'] * 1e3:.0f} ms + {big['client_gap_s']:.2f} s "
        "in the client between requests.",
        f"Local, bytes arriving: {cpu_text(big['service_cpu_bytes'], p['bytes_s'])}. The "
        "request thread reads the body in 1 MiB chunks from gunicorn's input stream, "
        "SHA-256s it for `Upload-Checksum` and hands each 2 MiB to a writer thread that "
        "writes it to the staged file with direct I/O (no page cache) while the next is "
        "received, and fsyncs once per PATCH; meanwhile the live verification reads each "
        "committed PATCH back from the disk (direct reads, the next range fetched and its "
        "ciphertext SHA-256'd on a helper thread), authenticates its segments and "
        "SHA-256s the plaintext. The same stack doing only the "
        f"request thread's part (the sink row) carried the same bytes at "
        f"{sink['MB_per_s']:,.0f} MB/s ({cpu_text(sink['cpu'], sink['seconds'])}); the "
        f"service's PATCHes ran at {p['bytes_MB_per_s'] / sink['MB_per_s']:.2f}× that"
        + (
            ", the difference being the verification thread's CPU and the GIL the two "
            "threads share. "
            if p["bytes_MB_per_s"] < sink["MB_per_s"]
            else " (faster than the sink: this disk varies more than that from minute to "
            f"minute; raw disk before and after: {d['raw']['disk_before']['MB_per_s']:,.0f} "
            f"and {d['raw']['disk_after']['MB_per_s']:,.0f} MB/s). "
        )
        + "System CPU is the kernel receiving the bytes, writing and reading the file. At the "
        f"raw rates (HTTP {r['http']:,.0f}, disk {r['disk']:,.0f}, SHA-256 {r['sha']:,.0f} "
        f"MB/s) the request thread's steps one after another take {arrive_floor:.1f} s "
        f"({mb / arrive_floor:,.0f} MB/s), the disk alone {mb / r['disk']:.1f} s.",
        f"Local, finishing: the last PATCH took {p['last_patch_s']:.2f} s, "
        f"{cpu_text(big['service_cpu_finish'], p['last_patch_s'] + big['receipt_s'])}: it "
        "waits for the verification to read the tail back, then the store adopts the staged "
        "file by hard link (the inode that was verified) and the item and its custody events "
        f"are written. Every byte is hashed {SHA_PASSES} times in all "
        f"({SHA_PASSES * mb / r['sha']:.1f} s at the raw rate), verification "
        f"({verify_floor:.1f} s at raw rates) overlapping the arrival on the second core; "
        "the client, the request thread and the verification share the machine's 2 cores "
        f"({big['machine_busy']:.0%} busy in all during the upload).",
    ]
    small = local["small"]
    ph = small["per_file_phases_ms_mean"]
    bytes_ms = 10.0 * 2**20 / 1e6 / big["MB_per_s"] * 1e3
    lines.append(
        f"Local {small['files']} × 10 MiB: {small['seconds']:.1f} s, per file on average "
        f"POST {ph['post']:.0f} ms + one PATCH (bytes and verifying) {ph['patch']:.0f} ms + "
        f"receipt {ph['receipt']:.0f} ms + client {ph['client_gap']:.0f} ms; at the large "
        f"file's rate its bytes would take {bytes_ms:.0f} ms, so about "
        f"{sum(ph.values()) - bytes_ms:.0f} ms per file does not scale with its size "
        "(creation, the verified item's transaction and custody events, a checkpoint signed "
        "for the receipt, fsyncs of files, folders and the database). Service "
        f"{cpu_text(small['service_cpu'], small['seconds'])}; client "
        f"{small['client_cpu_s']:.1f} s."
    )
    aws, up = s3["aws_cli"], s3["large"]
    q = phases(up, patch_bytes)
    cp = mean(aws["large_s"])
    put, get = cp - aws["startup_s"], aws["boto3_get_large_s"]
    lines.append(
        f"S3 {size_text(up['plaintext_bytes'])}: {up['seconds']:.1f} s = PATCHes "
        f"{q['bytes_s']:.1f} s ({q['bytes_MB_per_s']:,.0f} MB/s) + the last PATCH "
        f"{q['last_patch_s']:.1f} s (parts are sent to S3 while the PATCHes arrive, "
        f"{STREAMED_PART_SIZE >> 20} MiB each and {PARTS_IN_FLIGHT} at a time, from reused "
        "buffers filled by the read that verifies them; the last PATCH waits for "
        "the parts still in flight and completes the multipart upload; an upload that "
        "could not be streamed is stored whole and read back) + receipt "
        f"{up['receipt_s'] * 1e3:.0f} ms. Less its "
        f"{aws['startup_s']:.1f} s start-up, `aws s3 cp` puts the same bytes in {put:.1f} s "
        f"(8 MiB parts, 10 at a time), and one boto3 GetObject streams them back in "
        f"{get:.1f} s. Receiving the whole upload first, then storing at the CLI's pace, then "
        f"reading back would take {q['bytes_s'] + put + get:.1f} s, "
        f"{(q['bytes_s'] + put + get) / cp:.2f}× the CLI's time"
        + (
            ": what is left is waiting on moto's puts after the bytes arrived. "
            if cp / (q["bytes_s"] + put + get) < 0.9
            else ". "
        )
        + "Service while bytes arrived "
        f"{cpu_text(up['service_cpu_bytes'], q['bytes_s'])}; in the last PATCH "
        f"{cpu_text(up['service_cpu_finish'], q['last_patch_s'])}, the rest of it waiting "
        "on moto."
    )
    small3 = s3["small"]
    ph3 = small3["per_file_phases_ms_mean"]
    lines.append(
        f"S3 {small3['files']} × 10 MiB: {small3['seconds']:.1f} s against "
        f"{mean(aws['small_recursive_s']):.1f} s for one `aws s3 cp --recursive` (runs "
        + ", ".join(f"{v:.1f}" for v in aws["small_recursive_s"])
        + f" s; it sends 10 files at a time); per file POST {ph3['post']:.0f} ms + PATCH "
        f"{ph3['patch']:.0f} ms + receipt {ph3['receipt']:.0f} ms (a file up to "
        f"{ADOPT_LIMIT >> 20} MiB is verified as it arrives and then stored with one "
        "PutObject carrying the verified SHA-256; a larger one streams parts). "
        f"{s3['small_parallel']['files']} other files sent "
        f"{s3['small_parallel']['at_once']} at a time, as the CLI sends them: "
        f"{s3['small_parallel']['seconds']:.1f} s "
        f"(service {cpu_text(s3['small_parallel']['service_cpu'], s3['small_parallel']['seconds'])}"
        f"). moto's peak RSS {s3['moto_peak_rss_mib']:,.0f} MiB."
    )
    reads = local["reads"]
    svc, pread = reads["service"], reads["raw_pread_1mib"]
    aes_ms = d["raw"]["aesgcm"]["decrypt_1mib_ms"]["p50"]
    storage = 2 * (pread["p50_ms"] + aes_ms)
    lines.append(
        f"Reads: p50 {svc['p50_ms']:.1f} ms per 1 MiB range, of which reading and decrypting "
        f"its two 1 MiB segments at raw speed is {storage:.2f} ms; the rest is the request "
        "around them (loading the server-side session, the user and their grants, the item, "
        "unwrapping its key, opening the object, gunicorn and HTTP). The first read, which "
        f"appends the `evidence.streamed` custody event, took {reads['warm_up_ms'][0]:.0f} ms."
    )
    start = local["service_rss_start_mib"]

    def listed(values: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.0f}" for k, v in values.items()) + " MiB"

    lines.append(
        f"Memory (VmHWM): after the local ingests {listed(local['peak_rss_mib'])}; already at "
        f"start, before any request, {listed(start['VmHWM'])} (VmRSS then "
        f"{listed(start['VmRSS'])}); after a sign-in (argon2id, 64 MiB) and the reads "
        f"{listed(local['peak_rss_after_reads_mib'])}."
    )
    return lines


def render(results: dict[str, Any]) -> str:
    rows = [
        "| Measure | Result | Goal | Met | Ratio to raw limit (same run) |",
        "|---|---|---|---|---|",
    ]
    for f in results["figures"]:
        goal = (f["goal"] or "—").replace(">=", "≥").replace("x aws", "× aws")
        met = "—" if f["met"] is None else ("yes" if f["met"] else "**no**")
        rows.append(
            f"| {f['measure']} | {f['table']['result']} | {goal} | {met} | {f['table']['ratio']} |"
        )
    m, d = results["machine"], results["details"]
    mode = "quick mode (smaller sizes: not the goals' sizes)" if results["quick"] else "full run"
    big = d["local"]["large"]
    own = sum(big["service_cpu_bytes"]) + sum(big["service_cpu_finish"]) + big["client_cpu_s"]
    other = max(0.0, big["machine_busy"] * m["cores"] - own / big["seconds"])
    errors = len(d["local"]["server_log_errors"]) + len(d["s3"]["server_log_errors"])
    retries = sum(
        d[store][kind]["receipt_retries"]
        for store in ("local", "s3")
        for kind in ("large", "small")
    )
    notes = "\n".join(f"- {line}" for line in results["where_time_goes"])
    return (
        "\n".join(rows)
        + f"\n\n{mode.capitalize()} of `.venv/bin/python {results['command']}` on {m['date']}, "
        f"{results['seconds']:.0f} s, {m['cores']} × {m['cpu']}, Python {m['python']}, "
        f"gunicorn {m['gunicorn']}, moto {m['moto']}, SQLite {m['sqlite']}, cryptography "
        f"{m['cryptography']}; data dir on {d['data_dir_filesystem']}; other load on the "
        f"machine: {results['background_cpu_busy']:.0%} of its CPUs before the run, "
        f"{other:.2f} cores in other processes and kernel threads (page writeback among "
        "them) during the large local ingest; the hypervisor took "
        f"{results.get('steal_during_run', 0.0):.0%} of the CPUs' time over the run "
        "(steal). "
        f"Error lines in the server logs: {errors}; receipts asked for again after a 5xx: "
        f"{retries}. "
        "Raw figures: `bench/results/vault_ingest.json`.\n\nWhere the time goes in this run:"
        "\n\n" + notes
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
