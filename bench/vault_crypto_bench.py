"""Vault encryption benchmarks: encrypt_stream (encrypt + hash both sides) and
decrypt_stream throughput against the raw SHA-256 and AES-256-GCM rates of this machine.

Usage: .venv/bin/python bench/vault_crypto_bench.py [--quick]

Writes bench/results/vault_crypto.json and the table between the vault-crypto markers in
bench/README.md. Single-core figures pin the process (and so the hashing thread that
encrypt_stream starts) to one CPU; the all-cores figures let that thread run beside the
encrypting one. Every figure is a median of repeats, and as a ratio to raw hashlib
SHA-256 on one core measured in the same run (before and after, for the drift). The file
figures use a temporary file on the temp folder's disk, its pages dropped from the page
cache first (posix_fadvise DONTNEED), and write to /dev/null."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ROOT, CpuMeter, _cpu_model, _git, _memory_gib

# The one import of hazmat outside evidence/crypto: the raw AES-GCM rate is a limit to
# compare with, so it has to be measured without the format around it.
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from evidence.crypto import segments

RESULTS = ROOT / "bench" / "results" / "vault_crypto.json"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- vault-crypto:begin -->", "<!-- vault-crypto:end -->"
GOAL = 0.7  # encrypt_stream at >= 0.7x raw single-core SHA-256
SEGMENT = segments.DEFAULT_SEGMENT_SIZE
POOL = 64 << 20  # random bytes served over and over as the plaintext
DEK = bytes(range(32))


@dataclass(frozen=True)
class Sizes:
    total: int  # plaintext bytes per measurement
    repeats: int


FULL = Sizes(1 << 30, 3)
QUICK = Sizes(128 << 20, 1)


class RepeatingSource:
    """`total` bytes read from a 64 MiB in-memory pool, copied out like BytesIO does."""

    def __init__(self, pool: bytes, total: int) -> None:
        self._pool, self._left, self._at = memoryview(pool), total, 0

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self._left, len(self._pool) - self._at)
        buffer[:n] = self._pool[self._at : self._at + n]
        self._left -= n
        self._at = (self._at + n) % len(self._pool)
        return n


class Discard:
    def write(self, data: memoryview | bytes) -> int:
        return len(data)


def _timed(run: Callable[[], object], repeats: int) -> dict[str, Any]:
    """Wall times of each repeat, and the cores that everything else on the machine kept
    busy meanwhile (whole-machine CPU use minus this process's)."""
    seconds, other = [], []
    meter = CpuMeter()
    for _ in range(repeats):
        meter.start()
        cpu, started = time.process_time(), time.perf_counter()
        run()
        wall = time.perf_counter() - started
        busy_cores = meter.busy() * (os.cpu_count() or 1)
        seconds.append(wall)
        other.append(max(0.0, busy_cores - (time.process_time() - cpu) / wall))
    return {"seconds": seconds, "median_s": statistics.median(seconds), "other_load_cores": other}


def _rate(timing: dict[str, Any], total: int) -> dict[str, Any]:
    return {**timing, "bytes": total, "GB_per_s": total / timing["median_s"] / 1e9}


def raw_sha256(pool: bytes, total: int, repeats: int) -> dict[str, Any]:
    view = memoryview(pool)

    def run() -> None:
        digest = hashlib.sha256()
        for at in range(0, total, SEGMENT):
            digest.update(view[at % POOL : at % POOL + SEGMENT])

    return _rate(_timed(run, repeats), total)


def raw_aesgcm(pool: bytes, total: int, repeats: int, *, decrypt: bool) -> dict[str, Any]:
    """AESGCM on 1 MiB segments into a preallocated buffer: no header, no hashing."""
    aead, nonce, aad = AESGCM(DEK), bytes(12), bytes(segments.HEADER_SIZE)
    view = memoryview(pool)
    sealed = aead.encrypt(nonce, view[:SEGMENT], aad)
    out = memoryview(bytearray(SEGMENT + segments.TAG_SIZE))

    def run() -> None:
        for at in range(0, total, SEGMENT):
            if decrypt:
                aead.decrypt_into(nonce, sealed, aad, out[:SEGMENT])
            else:
                aead.encrypt_into(nonce, view[at % POOL : at % POOL + SEGMENT], aad, out)

    return _rate(_timed(run, repeats), total)


def encrypt_memory(pool: bytes, total: int, repeats: int) -> dict[str, Any]:
    def run() -> None:
        src = RepeatingSource(pool, total)
        segments.encrypt_stream(src, Discard(), DEK)

    return _rate(_timed(run, repeats), total)


def decrypt_memory(pool: bytes, total: int, repeats: int) -> dict[str, Any]:
    """decrypt_stream over one 64 MiB object, again and again, in 8 MiB chunks (the
    default of ObjectStore.iter_bytes)."""
    sink = _BytesSink()
    segments.encrypt_stream(RepeatingSource(pool, POOL), sink, DEK)
    ciphertext = bytes(sink.data)
    chunk = 8 << 20

    def run() -> None:
        for _ in range(total // POOL):
            chunks = (ciphertext[at : at + chunk] for at in range(0, len(ciphertext), chunk))
            for _plaintext in segments.decrypt_stream(chunks, DEK):
                pass

    return _rate(_timed(run, repeats), total)


class _BytesSink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: memoryview | bytes) -> int:
        self.data += data
        return len(data)


def _drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def file_figures(pool: bytes, total: int, repeats: int, folder: Path) -> dict[str, Any]:
    """Raw sequential read of a file with its pages dropped (the disk's limit), and
    encrypt_stream from the same file, pages dropped again, to /dev/null."""
    path = folder / "plaintext.bin"
    with open(path, "wb") as handle:
        for at in range(0, total, POOL):
            handle.write(pool[: min(POOL, total - at)])
        handle.flush()
        os.fsync(handle.fileno())
    buffer = memoryview(bytearray(SEGMENT))

    def read_all() -> None:
        _drop_cache(path)
        with open(path, "rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass

    def encrypt_file() -> None:
        _drop_cache(path)
        with open(path, "rb") as src, open(os.devnull, "wb") as dst:
            segments.encrypt_stream(src, dst, DEK)

    return {
        "folder": str(folder),
        "filesystem": _filesystem(folder),
        "raw_read": _rate(_timed(read_all, repeats), total),
        "encrypt_stream": _rate(_timed(encrypt_file, repeats), total),
    }


def _filesystem(folder: Path) -> str:
    """Device and type of the mount holding folder (longest matching mount point)."""
    best = ("", "?", "?")
    with open("/proc/mounts", encoding="utf-8") as handle:
        for line in handle:
            device, point, kind = line.split()[:3]
            inside = str(folder).startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(best[0]):
                best = (point, device, kind)
    return f"{best[1]} ({best[2]}) on {best[0]}"


def run(sizes: Sizes, one_cpu: set[int], all_cpus: set[int]) -> dict[str, Any]:
    total, repeats = sizes.total, sizes.repeats
    pool = os.urandom(POOL)
    details: dict[str, Any] = {}
    os.sched_setaffinity(0, one_cpu)
    _step(f"raw SHA-256, {total >> 20} MiB × {repeats}, one core")
    details["sha256_before"] = raw_sha256(pool, total, repeats)
    _step("raw AES-256-GCM encrypt and decrypt, 1 MiB segments, one core")
    details["aesgcm_encrypt"] = raw_aesgcm(pool, total, repeats, decrypt=False)
    details["aesgcm_decrypt"] = raw_aesgcm(pool, total, repeats, decrypt=True)
    _step("encrypt_stream, memory → discard, one core")
    details["encrypt_memory_1core"] = encrypt_memory(pool, total, repeats)
    _step("decrypt_stream, memory, one core")
    details["decrypt_memory_1core"] = decrypt_memory(pool, total, repeats)
    with tempfile.TemporaryDirectory(prefix="bwc_bench_") as tmp:
        _step(f"encrypt_stream, file → /dev/null, one core (writing {total >> 20} MiB first)")
        details["file_1core"] = file_figures(pool, total, repeats, Path(tmp))
        os.sched_setaffinity(0, all_cpus)
        _step(f"encrypt_stream, memory and file, all {len(all_cpus)} cores")
        details["encrypt_memory_all"] = encrypt_memory(pool, total, repeats)
        details["file_all"] = file_figures(pool, total, repeats, Path(tmp))
    details["decrypt_memory_all"] = decrypt_memory(pool, total, repeats)
    os.sched_setaffinity(0, one_cpu)
    _step("raw SHA-256 again, one core")
    details["sha256_after"] = raw_sha256(pool, total, repeats)
    os.sched_setaffinity(0, all_cpus)
    return details


def _other_loads(value: object) -> Iterator[float]:
    """Every other_load_cores figure recorded anywhere in the details."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "other_load_cores":
                yield from item
            else:
                yield from _other_loads(item)


def _one_thread_floor(sha: float, aes: float) -> float:
    """GB/s one thread doing encrypt_stream's work (SHA-256 of the plaintext, AES-GCM)
    could reach at the raw rates, with no reading, writing or copying."""
    return 1 / (1 / sha + 1 / aes)


def where_time_goes(d: dict[str, Any], sha: float, cores: int) -> list[str]:
    """A few lines from this run's own figures."""
    floor = _one_thread_floor(sha, d["aesgcm_encrypt"]["GB_per_s"])
    one, many = d["encrypt_memory_1core"]["GB_per_s"], d["encrypt_memory_all"]["GB_per_s"]
    read = d["file_1core"]["raw_read"]["GB_per_s"]
    expected = 1 / (1 / one + 1 / read)
    return [
        f"One core: `encrypt_stream` hashes every byte once (the plaintext, for the "
        f"dock's manifest) and encrypts it once. At this run's raw rates that work alone "
        f"caps one thread at {floor:.2f} GB/s ({floor / sha:.2f}× SHA-256); from memory "
        f"it reaches {one:.2f} GB/s, {one / floor:.0%} of that cap.",
        f"{cores} cores: the plaintext is hashed on a helper thread while the calling "
        f"thread encrypts: {many:.2f} GB/s, {many / one:.2f}× the single-core figure; "
        "the hashing thread is now the limit.",
        f"From a file on one core the kernel's reads share that core: a raw read alone "
        f"runs at {read:.2f} GB/s, so about {expected:.2f} GB/s is expected; "
        f"{d['file_1core']['encrypt_stream']['GB_per_s']:.2f} GB/s was measured.",
        f"`decrypt_stream` does no hashing ({d['decrypt_memory_1core']['GB_per_s']:.2f} "
        f"GB/s on one core; raw decrypt {d['aesgcm_decrypt']['GB_per_s']:.2f} GB/s): the "
        "rest is memory traffic. Each 8 MiB chunk is a fresh bytes object, as a store's "
        "would be, a segment that straddles two chunks is copied, and each segment's "
        "plaintext is a new bytes object that the caller keeps.",
    ]


def figures(d: dict[str, Any], cores: int) -> tuple[float, list[dict[str, Any]]]:
    sha = (d["sha256_before"]["GB_per_s"] + d["sha256_after"]["GB_per_s"]) / 2
    aes = d["aesgcm_encrypt"]["GB_per_s"]
    floor = _one_thread_floor(sha, aes)
    rows: list[tuple[str, str, float, bool]] = [
        ("raw_sha256", "Raw hashlib SHA-256, 1 MiB updates, one core", sha, False),
        ("raw_aesgcm_encrypt", "Raw AESGCM.encrypt_into, 1 MiB segments, one core", aes, False),
        (
            "raw_aesgcm_decrypt",
            "Raw AESGCM.decrypt_into, 1 MiB segments, one core",
            d["aesgcm_decrypt"]["GB_per_s"],
            False,
        ),
        (
            "one_thread_floor",
            "Computed: SHA-256 + AES-GCM in one thread, at the raw rates above",
            floor,
            False,
        ),
    ]
    for where, label in (("1core", "one core"), ("all", f"{cores} cores")):
        rows += [
            (
                f"encrypt_stream_memory_{where}",
                f"encrypt_stream, memory → discard, {label}",
                d[f"encrypt_memory_{where}"]["GB_per_s"],
                True,
            ),
            (
                f"encrypt_stream_file_{where}",
                f"encrypt_stream, file on disk (cache dropped) → /dev/null, {label}",
                d[f"file_{where}"]["encrypt_stream"]["GB_per_s"],
                True,
            ),
            (
                f"decrypt_stream_memory_{where}",
                f"decrypt_stream, 8 MiB chunks from memory, {label}",
                d[f"decrypt_memory_{where}"]["GB_per_s"],
                False,
            ),
        ]
    rows.append(
        (
            "raw_file_read",
            "Raw read of that file (cache dropped), 1 MiB readinto, one core",
            d["file_1core"]["raw_read"]["GB_per_s"],
            False,
        )
    )
    out = []
    for key, measure, rate, has_goal in rows:
        out.append(
            {
                "id": key,
                "measure": measure,
                "value": rate,
                "unit": "GB/s",
                "goal": f">= {GOAL}x raw SHA-256" if has_goal else None,
                "met": rate / sha >= GOAL if has_goal else None,
                "ratio": rate / sha,
                "ratio_meaning": "GB/s divided by raw single-core SHA-256 GB/s, same run",
            }
        )
    return sha, out


def render(results: dict[str, Any]) -> str:
    rows = [
        "| Measure | Result | Goal | Met | Ratio to raw SHA-256 (same run) |",
        "|---|---|---|---|---|",
    ]
    for f in results["figures"]:
        goal = (f["goal"] or "—").replace(">=", "≥").replace("x", "×")
        met = "—" if f["met"] is None else ("yes" if f["met"] else "**no**")
        rows.append(
            f"| {f['measure']} | {f['value']:.2f} GB/s | {goal} | {met} | {f['ratio']:.2f} |"
        )
    m, d = results["machine"], results["details"]
    mode = "quick mode (smaller sizes: not the goals' sizes)" if results["quick"] else "full run"
    size = results["sizes"]["total"] >> 20
    return (
        "\n".join(rows)
        + f"\n\n{mode.capitalize()} of `.venv/bin/python bench/vault_crypto_bench.py"
        + (" --quick" if results["quick"] else "")
        + f"` on {m['date']}, {results['seconds']:.0f} s, {m['cores']} × {m['cpu']}, "
        f"Python {m['python']}, cryptography {m['cryptography']} ({m['openssl']}); "
        f"{size:,} MiB per measurement, median of {results['sizes']['repeats']}; raw "
        f"SHA-256 {d['sha256_before']['GB_per_s']:.2f} GB/s before and "
        f"{d['sha256_after']['GB_per_s']:.2f} GB/s after; other load on the machine: "
        f"{results['background_cpu_busy']:.0%} of its CPUs before the run, up to "
        f"{results['other_load_cores']:.2f} cores during a measurement. File: "
        f"{d['file_1core']['filesystem']}. Raw figures: `bench/results/vault_crypto.json`."
        "\n\nWhere the time goes in this run:\n\n"
        + "\n".join(f"- {line}" for line in results["where_time_goes"])
    )


def write_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Vault encryption\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, object]:
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "git_commit": _git("rev-parse", "HEAD"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="128 MiB per measurement, no repeats; seconds"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    all_cpus = os.sched_getaffinity(0)
    one_cpu = {min(all_cpus)}
    meter = CpuMeter()
    meter.start()
    time.sleep(1)
    background = meter.busy()
    if background > 0.25:
        print(f"warning: the machine is already {background:.0%} busy; figures will suffer")
    started = time.perf_counter()
    details = run(sizes, one_cpu, all_cpus)
    sha, figs = figures(details, len(all_cpus))
    results = {
        "benchmark": "vault encryption",
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "segment_size": SEGMENT,
        "machine": machine(),
        "background_cpu_busy": background,
        "raw_sha256_GB_per_s": sha,
        "other_load_cores": max(_other_loads(details)),
        "seconds": time.perf_counter() - started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": figs,
        "where_time_goes": where_time_goes(details, sha, len(all_cpus)),
        "details": details,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    write_readme(table)
    print(table)


if __name__ == "__main__":
    main()
