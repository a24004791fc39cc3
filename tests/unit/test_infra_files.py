"""The dock's deployment files (infra/dock/) against the agent they deploy.

The unit must keep its sandbox, the udev rule must name every profile's USB identity,
and env.example must list exactly the BWC_DOCK_* settings the agent reads, with their
real defaults. A profile, setting or hardening change that forgets these files fails here."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

import dock
from dock.__main__ import build_parser
from dock.settings import DockSettings
from tests.conftest import need_service

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "dock"
UNIT = INFRA / "bwc-dock.service"
RULES = INFRA / "90-bwc-camera.rules"
SYSUSERS = INFRA / "bwc-dock.sysusers"
TMPFILES = INFRA / "bwc-dock.tmpfiles"
ENV_EXAMPLE = INFRA / "env.example"
PROFILE_DIR = Path(dock.__file__).resolve().parent / "profile_data"
DEFAULTS = DockSettings()
HID_CLASS = "03"


# --- the systemd unit ------------------------------------------------------------------


class _MultiValues(dict):
    """configparser storage that keeps every assignment of a repeated key.

    systemd allows a key more than once (SystemCallFilter=, ReadWritePaths=...); plain
    configparser with strict=False keeps only the last. While parsing, configparser
    stores each option as a list of lines; a repeated key extends that list, so the
    final value is every assignment joined by newlines."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and key in self and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, dict_type=_MultiValues, empty_lines_in_values=False
    )
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"), source=str(UNIT))
    return parser


def _values(section: configparser.SectionProxy, key: str) -> list[str]:
    """Every assignment of key, in order ([] when absent); "" is an explicit reset."""
    raw = section.get(key)
    return [] if raw is None else raw.split("\n")


def _words(section: configparser.SectionProxy, key: str) -> list[str]:
    return [word for value in _values(section, key) for word in value.split()]


def _service() -> configparser.SectionProxy:
    return _unit()["Service"]


def test_the_unit_parses_with_its_three_sections() -> None:
    unit = _unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("User", "bwc-dock"),
        ("Group", "bwc-dock"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateMounts", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("StateDirectory", "bwc-dock"),
        ("StateDirectoryMode", "0700"),
        ("UMask", "0077"),
        ("DevicePolicy", "closed"),
        ("Restart", "on-failure"),
        ("EnvironmentFile", "-/etc/bwc-dock/env"),
        ("StandardOutput", "journal"),
        ("StandardError", "journal"),
    ],
)
def test_the_unit_keeps_its_hardening(key: str, expected: str) -> None:
    assert _values(_service(), key) == [expected], f"{key}= in {UNIT.name}"


def test_the_unit_runs_the_agents_run_command() -> None:
    argv = shlex.split(_service()["ExecStart"])
    assert PurePosixPath(argv[0]).is_absolute() and argv[0].endswith("/bin/bwc-dock")
    assert argv[1:] == ["run"]
    assert build_parser().parse_args(argv[1:]).command == "run"


def test_the_unit_grants_no_capability_and_no_mount_system_calls() -> None:
    service = _service()
    # Present and empty: an empty assignment clears the bounding set entirely.
    assert _values(service, "CapabilityBoundingSet") == [""]
    assert _values(service, "AmbientCapabilities") in ([], [""])
    filters = _values(service, "SystemCallFilter")
    allowed = [word for value in filters if not value.startswith("~") for word in value.split()]
    assert "@system-service" in allowed
    assert not {"@mount", "mount", "umount2", "@privileged"} & set(allowed)


def test_the_unit_allows_only_the_sockets_and_devices_the_agent_uses() -> None:
    service = _service()
    assert set(_words(service, "RestrictAddressFamilies")) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    assert _values(service, "DeviceAllow") == ["char-usb_device rw"]
    # PrivateDevices=yes would hide /dev/bus/usb from libusb; the device cgroup limits it.
    assert _values(service, "PrivateDevices") in ([], ["no"])


def _paths(service: configparser.SectionProxy, key: str) -> list[PurePosixPath]:
    # "-" (ignore if missing) and "+" (outside RootDirectory=) prefixes are not part of the path.
    return [PurePosixPath(word.lstrip("-+")) for word in _words(service, key)]


