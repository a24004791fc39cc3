"""A gunicorn worker settles once its app is built: start-up objects are frozen out of
the garbage collector's full passes, and the GIL switch interval is shortened."""

from __future__ import annotations

import gc
import sys

from app.server import SWITCH_INTERVAL_SECONDS, settle_worker


def test_a_settled_worker_has_its_start_up_objects_frozen() -> None:
    interval = sys.getswitchinterval()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        settle_worker()
        assert gc.get_freeze_count() > 1000  # every object alive now, the modules' among them
        assert sys.getswitchinterval() == SWITCH_INTERVAL_SECONDS
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
