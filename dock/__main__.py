"""`bwc-dock`: the docking-station agent's command line (DESIGN.md §7).

Wiring happens here, once: settings from the environment, the enrolment file, the
journal, the spool, the service client and the USB device source. Errors become an
`ExitStatus` with a one-line message; tracebacks are for bugs only."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path

from dock.agent import Agent, DeviceSource
from dock.client import ServiceClient, ServiceError
from dock.enrolment import EnrolmentError, enrol, load_enrolment
from dock.journal import Journal
from dock.mounts import ReadOnlyMounter
from dock.offload import Context, Progress, Session
from dock.profiles import ProfileError, builtin_profiles
from dock.settings import DockConfigError, DockSettings
from dock.spool import Spool

logger = logging.getLogger("bwc-dock")


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_ENROLLED = 3
    INCOMPLETE = 4  # --once: some session did not complete (see its report)


class DockError(Exception):
    def __init__(self, message: str, status: ExitStatus = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.status = status


def _settings(args: argparse.Namespace) -> DockSettings:
    settings = DockSettings.from_env()
    if getattr(args, "state_dir", None):
        settings = settings.with_state_dir(Path(args.state_dir))
    return settings


def _context(settings: DockSettings, report_dir: Path | None = None) -> Context:
    try:
        enrolment = load_enrolment(settings.enrolment_path)
    except EnrolmentError as exc:
        raise DockError(str(exc), ExitStatus.NOT_ENROLLED) from None
    client = ServiceClient(
        enrolment.service,
        enrolment.credential,
        bandwidth=settings.bandwidth_bytes_per_s,
        chunk_size=settings.upload_chunk_bytes,
        timeout=(10.0, settings.read_timeout_seconds),
    )
    return Context(
        enrolment=enrolment,
        client=client,
        journal=Journal(settings.journal_path),
        spool=Spool(settings.spool, settings.spool_limit_bytes),
        profiles=builtin_profiles(),
        report_dir=report_dir or settings.reports,
        upload_concurrency=settings.upload_concurrency,
        fault=_crash_at(settings.crash_at),
        mount_volume=ReadOnlyMounter(settings.mount_dir),
    )


def _crash_at(point: str | None) -> Callable[[str], None]:
    """The testing hook of BWC_DOCK_CRASH_AT: die at once, as on a power cut."""
    if not point:
        return lambda _: None

    def fault(reached: str) -> None:
        if reached == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return fault


def _device_source(simulated: str | None) -> DeviceSource:
    from dock.usb import UsbUnavailable, find_devices

    if simulated:
        from dock.simusb import SimulatedBackend, SimulatedUsbError

        try:
            backend = SimulatedBackend(Path(simulated))
        except (SimulatedUsbError, OSError) as exc:
            raise DockError(f"--simulated-usb {simulated}: {exc}", ExitStatus.USAGE) from None
        return lambda: find_devices(backend, locate_volume=backend.volume_for)
    from dock.mounts import SysfsVolumes

    locate = SysfsVolumes()

    def real() -> list:  # type: ignore[type-arg]
        try:
            return find_devices(locate_volume=locate)
        except UsbUnavailable as exc:
            raise DockError(f"USB is not available: {exc} (install libusb-1.0-0)") from None

    return real


def cmd_enroll(args: argparse.Namespace) -> ExitStatus:
    settings = _settings(args)
    try:
        enrolment = enrol(args.service, args.token, settings.enrolment_path)
    except EnrolmentError as exc:
        raise DockError(str(exc)) from None
    print(f"enrolled as dock {enrolment.dock} at {enrolment.service}")
    print(f"log key pinned: {enrolment.log_verifier_key}")
    return ExitStatus.OK


def cmd_run(args: argparse.Namespace) -> ExitStatus:
    settings = _settings(args)
    ctx = _context(settings, Path(args.report_dir) if args.report_dir else None)
    agent = Agent(ctx, _device_source(args.simulated_usb))
    if args.once:
        reports = agent.run_once()
        agent.heartbeat()
        for report in reports:
            print(
                f"{report.session_id}: {report.device.get('serial')}: {report.decision.value}, "
                f"{sum(1 for e in report.entries if e.wiped)} wiped, "
                f"{len(report.errors)} error(s)"
            )
        incomplete = [r for r in reports if r.errors]
        return ExitStatus.INCOMPLETE if incomplete else ExitStatus.OK
    from dock.display import run_display
    from dock.hotplug import watch

    agent.recover()
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeats, args=(agent, stop, settings), daemon=True)
    beat.start()
    display = threading.Thread(target=run_display, args=(agent, stop), daemon=True)
    display.start()
    try:
        watch(agent.scan, stop, poll_seconds=settings.poll_seconds)
    except KeyboardInterrupt:
        stop.set()
    return ExitStatus.OK


def _heartbeats(agent: Agent, stop: threading.Event, settings: DockSettings) -> None:
    while not stop.is_set():
        agent.heartbeat()
        stop.wait(settings.heartbeat_seconds)


def cmd_offload(args: argparse.Namespace) -> ExitStatus:
    """Offload one already-mounted volume by hand, as if docked with the profile's identity."""
    from dock.usb import UsbDevice

    settings = _settings(args)
    ctx = _context(settings, Path(args.report).parent if args.report else None)
    profile = ctx.profiles.get(args.profile)
    if profile is None:
        raise DockError(f"unknown profile {args.profile}", ExitStatus.USAGE)
    device = UsbDevice(
        vid=profile.vid,
        pid=profile.pid,
        serial=args.serial,
        manufacturer=None,
        product=None,
        interfaces=profile.interfaces,
        bus=None,
        address=None,
        port_path=None,
        volume=Path(args.volume),
    )
    report = Session(ctx, device, Progress(serial=args.serial)).run()
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_json(), indent=2, sort_keys=True))
    print(
        f"{report.session_id}: {report.decision.value}, {len(report.entries)} entries, "
        f"{len(report.errors)} error(s)"
    )
    return ExitStatus.INCOMPLETE if report.errors else ExitStatus.OK


