"""Enumerate USB devices through pyusb and describe what each one presents."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import usb.core
import usb.util

logger = logging.getLogger(__name__)

MAX_DEVICES = 256  # far more than one dock's bus carries; a runaway backend stops here
MAX_STRING_CHARS = 126  # a USB string descriptor holds at most 126 UTF-16 code units
MAX_INTERFACE_DESCRIPTORS = 64  # interface x alternate-setting descriptors read per device
TOO_MANY_INTERFACES = "too_many_interfaces"  # marker: never matches a profile, so refuses

MASS_STORAGE = "mass_storage"
HUB = "hub"

_CLASS_NAMES = {0x08: MASS_STORAGE, 0x02: "cdc_acm", 0x0A: "cdc_acm", 0xFF: "vendor_specific"}
_HID_PROTOCOL_NAMES = {1: "hid_keyboard", 2: "hid_mouse"}
_PORT_PATH = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){0,6}")


class UsbError(Exception):
    """Base of the dock's USB errors (pyusb's own exceptions stay in this module)."""


class UsbUnavailable(UsbError):
    """No pyusb backend could be loaded (libusb missing) or the bus cannot be listed."""


@dataclass(frozen=True)
class UsbDevice:
    """What one attached device claims to be. Every string came from the device itself.

    Nothing here is trusted: a hostile device chooses its descriptors freely. The values
    are evidence for the identity rules (dock.identity), never proof."""

    vid: int
    pid: int
    serial: str | None
    manufacturer: str | None
    product: str | None
    interfaces: tuple[str, ...]  # one name per interface number, see interface_name()
    bus: int | None
    address: int | None
    port_path: str | None  # "1.4" for bus 1 port 1 then hub port 4; sysfs calls it 1-1.4
    volume: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The `device` block of a session report (the caller adds `profile`)."""
        return {
            "vid": f"0x{self.vid:04x}",
            "pid": f"0x{self.pid:04x}",
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "interfaces": list(self.interfaces),
            "bus": self.bus,
            "address": self.address,
            "port_path": self.port_path,
        }


VolumeLocator = Callable[[UsbDevice], Path | None]


def interface_name(cls: int, subclass: int, protocol: int) -> str:
    """The name an interface descriptor's class triple goes by in profiles and reports.

    HID is split by boot protocol because a keyboard is the classic hostile extra
    interface (keystroke injection); the subclass is not consulted, as a device is free
    to lie about it."""
    del subclass  # part of the triple for callers' clarity; no mapping depends on it
    if cls == 0x03:
        return _HID_PROTOCOL_NAMES.get(protocol, "hid_other")
    if cls == 0x09:
        return HUB
    return _CLASS_NAMES.get(cls, f"class_0x{cls:02x}")


def is_storage(dev: UsbDevice) -> bool:
    """True when the device presents a mass-storage interface, whatever else it presents.

    Such a device always gets a session report (DESIGN.md §6 rule 1); everything else
    (hubs, the dock's own keyboard) is ignored. A hub that also presents mass storage is
    *not* ignored: otherwise a memory stick could hide from the alert behind a hub class."""
    return MASS_STORAGE in dev.interfaces


def find_devices(
    backend: Any = None, *, locate_volume: VolumeLocator | None = None
) -> list[UsbDevice]:
    """Describe every device the backend lists; `backend=None` uses pyusb's default.

    locate_volume is asked only for storage devices, and only finds an existing mount:
    nothing is read from a volume here. Devices that vanish or fail mid-read are
    skipped with a log line (they will show up again on the next change if they return).
    Raises UsbUnavailable when no backend exists (no libusb)."""
    try:
        raw_devices = usb.core.find(find_all=True, backend=backend)
        found: list[UsbDevice] = []
        for raw in itertools.islice(raw_devices, MAX_DEVICES):
            try:
                dev = _describe(raw)
            except (usb.core.USBError, NotImplementedError, ValueError) as exc:
                logger.warning("skipping a USB device that failed to describe itself: %s", exc)
                continue
            finally:
                _release(raw)
            if locate_volume is not None and is_storage(dev):
                dev = replace(dev, volume=locate_volume(dev))
            found.append(dev)
    except usb.core.NoBackendError as exc:
        raise UsbUnavailable(
            f"no USB backend available (is libusb-1.0 installed?): {exc}"
        ) from None
    except usb.core.USBError as exc:
        raise UsbUnavailable(f"cannot list USB devices: {exc}") from None
    return found


def _describe(raw: Any) -> UsbDevice:
    ports = getattr(raw, "port_numbers", None)
    port_path = ".".join(str(int(p)) for p in ports) if ports else None
    if port_path is not None and not _PORT_PATH.fullmatch(port_path):
        port_path = None  # never build a sysfs path from an impossible topology
    return UsbDevice(
        vid=int(raw.idVendor),
        pid=int(raw.idProduct),
        serial=_read_string(raw, raw.iSerialNumber),
        manufacturer=_read_string(raw, raw.iManufacturer),
        product=_read_string(raw, raw.iProduct),
        interfaces=_interfaces(raw),
        bus=raw.bus,
        address=raw.address,
        port_path=port_path,
    )


def _read_string(raw: Any, index: int) -> str | None:
    """One string descriptor, bounded; any failure or garbage yields None, never raises.

    A device that stalls, answers short, or sends invalid UTF-16 simply has no string;
    identity then fails on the missing serial rather than on an exception."""
    if not index:
        return None
    try:
        text = usb.util.get_string(raw, index)
    except (usb.core.USBError, ValueError, NotImplementedError, IndexError, TypeError) as exc:
        logger.info("string descriptor %d unreadable: %s", index, exc)
        return None
    if not isinstance(text, str):
        return None
    return text[:MAX_STRING_CHARS]


def _interfaces(raw: Any) -> tuple[str, ...]:
    """Interface names of the active configuration, one per interface number.

    Alternate settings of one interface that claim a different class add that class too,
    so a device cannot hide a keyboard behind alternate setting 1. When the active
    configuration cannot be read (unconfigured, no access), every configuration counts:
    the device could be switched to any of them."""
    try:
        configs = [raw.get_active_configuration()]
    except (usb.core.USBError, NotImplementedError, ValueError) as exc:
        logger.info("active configuration unreadable (%s); counting all configurations", exc)
        configs = list(itertools.islice(raw, 8))
    names: list[str] = []
    seen: set[tuple[int, int, str]] = set()
    descriptors = itertools.chain.from_iterable(configs)
    for count, intf in enumerate(itertools.islice(descriptors, MAX_INTERFACE_DESCRIPTORS + 1)):
        if count == MAX_INTERFACE_DESCRIPTORS:
            names.append(TOO_MANY_INTERFACES)
            break
        name = interface_name(
            int(intf.bInterfaceClass), int(intf.bInterfaceSubClass), int(intf.bInterfaceProtocol)
        )
        key = (int(intf.configuration), int(intf.bInterfaceNumber), name)
        if key not in seen:
            seen.add(key)
            names.append(name)
    return tuple(names)


def _release(raw: Any) -> None:
    try:
        usb.util.dispose_resources(raw)
    except (usb.core.USBError, NotImplementedError) as exc:
        logger.debug("releasing a USB device handle failed: %s", exc)
