"""Small recordings made in the tests with PyAV: a moving bar and a tone, in the codec
and layout asked for (HEVC, H.264; index first or last), so playback proxies are tested
on real media without committing any."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(
    *,
    codec: str = "libx265",
    seconds: float = 2.0,
    fps: int = 10,
    width: int = 160,
    height: int = 96,
    faststart: bool = False,
    audio: bool = True,
) -> bytes:
    """An MP4 of `seconds` at `fps`; HEVC by default, with its index at the end."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"  # faststart rewrites the file by name
        _write(path, codec, seconds, fps, width, height, faststart, audio)
        return path.read_bytes()


def _write(
    path: Path,
    codec: str,
    seconds: float,
    fps: int,
    width: int,
    height: int,
    faststart: bool,
    audio: bool,
) -> None:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.gop_size = fps
        if codec == "libx265":
            video.codec_context.options = {"x265-params": "log-level=error"}
        sound = container.add_stream("aac", rate=16000, layout="mono") if audio else None
        frames = round(seconds * fps)
        for i in range(frames):
            picture = np.full((height, width, 3), 40, np.uint8)
            x = (i * 7) % max(1, width - 16)
            picture[:, x : x + 16] = (250, 200, 30)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = int(seconds * 16000)
            t = np.arange(samples) / 16000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start : start + 1024][None, :]
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
