"""Identity first (DESIGN.md §6 rule 1): decide whether a docked device is a known camera."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from dock.profiles import Limits, Profile, profile_for_usb
from dock.report import Alert, Decision, Flag, RefusalReason
from dock.usb import UsbDevice

Registered = Callable[[str], bool] | Collection[str]


@dataclass(frozen=True)
class UsbVerdict:
    """Step one: what the USB descriptors alone allow. Nothing has been read yet."""

    device: UsbDevice
    profile: Profile | None
    reasons: list[RefusalReason] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the volume may be opened to read its DEVICE.JSON (and only that)."""
        return not self.reasons and self.profile is not None


@dataclass(frozen=True)
class IdentityVerdict:
    """The identity decision of one docking: accept only when every rule holds."""

    device: UsbDevice
    profile: Profile | None
    decision: Decision
    reasons: list[RefusalReason] = field(default_factory=list)
    alerts: set[Alert] = field(default_factory=set)
    flags: set[Flag] = field(default_factory=set)  # for the DEVICE.JSON entry
    device_json: dict[str, Any] | None = None  # the parsed metadata, once it is trusted


def check_usb(
    dev: UsbDevice, profiles: Mapping[str, Profile], registered: Registered
) -> UsbVerdict:
    """Check VID/PID against the profiles, the exact interface set, and the serial.

    Every failing rule is reported, not just the first, so a session report says all
    that was wrong. The interface check compares multisets: one extra keyboard, a second
    storage interface or a missing one all refuse. The serial must be present and
    registered; a serial with control characters is never even looked up.

    Trusts nothing from the device; a device can forge all of this, which is why the
    on-volume identity and the service's later checks still follow."""
    reasons: list[RefusalReason] = []
    profile = profile_for_usb(dict(profiles), dev.vid, dev.pid)
    if profile is None:
        reasons.append(RefusalReason.USB_ID_NOT_ALLOWLISTED)
    elif Counter(dev.interfaces) != Counter(profile.interfaces):
        reasons.append(RefusalReason.UNEXPECTED_USB_INTERFACE)
    if not _is_registered(dev.serial, registered):
        reasons.append(RefusalReason.UNREGISTERED_SERIAL)
    return UsbVerdict(dev, profile, reasons)


def _is_registered(serial: str | None, registered: Registered) -> bool:
    if not serial or not serial.isprintable():
        return False
    if isinstance(registered, str | bytes):
        # A string is a Collection[str] too: `in` would then accept any substring.
        raise TypeError("registered serials must be a set or a lookup, not a string")
    if callable(registered):
        return bool(registered(serial))
    return serial in registered


def check_device_json(
    verdict: UsbVerdict, device_json_bytes: bytes | None, limits: Limits | None = None
) -> IdentityVerdict:
    """Step two: the on-volume identity must agree with the USB serial.

    Call only with a passed UsbVerdict, having read at most `max_metadata_bytes + 1`
    bytes of the profile's DEVICE.JSON; for a refused verdict the bytes are ignored
    unparsed. A DEVICE.JSON that is missing, oversized, not UTF-8, not one JSON object
    with unique keys, of another schema or without a string serial cannot confirm the
    identity, so it refuses with `serial_mismatch` (and flags the entry
    `device_metadata_unparseable` when something was there to parse)."""
    if not verdict.passed or verdict.profile is None:
        return _decide(verdict, [], set(), None)
    profile = verdict.profile
    limit = (limits or profile.limits).max_metadata_bytes
    flags: set[Flag] = set()
    metadata = None
    if device_json_bytes is not None:
        metadata = parse_device_json(device_json_bytes, limit, profile.device_metadata_schema)
        if metadata is None:
            flags.add(Flag.DEVICE_METADATA_UNPARSEABLE)
    if metadata is None or metadata["serial"] != verdict.device.serial:
        return _decide(verdict, [RefusalReason.SERIAL_MISMATCH], flags, None)
    return _decide(verdict, [], flags, metadata)


def check_identity(
    dev: UsbDevice,
    profiles: Mapping[str, Profile],
    registered_serials: Registered,
    device_json: Mapping[str, Any] | bytes | None,
) -> IdentityVerdict:
    """Both steps at once, for callers that already hold the metadata.

    The agent itself calls check_usb() first and reads DEVICE.JSON only when it passed;
    this form exists for `offload --volume` and tests. A mapping is re-encoded and goes
    through the same bounded parser as bytes from the volume."""
    verdict = check_usb(dev, profiles, registered_serials)
    if isinstance(device_json, Mapping):
        device_json = json.dumps(dict(device_json)).encode("utf-8")
    return check_device_json(verdict, device_json)


def parse_device_json(data: bytes, limit: int, schema: str) -> dict[str, Any] | None:
    """DEVICE.JSON as a dict with a string `serial`, or None when it cannot be trusted.

    Duplicate keys are refused: with two "serial" members, parsers disagree on which
    wins, and the one showing a clerk the file must not differ from the one deciding."""
    if len(data) > limit:
        return None
    try:
        parsed = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or parsed.get("schema") != schema:
        return None
    if not isinstance(parsed.get("serial"), str):
        return None
    return parsed


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-JSON constant {name}")


def _decide(
    verdict: UsbVerdict,
    more: list[RefusalReason],
    flags: set[Flag],
    metadata: dict[str, Any] | None,
) -> IdentityVerdict:
    reasons = sorted(set(verdict.reasons) | set(more), key=list(RefusalReason).index)
    refused = bool(reasons) or verdict.profile is None
    return IdentityVerdict(
        device=verdict.device,
        profile=verdict.profile,
        decision=Decision.REFUSE if refused else Decision.ACCEPT,
        reasons=reasons,
        alerts={Alert.DEVICE_REFUSED} if refused else set(),
        flags=flags,
        device_json=None if refused else metadata,
    )
