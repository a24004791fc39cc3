"""The checkpoint mirror under concurrent signers: never an error, never backwards."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from audit import notes, offline_verify
from audit.adapters.checkpoints_sql import mirror_path, write_mirror

ORIGIN = "bwc-evidence.local/d1"


def test_concurrent_writers_leave_the_largest_checkpoint_and_raise_nothing(
    tmp_path: Path,
) -> None:
    key = notes.new_signing_key()
    sizes = list(range(1, 201))
    random.Random(7).shuffle(sizes)
    failures: list[BaseException] = []

    def writer(mine: list[int]) -> None:
        try:
            for size in mine:
                body = notes.format_checkpoint(ORIGIN, size, bytes(32))
                write_mirror(tmp_path, ORIGIN, notes.sign_note(body, ORIGIN, key), size)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(sizes[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    text = mirror_path(tmp_path, ORIGIN).read_text()
    assert offline_verify.parse_checkpoint(offline_verify.parse_note(text).body).size == 200
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
