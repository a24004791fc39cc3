"""Password hashing and TOTP / recovery-code handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from app.accounts import totp
from app.accounts.passwords import WeakPassword, hash_password, verify_password

NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


def test_passwords_are_hashed_with_argon2id_and_salted() -> None:
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")
    # argon2id with RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes.
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert first != second
    assert verify_password(first, "correct horse battery")
    assert not verify_password(first, "correct horse batterY")


@pytest.mark.parametrize("password", ["short", " " * 20, "x" * 1025])
def test_weak_or_absurd_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        hash_password(password)


def test_verifying_against_no_account_is_false_not_an_error() -> None:
    assert verify_password(None, "anything at all") is False
    assert verify_password("not-a-hash", "anything at all") is False


def test_totp_accepts_current_and_adjacent_steps_only() -> None:
    secret = totp.new_secret()
    generator = pyotp.TOTP(secret)
    step = int(NOW.timestamp()) // 30
    assert totp.accept_code(secret, generator.at(NOW), last_step=None, now=NOW) == step
    earlier = NOW - timedelta(seconds=30)
    assert totp.accept_code(secret, generator.at(earlier), last_step=None, now=NOW) == step - 1
    too_old = NOW - timedelta(seconds=90)
    assert totp.accept_code(secret, generator.at(too_old), last_step=None, now=NOW) is None


def test_a_totp_code_is_never_accepted_twice() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(NOW)
    step = totp.accept_code(secret, code, last_step=None, now=NOW)
    assert step is not None
    assert totp.accept_code(secret, code, last_step=step, now=NOW) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_rejected(code: str) -> None:
    assert totp.accept_code(totp.new_secret(), code, last_step=None, now=NOW) is None


def test_enrolment_qr_code_is_an_svg_with_the_provisioning_uri_and_no_script() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "demo-admin")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    svg = totp.qr_svg(uri)
    assert svg.startswith("<svg") and "<script" not in svg and "style=" not in svg


def test_recovery_codes_are_unique_long_and_normalised_before_hashing() -> None:
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(code.replace("-", "")) == 16 for code in codes)
    code = codes[0]
    assert totp.recovery_code_digest(code) == totp.recovery_code_digest(
        code.lower().replace("-", " ")
    )
    assert totp.recovery_code_digest(code) != totp.recovery_code_digest(codes[1])


def test_secret_validation() -> None:
    assert totp.is_valid_secret(totp.new_secret())
    assert not totp.is_valid_secret("not base32 !!")
    assert not totp.is_valid_secret("ABCD")