def cmd_status(args: argparse.Namespace) -> ExitStatus:
    settings = _settings(args)
    journal = Journal(settings.journal_path)
    spool = Spool(settings.spool, settings.spool_limit_bytes)
    files = journal.files()
    print(f"spool: {spool.used()} bytes in {settings.spool}")
    for session in journal.sessions(limit=args.limit):
        mine = [f for f in files if f.session_id == session["id"]]
        states: dict[str, int] = {}
        for f in mine:
            states[f.state] = states.get(f.state, 0) + 1
        size = sum(f.size for f in mine)
        line = (
            f"{session['id']}  camera {session['serial']}  {session['state']}  "
            f"decision {session['decision'] or '-'}  {len(mine)} files  {size} bytes  "
            + " ".join(f"{k}={v}" for k, v in sorted(states.items()))
        )
        print(line)
        if session["last_error"]:
            print(f"    last error: {session['last_error']}")
    journal.close()
    return ExitStatus.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bwc-dock",
        description="BWC Evidence docking-station agent: detects cameras over USB, offloads "
        "their footage encrypted, uploads it and wipes the camera only after a verified "
        "receipt. Settings come from BWC_DOCK_* environment variables.",
    )
    parser.add_argument("--state-dir", help="journal, spool and enrolment (BWC_DOCK_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enroll = sub.add_parser("enroll", help="exchange a one-time token for this dock's credential")
    enroll.add_argument("--service", required=True, help="base URL of the evidence service")
    enroll.add_argument("--token", required=True, help="the token `bwc docks add` printed")
    enroll.set_defaults(func=cmd_enroll)

    run = sub.add_parser("run", help="watch USB and offload every allowlisted camera")
    run.add_argument(
        "--once",
        action="store_true",
        help="handle the cameras attached now, wait for receipts and wipes, exit",
    )
    run.add_argument("--report-dir", help="write one session report per docking here")
    run.add_argument(
        "--simulated-usb",
        metavar="FILE",
        help="see the devices listed in FILE instead of the real bus",
    )
    run.set_defaults(func=cmd_run)

    off = sub.add_parser("offload", help="offload one already-mounted volume by hand")
    off.add_argument("--volume", required=True)
    off.add_argument("--serial", required=True)
    off.add_argument("--report", help="write the session report to this file")
    off.add_argument("--profile", default="bwc-msc/1")
    off.set_defaults(func=cmd_offload)

    status = sub.add_parser("status", help="sessions, files, bytes, states and the last error")
    status.add_argument("--limit", type=int, default=20)
    status.set_defaults(func=cmd_status)

    from dock._simulate_cli import add_simulate_parser

    add_simulate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if getattr(args, "handler", None) is not None:  # simulate
            from dock.simulate import SimulateError

            try:
                return int(args.handler(args))
            except SimulateError as exc:
                raise DockError(str(exc), ExitStatus.USAGE) from None
        return int(args.func(args))
    except DockError as exc:
        print(f"bwc-dock: error: {exc}", file=sys.stderr)
        return int(exc.status)
    except (DockConfigError, ProfileError, ServiceError) as exc:
        print(f"bwc-dock: error: {exc}", file=sys.stderr)
        return int(ExitStatus.ERROR)


if __name__ == "__main__":
    sys.exit(main())
