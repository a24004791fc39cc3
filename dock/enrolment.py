"""Enrolment: exchange the one-time token for the dock's credential, and pin the keys.

The enrolment file holds the credential, so it is created with mode 0600 and refused if
others can read it. The ingest public key and the log verifier key pinned here are the
only keys the dock ever trusts: a receipt signed by any other key proves nothing."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests


class EnrolmentError(Exception):
    """Enrolment failed or the enrolment file is missing or unsafe."""


@dataclass(frozen=True)
class Enrolment:
    service: str
    dock: str
    credential: str
    ingest_key_version: str
    ingest_public_key: str
    log_origin: str
    log_verifier_key: str

    def __repr__(self) -> str:
        return f"Enrolment(service={self.service!r}, dock={self.dock!r})"


def enrol(service: str, token: str, path: Path, *, timeout: float = 30.0) -> Enrolment:
    """Redeem token at service and write the enrolment file (refusing to overwrite one)."""
    if path.exists():
        raise EnrolmentError(f"{path} exists: this dock is enrolled; remove it to re-enrol")
    base = service.rstrip("/")
    try:
        response = requests.post(
            base + "/api/v1/docks/enrol", json={"token": token}, timeout=timeout
        )
    except requests.RequestException as exc:
        raise EnrolmentError(f"cannot reach {base}: {exc.__class__.__name__}") from None
    if response.status_code != 201:
        raise EnrolmentError(
            f"enrolment refused ({response.status_code}): the token is "
            "unknown, used or expired; ask for a new one"
        )
    body: dict[str, Any] = response.json()
    enrolment = Enrolment(
        service=base,
        dock=str(body["dock"]),
        credential=str(body["credential"]),
        ingest_key_version=str(body["ingest_key"]["version"]),
        ingest_public_key=str(body["ingest_key"]["public_key"]),
        log_origin=str(body["log"]["origin"]),
        log_verifier_key=str(body["log"]["verifier_key"]),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(enrolment.__dict__, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    return enrolment


def load_enrolment(path: Path) -> Enrolment:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise EnrolmentError(
            f"not enrolled: run `bwc-dock enroll --service URL --token T` (no {path})"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise EnrolmentError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise EnrolmentError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        return Enrolment(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise EnrolmentError(f"{path} is malformed: {exc}") from None
