"""Synthetic body-worn-camera footage: a moving scene with a real face, as H.264/AAC MP4."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
from skimage import data as sample_data
from skimage.transform import resize

SAMPLE_RATE = 48_000
TONE_HZ = 1_000.0
_AUDIO_CHUNK = 1024  # one AAC frame of samples
_FACE_CROP = (slice(10, 210), slice(140, 300))  # the astronaut's head, hair to chin
_GLYPHS = {  # 3x5 bitmap digits, enough for a burnt-in camera clock and frame counter
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    "-": "000000111000000",
    ":": "000010000010000",
}


@dataclass(frozen=True)
class ClipSpec:
    """What one recording shows and sounds like; times are the camera's clock."""

    width: int
    height: int
    fps: int
    frames: int
    camera_start: datetime
    seed: int
    mute: tuple[float, float] | None = None  # seconds from the clip start: silent audio
    codec: str = "h264"  # or "hevc", as many newer cameras record


@cache
def face_patch(height: int) -> np.ndarray:
    """The astronaut's face (skimage.data.astronaut) as uint8 RGB, sized for frames
    `height` pixels tall: large enough for a face detector, small enough to move."""
    patch_h = max(16, height * 2 // 5)
    patch_w = patch_h * 4 // 5
    crop = sample_data.astronaut()[_FACE_CROP]
    scaled = resize(crop, (patch_h, patch_w), anti_aliasing=True)
    patch: np.ndarray = (scaled * 255).round().astype(np.uint8)
    patch.flags.writeable = False  # shared through the cache
    return patch


def _text_mask(text: str, scale: int) -> np.ndarray:
    columns: list[np.ndarray] = []
    for char in text:
        bits = _GLYPHS.get(char, "0" * 15)
        columns.append(np.array([b == "1" for b in bits]).reshape(5, 3))
        columns.append(np.zeros((5, 1), dtype=bool))
    mask = np.hstack(columns)
    return mask.repeat(scale, axis=0).repeat(scale, axis=1)


def _bounce(t: float, span: int) -> int:
    """A triangle wave over 0..span, one way per unit of t."""
    if span <= 0:
        return 0
    phase = t % 2.0
    return round(span * (phase if phase <= 1.0 else 2.0 - phase))


class _Scene:
    """Panning gradient and checkerboard, a bouncing disc, the face, a burnt-in clock."""

    def __init__(self, spec: ClipSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        h, w = spec.height, spec.width
        y, x = np.mgrid[0:h, 0:w]
        phase = rng.uniform(0, 2 * np.pi, size=3)
        tile = np.empty((h, w, 3), dtype=np.float32)
        for channel in range(3):  # sinusoids with period w, so the pan wraps seamlessly
            tile[..., channel] = 128 + 70 * np.sin(2 * np.pi * x / w + phase[channel])
        tile[..., 2] += 30 * (y / h - 0.5)
        checker = ((x * 16 // w) + (y * 16 // w)) % 2 == 0
        tile[checker] *= 0.8
        tile = np.clip(tile, 0, 255).astype(np.uint8)
        self.background = np.concatenate([tile, tile], axis=1)
        self.pan_per_frame = max(1, w // (4 * spec.fps))  # a quarter width per second
        self.radius = max(4, h // 10)
        yy, xx = np.mgrid[-self.radius : self.radius, -self.radius : self.radius]
        self.disc = xx**2 + yy**2 < self.radius**2
        self.disc_color = rng.integers(40, 220, size=3).astype(np.uint8)
        self.disc_speed = rng.uniform(0.4, 0.8, size=2)
        self.face = face_patch(h)
        self.face_bob = rng.uniform(0, 2 * np.pi)
        self.scale = max(1, h // 120)

    def frame(self, index: int) -> np.ndarray:
        spec = self.spec
        h, w = spec.height, spec.width
        t = index / spec.fps
        shift = (index * self.pan_per_frame) % w
        rgb = self.background[:, shift : shift + w].copy()
        d = 2 * self.radius
        dx = _bounce(t * self.disc_speed[0], w - d)
        dy = _bounce(t * self.disc_speed[1], h - d)
        rgb[dy : dy + d, dx : dx + d][self.disc] = self.disc_color
        fh, fw = self.face.shape[:2]
        fx = _bounce(t / 4.0, w - fw)  # crosses the frame in four seconds
        fy = round((h - fh) / 2 + (h - fh) / 4 * np.sin(t + self.face_bob))
        rgb[fy : fy + fh, fx : fx + fw] = self.face
        now = spec.camera_start + timedelta(seconds=t)
        self._stamp(rgb, f"{now:%Y-%m-%d %H:%M:%S}", row=0)
        self._stamp(rgb, f"{index:06d}", row=1)
        return rgb

    def _stamp(self, rgb: np.ndarray, text: str, *, row: int) -> None:
        mask = _text_mask(text, self.scale)
        pad = self.scale
        top = pad + row * (mask.shape[0] + 2 * pad)
        mh = min(mask.shape[0], rgb.shape[0] - top - pad)
        mw = min(mask.shape[1], rgb.shape[1] - 2 * pad)
        if mh <= 0 or mw <= 0:
            return
        box = rgb[top - pad : top + mh + pad, 0 : mw + 2 * pad]
        box[:] = 0
        box[pad : pad + mh, pad : pad + mw][mask[:mh, :mw]] = 255


def _audio_chunks(spec: ClipSpec, rng: np.random.Generator) -> Iterator[av.AudioFrame]:
    """A steady tone with a little noise; digital silence while the microphone is muted."""
    total = spec.frames * SAMPLE_RATE // spec.fps
    for start in range(0, total, _AUDIO_CHUNK):
        n = min(_AUDIO_CHUNK, total - start)
        t = (start + np.arange(n)) / SAMPLE_RATE
        samples = 0.25 * np.sin(2 * np.pi * TONE_HZ * t) + rng.normal(0, 0.01, n)
        if spec.mute is not None:
            samples[(t >= spec.mute[0]) & (t < spec.mute[1])] = 0.0
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32).reshape(1, n), format="fltp", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        yield frame


CODECS = ("h264", "hevc")


def _video_codec(spec: ClipSpec) -> tuple[str, dict[str, str]]:
    """The encoder and its options: keyframes on the second, no B-frames, quiet."""
    if spec.codec == "hevc":
        params = f"log-level=error:scenecut=0:bframes=0:keyint={spec.fps}:frame-threads=1"
        return "libx265", {"preset": "veryfast", "crf": "28", "x265-params": params}
    return "libx264", {"preset": "veryfast", "crf": "26", "x264-params": "scenecut=0:bframes=0"}


def write_clip(path: Path, spec: ClipSpec) -> None:
    """Encode spec as MP4 at path: H.264 (or HEVC) yuv420p with a keyframe every second (so seeks
    stay close), AAC mono audio, moov before mdat (faststart). Frames are generated one
    at a time; both encoders are flushed so no trailing frames are lost.

    No B-frames, as on many body cameras' low-latency encoders; here it also makes the
    output reproducible: x264's B-frame lookahead gave run-to-run differences at 320x180."""
    scene = _Scene(spec)
    rng = np.random.default_rng(spec.seed + 1)
    options = {"movflags": "+faststart"}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        container.metadata["creation_time"] = spec.camera_start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        encoder, options = _video_codec(spec)
        video = container.add_stream(encoder, rate=spec.fps, options=options)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.codec_context.gop_size = spec.fps
        video.codec_context.thread_count = 2  # fixed: x264's output depends on its thread count
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        chunks = _audio_chunks(spec, rng)
        pending = next(chunks, None)
        for index in range(spec.frames):
            rgb = av.VideoFrame.from_ndarray(scene.frame(index), format="rgb24")
            frame = rgb.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, spec.fps)
            container.mux(video.encode(frame))
            until = (index + 1) * SAMPLE_RATE // spec.fps  # keep audio level with video
            while pending is not None and pending.pts is not None and pending.pts < until:
                container.mux(audio.encode(pending))
                pending = next(chunks, None)
        while pending is not None:
            container.mux(audio.encode(pending))
            pending = next(chunks, None)
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
