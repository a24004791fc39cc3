"""BWC Evidence web service: the Flask application factory, where everything is wired."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import Flask, g
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from app.db import Database, schema_is_current
from app.jobs import Dispatcher
from app.live_verify import LiveVerifier
from app.settings import ConfigError, Settings
from app.staging import Staging
from app.vault import Vault

logger = logging.getLogger(__name__)
csrf = CSRFProtect()


def create_app(
    settings: Settings | None = None,
    *,
    start_worker: bool = True,
    vault: Vault | None = None,
) -> Flask:
    """Build the app from settings (from the environment when not given).

    start_worker runs this process's background threads (when BWC_CHECKPOINT_SECONDS
    > 0): the ledger checkpointer and self-audit, and the upload expiry sweep; and,
    without BWC_REDIS_URL, the in-process job worker (playback proxies). vault
    overrides the object store and key provider the settings name (tests)."""
    settings = settings or Settings.from_env()
    settings.check()
    if not settings.secret_key:
        raise ConfigError("no secret key: run `bwc init` or set BWC_SECRET_KEY")

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DEBUG=settings.debug,
        SESSION_COOKIE_NAME="__Host-bwc_session" if settings.production else "bwc_session",
        SESSION_COOKIE_SECURE=settings.production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (bounded) session
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,  # forms; uploads get their own limit later
        JSON_SORT_KEYS=False,
    )
    app.extensions["bwc.settings"] = settings
    app.extensions["bwc.vault"] = vault = vault or Vault(settings)
    if settings.production:
        vault.check_store()  # before anything holds a connection
    database = Database(settings.database_url)
    if not schema_is_current(database.engine):
        raise ConfigError("the database is not initialised or not migrated: run `bwc init`")
    app.extensions["bwc.db"] = database
    app.extensions["bwc.staging"] = Staging(settings.upload_path)
    app.extensions["bwc.live_verify"] = LiveVerifier()

    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )

    from app.web.sessions import ServerSessionInterface, prune_expired

    idle = timedelta(minutes=settings.session_idle_minutes)
    app.session_interface = ServerSessionInterface(
        idle=idle, lifetime=timedelta(hours=settings.session_max_hours)
    )
    csrf.init_app(app)

    from app.api import api
    from app.api.content import content_api
    from app.api.docks import docks_api
    from app.api.ledger import ledger_api
    from app.api.openapi import openapi
    from app.api.uploads import uploads_api
    from app.ledger import LedgerService, LedgerWorker
    from app.local_time import shown, shown_day
    from app.web import (
        admin,
        auth,
        category_pages,
        device_pages,
        errors,
        evidence_pages,
        headers,
        home,
        incident_pages,
        ledger_pages,
    )
    from app.web.context import close_db, load_signed_in_user, permits
    from app.web.fixity_alarm import tampered_count
    from evidence.policy import Action

    time_zone = settings.time_zone
    app.jinja_env.filters["local"] = lambda moment, fmt="%Y-%m-%d %H:%M": shown(
        moment, time_zone, fmt
    )
    app.jinja_env.filters["local_day"] = lambda moment: shown_day(moment, time_zone)
    app.jinja_env.globals.update(
        time_zone=time_zone,
        permits=permits,
        Action=Action,
        ledger_alarm=lambda: ledger_pages.alarm_for(g.get("principal")),
        fixity_alarm=lambda: tampered_count(g.get("principal")),
    )
    app.before_request(load_signed_in_user)
    app.teardown_appcontext(close_db)
    headers.install(app)
    errors.install(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(ledger_pages.bp)
    app.register_blueprint(evidence_pages.bp)
    app.register_blueprint(incident_pages.bp)
    app.register_blueprint(device_pages.bp)
    app.register_blueprint(category_pages.bp)
    app.register_blueprint(api)
    app.register_blueprint(ledger_api)
    app.register_blueprint(openapi)
    app.register_blueprint(uploads_api)
    app.register_blueprint(content_api)
    app.register_blueprint(docks_api)
    for blueprint in (api, ledger_api, openapi, uploads_api, docks_api):
        csrf.exempt(blueprint)  # the API authenticates with tokens, never with cookies

    ledger = LedgerService(database, settings)
    app.extensions["bwc.ledger"] = ledger
    if start_worker and settings.checkpoint_seconds > 0:
        worker = LedgerWorker(ledger, settings.checkpoint_seconds, settings.ledger_audit_minutes)
        worker.start()
        app.extensions["bwc.ledger_worker"] = worker
        from app.maintenance import MaintenanceWorker

        upkeep = MaintenanceWorker(database, app.extensions["bwc.staging"])
        upkeep.start()
        app.extensions["bwc.maintenance"] = upkeep
    app.extensions["bwc.jobs"] = _job_dispatcher(settings, database, vault, start_worker)

    removed = prune_expired(app, idle, datetime.now(UTC))
    if removed:
        logger.info("removed %d expired sessions", removed)
    return app


def _job_dispatcher(
    settings: Settings, database: Database, vault: Vault, start_worker: bool
) -> Dispatcher:
    """Redis (RQ) when configured; else this process's own job thread, if it runs one."""
    from app.jobs import InProcessWorker, JobContext, build_dispatcher

    worker = None
    if start_worker and settings.checkpoint_seconds > 0 and not settings.redis_url:
        worker = InProcessWorker(JobContext(settings, database, vault))
        worker.start()
    return build_dispatcher(settings, worker)
