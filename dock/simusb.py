"""A pyusb backend that presents the devices of a `--simulated-usb` file (DESIGN.md §7)."""

from __future__ import annotations

import array
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from dock.usb import UsbDevice, UsbError

MAX_FILE_BYTES = 1 << 20
MAX_DEVICES = 64
MAX_INTERFACES = 16
MAX_STRING_UNITS = 126  # UTF-16 code units a string descriptor can carry
MAX_VOLUME_CHARS = 4096
LANGID_EN_US = 0x0409

# (bInterfaceClass, bInterfaceSubClass, bInterfaceProtocol) as a real device reports them;
# dock.usb.interface_name() maps each back to the same name. `hub` goes beyond the names
# DESIGN.md §7 lists so that tests and demos can show a hub being ignored.
INTERFACE_CLASSES: dict[str, tuple[int, int, int]] = {
    "mass_storage": (0x08, 0x06, 0x50),  # SCSI transparent, bulk-only transport
    "hid_keyboard": (0x03, 0x01, 0x01),
    "hid_mouse": (0x03, 0x01, 0x02),
    "cdc_acm": (0x02, 0x02, 0x01),
    "vendor_specific": (0xFF, 0x00, 0x00),
    "hub": (0x09, 0x00, 0x00),
}
_FIELDS = {"vid", "pid", "serial", "manufacturer", "product", "interfaces", "volume"}
_REQUIRED = ("vid", "pid", "interfaces")
_HEX16 = re.compile(r"0x[0-9a-fA-F]{4}")
_STRING_FIELDS = ("manufacturer", "product", "serial")  # string descriptor indexes 1, 2, 3

_GET_DESCRIPTOR = 0x06
_DESC_STRING = 0x03
_EPIPE = 32


class SimulatedUsbError(UsbError):
    """The simulated device list is malformed; the message names the device and field."""


@dataclass(frozen=True)
class SimulatedDevice:
    vid: int
    pid: int
    strings: tuple[str | None, str | None, str | None]  # manufacturer, product, serial
    interfaces: tuple[str, ...]
    volume: Path | None
    bus: int
    address: int
    port: int


class SimulatedBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """Serves a validated device list to pyusb, as libusb would serve the real bus.

    `usb.core.find(find_all=True, backend=SimulatedBackend(...))` yields ordinary
    `usb.core.Device` objects, so dock.usb.find_devices() reads the simulated devices
    through the same code as real ones: descriptors, string descriptors over control
    transfers, active configuration. The file is hostile input like any device: it is
    size-bounded, fully validated up front, and unknown fields are refused."""

    def __init__(self, source: Path | str | Mapping[str, Any], *, base_dir: Path | None = None):
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            spec = _read_spec(path)
            base = base_dir if base_dir is not None else path.parent
        else:
            spec = source  # validated below like a parsed file: it may be any JSON value
            base = base_dir if base_dir is not None else Path.cwd()
        self.devices: tuple[SimulatedDevice, ...] = _parse(spec, base.absolute())

    def volume_for(self, dev: UsbDevice) -> Path | None:
        """The volume a simulated device "mounts": a dock.usb.VolumeLocator."""
        for sim in self.devices:
            if (sim.bus, sim.address) == (dev.bus, dev.address):
                return sim.volume
        return None

    # --- usb.backend.IBackend ------------------------------------------------------

    def enumerate_devices(self) -> Iterator[SimulatedDevice]:
        return iter(self.devices)

    def get_parent(self, dev: SimulatedDevice) -> None:
        return None

    def get_device_descriptor(self, dev: SimulatedDevice) -> SimpleNamespace:
        manufacturer, product, serial = dev.strings
        return SimpleNamespace(
            bLength=18,
            bDescriptorType=0x01,
            bcdUSB=0x0200,
            bDeviceClass=0x09 if dev.interfaces == ("hub",) else 0x00,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=64,
            idVendor=dev.vid,
            idProduct=dev.pid,
            bcdDevice=0x0100,
            iManufacturer=1 if manufacturer is not None else 0,
            iProduct=2 if product is not None else 0,
            iSerialNumber=3 if serial is not None else 0,
            bNumConfigurations=1,
            address=dev.address,
            bus=dev.bus,
            port_number=dev.port,
            port_numbers=(dev.port,),
            speed=3,  # high speed
        )

    def get_configuration_descriptor(self, dev: SimulatedDevice, config: int) -> SimpleNamespace:
        if config != 0:
            raise IndexError(f"invalid configuration index {config}")
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=0x02,
            wTotalLength=9 + 9 * len(dev.interfaces),
            bNumInterfaces=len(dev.interfaces),
            bConfigurationValue=1,
            iConfiguration=0,
            bmAttributes=0x80,
            bMaxPower=250,
            extra_descriptors=[],
        )

    def get_interface_descriptor(
        self, dev: SimulatedDevice, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        if config != 0 or not 0 <= intf < len(dev.interfaces) or alt != 0:
            raise IndexError(f"invalid interface {intf} alternate setting {alt}")
        cls, subclass, protocol = INTERFACE_CLASSES[dev.interfaces[intf]]
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=0x04,
            bInterfaceNumber=intf,
            bAlternateSetting=0,
            bNumEndpoints=0,
            bInterfaceClass=cls,
            bInterfaceSubClass=subclass,
            bInterfaceProtocol=protocol,
            iInterface=0,
            extra_descriptors=[],
        )

    def get_endpoint_descriptor(
        self, dev: SimulatedDevice, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        raise IndexError("simulated interfaces have no endpoints")

    def open_device(self, dev: SimulatedDevice) -> SimulatedDevice:
        return dev

    def close_device(self, dev_handle: SimulatedDevice) -> None:
        return None

    def get_configuration(self, dev_handle: SimulatedDevice) -> int:
        return 1

    def ctrl_transfer(
        self,
        dev_handle: SimulatedDevice,
        bmRequestType: int,  # pyusb's parameter names
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        """Answer GET_DESCRIPTOR(string) as a device would; stall everything else."""
        desc_type, index = wValue >> 8, wValue & 0xFF
        if bmRequestType != 0x80 or bRequest != _GET_DESCRIPTOR or desc_type != _DESC_STRING:
            raise usb.core.USBError("simulated device stalls this request", _EPIPE, _EPIPE)
        text = dev_handle.strings[index - 1] if 1 <= index <= len(dev_handle.strings) else None
        if index == 0:
            payload = LANGID_EN_US.to_bytes(2, "little")
        elif text is not None and wIndex == LANGID_EN_US:
            payload = text.encode("utf-16-le")
        else:
            raise usb.core.USBError("no such string descriptor", _EPIPE, _EPIPE)
        descriptor = bytes([2 + len(payload), _DESC_STRING]) + payload
        count = min(len(descriptor), len(data))
        data[:count] = array.array("B", descriptor[:count])
        return count


def _read_spec(path: Path) -> object:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SimulatedUsbError(f"cannot read simulated USB file {path}: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SimulatedUsbError(f"simulated USB file {path} exceeds {MAX_FILE_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SimulatedUsbError(f"simulated USB file {path} is not valid JSON: {exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SimulatedUsbError(f"duplicate key {key!r} in simulated USB file")
        result[key] = value
    return result


def _parse(spec: object, base: Path) -> tuple[SimulatedDevice, ...]:
    if not isinstance(spec, Mapping) or set(spec) != {"devices"}:
        raise SimulatedUsbError('simulated USB file must be an object {"devices": [...]}')
    devices = spec["devices"]
    if not isinstance(devices, list):
        raise SimulatedUsbError('"devices" must be a list')
    if len(devices) > MAX_DEVICES:
        raise SimulatedUsbError(f'"devices" lists {len(devices)} devices; at most {MAX_DEVICES}')
    return tuple(_parse_device(i, entry, base) for i, entry in enumerate(devices))


def _parse_device(i: int, entry: object, base: Path) -> SimulatedDevice:
    where = f"devices[{i}]"
    if not isinstance(entry, Mapping):
        raise SimulatedUsbError(f"{where} must be an object")
    if missing := [f for f in _REQUIRED if f not in entry]:
        raise SimulatedUsbError(f"{where} is missing {', '.join(missing)}")
    if unknown := sorted(set(entry) - _FIELDS):
        raise SimulatedUsbError(f"{where} has unknown field(s) {', '.join(unknown)}")
    strings = tuple(_string(entry.get(f), f"{where}.{f}") for f in _STRING_FIELDS)
    return SimulatedDevice(
        vid=_hex16(entry["vid"], f"{where}.vid"),
        pid=_hex16(entry["pid"], f"{where}.pid"),
        strings=(strings[0], strings[1], strings[2]),
        interfaces=_interfaces(entry["interfaces"], f"{where}.interfaces"),
        volume=_volume(entry.get("volume"), base, f"{where}.volume"),
        bus=1,
        address=i + 2,  # address 1 is the root hub's, as on a real bus
        port=i + 1,
    )


def _hex16(value: object, where: str) -> int:
    if not isinstance(value, str) or not _HEX16.fullmatch(value):
        raise SimulatedUsbError(
            f'{where} must be a 4-digit hex string like "0xb0d1", not {_shown(value)}'
        )
    return int(value, 16)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _string(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SimulatedUsbError(f"{where} must be a string or null")
    try:
        units = len(value.encode("utf-16-le")) // 2
    except UnicodeEncodeError:
        raise SimulatedUsbError(f"{where} is not encodable as UTF-16") from None
    if units > MAX_STRING_UNITS:
        raise SimulatedUsbError(f"{where} is longer than a USB string ({MAX_STRING_UNITS} units)")
    return value


def _interfaces(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SimulatedUsbError(f"{where} must be a non-empty list of interface names")
    if len(value) > MAX_INTERFACES:
        raise SimulatedUsbError(f"{where} lists more than {MAX_INTERFACES} interfaces")
    for name in value:
        if not isinstance(name, str) or name not in INTERFACE_CLASSES:
            known = ", ".join(INTERFACE_CLASSES)
            raise SimulatedUsbError(f"{where}: unknown interface {_shown(name)} (known: {known})")
    return tuple(value)


def _volume(value: object, base: Path, where: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise SimulatedUsbError(f"{where} must be a non-empty path string or null")
    if len(value) > MAX_VOLUME_CHARS:
        raise SimulatedUsbError(f"{where} is longer than {MAX_VOLUME_CHARS} characters")
    # Lexical normalisation only: the volume root is not resolved through links here.
    return Path(os.path.normpath(base / value))
