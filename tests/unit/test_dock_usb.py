"""USB identity through the real pyusb path: simulated bus, descriptors, sysfs, hotplug."""

from __future__ import annotations

import array
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import usb.core

from dock import hotplug
from dock.identity import check_device_json, check_identity, check_usb, parse_device_json
from dock.mounts import (
    MOUNT,
    SysfsVolumes,
    block_devices,
    find_mount,
    mount_readonly,
    parse_mountinfo,
)
from dock.profiles import builtin_profiles
from dock.report import Alert, Decision, Flag, RefusalReason
from dock.simusb import SimulatedBackend, SimulatedUsbError
from dock.usb import (
    TOO_MANY_INTERFACES,
    UsbDevice,
    UsbUnavailable,
    find_devices,
    interface_name,
    is_storage,
)

PROFILES = builtin_profiles()
REGISTERED = {"BWC-0002", "BWC-0003"}
CAMERA = {
    "vid": "0xb0d1",
    "pid": "0xca01",
    "serial": "BWC-0002",
    "manufacturer": "ExampleCam",
    "product": "EC-1",
    "interfaces": ["mass_storage"],
    "volume": "cam",
}


def device_json(serial: str = "BWC-0002", **extra: Any) -> bytes:
    body = {"schema": "bwc-device/1", "serial": serial, "model": "EC-1", **extra}
    return json.dumps(body).encode("utf-8")


def one_device(**overrides: Any) -> UsbDevice:
    """The single device a simulated list of one yields, read through find_devices()."""
    backend = SimulatedBackend({"devices": [{**CAMERA, **overrides}]}, base_dir=Path("/sim"))
    [dev] = find_devices(backend, locate_volume=backend.volume_for)
    return dev


# --- find_devices through SimulatedBackend -------------------------------------------


def test_find_devices_reads_descriptors_and_strings_through_pyusb() -> None:
    dev = one_device()
    assert (dev.vid, dev.pid) == (0xB0D1, 0xCA01)
    assert (dev.serial, dev.manufacturer, dev.product) == ("BWC-0002", "ExampleCam", "EC-1")
    assert dev.interfaces == ("mass_storage",)
    assert (dev.bus, dev.address, dev.port_path) == (1, 2, "1")
    assert dev.volume == Path("/sim/cam")
    assert dev.to_json()["vid"] == "0xb0d1"


def test_simulated_devices_are_ordinary_pyusb_devices() -> None:
    backend = SimulatedBackend({"devices": [CAMERA]})
    found = list(usb.core.find(find_all=True, backend=backend, idVendor=0xB0D1))
    assert len(found) == 1
    assert found[0].serial_number == "BWC-0002"


def test_simulated_volume_is_relative_to_the_device_list_file(tmp_path: Path) -> None:
    listing = tmp_path / "lists" / "usb.json"
    listing.parent.mkdir()
    listing.write_text(json.dumps({"devices": [{**CAMERA, "volume": "../vols/cam"}]}))
    backend = SimulatedBackend(listing)
    [dev] = find_devices(backend, locate_volume=backend.volume_for)
    assert dev.volume == tmp_path / "vols" / "cam"


def test_volume_is_not_located_for_devices_without_storage() -> None:
    asked: list[UsbDevice] = []

    def locate(dev: UsbDevice) -> Path:
        asked.append(dev)
        return Path("/x")

    backend = SimulatedBackend(
        {"devices": [{"vid": "0x046d", "pid": "0xc31c", "interfaces": ["hid_keyboard"]}]}
    )
    [dev] = find_devices(backend, locate_volume=locate)
    assert asked == [] and dev.volume is None


@pytest.mark.parametrize(
    ("triple", "name"),
    [
        ((0x08, 0x06, 0x50), "mass_storage"),
        ((0x03, 0x01, 0x01), "hid_keyboard"),
        ((0x03, 0x01, 0x02), "hid_mouse"),
        ((0x03, 0x00, 0x00), "hid_other"),
        ((0x02, 0x02, 0x01), "cdc_acm"),
        ((0x0A, 0x00, 0x00), "cdc_acm"),
        ((0xFF, 0x00, 0x00), "vendor_specific"),
        ((0x09, 0x00, 0x00), "hub"),
        ((0x0E, 0x01, 0x00), "class_0x0e"),
    ],
)
def test_interface_classes_map_to_profile_names(triple: tuple[int, int, int], name: str) -> None:
    assert interface_name(*triple) == name


