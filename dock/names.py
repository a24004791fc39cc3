"""What camera file names mean: FAT-impossible names, desktop debris, twins, layout kinds."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from enum import StrEnum

from dock.profiles import Profile

MAX_FAT_NAME_UNITS = 255  # a VFAT/exFAT long name holds at most 255 UTF-16 code units
_FAT_FORBIDDEN = frozenset(b'"*/:<>?\\|')
_DOS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{n}" for n in range(1, 10)]
    + [f"LPT{n}" for n in range(1, 10)]
)
# Names desktop systems leave behind (compared casefolded: FAT is case-insensitive).
_DEBRIS_NAMES = frozenset(
    name.casefold()
    for name in (
        ".DS_Store",
        ".Spotlight-V100",
        ".Trashes",
        ".fseventsd",
        ".TemporaryItems",
        ".DocumentRevisions-V100",
        ".apdisk",
        ".VolumeIcon.icns",
        "Thumbs.db",
        "ehthumbs.db",
        "desktop.ini",
        "$RECYCLE.BIN",
        "RECYCLER",
        "System Volume Information",
        ".Trash",
        "lost+found",
    )
)
_DEBRIS_PATTERN = re.compile(
    r"\._.*|\.Trash-[0-9]+|~\$.*|.*\.sw[a-p]|\.~lock\..*#|.*~", re.ASCII | re.DOTALL
)
_MEDIA_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".3gp", ".mts", ".ts"})


class FileKind(StrEnum):
    """Where a file sits in the profile's layout."""

    DEVICE_METADATA = "device_metadata"
    EVENT_LOG = "event_log"
    RECORDING = "recording"
    SIDECAR = "sidecar"
    OTHER = "other"


def split_path(path_raw: bytes) -> tuple[bytes, bytes]:
    """(parent, name) of a volume-relative raw path; the parent of a root entry is b""."""
    parent, _, name = path_raw.rpartition(b"/")
    return parent, name


def stem(name: bytes) -> bytes:
    """The name without its last suffix: BWC00001.MP4 -> BWC00001."""
    head, dot, _ = name.rpartition(b".")
    return head if dot and head else name


def fs_impossible(name: bytes) -> bool:
    """True when FAT/exFAT cannot hold this name, so no camera wrote it.

    Non-UTF-8 bytes count too: the dock mounts with UTF-8 name conversion, so a name
    that does not decode came from another filesystem or a forged directory entry."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    if any(byte < 0x20 or byte in _FAT_FORBIDDEN for byte in name):
        return True
    if text.endswith((".", " ")):
        return True
    if len(text.encode("utf-16-le")) // 2 > MAX_FAT_NAME_UNITS:
        return True
    device = text.split(".", 1)[0].rstrip(" ").upper()
    return device in _DOS_DEVICES


def foreign_os_artifact(name: bytes) -> bool:
    """True for the debris desktop systems leave on a volume they mounted."""
    text = name.decode("utf-8", errors="surrogateescape")
    return text.casefold() in _DEBRIS_NAMES or _DEBRIS_PATTERN.fullmatch(text) is not None


def twin_key(name: bytes) -> str:
    """The key under which two names are the same to a case-insensitive, normalising eye.

    NFKC then casefold then NFKC again (Unicode's NFKC_Casefold, near enough): BWC00001.MP4
    and bwc00001.mp4, or NFC and NFD spellings of "é", get one key."""
    text = name.decode("utf-8", errors="surrogateescape")
    folded = unicodedata.normalize("NFKC", text).casefold()
    return unicodedata.normalize("NFKC", folded)


def find_twins(paths: Iterable[bytes]) -> set[bytes]:
    """Every path that shares its directory and twin key with a differently spelled path.

    FAT compares names case-insensitively, so a volume holding both spellings did not
    come from FAT; both are flagged, since neither can be said to be the original."""
    groups: dict[tuple[bytes, str], set[bytes]] = defaultdict(set)
    for path in paths:
        parent, name = split_path(path)
        groups[(parent, twin_key(name))].add(path)
    return {path for group in groups.values() if len(group) > 1 for path in group}


def prefixes(path_raw: bytes) -> list[bytes]:
    """The path and each of its ancestors: a/b/c -> a, a/b, a/b/c."""
    parts = path_raw.split(b"/")
    return [b"/".join(parts[: i + 1]) for i in range(len(parts))]


def plain_name(value: str) -> bool:
    """True for a bare file name: no separators, no dot-dot, no NUL or controls, no drive.

    Camera metadata that names a file is compared with this before anything else; the
    name is only ever compared, never opened (DESIGN.md §6 rule 2)."""
    return (
        0 < len(value) <= MAX_FAT_NAME_UNITS
        and value.isprintable()
        and not any(c in value for c in "/\\:\x00")
        and ".." not in value
        and value not in {".", ".."}
    )


def _ascii_fullmatch(pattern: re.Pattern[str], text: str) -> bool:
    # fullmatch, because `$` also matches before a trailing newline; ASCII, because \d
    # would otherwise accept Arabic-Indic or fullwidth digits.
    strict = re.compile(pattern.pattern, (pattern.flags & ~re.UNICODE) | re.ASCII)
    return strict.fullmatch(text) is not None


def matches(pattern: re.Pattern[str], name: bytes | str) -> bool:
    """True when a raw or decoded name matches a profile name pattern exactly."""
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return _ascii_fullmatch(pattern, name)


def classify(profile: Profile, path_raw: bytes) -> FileKind:
    """The layout kind of a file, by exact byte comparison with the profile's paths."""
    if path_raw == profile.device_metadata.encode():
        return FileKind.DEVICE_METADATA
    if path_raw == profile.event_log.encode():
        return FileKind.EVENT_LOG
    parent, name = split_path(path_raw)
    if parent in {d.encode() for d in profile.recording_dirs}:
        if matches(profile.recording_name, name):
            return FileKind.RECORDING
        if matches(profile.sidecar_name, name):
            return FileKind.SIDECAR
    return FileKind.OTHER


def in_recording_dir(profile: Profile, path_raw: bytes) -> bool:
    return split_path(path_raw)[0] in {d.encode() for d in profile.recording_dirs}


def recording_like(profile: Profile, name: bytes) -> bool:
    """True for a name that looks like footage or its sidecar, whatever its case."""
    text = name.decode("utf-8", errors="surrogateescape")
    ignore_case = [
        re.compile(p.pattern, re.IGNORECASE) for p in (profile.recording_name, profile.sidecar_name)
    ]
    if any(p.fullmatch(text) for p in ignore_case):
        return True
    suffix = text[text.rfind(".") :].casefold() if "." in text else ""
    return suffix in _MEDIA_SUFFIXES
