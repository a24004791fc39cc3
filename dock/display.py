"""Live progress per bay: a rich table on a terminal, structured log lines for journald."""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from dock.agent import Agent

logger = logging.getLogger("bwc-dock.progress")


def _table(agent: Agent) -> Table:
    table = Table(title="BWC dock", expand=True)
    for column in ("camera", "state", "files", "bytes", "last error"):
        table.add_column(column)
    for bay in list(agent.bays.values()):
        table.add_row(
            bay.serial or "?",
            bay.state,
            f"{bay.files_done}/{bay.files_total}",
            f"{bay.bytes_done >> 20}/{bay.bytes_total >> 20} MiB",
            (bay.last_error or "")[:60],
        )
    if not agent.bays:
        table.add_row("-", "waiting for a camera", "", "", "")
    return table


def run_display(agent: Agent, stop: threading.Event, *, interval: float = 1.0) -> None:
    """Until stop: refresh the table on a terminal, or log each bay's state when it changes."""
    if sys.stdout.isatty():
        with Live(_table(agent), console=Console(), refresh_per_second=2) as live:
            while not stop.wait(interval):
                live.update(_table(agent))
        return
    seen: dict[str, str] = {}
    while not stop.wait(interval):
        for bay in list(agent.bays.values()):
            line = (
                f"bay camera={bay.serial} state={bay.state} files={bay.files_done}/"
                f"{bay.files_total} bytes={bay.bytes_done}/{bay.bytes_total}"
            )
            if seen.get(bay.serial or "?") != line:
                seen[bay.serial or "?"] = line
                logger.info("%s", line)