def test_hub_and_keyboard_only_devices_are_ignored_but_any_storage_is_not() -> None:
    backend = SimulatedBackend(
        {
            "devices": [
                {"vid": "0x1d6b", "pid": "0x0002", "interfaces": ["hub"]},
                {"vid": "0x046d", "pid": "0xc31c", "interfaces": ["hid_keyboard"]},
                {"vid": "0x0781", "pid": "0x5567", "serial": "X", "interfaces": ["mass_storage"]},
                {"vid": "0x1d6b", "pid": "0x0003", "interfaces": ["hub", "mass_storage"]},
            ]
        }
    )
    hub, keyboard, stick, hub_with_storage = find_devices(backend)
    assert hub.interfaces == ("hub",) and not is_storage(hub)
    assert not is_storage(keyboard)
    assert is_storage(stick)
    assert is_storage(hub_with_storage)  # a hub class must not hide a memory stick


class FlakyStrings(SimulatedBackend):
    """Fails the serial-number request the way a stalling or garbage-sending device does."""

    def __init__(self, spec: dict[str, Any], mode: str) -> None:
        super().__init__(spec)
        self.mode = mode

    def ctrl_transfer(
        self,
        handle: Any,
        req_type: int,
        req: int,
        value: int,
        index: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        if value & 0xFF != 3:
            return super().ctrl_transfer(handle, req_type, req, value, index, data, timeout)
        if self.mode == "stall":
            raise usb.core.USBError("stall", 32, 32)
        garbage = bytes([6, 3]) + b"\x00\xd8\x41\x00"  # a lone UTF-16 surrogate
        data[: len(garbage)] = array.array("B", garbage)
        return len(garbage)


@pytest.mark.parametrize("mode", ["stall", "garbage"])
def test_unreadable_serial_string_becomes_none(mode: str) -> None:
    [dev] = find_devices(FlakyStrings({"devices": [CAMERA]}, mode))
    assert dev.serial is None
    assert dev.product == "EC-1"


class Unconfigured(SimulatedBackend):
    def get_configuration(self, dev_handle: Any) -> int:
        raise usb.core.USBError("no access", 13, 13)


def test_interfaces_fall_back_to_every_configuration_when_active_one_is_unreadable() -> None:
    [dev] = find_devices(Unconfigured({"devices": [{**CAMERA, "interfaces": ["mass_storage"]}]}))
    assert dev.interfaces == ("mass_storage",)


class ManyInterfaces(SimulatedBackend):
    def get_configuration_descriptor(self, dev: Any, config: int) -> Any:
        desc = super().get_configuration_descriptor(dev, config)
        desc.bNumInterfaces = 200
        return desc

    def get_interface_descriptor(self, dev: Any, intf: int, alt: int, config: int) -> Any:
        desc = super().get_interface_descriptor(dev, 0, alt, config)
        desc.bInterfaceNumber = intf
        return desc


def test_a_device_with_too_many_interfaces_is_marked_and_refused() -> None:
    [dev] = find_devices(ManyInterfaces({"devices": [CAMERA]}))
    assert dev.interfaces[-1] == TOO_MANY_INTERFACES
    assert RefusalReason.UNEXPECTED_USB_INTERFACE in check_usb(dev, PROFILES, REGISTERED).reasons


class BrokenBus(SimulatedBackend):
    def enumerate_devices(self) -> Iterator[Any]:
        raise usb.core.USBError("bus gone", 19, 19)


def test_bus_failures_become_usb_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsbUnavailable, match="bus gone"):
        find_devices(BrokenBus({"devices": []}))

    def no_backend(**_: Any) -> None:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(usb.core, "find", no_backend)
    with pytest.raises(UsbUnavailable, match="libusb"):
        find_devices()


# --- identity rules -------------------------------------------------------------------


