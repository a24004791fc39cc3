"""The dock agent's one settings object, from environment variables with defaults.

Only `dock/__main__.py` reads the environment; everything else receives a `DockSettings`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class DockConfigError(Exception):
    """A setting is missing or malformed."""


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DockConfigError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise DockConfigError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class DockSettings:
    state_dir: Path = Path("/var/lib/bwc-dock")
    spool_dir: Path | None = None
    report_dir: Path | None = None
    upload_concurrency: int = 2
    bandwidth_bytes_per_s: float | None = None
    spool_limit_bytes: int = 64 * 1024**3
    heartbeat_seconds: float = 30.0
    poll_seconds: float = 2.0
    mount_dir: Path = Path("/run/bwc-dock/mnt")
    upload_chunk_bytes: int = 16 * 1024 * 1024
    read_timeout_seconds: float = 120.0
    # Testing only: the agent kills itself (SIGKILL) at this named point of a session.
    crash_at: str | None = None

    @property
    def spool(self) -> Path:
        return self.spool_dir or self.state_dir / "spool"

    @property
    def reports(self) -> Path:
        return self.report_dir or self.state_dir / "reports"

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "journal.sqlite3"

    @property
    def enrolment_path(self) -> Path:
        return self.state_dir / "enrolment.json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DockSettings:
        env = os.environ if env is None else env
        bandwidth = _number(env, "BWC_DOCK_BANDWIDTH_MBPS", 0.0)
        return cls(
            state_dir=Path(env.get("BWC_DOCK_STATE_DIR") or "/var/lib/bwc-dock"),
            spool_dir=Path(env["BWC_DOCK_SPOOL_DIR"]) if env.get("BWC_DOCK_SPOOL_DIR") else None,
            report_dir=Path(env["BWC_DOCK_REPORT_DIR"]) if env.get("BWC_DOCK_REPORT_DIR") else None,
            upload_concurrency=int(_number(env, "BWC_DOCK_UPLOADS", 2, minimum=1)),
            bandwidth_bytes_per_s=bandwidth * 1e6 / 8 if bandwidth else None,
            spool_limit_bytes=int(_number(env, "BWC_DOCK_SPOOL_GIB", 64, minimum=0.001) * 1024**3),
            heartbeat_seconds=_number(env, "BWC_DOCK_HEARTBEAT_SECONDS", 30, minimum=1),
            poll_seconds=_number(env, "BWC_DOCK_POLL_SECONDS", 2, minimum=0.1),
            mount_dir=Path(env.get("BWC_DOCK_MOUNT_DIR") or "/run/bwc-dock/mnt"),
            upload_chunk_bytes=int(
                _number(env, "BWC_DOCK_UPLOAD_CHUNK_KIB", 16384, minimum=64) * 1024
            ),
            read_timeout_seconds=_number(env, "BWC_DOCK_TIMEOUT_SECONDS", 120, minimum=0.1),
            crash_at=env.get("BWC_DOCK_CRASH_AT") or None,
        )

    def with_state_dir(self, state_dir: Path) -> DockSettings:
        from dataclasses import replace

        return replace(self, state_dir=state_dir)
