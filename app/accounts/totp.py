"""TOTP second factor (RFC 6238) and single-use recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno

ISSUER = "BWC Evidence"
STEP_SECONDS = 30
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I lookalikes


def new_secret() -> str:
    """A fresh 160-bit base32 TOTP secret."""
    return pyotp.random_base32(length=32)


def is_valid_secret(secret: str) -> bool:
    try:
        pyotp.TOTP(secret).now()
    except (ValueError, TypeError):  # bad base32 raises binascii.Error, a ValueError
        return False
    return len(secret) >= 16


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as an inline SVG, rendered on the server (no script, no CDN)."""
    qr = segno.make(uri, error="m")
    return str(qr.svg_inline(scale=5, dark="#000", light="#fff", title="TOTP enrolment code"))


def accept_code(secret: str, code: str, *, last_step: int | None, now: datetime) -> int | None:
    """The time step a code belongs to, or None if it is wrong or was already used.

    One step of clock drift either way is tolerated. A step at or before last_step is
    refused, so a code seen over someone's shoulder cannot be replayed."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 characters (80 bits) each, shown to the user once."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_code_digest(code: str) -> str:
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()