def test_allowlisted_registered_camera_with_matching_metadata_is_accepted() -> None:
    usb_verdict = check_usb(one_device(), PROFILES, REGISTERED)
    assert usb_verdict.passed and usb_verdict.profile is not None
    verdict = check_device_json(usb_verdict, device_json())
    assert verdict.decision is Decision.ACCEPT
    assert verdict.reasons == [] and verdict.alerts == set() and verdict.flags == set()
    assert verdict.profile is not None and verdict.profile.id == "bwc-msc/1"
    assert verdict.device_json is not None and verdict.device_json["model"] == "EC-1"
    as_dict = {"schema": "bwc-device/1", "serial": "BWC-0002"}
    assert check_identity(one_device(), PROFILES, REGISTERED, as_dict).decision is Decision.ACCEPT


def test_unknown_vid_pid_is_refused_with_an_alert() -> None:
    verdict = check_identity(one_device(vid="0x0781"), PROFILES, REGISTERED, device_json())
    assert verdict.decision is Decision.REFUSE
    assert verdict.reasons == [RefusalReason.USB_ID_NOT_ALLOWLISTED]
    assert verdict.alerts == {Alert.DEVICE_REFUSED}
    assert verdict.profile is None


def test_camera_that_is_also_a_keyboard_is_refused() -> None:
    dev = one_device(interfaces=["mass_storage", "hid_keyboard"])
    verdict = check_identity(dev, PROFILES, REGISTERED, device_json())
    assert verdict.reasons == [RefusalReason.UNEXPECTED_USB_INTERFACE]
    assert verdict.alerts == {Alert.DEVICE_REFUSED}


def test_camera_with_a_second_storage_interface_is_refused() -> None:
    dev = one_device(interfaces=["mass_storage", "mass_storage"])
    assert check_usb(dev, PROFILES, REGISTERED).reasons == [RefusalReason.UNEXPECTED_USB_INTERFACE]


def test_unregistered_serial_is_refused_by_set_and_by_lookup() -> None:
    dev = one_device(serial="BWC-9999")
    by_set = check_identity(dev, PROFILES, REGISTERED, device_json("BWC-9999"))
    assert by_set.reasons == [RefusalReason.UNREGISTERED_SERIAL]
    asked: list[str] = []

    def lookup(serial: str) -> bool:
        asked.append(serial)
        return False

    by_lookup = check_usb(dev, PROFILES, lookup)
    assert by_lookup.reasons == [RefusalReason.UNREGISTERED_SERIAL] and asked == ["BWC-9999"]
    assert check_usb(dev, PROFILES, lambda s: s == "BWC-9999").passed


def test_missing_serial_string_is_refused_as_unregistered() -> None:
    dev = one_device(serial=None)
    assert dev.serial is None
    verdict = check_identity(dev, PROFILES, REGISTERED, device_json())
    assert verdict.reasons == [RefusalReason.UNREGISTERED_SERIAL]


def test_serial_with_control_characters_is_never_looked_up() -> None:
    def lookup(serial: str) -> bool:
        raise AssertionError(f"looked up {serial!r}")

    assert not check_usb(one_device(serial="BWC-0002\n"), PROFILES, lookup).passed


def test_registered_serials_given_as_a_string_are_rejected() -> None:
    with pytest.raises(TypeError):
        check_usb(one_device(serial="BWC"), PROFILES, "BWC-0002")


def test_usb_serial_disagreeing_with_device_json_is_a_serial_mismatch() -> None:
    verdict = check_identity(one_device(), PROFILES, REGISTERED, device_json("BWC-0003"))
    assert verdict.decision is Decision.REFUSE
    assert verdict.reasons == [RefusalReason.SERIAL_MISMATCH]
    assert verdict.flags == set()  # it parsed; it just names another camera
    assert verdict.device_json is None


def test_every_failing_rule_is_reported() -> None:
    dev = one_device(vid="0x0781", serial=None)
    assert check_usb(dev, PROFILES, REGISTERED).reasons == [
        RefusalReason.USB_ID_NOT_ALLOWLISTED,
        RefusalReason.UNREGISTERED_SERIAL,
    ]


