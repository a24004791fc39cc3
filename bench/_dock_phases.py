"""Split one watched docking into its phases, from the server's access-log lines (each
stamped when it appeared, less its request time) and the sampler's view of the spool
folder, and charge each phase the agent's and the server's CPU and the agent's reads
from storage."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from _dock_agent import Access, Run, Sample
from _vault_figures import phases as patch_phases

from dock.settings import DockSettings

PATCH_BYTES = DockSettings().upload_chunk_bytes  # the agent runs with the defaults
UPLOAD = re.compile(r"/api/v1/uploads/(?P<id>[^/]+)")


def _at(samples: list[Sample], t: float) -> Sample:
    """The last sample taken at or before t (the first one if none was)."""
    best = samples[0]
    for sample in samples:
        if sample.t > t:
            break
        best = sample
    return best


def _spans(bounds: list[tuple[str, float]], run: Run) -> list[dict[str, Any]]:
    samples = run.watch.samples
    out = []
    for (name, start), (_, end) in zip(bounds, bounds[1:], strict=False):
        a, b = _at(samples, start), _at(samples, end)
        out.append(
            {
                "phase": name,
                "start_s": start,
                "seconds": end - start,
                "agent_cpu_s": b.agent_cpu - a.agent_cpu,
                "server_cpu_s": b.server_cpu - a.server_cpu,
                "agent_storage_read_bytes": b.agent_read_bytes - a.agent_read_bytes,
            }
        )
    return out


def _one(access: list[Access], method: str, path: str) -> list[Access]:
    return [a for a in access if a.method == method and a.path == path]


def phases(run: Run, big_ciphertext: int) -> dict[str, Any]:
    """Where the docking's wall time went, phase by phase, with the big upload's PATCHes."""
    access = sorted(run.watch.access, key=lambda a: a.start)
    patches: dict[str, list[Access]] = defaultdict(list)
    for a in access:
        match = UPLOAD.fullmatch(a.path)
        if match and a.method == "PATCH":
            patches[match["id"]].append(a)
    big_id = max(patches, key=lambda k: len(patches[k]))
    big = patches[big_id]
    spooled = max(run.watch.spool.values(), key=lambda s: s.size)
    # The recording's upload is created as soon as its spool file is durable and
    # journalled: the first creation after its last byte was written.
    post = min(
        (a for a in _one(access, "POST", "/api/v1/uploads/") if a.start >= spooled.last_growth),
        key=lambda a: a.start,
    )
    receipt = _one(access, "GET", f"/api/v1/uploads/{big_id}/receipt")[-1]
    activations = _one(access, "POST", "/api/v1/docks/activations")
    wipes = _one(access, "POST", "/api/v1/docks/wipes")
    after_receipt = activations[-1].end if activations else receipt.end
    bounds = [
        ("start-up: interpreter, imports, enrolment, journal, simulated USB", 0.0),
        ("identity, scan, inspection, the sidecar's spool", access[0].start),
        ("spool: read, hash and encrypt the recording into the spool", spooled.first_seen),
        ("spool: fsync and journal", spooled.last_growth),
        ("upload: POST, HEAD, all PATCHes but the last", post.start),
        ("upload: the last PATCH (the service verifies)", big[-1].start),
        ("receipt, its proof checked; the other uploads; activations", big[-1].end),
        ("wipe: re-hash the recording, unlink", after_receipt),
        ("wipe reports, the sidecar's wipe, session report, heartbeat, exit", wipes[0].start),
        ("end", run.seconds),
    ]
    split = patch_phases(
        {"patch_s": [a.seconds for a in big], "ciphertext_bytes": big_ciphertext},
        PATCH_BYTES,
    )
    between = [b.start - a.end for a, b in zip(big, big[1:], strict=False)]
    return {
        "spans": _spans(bounds, run),
        "big_upload": {
            "patches": len(big),
            "patch_bytes": PATCH_BYTES,
            "patch_s_sum": sum(a.seconds for a in big[:-1]),
            "between_patches_s_sum": sum(between),
            "head_requests": len(_one(access, "HEAD", f"/api/v1/uploads/{big_id}")),
            "last_patch_s": big[-1].seconds,
            "verify_s": split["verify_s"],
            "bytes_MB_per_s": split["bytes_MB_per_s"],
            "receipt_s": receipt.seconds,
        },
        "requests": len(access),
        "uploads": len(_one(access, "POST", "/api/v1/uploads/")),
        "sample_interval_s": run.seconds / max(1, len(run.watch.samples)),
    }


def rss_timeline(run: Run, step: float = 1.0) -> list[list[float]]:
    """[seconds, VmRSS MiB] once a second from 1 s on (before that the process is still
    the launcher's fork, then the interpreter starting): memory does not grow with the file."""
    out: list[list[float]] = []
    due = step
    for sample in run.watch.samples:
        if sample.t >= due:
            out.append([round(sample.t, 2), round(sample.rss_kib / 1024, 1)])
            while due <= sample.t:
                due += step
    return out
