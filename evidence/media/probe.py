"""What a browser can play: probing an original's container, codecs and index position.

Browsers (Chromium included) play H.264, VP9 and AV1 video with AAC, MP3 or Opus audio
from MP4 or WebM. An MP4 whose index (`moov`) comes after the media (`mdat`) plays too,
but only after the player fetched the end of the file, and seeking is slow: those get a
proxy as well. Everything here reads a hostile file: box sizes are checked, walks are
bounded, and any failure is a `MediaError` that says what is wrong, never a crash."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

import av

from evidence.errors import InvalidInput

BROWSER_VIDEO = frozenset({"h264", "vp8", "vp9", "av1"})
BROWSER_AUDIO = frozenset({"aac", "mp3", "opus", "vorbis", "flac"})
# 8-bit 4:2:0 only: Chromium plays no 10-bit or 4:2:2 H.264.
BROWSER_PIXELS = frozenset({"yuv420p", "yuvj420p", "nv12"})
_MP4_FAMILY = "mp4"  # PyAV names the demuxer "mov,mp4,m4a,3gp,3g2,mj2"
_WEBM_FAMILY = "matroska"
_MAX_BOXES = 10_000
# How much of a file FFmpeg may read to tell its container (its default is 1 MiB). Every
# container an evidence recording comes in is named within its first few KiB; a file of
# noise is tried against every demuxer over doubling buffers up to this size, which at
# the default cost about 90 ms of CPU per file (a quarter at 256 KiB).
_FORMAT_PROBE_BYTES = 256 * 1024
_OPEN_OPTIONS = {"formatprobesize": str(_FORMAT_PROBE_BYTES)}

_CODEC_NAMES = {"hevc": "HEVC (H.265)", "h264": "H.264", "mpeg4": "MPEG-4 Part 2"}


class MediaFile(Protocol):
    """A seekable binary file (FFmpeg's demuxers and muxers need nothing more)."""

    def read(self, size: int = -1, /) -> bytes | None: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class MediaError(InvalidInput):
    """The file is not media we can read (corrupt, truncated, not a video at all)."""


@dataclass(frozen=True)
class Playability:
    """What a probe found and whether browsers can play the file as it is."""

    plays_in_browsers: bool
    reason: str
    container: str
    video_codec: str | None
    audio_codec: str | None
    pixel_format: str | None
    faststart: bool | None
    duration_seconds: float | None
    width: int | None
    height: int | None
    frame_rate: float | None

    def as_details(self) -> dict[str, object]:
        return {
            "container": self.container,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "pixel_format": self.pixel_format,
            "faststart": self.faststart,
            "duration_seconds": self.duration_seconds,
            "width": self.width,
            "height": self.height,
        }


def top_level_boxes(src: MediaFile, size: int) -> list[str]:
    """The types of an ISO-BMFF file's top-level boxes, in order, reading only headers.

    Stops at the first malformed header (a size smaller than its header or running past
    the end) and after `_MAX_BOXES`; what was read before is returned."""
    found: list[str] = []
    offset = 0
    while offset + 8 <= size and len(found) < _MAX_BOXES:
        src.seek(offset)
        head = src.read(16) or b""
        if len(head) < 8:
            break
        box_size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if box_size == 1:
            if len(head) < 16:
                break
            (box_size,) = struct.unpack(">Q", head[8:16])
            header = 16
        elif box_size == 0:
            box_size = size - offset
        if box_size < header or offset + box_size > size:
            break
        found.append(kind.decode("latin-1"))
        offset += box_size
    return found


def has_index_first(src: MediaFile, size: int) -> bool:
    """True when an MP4's `moov` comes before its first `mdat` (faststart)."""
    boxes = top_level_boxes(src, size)
    if "moov" not in boxes:
        return False
    return "mdat" not in boxes or boxes.index("moov") < boxes.index("mdat")


def codec_label(name: str | None) -> str:
    return _CODEC_NAMES.get(name or "", (name or "no").upper())


def probe(src: MediaFile, size: int) -> Playability:
    """Open the file with FFmpeg's demuxers (no decoding) and decide browser playback."""
    try:
        with av.open(src, mode="r", options=_OPEN_OPTIONS) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            family = container.format.name
            duration = container.duration / 1_000_000 if container.duration else None
            vcodec = video.codec_context.name if video else None
            pixels = (
                video.codec_context.format.name if video and video.codec_context.format else None
            )
            width = video.codec_context.width if video else None
            height = video.codec_context.height if video else None
            rate = float(video.average_rate) if video and video.average_rate else None
            acodec = audio.codec_context.name if audio else None
    except (av.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable recording: {exc}") from None
    faststart: bool | None = None
    if _MP4_FAMILY in family.split(","):
        src.seek(0)
        faststart = has_index_first(src, size)
    reasons = []
    if video is None:
        reasons.append("no video stream")
    else:
        if vcodec not in BROWSER_VIDEO:
            reasons.append(f"{codec_label(vcodec)} video")
        elif pixels not in BROWSER_PIXELS:
            reasons.append(f"{pixels} pixels")
    if acodec is not None and acodec not in BROWSER_AUDIO:
        reasons.append(f"{codec_label(acodec)} audio")
    if not (_MP4_FAMILY in family.split(",") or _WEBM_FAMILY in family.split(",")):
        reasons.append(f"a {family} container")
    if faststart is False:
        reasons.append("its index at the end of the file (no faststart)")
    return Playability(
        plays_in_browsers=not reasons,
        reason="; ".join(reasons) or "plays in browsers as it is",
        container=family,
        video_codec=vcodec,
        audio_codec=acodec,
        pixel_format=pixels,
        faststart=faststart,
        duration_seconds=duration,
        width=width,
        height=height,
        frame_rate=rate,
    )