LIMIT = PROFILES["bwc-msc/1"].limits.max_metadata_bytes


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(device_json(pad="x" * LIMIT), id="oversized"),
        pytest.param(b"\x00\xff garbage {", id="garbage"),
        pytest.param(b"\xef\xbb\xbf" + device_json(), id="utf8-bom"),
        pytest.param(b"[" * 60_000, id="deeply-nested"),
        pytest.param(b'["BWC-0002"]', id="not-an-object"),
        pytest.param(device_json().replace(b"bwc-device/1", b"bwc-device/2"), id="other-schema"),
        pytest.param(b'{"schema":"bwc-device/1","serial":2}', id="serial-not-a-string"),
        pytest.param(
            b'{"schema":"bwc-device/1","serial":"BWC-0002","serial":"BWC-0003"}',
            id="duplicate-serial",
        ),
        pytest.param(b'{"schema":"bwc-device/1","serial":"BWC-0002","x":NaN}', id="nan"),
    ],
)
def test_unparseable_device_json_refuses_and_flags(body: bytes) -> None:
    verdict = check_device_json(check_usb(one_device(), PROFILES, REGISTERED), body)
    assert verdict.decision is Decision.REFUSE
    assert verdict.reasons == [RefusalReason.SERIAL_MISMATCH]
    assert verdict.flags == {Flag.DEVICE_METADATA_UNPARSEABLE}
    assert verdict.alerts == {Alert.DEVICE_REFUSED}


def test_device_json_is_parsed_up_to_the_size_limit_and_not_a_byte_more() -> None:
    body = device_json()
    body = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(body) == LIMIT
    assert parse_device_json(body, LIMIT, "bwc-device/1") is not None
    assert parse_device_json(body[:-1] + b" }", LIMIT, "bwc-device/1") is None


def test_missing_device_json_refuses_without_a_flag() -> None:
    verdict = check_device_json(check_usb(one_device(), PROFILES, REGISTERED), None)
    assert verdict.reasons == [RefusalReason.SERIAL_MISMATCH]
    assert verdict.flags == set()


def test_a_refused_usb_verdict_never_parses_device_json() -> None:
    usb_verdict = check_usb(one_device(vid="0x0781"), PROFILES, REGISTERED)
    verdict = check_device_json(usb_verdict, b"garbage")
    assert verdict.reasons == [RefusalReason.USB_ID_NOT_ALLOWLISTED]
    assert verdict.flags == set()


# --- SimulatedBackend validation ------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([CAMERA], "must be an object"),
        ({"devices": CAMERA}, '"devices" must be a list'),
        ({"devices": [], "extra": 1}, "must be an object"),
        ({"devices": [CAMERA] * 65}, "at most 64"),
        ({"devices": ["camera"]}, r"devices\[0\] must be an object"),
        ({"devices": [{"vid": "0xb0d1", "interfaces": []}]}, r"devices\[0\] is missing pid"),
        ({"devices": [{**CAMERA, "vid": "b0d1"}]}, r"devices\[0\]\.vid must be a 4-digit hex"),
        ({"devices": [{**CAMERA, "pid": 0xCA01}]}, r"devices\[0\]\.pid must be a 4-digit hex"),
        ({"devices": [{**CAMERA, "pid": "0xca011"}]}, r"\.pid must be a 4-digit hex"),
        ({"devices": [{**CAMERA, "interfaces": ["printer"]}]}, "unknown interface 'printer'"),
        ({"devices": [{**CAMERA, "interfaces": "mass_storage"}]}, "non-empty list"),
        ({"devices": [{**CAMERA, "interfaces": []}]}, "non-empty list"),
        ({"devices": [{**CAMERA, "serial": "S" * 127}]}, r"\.serial is longer than a USB"),
        ({"devices": [{**CAMERA, "serial": 2}]}, r"\.serial must be a string or null"),
        ({"devices": [{**CAMERA, "serial": "\ud800"}]}, "not encodable"),
        ({"devices": [{**CAMERA, "volume": ""}]}, r"\.volume must be a non-empty path"),
        ({"devices": [{**CAMERA, "colour": "red"}]}, "unknown field.*colour"),
    ],
)
def test_simulated_device_list_is_validated_strictly(spec: Any, message: str) -> None:
    with pytest.raises(SimulatedUsbError, match=message):
        SimulatedBackend(spec)


