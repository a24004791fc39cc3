"""A witness for a BWC Evidence custody log, run by an independent party (e.g. oversight).

It keeps the last checkpoint it accepted in its own state directory. Each run fetches
the log's newest checkpoint and a consistency proof from the last one, verifies both
with the standalone verifier, and only then cosigns (C2SP cosignature/v1) and submits
its signature. It refuses, saying why, when the log's history was rewritten: a smaller
tree than before (rollback), a different root at the same size (fork), or a proof that
does not verify. It talks to the service over HTTP only."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from audit import notes, offline_verify

TIMEOUT = 30
MAX_RESPONSE = 1024 * 1024


class WitnessRefusal(Exception):
    """The log's new state is inconsistent with what this witness saw before."""


class WitnessError(Exception):
    """The witness could not do its job (network, configuration); nothing was signed."""


@dataclass(frozen=True)
class WitnessOutcome:
    origin: str
    old_size: int | None
    new_size: int
    cosigned: bool
    message: str


def _get(url: str, token: str | None = None) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise WitnessError("the service URL must be http:// or https://")
    request = urllib.request.Request(url)  # noqa: S310  (scheme checked above)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return bytes(response.read(MAX_RESPONSE))
    except urllib.error.HTTPError as exc:
        raise WitnessError(f"GET {url} answered {exc.code}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise WitnessError(f"GET {url} failed: {exc}") from None


def _post(url: str, body: str) -> bytes:
    request = urllib.request.Request(  # noqa: S310  (scheme checked by _get first)
        url, data=body.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return bytes(response.read(MAX_RESPONSE))
    except urllib.error.HTTPError as exc:
        detail = exc.read(2048).decode(errors="replace")
        raise WitnessError(f"the service refused the cosignature ({exc.code}): {detail}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise WitnessError(f"POST {url} failed: {exc}") from None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def witness_once(
    base_url: str,
    state_dir: Path,
    witness_key_text: str,
    *,
    log_key: str | None = None,
    origin: str | None = None,
    token: str | None = None,
    now: int | None = None,
) -> WitnessOutcome:
    """Check the log once and cosign its newest checkpoint if it is consistent."""
    base = base_url.rstrip("/") + "/api/v1/ledger"
    query = "?" + urllib.parse.urlencode({"origin": origin}) if origin else ""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = state_dir / "log.vkey"
    if log_key is None:
        if key_file.exists():
            log_key = key_file.read_text(encoding="utf-8").strip()
        else:
            # Trust on first use: the operator should compare this key with the one
            # published in the service's README and UI.
            log_key = _get(base + "/key" + query, token).decode().splitlines()[0].strip()
    try:
        vkey = offline_verify.parse_verifier_key(log_key)
    except offline_verify.VerificationError as exc:
        raise WitnessError(f"bad log key: {exc}") from None
    if not key_file.exists():
        _write_atomically(key_file, log_key + "\n")

    note_text = _get(base + "/checkpoint" + query, token).decode()
    try:
        new = offline_verify.verify_checkpoint(note_text, vkey)
    except offline_verify.VerificationError as exc:
        raise WitnessRefusal(f"the checkpoint's signature does not verify: {exc}") from None

    state_file = state_dir / "checkpoint"
    old: offline_verify.Checkpoint | None = None
    if state_file.exists():
        old = offline_verify.verify_checkpoint(state_file.read_text(encoding="utf-8"), vkey)
        if new.origin != old.origin:
            raise WitnessRefusal(f"origin changed from {old.origin} to {new.origin}")
        if new.size < old.size:
            raise WitnessRefusal(
                f"history rewritten: the log shrank from {old.size} to {new.size} leaves"
            )
        if new.size == old.size and new.root_hash != old.root_hash:
            raise WitnessRefusal(f"history rewritten: two different roots at size {new.size}")
        if new.size > old.size and old.size > 0:  # every tree extends the empty one
            proof_url = (
                base
                + "/proof/consistency?"
                + urllib.parse.urlencode(
                    {
                        "first": old.size,
                        "second": new.size,
                        **({"origin": origin} if origin else {}),
                    }
                )
            )
            try:
                proof = offline_verify.consistency_proof_from_json(
                    json.loads(_get(proof_url, token))
                )
                offline_verify.verify_consistency(
                    old.size, new.size, proof.hashes, old.root_hash, new.root_hash
                )
            except (offline_verify.VerificationError, ValueError) as exc:
                raise WitnessRefusal(
                    f"history rewritten: size {new.size} is not consistent with the "
                    f"size {old.size} this witness saw before ({exc})"
                ) from None

    name, private_key = notes.load_cosigning_key(witness_key_text)
    line = notes.cosign(note_text, name, private_key, now if now is not None else int(time.time()))
    _post(base + "/cosignatures", notes.add_signatures(note_text, [line]))
    _write_atomically(state_file, note_text)
    return WitnessOutcome(
        origin=new.origin,
        old_size=old.size if old else None,
        new_size=new.size,
        cosigned=True,
        message=f"cosigned {new.origin} at size {new.size}"
        + (f" (consistent with size {old.size})" if old else " (first checkpoint seen)"),
    )
