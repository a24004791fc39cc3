"""Container sanity for recordings: the top-level ISO-BMFF box structure, nothing deeper."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from dock.report import Flag

# Camera bytes are never handed to FFmpeg/PyAV on the dock: a demuxer is a large attack
# surface, and the dock holds keys. This reads box headers only (8 or 16 bytes each, plus
# a uuid's 16), so the work is bounded by MAX_TOP_LEVEL_BOXES whatever the file claims.
MAX_TOP_LEVEL_BOXES = 10_000  # a fragmented MP4 has one moof+mdat pair per fragment
REQUIRED_BOXES = frozenset({b"ftyp", b"moov", b"mdat"})
_MIN_FTYP = 16  # header, major brand, minor version


class MalformedContainer(ValueError):
    """The file is not a well-formed sequence of top-level ISO-BMFF boxes."""


@dataclass(frozen=True)
class Box:
    type: bytes
    offset: int
    size: int  # header included
    header: int


def _read_at(source: int | BinaryIO, offset: int, length: int) -> bytes:
    if isinstance(source, int):
        return os.pread(source, length, offset)
    source.seek(offset)
    return source.read(length)


def top_level_boxes(source: int | BinaryIO, size: int) -> list[Box]:
    """The top-level boxes of a file of `size` bytes (the scanned size, not what the file
    says), read from an fd with pread or from a seekable binary reader.

    Raises MalformedContainer for a box shorter than its header, one running past the
    end, a 0-size box that is not last, a type that is not four printable ASCII bytes,
    a short read, or more than MAX_TOP_LEVEL_BOXES boxes."""
    boxes: list[Box] = []
    offset = 0
    while offset < size:
        if len(boxes) >= MAX_TOP_LEVEL_BOXES:
            raise MalformedContainer("too many top-level boxes")
        box = _box_at(source, offset, size)
        boxes.append(box)
        offset += box.size
    return boxes


def _box_at(source: int | BinaryIO, offset: int, size: int) -> Box:
    remaining = size - offset
    if remaining < 8:
        raise MalformedContainer(f"{remaining} trailing bytes at {offset}")
    head = _read_at(source, offset, 16 if remaining >= 16 else 8)
    if len(head) < 8:
        raise MalformedContainer("short read")
    box_size, kind = struct.unpack(">I4s", head[:8])
    if not all(0x20 <= b < 0x7F for b in kind):
        raise MalformedContainer(f"garbage box type at {offset}")
    header = 8
    if box_size == 1:  # 64-bit largesize follows the type
        if len(head) < 16:
            raise MalformedContainer("truncated largesize")
        (box_size,) = struct.unpack(">Q", head[8:16])
        header = 16
    elif box_size == 0:  # the box runs to the end of the file
        box_size = remaining
    if kind == b"uuid":
        header += 16
    if box_size < header:
        raise MalformedContainer(f"box {kind!r} of {box_size} bytes at {offset}")
    if box_size > remaining:
        raise MalformedContainer(f"box {kind!r} at {offset} runs past the end")
    return Box(kind, offset, box_size, header)


def check_mp4(source: int | BinaryIO, size: int) -> set[Flag]:
    """{malformed_container} unless the file is a sound top-level box sequence that
    starts with an ftyp of at least 16 bytes and holds moov and mdat; else empty.

    A recording cut short by a flat battery (no moov) is flagged too; the flag is
    information on the item, not grounds to drop it."""
    try:
        boxes = top_level_boxes(source, size)
    except (MalformedContainer, OSError):
        return {Flag.MALFORMED_CONTAINER}
    kinds = {box.type for box in boxes}
    if not boxes or boxes[0].type != b"ftyp" or boxes[0].size < _MIN_FTYP:
        return {Flag.MALFORMED_CONTAINER}
    if not REQUIRED_BOXES <= kinds:
        return {Flag.MALFORMED_CONTAINER}
    return set()
