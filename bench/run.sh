#!/usr/bin/env bash
# Heptora API benchmark: one command. Starts gunicorn + a Celery worker on PostgreSQL and Redis like
# production, loads them on 127.0.0.1 only, prints a table and writes it into docs/benchmarks.md.
#
#   bench/run.sh                 # the full run (about 5 minutes on 2 cores)
#   bench/run.sh --profile 12    # ... plus a py-spy profile of the execute path
#   bench/run.sh --quick         # a 1-minute smoke run; leaves docs/benchmarks.md alone
#   bench/run.sh --help          # every option
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379, as CI has
# them (started here if they are installed but down). Uses database heptora_bench (created, then dropped)
# and Redis database 12 (flushed before and after). Installs wrk from Debian when it is missing (falls back
# to a Python load generator when it cannot). Everything it starts is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE="$ROOT/var/bench"
mkdir -p "$STATE"

PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
  echo "bench: no virtualenv at .venv; run ./dev test once (it installs requirements/dev.txt)" >&2
  exit 2
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt

cleanup() {
  # The driver stops what it started; this catches a driver killed with SIGKILL. Only the process groups
  # the driver recorded (gunicorn, the worker) are signalled.
  if [ -s "$STATE/pgids" ]; then
    while read -r pgid; do
      [ -n "$pgid" ] && kill -TERM -- "-$pgid" 2>/dev/null || true
    done < "$STATE/pgids"
    sleep 2
    while read -r pgid; do
      [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null || true
    done < "$STATE/pgids"
    rm -f "$STATE/pgids"
  fi
  # A database the driver created but could not drop (it records the name; it validated it as a plain name).
  if [ -s "$STATE/db" ]; then
    db=$(tr -cd 'a-z0-9_' < "$STATE/db")
    [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
      >/dev/null 2>&1 || true
    rm -f "$STATE/db"
  fi
}
trap cleanup EXIT
rm -f "$STATE/pgids" "$STATE/db"

# Services, as .ci/run starts them.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "bench: PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "bench: Redis is down; starting it"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/bench.log || true
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
  sleep 1
done

# wrk from Debian, when we may install it; otherwise the driver uses bench/loadgen.py.
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bench: installing wrk"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null 2>&1 \
    || echo "bench: could not install wrk; using the Python load generator"
fi

"$PYTHON" bench/api_bench.py "$@"
