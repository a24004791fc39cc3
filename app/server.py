"""`bwc serve`: the app under gunicorn, a production WSGI server."""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from app import create_app
from app.settings import ConfigError, Settings
from evidence.errors import KeyProviderError, StorageError

logger = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.web_workers,
            "worker_class": "gthread",
            "threads": 4,
            "timeout": 120,
            "graceful_timeout": 30,
            "accesslog": "-",
            # Paths only: query strings can carry return URLs and later signed links.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
            "errorlog": "-",
            "loglevel": s.log_level.lower(),
            "forwarded_allow_ips": "127.0.0.1" if s.trusted_proxies else "",
            # No runtime control socket in the user's home: restarts go through systemd.
            "control_socket_disable": True,
            "post_worker_init": _worker_started,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.settings)


# A request thread that blocks on the socket or the disk gives up the GIL and must win it
# back from a busy thread (an upload's live verification) when it wakes up; CPython makes
# it wait up to the switch interval each time (5 ms by default), which on a large upload
# costs more than the verification itself. 0.5 ms keeps that wait short.
SWITCH_INTERVAL_SECONDS = 0.0005


def _worker_started(worker: Any) -> None:
    settle_worker(getattr(worker, "wsgi", None))


def settle_worker(app: Any = None) -> None:
    """What a worker does once its app is built, before its first request.

    The vault's object store and key provider are built now (for S3: boto3 imported,
    its client and connection pool made, half a second of CPU), not by the first upload
    that needs them, where they held up that PATCH's answer while the dock waited.

    gc.freeze(): the objects start-up made (modules, the app, its routes, templates,
    the SQLAlchemy mappers, the store's client: a quarter of a million) live as long as
    the worker, yet every full collection would walk them again; frozen, collections
    skip them. Measured in the evidence list benchmark: 10-15 ms off the list and item
    pages' p95."""
    vault = getattr(app, "extensions", {}).get("bwc.vault")
    if vault is not None:
        try:
            vault.store  # noqa: B018 (cached properties: built here, once)
            vault.keys  # noqa: B018
        except (ConfigError, StorageError, KeyProviderError) as exc:  # requests will say
            logger.warning("the vault could not be opened yet: %s", exc)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.freeze()


def serve(settings: Settings) -> None:
    # Build the app once up front so configuration errors stop us with one line,
    # before any worker forks.
    create_app(settings, start_worker=False).extensions["bwc.db"].dispose()
    _Gunicorn(settings).run()
