"""`bwc`: the service's command line (DESIGN.md §7).

Every sub-command exits non-zero with a one-line message on failure; tracebacks are for
bugs only."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import categories, demo
from app.accounts import admin as accounts
from app.accounts.signin import find_user
from app.db import Database, schema_is_current, upgrade
from app.ledger import LedgerService
from app.settings import ENV_VARS, ConfigError, Settings, write_secret_file
from app.vault import Vault, ensure_keyring
from app.vault_cli import VaultCliError, add_parsers
from audit.adapters.checkpoints_sql import create_signer_file
from audit.adapters.sql import backfill_unlogged
from evidence.adapters.sql.org import User
from evidence.errors import EvidenceError
from evidence.roles import Grant, Role

logger = logging.getLogger("bwc")


class CliError(Exception):
    """A failure to report in one line."""


def _now() -> datetime:
    return datetime.now(UTC)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every connection at INFO; its outcome is printed by `init`.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def cmd_init(settings: Settings, args: argparse.Namespace) -> None:
    created_secret = False
    if not settings.secret_key:
        created_secret = write_secret_file(settings.data_dir)
    key_file = settings.ledger_key_file or settings.data_dir / "ledger-signing.key"
    created_key = create_signer_file(key_file, settings.ledger_origin_prefix)
    if settings.uses_local_storage:
        Path(settings.storage_url.removeprefix("file://")).mkdir(
            parents=True, exist_ok=True, mode=0o700
        )
    created_keyring = ensure_keyring(settings, _now())
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            ingest_version, created_ingest = Vault(settings).ensure_ingest_key(session, _now())
            try:
                district = accounts.only_district(session)
                made = False
            except EvidenceError:
                district = accounts.create_district(
                    session,
                    args.district_code,
                    args.district_name,
                    actor=accounts.CLI_ACTOR,
                    now=_now(),
                    ledger_origin_prefix=settings.ledger_origin_prefix,
                )
                categories.seed_defaults(session, district.id, actor=accounts.CLI_ACTOR, now=_now())
                made = True
            logged = backfill_unlogged(session, settings.ledger_origin_prefix, _now())
        print(f"data dir: {settings.data_dir.resolve()}")
        if created_secret:
            print("generated secret key (mode 0600)")
        if created_key:
            print(f"generated ledger signing key {key_file} (mode 0600)")
        if created_keyring:
            print(f"generated local keyring {settings.keyring_path} (mode 0600)")
        if created_ingest:
            print(f"generated ingest key {ingest_version} (private half sealed by the keyring)")
        if logged:
            print(f"appended {logged} earlier audit events to the custody ledger")
        print("database migrated to the newest schema")
        print(f"district: {district.name} ({district.code}){' created' if made else ''}")
    finally:
        database.dispose()


def _ledger(settings: Settings) -> tuple[Database, LedgerService]:
    database = Database(settings.database_url)
    if not schema_is_current(database.engine):
        database.dispose()
        raise CliError("the database is not initialised: run `bwc init` first")
    return database, LedgerService(database, settings)


def cmd_ledger_checkpoint(settings: Settings, args: argparse.Namespace) -> None:
    database, ledger = _ledger(settings)
    try:
        refused = 0
        for log_id, outcome in ledger.checkpoint_all().items():
            status = ledger.status(log_id)
            if isinstance(outcome, Exception):
                refused += 1
                print(f"{status.origin}: refused: {outcome}")
                continue
            made = f"signed a checkpoint at size {outcome}" if outcome else "no new entries"
            print(f"{status.origin}: {made}")
            if status.checkpoint_note:
                print(status.checkpoint_note)
    finally:
        database.dispose()
    if refused:
        raise CliError(f"{refused} log(s) are under a self-audit alarm; run `bwc ledger verify`")


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> None:
    database, ledger = _ledger(settings)
    try:
        results = ledger.audit_all()
    finally:
        database.dispose()
    failed = [r for r in results if not r.ok]
    for result in results:
        verdict = "ok" if result.ok else "FAILED"
        where = (
            f" (first bad index {result.first_bad_index})"
            if result.first_bad_index is not None
            else ""
        )
        print(f"{result.origin}: {verdict}: {result.message}{where}")
    if failed:
        raise CliError(f"custody ledger verification failed for {len(failed)} log(s)")


def cmd_ledger_key(settings: Settings, args: argparse.Namespace) -> None:
    database, ledger = _ledger(settings)
    try:
        for log_id in ledger.log_ids():
            print(ledger.status(log_id).verifier_key)
    finally:
        database.dispose()


def cmd_ledger_witness(settings: Settings, args: argparse.Namespace) -> None:
    from audit import witness

    key_text = Path(args.key).read_text(encoding="ascii").strip()
    try:
        outcome = witness.witness_once(
            args.url,
            Path(args.state),
            key_text,
            log_key=args.log_key,
            origin=args.origin,
            token=args.token,
        )
    except witness.WitnessRefusal as exc:
        raise CliError(f"witness refuses to cosign: {exc}") from None
    except witness.WitnessError as exc:
        raise CliError(str(exc)) from None
    print(outcome.message)


def cmd_ledger_witness_key(settings: Settings, args: argparse.Namespace) -> None:
    from audit import notes

    out = Path(args.out)
    if out.exists():
        raise CliError(f"{out} exists; refusing to overwrite a witness key")
    key = notes.new_signing_key()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(notes.dump_cosigning_key(key, args.name) + "\n")
    print(notes.cosignature_verifier_key(args.name, key.public_key()))


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    from app.server import serve

    serve(settings)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    """Run background jobs from Redis (RQ) until stopped; `--burst` stops when idle."""
    from app.jobs import JobContext, run_rq_worker
    from app.vault import Vault

    if not settings.redis_url:
        raise SystemExit(
            "bwc worker: BWC_REDIS_URL is not set; without Redis the service runs its jobs "
            "in-process and needs no worker"
        )
    database = Database(settings.database_url)
    try:
        run_rq_worker(JobContext(settings, database, Vault(settings)), burst=args.burst)
    finally:
        database.dispose()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> None:
    database = Database(settings.database_url)
    try:
        logins = demo.seed(database, settings.data_dir, now=_now())
    finally:
        database.dispose()
    print(demo.describe(logins, settings))


def cmd_demo_code(settings: Settings, args: argparse.Namespace) -> None:
    print(demo.current_code(settings.data_dir, args.username, now=_now()))


def _read_password(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        raise CliError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("no password on standard input")
    return password


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> None:
    password = _read_password(args)
    with _session(settings) as session:
        district = accounts.only_district(session)
        school_id = None
        if args.school:
            school = accounts.find_school(session, district.id, args.school)
            if school is None:
                raise CliError(f"no school with code {args.school}")
            school_id = school.id
        user = accounts.create_user(
            session,
            district,
            username=args.username,
            display_name=args.name or args.username,
            password=password,
            grants=[Grant(Role(args.role), school_id)],
            actor=accounts.CLI_ACTOR,
            now=_now(),
            totp_secret=args.totp_secret,
            badge=args.badge,
        )
        print(
            f"created {user.username} ({args.role})"
            + ("" if args.totp_secret else "; MFA enrolment at first sign-in")
        )


def cmd_users_list(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        district = accounts.only_district(session)
        schools = {s.id: s.code for s in accounts.schools_of(session, district.id)}
        for user in accounts.users_of(session, district.id):
            roles = ",".join(
                f"{g.role}@{schools[g.school_id]}" if g.school_id else f"{g.role}@district"
                for g in user.grants
            )
            status = (
                "disabled"
                if user.disabled_at
                else ("active" if user.mfa_enrolled else "mfa-pending")
            )
            print(f"{user.username}\t{status}\t{roles}")


def _user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise CliError(f"no user named {username}")
    return user


def cmd_users_disable(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        accounts.disable_user(
            session, _user(session, args.username), actor=accounts.CLI_ACTOR, now=_now()
        )
    print(f"disabled {args.username}; their sessions have ended")


def cmd_users_unlock(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        was = accounts.unlock(
            session, _user(session, args.username), actor=accounts.CLI_ACTOR, now=_now()
        )
    print(f"unlocked {args.username}" if was else f"{args.username} was not locked")


def cmd_schools_add(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as session:
        school = accounts.create_school(
            session,
            accounts.only_district(session),
            args.code,
            args.name,
            actor=accounts.CLI_ACTOR,
            now=_now(),
        )
        print(f"added school {school.code}: {school.name}")


def cmd_config(settings: Settings, args: argparse.Namespace) -> None:
    print("| Variable | Default | What it does |\n|---|---|---|")
    for var in ENV_VARS:
        default = var.default if var.default.startswith("(") else f"`{var.default}`"
        print(f"| `{var.name}` | {default or '(empty)'} | {var.help} |")


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """A committed-or-rolled-back session on a database that must already be initialised."""
    database = Database(settings.database_url)
    try:
        if not schema_is_current(database.engine):
            raise CliError("the database is not initialised: run `bwc init` first")
        with database.transaction() as session:
            yield session
    finally:
        database.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bwc",
        description="BWC Evidence service. Settings come from environment "
        "variables; `bwc config` lists them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create the data dir, secrets and database schema")
    init.add_argument("--district-code", default="district")
    init.add_argument("--district-name", default="School District")
    init.set_defaults(func=cmd_init)
    sub.add_parser("serve", help="serve the web app and API (gunicorn) on HOST:PORT").set_defaults(
        func=cmd_serve
    )
    worker = sub.add_parser("worker", help="run background jobs from Redis (RQ workers)")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser(
        "demo", help="seed demo schools and one demo user per role, print logins"
    ).set_defaults(func=cmd_demo)
    code = sub.add_parser("demo-code", help="print a demo user's current TOTP code")
    code.add_argument("username")
    code.set_defaults(func=cmd_demo_code)
    sub.add_parser("config", help="print the environment variables the service reads").set_defaults(
        func=cmd_config
    )

    users = sub.add_parser("users", help="manage accounts").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--school", help="school code (required for wearer and supervisor)")
    add.add_argument("--name", help="full name shown in the interface")
    add.add_argument("--badge", help="badge or staff id (wearers; default: the username)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the initial password from the first line of stdin",
    )
    add.add_argument(
        "--totp-secret",
        metavar="B32",
        help="pre-enrol this base32 TOTP secret instead of enrolling at sign-in",
    )
    add.set_defaults(func=cmd_users_add)
    users.add_parser("list", help="list accounts").set_defaults(func=cmd_users_list)
    disable = users.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.set_defaults(func=cmd_users_disable)
    unlock = users.add_parser("unlock", help="clear an account's failed sign-ins")
    unlock.add_argument("username")
    unlock.set_defaults(func=cmd_users_unlock)

    ledger = sub.add_parser("ledger", help="the custody ledger").add_subparsers(
        dest="ledger_command", required=True, metavar="ACTION"
    )
    ledger.add_parser(
        "verify", help="self-audit every log against its signed checkpoints"
    ).set_defaults(func=cmd_ledger_verify)
    ledger.add_parser(
        "checkpoint", help="sign a checkpoint now for every log that grew"
    ).set_defaults(func=cmd_ledger_checkpoint)
    ledger.add_parser("key", help="print each log's verifier key").set_defaults(func=cmd_ledger_key)
    wit = ledger.add_parser("witness", help="act as a witness: verify and cosign a log")
    wit.add_argument("--url", required=True, help="base URL of the evidence service")
    wit.add_argument("--state", required=True, help="this witness's state directory")
    wit.add_argument("--key", required=True, help="this witness's private key file")
    wit.add_argument("--log-key", help="the log's verifier key (else trusted on first use)")
    wit.add_argument("--origin", help="the log's origin, if the service has several")
    wit.add_argument("--token", help="read API token, if the service requires one")
    wit.set_defaults(func=cmd_ledger_witness)
    wkey = ledger.add_parser("witness-key", help="create a witness key; prints its vkey")
    wkey.add_argument("--name", required=True, help="the witness's name, e.g. oversight.example")
    wkey.add_argument("--out", required=True, help="file to write the private key to (0600)")
    wkey.set_defaults(func=cmd_ledger_witness_key)

    schools = sub.add_parser("schools", help="manage schools").add_subparsers(
        dest="schools_command", required=True, metavar="ACTION"
    )
    school_add = schools.add_parser("add", help="add a school")
    school_add.add_argument("code")
    school_add.add_argument("name")
    school_add.set_defaults(func=cmd_schools_add)
    add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[Settings, argparse.Namespace], None] = args.func
    try:
        settings = Settings.from_env()
        _configure_logging(settings.log_level)
        func(settings, args)
    except (CliError, VaultCliError, ConfigError, EvidenceError, LookupError) as exc:
        print(f"bwc: error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(
            f"bwc: error: database: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"bwc: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
