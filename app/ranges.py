"""HTTP Range requests (RFC 9110 §14) for one immutable representation.

Policy, documented in docs/ingest.md: a single byte range gets 206; several ranges get
the whole representation (200), which RFC 9110 allows and which keeps every answer a
plain, seekable body; a syntactically invalid Range is ignored (200); a range that
starts at or past the end gets 416 with `Content-Range: bytes */size`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"^bytes=(.+)$", re.IGNORECASE)
_ONE = re.compile(r"^\s*(\d{0,19})\s*-\s*(\d{0,19})\s*$")
MAX_RANGES = 100


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of a representation of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


class Unsatisfiable(Exception):
    """No requested range overlaps the representation: answer 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to serve, or None to serve everything (no, invalid or multi range)."""
    if not header:
        return None
    match = _SPEC.match(header.strip())
    if not match:
        return None  # another unit, or not a range at all: ignore it
    parts = match.group(1).split(",")
    if len(parts) > MAX_RANGES:
        return None
    ranges = []
    for part in parts:
        one = _ONE.match(part)
        if not one or (one.group(1) == "" and one.group(2) == ""):
            return None
        first, last = one.group(1), one.group(2)
        if first == "":  # suffix: the last n bytes
            n = int(last)
            if n == 0:
                continue  # unsatisfiable on its own
            ranges.append(ByteRange(max(size - n, 0), size, size) if size else None)
            continue
        start = int(first)
        if last != "" and int(last) < start:
            return None  # invalid: last before first
        if start >= size:
            continue
        end = size if last == "" else min(int(last) + 1, size)
        ranges.append(ByteRange(start, end, size))
    satisfiable = [r for r in ranges if r is not None]
    if not satisfiable:
        raise Unsatisfiable()
    if len(parts) > 1:
        return None  # several ranges: the whole representation (see module docstring)
    return satisfiable[0]
