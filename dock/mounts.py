"""Find the mounted volume of a USB mass-storage device (sysfs, mountinfo), or mount it."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dock.usb import UsbDevice

logger = logging.getLogger(__name__)

SYSFS = Path("/sys")
MOUNTINFO = Path("/proc/self/mountinfo")
MOUNT = "/usr/bin/mount"  # absolute: the agent runs as root and must not trust PATH
UMOUNT = "/usr/bin/umount"
MOUNT_OPTIONS = "ro,nodev,nosuid,noexec"
FILESYSTEMS = ("vfat", "exfat")
MOUNT_TIMEOUT_SECONDS = 30
MAX_MOUNTINFO_BYTES = 4 << 20

_BLOCK_DEVICE = re.compile(r"/dev/sd[a-z]+[0-9]*")
_BLOCK_NAME = re.compile(r"sd[a-z]+[0-9]*")
_PORT_PATH = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){0,6}")
_DEVNUM = re.compile(r"[0-9]+:[0-9]+")
_SCSI_ADDRESS = re.compile(r"[0-9]+:[0-9]+:[0-9]+:[0-9]+")
_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")

Runner = Callable[[Sequence[str]], tuple[int, str]]


@dataclass(frozen=True)
class BlockDevice:
    name: str  # sdb1
    devnum: str  # "8:17", as sysfs `dev` and mountinfo give it

    @property
    def path(self) -> Path:
        return Path("/dev") / self.name


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo (proc(5)), unescaped."""

    mount_id: int
    devnum: str
    root: str  # the path inside the filesystem that is mounted here; "/" for all of it
    mount_point: Path
    options: tuple[str, ...]
    fstype: str
    source: str

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True)
class MountOutcome:
    """What mount_readonly() achieved: a mount point, or None and the reason why not."""

    mount_point: Path | None
    reason: str | None = None


def parse_mountinfo(data: bytes) -> list[Mount]:
    """Parse mountinfo text; malformed lines are skipped, never guessed at.

    Fields are split on single spaces (the kernel escapes spaces, tabs, newlines and
    backslashes in paths as \\040, \\011, \\012, \\134); the optional fields end at the
    lone "-" separator, so a mount point containing " - " cannot shift the columns."""
    mounts: list[Mount] = []
    for line in data.split(b"\n"):
        fields = line.split(b" ")
        try:
            separator = fields.index(b"-", 6)
        except ValueError:
            continue
        if len(fields) < separator + 3 or not _DEVNUM.fullmatch(
            fields[2].decode("ascii", "replace")
        ):
            continue
        try:
            mount_id = int(fields[0])
        except ValueError:
            continue
        mounts.append(
            Mount(
                mount_id=mount_id,
                devnum=fields[2].decode("ascii"),
                root=_unescape(fields[3]),
                mount_point=Path(_unescape(fields[4])),
                options=tuple(_unescape(fields[5]).split(",")),
                fstype=_unescape(fields[separator + 1]),
                source=_unescape(fields[separator + 2]),
            )
        )
    return mounts


def _unescape(field: bytes) -> str:
    raw = _OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field)
    return os.fsdecode(raw)


def block_devices(bus: int, port_path: str, *, sysfs: Path = SYSFS) -> list[BlockDevice]:
    """The block devices (partitions, or the whole disk when it has none) of one USB device.

    Follows the kernel's own sysfs topology: <bus>-<ports> → interface dirs → host* →
    target* → H:C:T:L → block/sdX → sdXN. sysfs is the kernel's view, not the device's,
    but names are still checked against `sd…` before they become /dev paths."""
    if not _PORT_PATH.fullmatch(port_path) or bus < 0:
        return []
    usb_name = f"{bus}-{port_path}"
    device_dir = sysfs / "bus" / "usb" / "devices" / usb_name
    found: list[BlockDevice] = []
    for disk in _disks(device_dir, usb_name):
        partitions = sorted(
            (p for p in _subdirs(disk) if (p / "partition").is_file()), key=lambda p: p.name
        )
        for node in partitions or [disk]:
            if _BLOCK_NAME.fullmatch(node.name) and (devnum := _devnum(node)):
                found.append(BlockDevice(node.name, devnum))
    return found


def _disks(device_dir: Path, usb_name: str) -> Iterator[Path]:
    for interface in _subdirs(device_dir):
        if not interface.name.startswith(f"{usb_name}:"):
            continue
        for host in _subdirs(interface):
            if not host.name.startswith("host"):
                continue
            for target in _subdirs(host):
                if not target.name.startswith("target"):
                    continue
                for lun in _subdirs(target):
                    if _SCSI_ADDRESS.fullmatch(lun.name):
                        yield from _subdirs(lun / "block")


def _subdirs(directory: Path) -> list[Path]:
    try:
        return sorted((p for p in directory.iterdir() if p.is_dir()), key=lambda p: p.name)
    except OSError:
        return []


def _devnum(node: Path) -> str | None:
    try:
        value = (node / "dev").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value if _DEVNUM.fullmatch(value) else None