def test_a_serial_of_exactly_126_units_is_accepted() -> None:
    assert one_device(serial="S" * 126).serial == "S" * 126


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"devices": [], "devices": []}', "duplicate key"),
        (b" " * ((1 << 20) + 1), "exceeds"),
    ],
)
def test_simulated_device_file_must_be_small_valid_json(
    tmp_path: Path, content: bytes, message: str
) -> None:
    listing = tmp_path / "usb.json"
    listing.write_bytes(content)
    with pytest.raises(SimulatedUsbError, match=message):
        SimulatedBackend(listing)


def test_missing_simulated_device_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimulatedUsbError, match="cannot read"):
        SimulatedBackend(tmp_path / "absent.json")


# --- sysfs and mountinfo --------------------------------------------------------------


def fake_usb_disk(sysfs: Path, name: str, scsi: str, disk: str, partitions: dict[str, str]) -> None:
    """A sysfs tree shaped like the kernel's, with bus/usb/devices/<name> a symlink."""
    major_minor = {"sdb": "8:16", "sdc": "8:32"}[disk]
    real = sysfs / "devices/pci0000:00/0000:00:14.0/usb1" / name
    block = real / f"{name}:1.0/host6/target{scsi[:-2]}/{scsi}/block/{disk}"
    block.mkdir(parents=True)
    (block / "dev").write_text(major_minor + "\n")
    for part, devnum in partitions.items():
        (block / part).mkdir()
        (block / part / "dev").write_text(devnum + "\n")
        (block / part / "partition").write_text("1\n")
    (block / "queue").mkdir()  # a non-partition child the walk must skip
    links = sysfs / "bus/usb/devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / name).symlink_to(real)


MOUNTINFO = (
    b"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    b"this line is garbage\n"
    b"95 29 8:17 /DCIM /srv/bind rw,relatime shared:40 - vfat /dev/sdb1 rw\n"
    b"96 29 8:17 / /media/dock/EC\\0401\\134x rw,nosuid,relatime shared:41 master:2 - "
    b"vfat /dev/disk/by-uuid/1234-ABCD rw,fmask=0022\n"
    b"97 29 8:32 / /media/other ro,relatime - exfat /dev/sdc ro\n"
)


def test_mountinfo_parsing_unescapes_paths_and_skips_optional_fields() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_id for m in mounts] == [22, 95, 96, 97]
    camera = mounts[2]
    assert camera.mount_point == Path("/media/dock/EC 1\\x")
    assert (camera.devnum, camera.root, camera.fstype) == ("8:17", "/", "vfat")
    assert camera.source == "/dev/disk/by-uuid/1234-ABCD"
    assert not camera.read_only and mounts[3].read_only


