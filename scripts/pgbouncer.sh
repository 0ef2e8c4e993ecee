#!/usr/bin/env bash
# PgBouncer in transaction mode in front of the local PostgreSQL: the stand-in for Supabase's
# transaction pooler (Supavisor, port 6543), so the suites can run the way the hosted function
# connects. Like Supavisor in transaction mode, PgBouncer 1.18 keeps no prepared statements
# across transactions: clients must turn them off (SIGYL_DB_PREPARE=false).
#
#   bash scripts/pgbouncer.sh          start (installs pgbouncer if missing); idempotent
#   bash scripts/pgbouncer.sh stop     stop the instance this script started
#   bash scripts/pgbouncer.sh status   exit 0 when it answers
#
# Then: DATABASE_URL=postgresql://postgres@127.0.0.1:6432/<db> SIGYL_DB_PREPARE=false ...
# (the test harness connects the app as sigyl_api@127.0.0.1:6432 and its fixtures as postgres).
# Every database of the upstream server is reachable under its own name. Apply migrations
# directly to PostgreSQL (port 5432), never through the pooler.
#
# Environment: SIGYL_PGBOUNCER_DIR (config, log, pid; default /tmp/sigyl-pgbouncer),
# SIGYL_PGBOUNCER_PORT (default 6432), PGHOST/PGPORT of the upstream (127.0.0.1:5432).
# Runs as root (it installs the package); the daemon itself runs as the postgres user.
set -euo pipefail

DIR="${SIGYL_PGBOUNCER_DIR:-/tmp/sigyl-pgbouncer}"
PORT="${SIGYL_PGBOUNCER_PORT:-6432}"
UPSTREAM_HOST="${PGHOST:-127.0.0.1}"
UPSTREAM_PORT="${PGPORT:-5432}"
RUN_AS=postgres
PIDFILE="$DIR/pgbouncer.pid"

say() { printf 'pgbouncer: %s\n' "$*"; }
die() { printf 'pgbouncer: %s\n' "$*" >&2; exit 1; }

answers() {
  psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

running_pid() {
  [[ -s "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "stopped (pid $pid)"
  else
    say "not running"
  fi
}

start() {
  if running_pid >/dev/null && answers; then
    say "already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
    return 0
  fi
  if ! command -v pgbouncer >/dev/null 2>&1 && [[ ! -x /usr/sbin/pgbouncer ]]; then
    [[ $(id -u) -eq 0 ]] || die "pgbouncer is not installed (as root: apt-get install -y pgbouncer)"
    say "installing pgbouncer"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null; } \
      || die "apt-get install pgbouncer failed"
  fi
  local bin
  bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "something else listens on 127.0.0.1:$PORT (set SIGYL_PGBOUNCER_PORT)"
  fi

  mkdir -p "$DIR"
  # Trust, as the upstream trusts 127.0.0.1; PgBouncer still wants each user in its auth file:
  # postgres (the owner) and sigyl_api, the function's login (as hosted, through Supavisor).
  printf '"postgres" ""\n"sigyl_api" ""\n' > "$DIR/userlist.txt"
  cat > "$DIR/pgbouncer.ini" <<EOF
[databases]
* = host=$UPSTREAM_HOST port=$UPSTREAM_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
logfile = $DIR/pgbouncer.log
log_connections = 0
log_disconnections = 0
pidfile = $PIDFILE
user = $RUN_AS
EOF
  chown -R "$RUN_AS" "$DIR"
  rm -f "$PIDFILE"
  "$bin" -d "$DIR/pgbouncer.ini" || die "pgbouncer did not start (see $DIR/pgbouncer.log)"
  for _ in $(seq 1 100); do
    answers && { say "transaction pooler on 127.0.0.1:$PORT -> $UPSTREAM_HOST:$UPSTREAM_PORT (pid $(cat "$PIDFILE"))"; return 0; }
    sleep 0.1
  done
  tail -5 "$DIR/pgbouncer.log" >&2 || true
  die "pgbouncer does not answer on 127.0.0.1:$PORT"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
