"""The camera simulator writes a volume a real bwc-msc/1 camera could have produced."""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.feature import match_template

from dock._simulate_cli import add_simulate_parser
from dock._simulate_media import face_patch
from dock.profiles import builtin_profiles
from dock.simulate import SimulatedVolume, SimulateError, simulate_volume

START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
OFFSET = 125.25  # the camera clock runs ahead of true time
SHAPE: dict[str, Any] = {
    "clips": 3,
    "seconds": 2.0,
    "width": 320,
    "height": 180,
    "fps": 25,
    "seed": 7,
    "clock_offset_seconds": OFFSET,
    "start": START,
}


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> SimulatedVolume:
    return simulate_volume(tmp_path_factory.mktemp("camera") / "vol", **SHAPE)


def parse_time(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text)


def events(volume: SimulatedVolume) -> list[dict[str, Any]]:
    lines = volume.event_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
        elif size == 0:
            size = len(data) - at
        assert size >= 8
        boxes.append(kind.decode("ascii"))
        at += size
    assert at == len(data)
    return boxes


def test_simulated_volume_has_the_reference_layout(volume: SimulatedVolume) -> None:
    root = volume.root
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    clips = [f"DCIM/100BWC/BWC0000{n}.{ext}" for n in (1, 2, 3) for ext in ("JSON", "MP4")]
    assert found == sorted(["DEVICE.JSON", "LOGS/EVENTS.LOG", *clips])
    assert json.loads(volume.device_json.read_text(encoding="utf-8")) == {
        "schema": "bwc-device/1",
        "serial": "BWC-0002",
        "model": "EC-1",
        "vendor": "ExampleCam",
        "firmware": "1.4.2",
        "recording_dirs": ["DCIM/100BWC"],
        "officer_badge": "SRO-0001",
    }
    profile = builtin_profiles()["bwc-msc/1"]
    assert volume.event_log == root / profile.event_log
    for clip in volume.clips:
        assert profile.recording_name.fullmatch(clip.path.name)
        assert profile.sidecar_name.fullmatch(clip.sidecar.name)
        assert clip.path.parent == root / profile.recording_dirs[0]
        assert clip.path.stat().st_mode & 0o644 == 0o644


