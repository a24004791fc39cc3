"""Notice devices coming and going: udev events where udev runs, polling everywhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, Protocol, cast

logger = logging.getLogger(__name__)

UDEV_CONTROL = Path("/run/udev/control")  # exists only while systemd-udevd runs
SYSFS = Path("/sys")
SETTLE_SECONDS = 0.25  # one plug-in is a burst of usb, scsi and block events
MAX_SETTLE_SECONDS = 2.0  # a device re-enumerating forever cannot stall the agent

DeviceLister = Callable[[], Iterable[Hashable]]


class Monitor(Protocol):
    def poll(self, timeout: float | None = None) -> Any: ...


def watch(
    on_change: Callable[[], None],
    stop: threading.Event,
    *,
    poll_seconds: float = 2.0,
    list_devices: DeviceLister | None = None,
    monitor_factory: Callable[[], Monitor | None] | None = None,
) -> None:
    """Call on_change once now, then whenever the set of devices may have changed.

    Returns when `stop` is set (within about poll_seconds). A udev monitor, when one can
    be opened, wakes us early; the device set is compared every poll_seconds whatever
    happens, so a missing or failing udev (containers, this CI machine) only costs
    latency, never a missed camera. on_change may be called when nothing changed; it
    must rescan, not assume. Its exceptions propagate to the caller."""
    lister = list_devices or sysfs_devices
    monitor = _open_monitor(monitor_factory or udev_monitor)
    last = _snapshot(lister, frozenset())
    on_change()
    while not stop.is_set():
        event = False
        if monitor is None:
            if stop.wait(poll_seconds):
                return
        else:
            try:
                event = _wait_for_events(monitor, poll_seconds)
            except (OSError, ValueError) as exc:
                logger.warning("udev monitor failed (%s); polling every %.1f s", exc, poll_seconds)
                monitor = None
                continue
        if stop.is_set():
            return
        current = _snapshot(lister, last)
        if event or current != last:
            last = current
            on_change()


def udev_monitor(*, control: Path = UDEV_CONTROL) -> Monitor | None:
    """A started pyudev monitor for usb and block events, or None when udev is absent.

    libudev opens a netlink socket even without udevd and then never delivers an event,
    so the daemon's control socket is checked first rather than trusting the open."""
    if not control.exists():
        logger.info("udev is not running (%s missing); polling for devices", control)
        return None
    import pyudev  # deferred: the agent must start where libudev is missing

    monitor = pyudev.Monitor.from_netlink(pyudev.Context())
    monitor.filter_by("usb")
    monitor.filter_by("block")
    monitor.start()
    return cast(Monitor, monitor)


def sysfs_devices(sysfs: Path = SYSFS) -> frozenset[str]:
    """Names of USB devices and block devices as sysfs lists them (empty without sysfs)."""
    names: set[str] = set()
    for directory, prefix in ((sysfs / "bus/usb/devices", "usb:"), (sysfs / "class/block", "")):
        try:
            names.update(prefix + p.name for p in directory.iterdir())
        except OSError:
            continue
    return frozenset(names)


def _open_monitor(factory: Callable[[], Monitor | None]) -> Monitor | None:
    try:
        return factory()
    except (ImportError, OSError, ValueError) as exc:
        logger.info("udev monitor unavailable (%s); polling for devices", exc)
        return None


def _wait_for_events(monitor: Monitor, timeout: float) -> bool:
    if monitor.poll(timeout=timeout) is None:
        return False
    deadline = time.monotonic() + MAX_SETTLE_SECONDS
    while time.monotonic() < deadline and monitor.poll(timeout=SETTLE_SECONDS) is not None:
        continue
    return True


def _snapshot(lister: DeviceLister, previous: frozenset[Hashable]) -> frozenset[Hashable]:
    try:
        return frozenset(lister())
    except OSError as exc:
        logger.warning("listing devices failed (%s); keeping the last known set", exc)
        return previous
