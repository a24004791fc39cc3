"""Making a playback proxy: H.264/AAC in an MP4 with its index first and 1 s keyframes.

The proxy is for watching, never for evidence: it is made from the authenticated
plaintext of the original, into a random-access sink the caller provides (an
`EncryptedScratch`), and the original is only ever read. The index goes first by
reserving room for it at the start (FFmpeg's `moov_size`), so no second pass over a
plaintext file is needed. Decoding a hostile file is bounded: frames past
`MAX_SECONDS` stop the job with a `MediaError`, as does anything FFmpeg refuses."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from evidence.media.probe import MediaError, MediaFile, has_index_first

MAX_SECONDS = 12 * 3600
MAX_HEIGHT = 1080
_DEFAULT_RATE = Fraction(30)


@dataclass(frozen=True)
class ProxyInfo:
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    frames: int
    duration_seconds: float
    keyframe_seconds: float

    def as_details(self) -> dict[str, object]:
        return {
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "duration_seconds": round(self.duration_seconds, 3),
            "keyframe_seconds": self.keyframe_seconds,
        }


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _size(width: int, height: int, max_height: int) -> tuple[int, int]:
    if height > max_height:
        width, height = round(width * max_height / height), max_height
    return _even(width), _even(height)


def _index_room(duration: float | None, rate: Fraction, audio_rate: int | None, size: int) -> int:
    """Bytes to reserve for the index: generous, since a short reservation fails the run
    (about 20 bytes per video frame and 8 per audio frame, doubled)."""
    if duration is None or duration <= 0:
        duration = max(1.0, size / 50_000)  # no duration: assume 400 kbit/s at least
    video_frames = duration * float(rate)
    audio_frames = duration * (audio_rate or 0) / 1024
    return int(65_536 + 2 * (24 * video_frames + 12 * audio_frames))


def make_proxy(
    src: MediaFile,
    size: int,
    out: MediaFile,
    *,
    max_height: int = MAX_HEIGHT,
    threads: int = 2,
) -> ProxyInfo:
    """Transcode src (size bytes, seekable) into out as a browser-playable MP4."""
    try:
        return _transcode(src, size, out, max_height=max_height, threads=threads)
    except (av.FFmpegError, ValueError, OverflowError) as exc:
        raise MediaError(f"could not make a playable copy: {exc}") from None


def _transcode(
    src: MediaFile, size: int, out: MediaFile, *, max_height: int, threads: int
) -> ProxyInfo:
    with av.open(src, mode="r") as source:
        if not source.streams.video:
            raise MediaError("the recording has no video stream")
        in_video = source.streams.video[0]
        in_audio = source.streams.audio[0] if source.streams.audio else None
        rate = in_video.average_rate or in_video.guessed_rate or _DEFAULT_RATE
        if not 0 < rate <= 240:
            rate = _DEFAULT_RATE
        gop = max(1, round(float(rate)))
        width, height = _size(
            in_video.codec_context.width, in_video.codec_context.height, max_height
        )
        if in_video.codec_context.width <= 0 or in_video.codec_context.height <= 0:
            raise MediaError("the video stream has no picture size")
        duration = source.duration / 1_000_000 if source.duration else None
        audio_rate = in_audio.codec_context.sample_rate if in_audio else None
        room = _index_room(duration, Fraction(rate), audio_rate, size)
        with av.open(out, mode="w", format="mp4", options={"moov_size": str(room)}) as sink:
            video = sink.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.gop_size = gop
            video.codec_context.options = {
                "preset": "veryfast",
                "crf": "23",
                "keyint_min": str(gop),
                "sc_threshold": "0",  # keyframes exactly every second, for seeking
                "threads": str(threads),
            }
            audio: Any = None
            if in_audio is not None and audio_rate:
                layout = "mono" if in_audio.codec_context.channels == 1 else "stereo"
                audio = sink.add_stream("aac", rate=audio_rate, layout=layout)
            frames = _copy_frames(source, in_video, in_audio, video, audio, sink, rate)
            for packet in video.encode():
                sink.mux(packet)
            if audio is not None:
                for packet in audio.encode():
                    sink.mux(packet)
    if frames == 0:
        raise MediaError("no frame of the recording could be decoded")
    out.seek(0, 2)
    end = out.tell()
    out.seek(0)
    if not has_index_first(out, end):
        raise MediaError("the copy was written without its index first")
    return ProxyInfo(
        video_codec="h264",
        audio_codec="aac" if audio is not None else None,
        width=width,
        height=height,
        frames=frames,
        duration_seconds=frames / float(rate),
        keyframe_seconds=gop / float(rate),
    )


def _copy_frames(
    source: Any, in_video: Any, in_audio: Any, video: Any, audio: Any, sink: Any, rate: Fraction
) -> int:
    """Decode every packet (the flush packet included, or the last frames are lost) and
    encode it again; frames whose time does not move forward are dropped."""
    limit = int(MAX_SECONDS * float(rate))
    frames = 0
    last_video = last_audio = None
    streams = [in_video] + ([in_audio] if audio is not None else [])
    for packet in source.demux(*streams):
        for frame in packet.decode():
            if packet.stream is in_video:
                if frame.pts is None or (last_video is not None and frame.pts <= last_video):
                    continue
                last_video = frame.pts
                picture = frame.reformat(width=video.width, height=video.height, format="yuv420p")
                picture.pts, picture.time_base = frame.pts, frame.time_base
                for out_packet in video.encode(picture):
                    sink.mux(out_packet)
                frames += 1
                if frames > limit:
                    raise MediaError(f"the recording is longer than {MAX_SECONDS // 3600} hours")
            else:
                if frame.pts is not None and last_audio is not None and frame.pts <= last_audio:
                    continue
                last_audio = frame.pts
                for out_packet in audio.encode(frame):
                    sink.mux(out_packet)
    return frames