def read_mounts(mountinfo: Path = MOUNTINFO) -> list[Mount]:
    try:
        with mountinfo.open("rb") as handle:
            return parse_mountinfo(handle.read(MAX_MOUNTINFO_BYTES))
    except OSError as exc:
        logger.warning("cannot read %s: %s", mountinfo, exc)
        return []


def find_mount(dev: UsbDevice, *, sysfs: Path = SYSFS, mountinfo: Path = MOUNTINFO) -> Mount | None:
    """The existing mount of the device's whole filesystem, if any.

    Matches on the kernel's major:minor, not the source string, so /dev/disk/by-* names
    and renamed nodes still match. Bind mounts of a sub-directory (root other than "/")
    are not the volume: offloading them would miss files silently."""
    if dev.bus is None or dev.port_path is None:
        return None
    devnums = {b.devnum for b in block_devices(dev.bus, dev.port_path, sysfs=sysfs)}
    if not devnums:
        return None
    for mount in read_mounts(mountinfo):
        if mount.devnum in devnums and mount.root == "/":
            return mount
    return None


class SysfsVolumes:
    """A dock.usb.VolumeLocator for the real bus: the mount point of an attached device."""

    def __init__(self, *, sysfs: Path = SYSFS, mountinfo: Path = MOUNTINFO) -> None:
        self.sysfs = sysfs
        self.mountinfo = mountinfo

    def __call__(self, dev: UsbDevice) -> Path | None:
        mount = find_mount(dev, sysfs=self.sysfs, mountinfo=self.mountinfo)
        return mount.mount_point if mount else None


def _run(argv: Sequence[str]) -> tuple[int, str]:
    try:
        # S603: a fixed absolute binary and validated arguments, never a shell.
        done = subprocess.run(  # noqa: S603
            list(argv), capture_output=True, timeout=MOUNT_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)
    return done.returncode, done.stderr.decode("utf-8", "replace")[:500]


def mount_readonly(
    device: str,
    target: Path,
    *,
    filesystems: Sequence[str] = FILESYSTEMS,
    runner: Runner = _run,
    euid: Callable[[], int] = os.geteuid,
) -> MountOutcome:
    """Mount a camera's block device read-only, without devices, setuid or exec.

    Call only after the USB identity checks pass: mounting makes the kernel parse the
    device's filesystem. The device path must look like /dev/sdXN and the type must be
    one of vfat/exfat (tried in order), so nothing from the device reaches the argv.
    Returns a reason instead of a mount point when mounting is impossible (not root, bad
    arguments) or every attempt failed."""
    if not _BLOCK_DEVICE.fullmatch(device):
        return MountOutcome(None, f"refusing to mount {device!r}: not a /dev/sdXN path")
    if not target.is_absolute():
        return MountOutcome(None, f"mount target {target} must be an absolute path")
    if bad := [f for f in filesystems if f not in FILESYSTEMS]:
        return MountOutcome(None, f"refusing filesystem type(s) {bad}: only {FILESYSTEMS}")
    if euid() != 0:
        return MountOutcome(None, "mounting needs root; mount the camera volume yourself")
    try:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return MountOutcome(None, f"cannot create mount target {target}: {exc}")
    if target.is_symlink() or not target.is_dir():
        return MountOutcome(None, f"mount target {target} is not a plain directory")
    failures: list[str] = []
    for fstype in filesystems:
        status, message = runner([MOUNT, "-o", MOUNT_OPTIONS, "-t", fstype, device, str(target)])
        if status == 0:
            return MountOutcome(target)
        failures.append(f"{fstype}: exit {status} {message.strip()}".strip())
    return MountOutcome(None, f"mount {device} failed: " + "; ".join(failures))


def unmount(target: Path, *, runner: Runner = _run) -> str | None:
    """Unmount what mount_readonly() mounted; None on success, else the reason."""
    status, message = runner([UMOUNT, str(target)])
    return None if status == 0 else f"umount {target}: exit {status} {message.strip()}"


class ReadOnlyMounter:
    """Mounts an identified camera's first partition read-only under mount_dir/<serial>."""

    def __init__(
        self,
        mount_dir: Path,
        *,
        sysfs: Path = SYSFS,
        runner: Runner = _run,
        euid: Callable[[], int] = os.geteuid,
    ) -> None:
        self.mount_dir = mount_dir
        self.sysfs = sysfs
        self.runner = runner
        self.euid = euid

    def __call__(self, dev: UsbDevice) -> Path | None:
        if dev.bus is None or dev.port_path is None:
            return None
        blocks = block_devices(dev.bus, dev.port_path, sysfs=self.sysfs)
        if not blocks:
            logger.warning("no block device for the camera at %s-%s", dev.bus, dev.port_path)
            return None
        label = re.sub(r"[^A-Za-z0-9._-]", "_", dev.serial or "unknown")[:64]
        outcome = mount_readonly(
            str(blocks[0].path), self.mount_dir / label, runner=self.runner, euid=self.euid
        )
        if outcome.mount_point is None:
            logger.warning("cannot mount the camera volume: %s", outcome.reason)
        return outcome.mount_point
