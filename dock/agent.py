"""The agent's loop: watch the USB bus, run one session per docked camera, report state.

A device is handled once per docking: while it stays plugged in after its session it is
left alone; unplugged and docked again, it gets a new session (which resumes whatever
the last one left unfinished). Non-storage devices (hubs, the dock's own keyboard) are
ignored; any mass-storage device gets a session, so a memory stick is refused and
alerted, never silently ignored."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

from dock.client import ServiceError
from dock.identity import check_usb
from dock.offload import Context, Progress, Session
from dock.report import SessionReport
from dock.usb import UsbDevice, is_storage

logger = logging.getLogger(__name__)
DeviceSource = Callable[[], list[UsbDevice]]
MOUNT_WAIT = 20.0  # seconds an identified camera's volume may take to appear


def _key(device: UsbDevice) -> tuple[object, ...]:
    return (device.bus, device.port_path, device.vid, device.pid, device.serial)


class Agent:
    def __init__(self, ctx: Context, devices: DeviceSource) -> None:
        self.ctx = ctx
        self.devices = devices
        self.bays: dict[tuple[object, ...], Progress] = {}
        self.reports: list[SessionReport] = []
        self._threads: dict[tuple[object, ...], threading.Thread] = {}
        self._pending: dict[tuple[object, ...], float] = {}
        self._lock = threading.Lock()

    def recover(self) -> int:
        """At start-up: remove spool files that are no longer needed: those a crash left
        unrecorded, and those of files whose receipt was verified (a crash between the
        verification and the removal)."""
        known = {
            row.spool_name
            for row in self.ctx.journal.files()
            if row.spool_name and row.state in ("spooled", "uploading")
        }
        removed = self.ctx.spool.remove_orphans(known)
        if removed:
            logger.info("removed %d unrecorded spool file(s) left by a crash", removed)
        return removed

    def _attached(self) -> list[UsbDevice]:
        return [d for d in self.devices() if is_storage(d)]

    def _ready(self, key: tuple[object, ...], device: UsbDevice) -> bool:
        """Whether to start the device's session now.

        The disk of a USB camera appears (and is mounted) a moment after the device: an
        identified camera without a volume yet is given MOUNT_WAIT seconds before its
        session starts anyway (and mounts it itself). A device that fails the USB
        checks needs no volume: it is refused at once."""
        if device.volume is not None:
            self._pending.pop(key, None)
            return True
        if not check_usb(device, self.ctx.profiles, lambda serial: True).passed:
            return True
        first = self._pending.setdefault(key, time.monotonic())
        return time.monotonic() - first >= MOUNT_WAIT

    def scan(self) -> None:
        """Start a session for every newly docked storage device; forget unplugged ones."""
        attached = {_key(d): d for d in self._attached()}
        with self._lock:
            for key in list(self._pending):
                if key not in attached:
                    del self._pending[key]
            for key in list(self.bays):
                thread = self._threads.get(key)
                if key not in attached and (thread is None or not thread.is_alive()):
                    del self.bays[key]
                    self._threads.pop(key, None)
            for key, device in attached.items():
                if key in self.bays or not self._ready(key, device):
                    continue
                progress = Progress(serial=device.serial)
                self.bays[key] = progress
                thread = threading.Thread(
                    target=self._session,
                    args=(device, progress),
                    daemon=True,
                    name=f"bay-{device.serial or 'unknown'}",
                )
                self._threads[key] = thread
                thread.start()

    def _session(self, device: UsbDevice, progress: Progress) -> None:
        try:
            report = Session(self.ctx, device, progress).run()
        except Exception as exc:  # a bay must never take the agent down with it
            logger.exception("session for %s failed", device.serial)
            progress.state, progress.last_error = "error", f"{exc.__class__.__name__}: {exc}"
            return
        with self._lock:
            self.reports.append(report)
        logger.info(
            "session %s for %s: %s, %d entries, %d error(s)",
            report.session_id,
            device.serial,
            report.decision.value,
            len(report.entries),
            len(report.errors),
        )

    def wait(self) -> None:
        for thread in list(self._threads.values()):
            thread.join()

    def run_once(self) -> list[SessionReport]:
        """Handle the devices attached now, wait for their sessions, return the reports."""
        self.recover()
        self.scan()
        while self._pending:  # identified cameras whose volume is still being mounted
            time.sleep(0.5)
            self.scan()
        self.wait()
        return list(self.reports)

    def state(self) -> dict[str, object]:
        """The heartbeat: bays, spool use, queue, last error."""
        with self._lock:
            bays = [asdict(p) | {"uploaded": None} for p in self.bays.values()]
        counts = self.ctx.journal.counts()
        errors = [b["last_error"] for b in bays if b.get("last_error")]
        return {
            "bays": bays,
            "spool_bytes": self.ctx.spool.used(),
            "queue": sum(n for state, n in counts.items() if state in ("spooled", "uploading")),
            "files": counts,
            "last_error": errors[-1] if errors else None,
        }

    def heartbeat(self) -> None:
        try:
            self.ctx.client.heartbeat(self.state())
        except ServiceError as exc:
            logger.warning("heartbeat not delivered: %s", exc)
