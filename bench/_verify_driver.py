"""Runs the standalone verifier over an exported event set and prints timings as JSON.

Usage: python -I _verify_driver.py (library|cli) EXPORT_DIR

Imports nothing from this project: the verifier is the copy of audit/offline_verify.py
in EXPORT_DIR, loaded by path, as a court or auditor would run it. `library` calls its
functions once per proof; `cli` calls its command-line entry point main() once per
command, exactly as `bwc-verify ...` would run, minus the interpreter start."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_verifier(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bwc_verify", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bwc_verify"] = module
    spec.loader.exec_module(module)
    return module


def _leaf_path(folder: Path, index: int) -> Path:
    return folder / "leaves" / f"{index:06d}.leaf"


def _proof_path(folder: Path, index: int) -> Path:
    return folder / "proofs" / f"{index:06d}.json"


def run_library(v: ModuleType, folder: Path, manifest: dict[str, Any]) -> dict[str, float]:
    """Checkpoint once, every inclusion proof from its files, the whole log's root, and
    every evidence item's custody chain."""
    t0 = time.perf_counter()
    key = v.parse_verifier_key((folder / "log.vkey").read_text().splitlines()[0])
    checkpoint = v.verify_checkpoint((folder / "checkpoint.note").read_text(), key)
    t1 = time.perf_counter()
    proof_hashes = 0
    for index in range(checkpoint.size):
        leaf = _leaf_path(folder, index).read_bytes()
        proof = v.inclusion_proof_from_json(json.loads(_proof_path(folder, index).read_text()))
        if (proof.leaf_index, proof.tree_size) != (index, checkpoint.size):
            raise v.VerificationError(f"proof {index} is for another leaf or tree")
        v.verify_inclusion(
            v.leaf_hash(leaf), index, checkpoint.size, proof.hashes, checkpoint.root_hash
        )
        proof_hashes += len(proof.hashes)
    t2 = time.perf_counter()
    leaves = (folder / "leaves.txt").read_bytes().split(b"\n")[:-1]
    if len(leaves) != checkpoint.size or v.merkle_root([v.leaf_hash(x) for x in leaves]) != (
        checkpoint.root_hash
    ):
        raise v.VerificationError("leaves.txt is not the log the checkpoint commits to")
    t3 = time.perf_counter()
    expected: dict[str, int] = manifest["chains"]
    if hasattr(v, "check_chains"):  # every item in one pass
        found = v.check_chains(leaves)
    else:
        found = {item: v.check_item_chain(leaves, item) for item in expected}
    if found != expected:
        raise v.VerificationError("custody chains differ from what the ledger exported")
    t4 = time.perf_counter()
    return {
        "checkpoint_s": t1 - t0,
        "inclusion_s": t2 - t1,
        "whole_log_root_s": t3 - t2,
        "chains_s": t4 - t3,
        "chains_api": "check_chains" if hasattr(v, "check_chains") else "check_item_chain",
        "proof_hashes": proof_hashes,
        "signature_verifications": 1,
    }


def run_cli(v: ModuleType, folder: Path, manifest: dict[str, Any]) -> dict[str, float]:
    """`checkpoint` once, `inclusion` per leaf, `chain --checkpoint` per evidence item."""
    key, note, leaves = (str(folder / n) for n in ("log.vkey", "checkpoint.note", "leaves.txt"))
    size = manifest["size"]

    def run(argv: list[str]) -> None:
        with redirect_stdout(io.StringIO()):
            status = v.main(argv)
        if status != 0:
            raise SystemExit(f"bwc-verify {' '.join(argv)} exited {status}")

    t0 = time.perf_counter()
    run(["checkpoint", "--key", key, note])
    t1 = time.perf_counter()
    for index in range(size):
        leaf, proof = str(_leaf_path(folder, index)), str(_proof_path(folder, index))
        run(["inclusion", "--key", key, "--leaf", leaf, "--checkpoint", note, "--proof", proof])
    t2 = time.perf_counter()
    for item in manifest["chains"]:
        run(["chain", "--evidence-id", item, "--key", key, "--checkpoint", note, leaves])
    t3 = time.perf_counter()
    for _ in range(200):  # what each command spends on its argument parser alone
        v.build_parser()
    t4 = time.perf_counter()
    return {
        "checkpoint_s": t1 - t0,
        "inclusion_s": t2 - t1,
        "chains_s": t3 - t2,
        "build_parser_ms": (t4 - t3) / 200 * 1e3,
        "commands": 1 + size + len(manifest["chains"]),
        "signature_verifications": 1 + size + len(manifest["chains"]),
    }


def main() -> None:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    started = time.perf_counter()
    verifier = _load_verifier(folder / "bwc_verify.py")
    loaded = time.perf_counter()
    manifest = json.loads((folder / "manifest.json").read_text())
    result = (run_library if mode == "library" else run_cli)(verifier, folder, manifest)
    project = sorted(
        m for m in sys.modules if m.split(".")[0] in {"app", "audit", "evidence", "sqlalchemy"}
    )
    result |= {
        "import_s": loaded - started,
        "in_process_s": time.perf_counter() - started,
        "project_modules_loaded": project,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
