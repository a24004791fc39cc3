#!/usr/bin/env bash
# Make sure what the test suite needs is reachable, starting or installing it if not:
# PostgreSQL on 127.0.0.1:5432, Redis (6379, or a private one on 6390), Debian chromium.
# Writes .test-env with the URLs the tests use. Idempotent and quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'provision: %s\n' "$*"; }
fail() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# --- PostgreSQL ------------------------------------------------------------------
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  cluster_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$cluster_version" ] || fail "PostgreSQL is not installed (apt-get install postgresql)"
  say "starting PostgreSQL $cluster_version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  pg_up || fail "PostgreSQL is not reachable on 127.0.0.1:5432"
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null \
  || fail "cannot connect to PostgreSQL as user postgres on 127.0.0.1"

# --- Redis -----------------------------------------------------------------------
redis_port=6379
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  redis_port=6390
  if ! redis-cli -h 127.0.0.1 -p 6390 ping 2>/dev/null | grep -q PONG; then
    command -v redis-server >/dev/null || fail "redis-server is not installed"
    say "starting a private Redis on port 6390"
    redis-server --bind 127.0.0.1 --port 6390 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 20); do redis-cli -p 6390 ping 2>/dev/null | grep -q PONG && break; sleep 0.25; done
    redis-cli -p 6390 ping 2>/dev/null | grep -q PONG || fail "Redis did not start on 6390"
  fi
fi

# --- Chromium (Debian's build; Playwright never downloads a browser here) -------
if ! command -v chromium >/dev/null; then
  say "installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q chromium >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q chromium >/dev/null; } \
    || fail "could not install chromium with apt-get"
fi
chromium_path=$(command -v chromium)

cat > .test-env <<ENV
BWC_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres
BWC_TEST_REDIS_URL=redis://127.0.0.1:${redis_port}/15
BWC_TEST_CHROMIUM=${chromium_path}
ENV
say "PostgreSQL, Redis (port ${redis_port}) and ${chromium_path} are ready"