def test_the_unit_writes_only_the_agents_own_directories() -> None:
    service = _service()
    writable = _paths(service, "ReadWritePaths")
    allowed_roots = {
        PurePosixPath(str(DEFAULTS.state_dir)),
        PurePosixPath(str(DEFAULTS.spool)),
        PurePosixPath(str(DEFAULTS.mount_dir)),
    }
    assert PurePosixPath(str(DEFAULTS.state_dir)) in writable
    for path in writable:
        assert path.is_absolute() and ".." not in path.parts, path
        assert path not in {PurePosixPath(p) for p in ("/", "/home", "/root", "/etc", "/var")}
        assert any(path == root or root in path.parents for root in allowed_roots), (
            f"ReadWritePaths={path} is outside the state, spool and mount dirs"
        )
    # StateDirectory= is relative to /var/lib and must be the agent's default state dir.
    assert PurePosixPath("/var/lib") / service["StateDirectory"] == PurePosixPath(
        str(DEFAULTS.state_dir)
    )
    # systemd deletes a RuntimeDirectory= at stop; camera mounts must outlive the agent.
    assert "RuntimeDirectory" not in service


# --- users and directories -------------------------------------------------------------


def _table(path: Path) -> list[list[str]]:
    """Non-comment lines of a sysusers.d/tmpfiles.d file, split like the shell would."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append(shlex.split(line))
    return rows


def test_sysusers_creates_the_units_user_with_no_login() -> None:
    service = _service()
    users = [row for row in _table(SYSUSERS) if row[0] == "u"]
    assert len(users) == 1
    _kind, name, uid, gecos, home, shell = users[0]
    assert name == service["User"] == service["Group"]  # "u" also creates the group
    assert uid == "-" and gecos and shell == "/usr/sbin/nologin"
    assert home == str(DEFAULTS.state_dir)
    # No supplementary groups (e.g. plugdev): udev gives the camera node to bwc-dock itself.
    assert not [row for row in _table(SYSUSERS) if row[0] == "m"]


def test_tmpfiles_creates_a_private_state_dir_and_the_mount_dir() -> None:
    user = _service()["User"]
    rows = {row[1]: row for row in _table(TMPFILES)}
    state = rows[str(DEFAULTS.state_dir)]
    assert state[0] == "d" and state[2] == "0700" and state[3] == state[4] == user
    mounts = rows[str(DEFAULTS.mount_dir)]
    assert mounts[0] == "d" and mounts[3] == "root" and mounts[4] == user
    assert int(mounts[2], 8) & 0o007 == 0, "other users must not look at camera volumes"


# --- the udev rule ---------------------------------------------------------------------

# KEY or KEY{attr}, an operator, a double-quoted value, then a comma or the end of line.
_UDEV_TOKEN = re.compile(
    r"\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]*)\})?"
    r"\s*(?P<op>==|!=|\+=|-=|:=|=)"
    r'\s*"(?P<value>[^"]*)"\s*(?:,|$)'
)
_UDEV_KEYS = {
    "ACTION", "ATTR", "ATTRS", "CONST", "DEVPATH", "DRIVER", "DRIVERS", "ENV", "GOTO", "GROUP",
    "IMPORT", "KERNEL", "KERNELS", "LABEL", "MODE", "NAME", "OPTIONS", "OWNER", "PROGRAM",
    "RESULT", "RUN", "SUBSYSTEM", "SUBSYSTEMS", "SYMLINK", "SYSCTL", "TAG", "TAGS", "TEST",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
    key: str
    attr: str | None
    op: str
    value: str


def _rules() -> list[tuple[int, list[Token]]]:
    """(line number, tokens) of every rule; a line that does not tokenize fails the test."""
    rules = []
    for number, line in enumerate(RULES.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert not line.endswith("\\"), f"line {number}: keep each rule on one line"
        tokens, position = [], 0
        while position < len(line):
            match = _UDEV_TOKEN.match(line, position)
            assert match, f"{RULES.name}:{number}: cannot parse from {line[position:]!r}"
            assert match["key"] in _UDEV_KEYS, f"{RULES.name}:{number}: unknown key {match['key']}"
            tokens.append(Token(match["key"], match["attr"], match["op"], match["value"]))
            position = match.end()
        rules.append((number, tokens))
    return rules


def _has(tokens: list[Token], key: str, attr: str | None, op: str, value: str) -> bool:
    return Token(key, attr, op, value) in tokens


def _profiles() -> list[dict[str, Any]]:
    paths = sorted(PROFILE_DIR.glob("*.json"))
    assert paths, f"no device profiles in {PROFILE_DIR}"
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def _usb_id(profile: dict[str, Any]) -> tuple[str, str]:
    """The profile's VID/PID as udev's sysfs attributes print them: 4 lowercase hex digits."""
    return f"{int(profile['usb']['vid'], 16):04x}", f"{int(profile['usb']['pid'], 16):04x}"


def _for_camera(vid: str, pid: str, attr_key: str) -> list[tuple[int, list[Token]]]:
    return [
        (number, tokens)
        for number, tokens in _rules()
        if _has(tokens, attr_key, "idVendor", "==", vid)
        and _has(tokens, attr_key, "idProduct", "==", pid)
    ]


def test_the_udev_rules_parse_and_every_goto_has_its_label() -> None:
    rules = _rules()
    assert rules
    gotos = {t.value for _, tokens in rules for t in tokens if t.key == "GOTO"}
    labels = {t.value for _, tokens in rules for t in tokens if t.key == "LABEL"}
    assert gotos <= labels


def test_the_reference_profile_is_among_those_checked() -> None:
    ids = {_usb_id(profile) for profile in _profiles()}
    assert ("b0d1", "ca01") in ids  # DESIGN.md §6: bwc-msc/1, ExampleCam EC-1


@pytest.mark.parametrize("profile", _profiles(), ids=lambda p: p["id"])
def test_the_camera_usb_node_is_tagged_and_given_to_the_agent(profile: dict[str, Any]) -> None:
    vid, pid = _usb_id(profile)
    group = _service()["Group"]
    matches = [
        tokens
        for _, tokens in _for_camera(vid, pid, "ATTR")
        if _has(tokens, "SUBSYSTEM", None, "==", "usb")
        and _has(tokens, "ENV", "DEVTYPE", "==", "usb_device")
    ]
    assert matches, f"no rule for the USB device {vid}:{pid} of profile {profile['id']}"
    tokens = matches[0]
    assert _has(tokens, "TAG", None, "+=", "bwc_camera")
    assert _has(tokens, "ENV", "BWC_CAMERA", "=", "1")
    assert _has(tokens, "GROUP", None, "=", group)
    assert _has(tokens, "MODE", None, "=", "0660")


@pytest.mark.parametrize("profile", _profiles(), ids=lambda p: p["id"])
def test_hid_interfaces_of_the_camera_are_deauthorised(profile: dict[str, Any]) -> None:
    vid, pid = _usb_id(profile)
    matches = [
        tokens
        for _, tokens in _for_camera(vid, pid, "ATTRS")
        if _has(tokens, "SUBSYSTEM", None, "==", "usb")
        and _has(tokens, "ENV", "DEVTYPE", "==", "usb_interface")
        and _has(tokens, "ATTR", "bInterfaceClass", "==", HID_CLASS)
    ]
    assert matches, f"no rule de-authorising HID interfaces of {vid}:{pid}"
    assert all(_has(tokens, "ATTR", "authorized", "=", "0") for tokens in matches)


@pytest.mark.parametrize("profile", _profiles(), ids=lambda p: p["id"])
def test_the_camera_block_devices_are_hidden_from_the_desktop(profile: dict[str, Any]) -> None:
    vid, pid = _usb_id(profile)
    matches = [
        tokens
        for _, tokens in _for_camera(vid, pid, "ATTRS")
        if _has(tokens, "SUBSYSTEM", None, "==", "block")
        and _has(tokens, "ENV", "UDISKS_IGNORE", "=", "1")
    ]
    assert matches
    assert all(_has(tokens, "ENV", "UDISKS_AUTO", "=", "0") for tokens in matches)


@pytest.mark.parametrize("profile", _profiles(), ids=lambda p: p["id"])
def test_the_camera_volume_is_mounted_by_systemd_safely(profile: dict[str, Any]) -> None:
    vid, pid = _usb_id(profile)
    user = _service()["User"]
    interfaces = len(profile["usb"]["interfaces"])
    for fstype in profile["volume"]["filesystems"]:
        matches = [
            tokens
            for _, tokens in _for_camera(vid, pid, "ATTRS")
            if _has(tokens, "ACTION", None, "==", "add")
            and _has(tokens, "SUBSYSTEM", None, "==", "block")
            and _has(tokens, "ENV", "ID_FS_TYPE", "==", fstype)
        ]
        assert len(matches) == 1, f"one mount rule for {fstype} volumes of {vid}:{pid}"
        tokens = matches[0]
        # Only a device presenting exactly the profile's interfaces is mounted at all.
        count = next(t for t in tokens if t.key == "ATTRS" and t.attr == "bNumInterfaces")
        assert f"{interfaces:2d}" in count.value.split("|")
        run = [t for t in tokens if t.key == "RUN"]
        assert len(run) == 1 and run[0].op == "+="
        argv = shlex.split(run[0].value)
        assert argv[0] == "/usr/bin/systemd-mount"
        for flag in ("--no-block", "--fsck=no", "--automount=no", f"--owner={user}"):
            assert flag in argv, f"systemd-mount {flag} for {fstype}"
        assert f"--type={fstype}" in argv
        (options,) = [a.removeprefix("--options=") for a in argv if a.startswith("--options=")]
        assert {"nodev", "nosuid", "noexec", "noatime", "umask=0077"} <= set(options.split(","))
        assert argv[-2] == "$devnode"
        assert PurePosixPath(argv[-1]).parent == PurePosixPath(str(DEFAULTS.mount_dir))


def test_the_rules_name_no_usb_identity_without_a_profile() -> None:
    known = {_usb_id(profile) for profile in _profiles()}
    for number, tokens in _rules():
        vids = {t.value for t in tokens if t.attr == "idVendor"}
        pids = {t.value for t in tokens if t.attr == "idProduct"}
        if vids or pids:
            assert len(vids) == len(pids) == 1, f"line {number}: one VID and one PID"
            assert (vids.pop(), pids.pop()) in known, f"line {number}: stale USB identity"


# --- env.example -----------------------------------------------------------------------

_ENV_LINE = re.compile(r"#?\s*(BWC_DOCK_[A-Z0-9_]+)=(.*)")


def _settings_variables() -> set[str]:
    """Every quoted "BWC_DOCK_…" name in the agent's source (only dock/settings.py reads
    the environment, but a reader added elsewhere must be documented too)."""
    names: set[str] = set()
    for path in Path(dock.__file__).resolve().parent.glob("*.py"):
        names |= set(re.findall(r"[\"'](BWC_DOCK_[A-Z0-9_]+)[\"']", path.read_text("utf-8")))
    return names


def _env_example() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.fullmatch(line.strip())
        if match:
            assert match[1] not in found, f"{match[1]} listed twice"
            found[match[1]] = match[2]
    return found


def test_env_example_names_exactly_the_variables_the_agent_reads() -> None:
    read = _settings_variables()
    assert "BWC_DOCK_STATE_DIR" in read and len(read) >= 5  # the grep itself works
    assert set(_env_example()) == read


@pytest.mark.parametrize("name", sorted(_settings_variables()))
def test_env_example_shows_each_variables_real_default(name: str) -> None:
    value = _env_example()[name]
    assert DockSettings.from_env({name: value}) == DockSettings.from_env({}), (
        f"env.example shows {name}={value}, which is not the agent's default"
    )


# --- systemd's own checks --------------------------------------------------------------


def _systemd_analyze() -> str:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        need_service("systemd-analyze", "it is not installed")
    return binary


def _unit_dirs() -> list[Path]:
    return [p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    # verify checks that ExecStart= exists, so build a root holding the unit, a stand-in
    # for the venv's bwc-dock and the system's own units (sysinit.target and friends).
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    executable = root / shlex.split(_service()["ExecStart"])[0].lstrip("/")
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    dirs = _unit_dirs()
    if not dirs:
        pytest.skip("no system unit directory to verify the unit's dependencies against")
    shutil.copytree(dirs[0], root / "usr/lib/systemd/system", symlinks=True)
    result = subprocess.run(  # noqa: S603 - systemd-analyze from PATH, fixed arguments
        [analyze, "verify", f"--root={root}", "--man=no", "--recursive-errors=no", UNIT.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    # Unknown keys and unparsable values are only warnings (exit 0): fail on any line
    # about our unit too.
    complaints = [line for line in output.splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not complaints, output


def test_systemd_analyze_security_rates_the_unit_well() -> None:
    """Overall exposure at most 2.0 of 10 (the unit scores about 1.5). --threshold counts
    in tenths, so 20; systemd-analyze exits 1 above it."""
    analyze = _systemd_analyze()
    result = subprocess.run(  # noqa: S603 - systemd-analyze from PATH, fixed arguments
        [analyze, "security", "--offline=yes", "--no-pager", "--threshold=20", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        need_service("systemd-analyze", "versions before 250 have no offline security check")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