def test_usb_device_maps_to_its_partition_and_mount_point_with_a_space(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    fake_usb_disk(sysfs, "1-1.4", "6:0:0:0", "sdb", {"sdb1": "8:17"})
    fake_usb_disk(sysfs, "1-2", "7:0:0:0", "sdc", {})  # a superfloppy: no partition table
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_bytes(MOUNTINFO)

    assert [(b.name, b.devnum) for b in block_devices(1, "1.4", sysfs=sysfs)] == [("sdb1", "8:17")]
    assert [b.path for b in block_devices(1, "2", sysfs=sysfs)] == [Path("/dev/sdc")]

    camera = UsbDevice(0xB0D1, 0xCA01, "BWC-0002", None, None, ("mass_storage",), 1, 5, "1.4")
    mount = find_mount(camera, sysfs=sysfs, mountinfo=mountinfo)
    assert mount is not None and mount.mount_point == Path("/media/dock/EC 1\\x")  # not the bind
    other = UsbDevice(0x0781, 0x5567, "X", None, None, ("mass_storage",), 1, 6, "2")
    assert SysfsVolumes(sysfs=sysfs, mountinfo=mountinfo)(other) == Path("/media/other")
    absent = UsbDevice(0x0781, 0x5567, "X", None, None, ("mass_storage",), 1, 7, "3")
    assert SysfsVolumes(sysfs=sysfs, mountinfo=mountinfo)(absent) is None


def test_unmounted_device_and_impossible_port_paths_have_no_volume(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    fake_usb_disk(sysfs, "1-1.4", "6:0:0:0", "sdb", {"sdb1": "8:17"})
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_bytes(MOUNTINFO.replace(b" 8:17 ", b" 8:99 "))
    camera = UsbDevice(0xB0D1, 0xCA01, "BWC-0002", None, None, ("mass_storage",), 1, 5, "1.4")
    assert find_mount(camera, sysfs=sysfs, mountinfo=mountinfo) is None
    assert block_devices(1, "1.4/../../..", sysfs=sysfs) == []


# --- mounting -------------------------------------------------------------------------


class RecordingRunner:
    def __init__(self, statuses: Sequence[int]) -> None:
        self.statuses = list(statuses)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        return self.statuses.pop(0), "wrong fs type" if self.statuses else ""


def test_mount_readonly_runs_mount_as_an_argument_list(tmp_path: Path) -> None:
    runner = RecordingRunner([32, 0])
    target = tmp_path / "mnt" / "BWC 0002"
    outcome = mount_readonly("/dev/sdb1", target, runner=runner, euid=lambda: 0)
    assert outcome.mount_point == target and outcome.reason is None
    assert target.is_dir()
    options = "ro,nodev,nosuid,noexec"
    assert runner.calls == [
        [MOUNT, "-o", options, "-t", "vfat", "/dev/sdb1", str(target)],
        [MOUNT, "-o", options, "-t", "exfat", "/dev/sdb1", str(target)],
    ]


@pytest.mark.parametrize(
    "device", ["/dev/sda1; rm -rf /", "/dev/../etc/sda", "sdb1", "/dev/sdb1\n", "/dev/nvme0n1"]
)
def test_mount_readonly_refuses_unexpected_device_paths(tmp_path: Path, device: str) -> None:
    runner = RecordingRunner([0])
    outcome = mount_readonly(device, tmp_path / "mnt", runner=runner, euid=lambda: 0)
    assert outcome.mount_point is None and "not a /dev/sdXN" in str(outcome.reason)
    assert runner.calls == []


def test_mount_readonly_explains_when_not_root_or_failing(tmp_path: Path) -> None:
    runner = RecordingRunner([32, 32])
    not_root = mount_readonly("/dev/sdb1", tmp_path / "m", runner=runner, euid=lambda: 1000)
    assert not_root.mount_point is None and "root" in str(not_root.reason)
    assert runner.calls == []
    failed = mount_readonly("/dev/sdb1", tmp_path / "m", runner=runner, euid=lambda: 0)
    assert failed.mount_point is None and "exit 32" in str(failed.reason)
    bad_fs = mount_readonly(
        "/dev/sdb1", tmp_path / "m", filesystems=("ext4",), runner=runner, euid=lambda: 0
    )
    assert bad_fs.mount_point is None and "ext4" in str(bad_fs.reason)
    assert len(runner.calls) == 2


# --- hotplug --------------------------------------------------------------------------


def scripted_lister(snapshots: list[set[str]], stop: threading.Event) -> hotplug.DeviceLister:
    def lister() -> set[str]:
        if len(snapshots) == 1:
            stop.set()
        return snapshots.pop(0) if snapshots else set()

    return lister


def test_watch_falls_back_to_polling_when_udev_is_unavailable() -> None:
    stop = threading.Event()
    changes: list[int] = []

    def no_udev() -> None:
        raise OSError("netlink unavailable")

    snapshots = [{"a"}, {"a"}, {"a", "b"}, {"a", "b"}, {"b"}]
    hotplug.watch(
        lambda: changes.append(1),
        stop,
        poll_seconds=0.001,
        list_devices=scripted_lister(snapshots, stop),
        monitor_factory=no_udev,
    )
    assert len(changes) == 3  # the start, "b" arriving, "a" leaving


def test_udev_monitor_is_not_used_when_udevd_is_not_running(tmp_path: Path) -> None:
    assert hotplug.udev_monitor(control=tmp_path / "no-control-socket") is None


class FakeMonitor:
    def __init__(self, events: list[object | None], fail_after: bool) -> None:
        self.events = events
        self.fail_after = fail_after

    def poll(self, timeout: float | None = None) -> object | None:
        if self.events:
            return self.events.pop(0)
        if self.fail_after:
            raise OSError("monitor socket closed")
        return None


def test_watch_reports_udev_events_even_when_the_set_looks_unchanged() -> None:
    stop = threading.Event()
    changes: list[int] = []
    monitor = FakeMonitor(["add", "bind", None, None], fail_after=True)
    snapshots = [{"a"}, {"a"}, {"a"}, {"a"}]
    hotplug.watch(
        lambda: changes.append(1),
        stop,
        poll_seconds=0.001,
        list_devices=scripted_lister(snapshots, stop),
        monitor_factory=lambda: monitor,
    )
    # the start, then one call for the burst ("add", "bind" settle into one change);
    # the failing monitor then drops to polling, which sees no change before the end
    assert len(changes) == 2
    assert monitor.events == []


def test_sysfs_device_listing_is_empty_without_sysfs(tmp_path: Path) -> None:
    assert hotplug.sysfs_devices(tmp_path / "absent") == frozenset()
    (tmp_path / "bus/usb/devices/1-1").mkdir(parents=True)
    assert hotplug.sysfs_devices(tmp_path) == frozenset({"usb:1-1"})


def test_an_identified_camera_without_a_mount_is_mounted_read_only(tmp_path: Path) -> None:
    from dock.mounts import ReadOnlyMounter

    sysfs = tmp_path / "sys"
    fake_usb_disk(sysfs, "1-1.4", "6:0:0:0", "sdb", {"sdb1": "8:17"})
    runner = RecordingRunner([0])
    mounter = ReadOnlyMounter(tmp_path / "mnt", sysfs=sysfs, runner=runner, euid=lambda: 0)
    camera = UsbDevice(0xB0D1, 0xCA01, "BWC/0002", None, None, ("mass_storage",), 1, 5, "1.4")
    assert mounter(camera) == tmp_path / "mnt" / "BWC_0002"  # the serial is never a path
    assert runner.calls == [
        [
            MOUNT,
            "-o",
            "ro,nodev,nosuid,noexec",
            "-t",
            "vfat",
            "/dev/sdb1",
            str(tmp_path / "mnt" / "BWC_0002"),
        ],
    ]
    elsewhere = UsbDevice(0xB0D1, 0xCA01, "X", None, None, ("mass_storage",), 1, 9, "3")
    assert mounter(elsewhere) is None and len(runner.calls) == 1


def test_the_agent_waits_for_a_cameras_volume_but_refuses_a_stranger_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dock import agent as agent_module
    from dock.agent import Agent

    class Ctx:
        profiles = PROFILES

    camera = UsbDevice(0xB0D1, 0xCA01, "BWC-0002", None, None, ("mass_storage",), 1, 5, "1.4")
    stick = UsbDevice(0x0781, 0x5581, "X1", None, None, ("mass_storage",), 1, 6, "2")
    started: list[str | None] = []
    agent = Agent(Ctx(), lambda: [camera, stick])  # type: ignore[arg-type]
    monkeypatch.setattr(
        Agent, "_session", lambda self, device, progress: started.append(device.serial)
    )
    clock = [100.0]
    monkeypatch.setattr(agent_module.time, "monotonic", lambda: clock[0])
    agent.scan()
    agent.wait()
    assert started == ["X1"]  # refused without waiting for a volume
    clock[0] += agent_module.MOUNT_WAIT - 1
    agent.scan()
    agent.wait()
    assert started == ["X1"]  # the camera's disk may still be appearing
    clock[0] += 2
    agent.scan()
    agent.wait()
    assert started == ["X1", "BWC-0002"]  # then its session starts (and mounts it)