def test_each_recording_is_h264_with_aac_and_one_second_keyframes(
    volume: SimulatedVolume,
) -> None:
    for clip in volume.clips:
        with av.open(str(clip.path)) as container:
            assert [s.type for s in container.streams] == ["video", "audio"]
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264"
            assert video.codec_context.pix_fmt == "yuv420p"
            assert (video.width, video.height) == (320, 180)
            assert audio.codec_context.name == "aac"
            assert container.duration is not None
            assert container.duration / 1e6 == pytest.approx(2.0, abs=0.1)
            keys = [
                float(p.pts * p.time_base)
                for p in container.demux(video)
                if p.is_keyframe and p.pts is not None
            ]
        assert keys == pytest.approx([0.0, 1.0], abs=0.01)
        with av.open(str(clip.path)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 50  # flush included


def test_an_hevc_camera_records_hevc_with_one_second_keyframes(tmp_path: Path) -> None:
    hevc = simulate_volume(
        tmp_path / "hevc", clips=1, seconds=2.0, width=320, height=180, fps=10, codec="hevc"
    )
    with av.open(str(hevc.clips[0].path)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "hevc"
        assert container.streams.audio[0].codec_context.name == "aac"
        keys = [
            float(p.pts * p.time_base)
            for p in container.demux(video)
            if p.is_keyframe and p.pts is not None
        ]
    assert keys == pytest.approx([0.0, 1.0], abs=0.01)
    with pytest.raises(SimulateError):
        simulate_volume(tmp_path / "vp9", codec="vp9")


def test_recordings_put_moov_before_mdat(volume: SimulatedVolume) -> None:
    for clip in volume.clips:
        boxes = top_level_boxes(clip.path)
        assert boxes[0] == "ftyp"
        assert boxes.index("moov") < boxes.index("mdat")


def test_sidecars_describe_their_file_in_camera_time(volume: SimulatedVolume) -> None:
    camera_start = START + timedelta(seconds=OFFSET)
    for clip in volume.clips:
        sidecar = json.loads(clip.sidecar.read_text(encoding="utf-8"))
        body = clip.path.read_bytes()
        assert sidecar["schema"] == "bwc-sidecar/1"
        assert sidecar["file"] == clip.path.name
        assert (sidecar["camera_serial"], sidecar["officer_badge"]) == ("BWC-0002", "SRO-0001")
        assert sidecar["sha256"] == hashlib.sha256(body).hexdigest() == clip.sha256
        assert sidecar["size"] == len(body) == clip.size
        assert sidecar["duration_ms"] == 2000
        began, ended = parse_time(sidecar["start_utc"]), parse_time(sidecar["end_utc"])
        assert (began, ended) == (clip.start, clip.end)
        assert ended - began == timedelta(milliseconds=sidecar["duration_ms"])
        assert sidecar["activation"]["pre_event_seconds"] == 30
        assert sidecar["activation"]["trigger"] == clip.trigger
    assert volume.clips[0].start == camera_start  # start is true time; the sidecar is not


def test_event_log_tells_the_shift_in_order(volume: SimulatedVolume) -> None:
    log = events(volume)
    seqs = [e["seq"] for e in log]
    times = [parse_time(e["t"]) for e in log]
    assert all(a < b for a, b in zip(seqs, seqs[1:], strict=False))
    assert times == sorted(times)
    kinds = [e["event"] for e in log]
    assert kinds[0] == "POWER_ON" and kinds[-1] == "DOCKED"
    assert times[-1] == volume.docked_at
    starts = [e for e in log if e["event"] == "RECORD_START"]
    assert [e["file"] for e in starts] == [c.path.name for c in volume.clips]
    assert [e["trigger"] for e in starts] == ["manual", "automatic", "discretionary"]
    assert all(e.get("reason") for e in starts[1:])
    stops = [e for e in log if e["event"] == "RECORD_STOP"]
    assert [e["file"] for e in stops] == [c.path.name for c in volume.clips]
    assert all(e["reason"] for e in stops)
    for clip, start, stop in zip(volume.clips, starts, stops, strict=True):
        assert (parse_time(start["t"]), parse_time(stop["t"])) == (clip.start, clip.end)
    assert [e["file"] for e in log if e["event"] == "NOTICE"] == [c.path.name for c in volume.clips]
    mutes = [e for e in log if e["event"] in {"MUTE", "UNMUTE"}]
    assert [e["event"] for e in mutes] == ["MUTE", "UNMUTE"]
    assert mutes[0]["reason"] and mutes[0]["file"] == mutes[1]["file"]
    assert kinds.count("SLEEP") == kinds.count("WAKE") == 2
    for index in range(2):  # each SLEEP/WAKE pair lies between two recordings
        sleep = [t for t, k in zip(times, kinds, strict=True) if k == "SLEEP"][index]
        wake = [t for t, k in zip(times, kinds, strict=True) if k == "WAKE"][index]
        assert volume.clips[index].end < sleep < wake < volume.clips[index + 1].start


def test_recordings_show_a_moving_scene_with_a_real_face(volume: SimulatedVolume) -> None:
    with av.open(str(volume.clips[0].path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    first, later = frames[0], frames[25]
    assert np.abs(first.astype(int) - later.astype(int)).mean() > 5
    template = rgb2gray(face_patch(180))
    for frame in (first, later):
        assert match_template(rgb2gray(frame), template).max() > 0.8


def test_audio_is_silent_while_muted(volume: SimulatedVolume) -> None:
    log = events(volume)
    mute, unmute = (parse_time(e["t"]) for e in log if e["event"] in {"MUTE", "UNMUTE"})
    muted = next(c for c in volume.clips if c.start < mute < c.end)
    lo, hi = (mute - muted.start).total_seconds(), (unmute - muted.start).total_seconds()
    with av.open(str(muted.path)) as container:
        pcm = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
        rate = container.streams.audio[0].sample_rate

    def rms(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(pcm[int(a * rate) : int(b * rate)] ** 2)))

    assert rms(lo + 0.1, hi - 0.1) < 0.01
    assert rms(0.1, lo - 0.1) > 0.1


def test_same_seed_and_start_give_identical_bytes(volume: SimulatedVolume, tmp_path: Path) -> None:
    again = simulate_volume(tmp_path / "again", **SHAPE)
    for path in volume.root.rglob("*"):
        if path.is_file():
            twin = again.root / path.relative_to(volume.root)
            assert twin.read_bytes() == path.read_bytes(), path.name
    other = simulate_volume(tmp_path / "other", **{**SHAPE, "seed": 8, "clips": 1})
    assert other.clips[0].sha256 != volume.clips[0].sha256


def test_simulate_refuses_a_non_empty_out(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("not a camera", encoding="utf-8")
    with pytest.raises(SimulateError, match="not empty"):
        simulate_volume(tmp_path, clips=1, seconds=0.2)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    "bad", [{"clips": 0}, {"seconds": 0}, {"width": 321}, {"height": 32}, {"seed": -1}]
)
def test_simulate_rejects_impossible_shapes(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(SimulateError):
        simulate_volume(tmp_path / "vol", **bad)
    assert not (tmp_path / "vol").exists()


def test_simulate_command_writes_a_volume_docked_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "cam"
    argv = ["simulate", "--out", str(out), "--serial", "BWC-0042", "--badge", "SRO-0009"]
    args = parser.parse_args([*argv, "--clips", "1", "--seconds", "0.2", "--clock-offset", "-600"])
    assert args.handler(args) == 0
    summary = capsys.readouterr().out
    assert summary.count("\n") == 1 and "BWC-0042" in summary and "1 clips" in summary
    device = json.loads((out / "DEVICE.JSON").read_text(encoding="utf-8"))
    assert (device["serial"], device["officer_badge"]) == ("BWC-0042", "SRO-0009")
    last = json.loads((out / "LOGS/EVENTS.LOG").read_text(encoding="utf-8").splitlines()[-1])
    assert last["event"] == "DOCKED"
    docked = parse_time(last["t"])
    expected = datetime.now(UTC) - timedelta(seconds=600)
    assert abs((docked - expected).total_seconds()) < 60
    with pytest.raises(SimulateError):
        args.handler(args)
