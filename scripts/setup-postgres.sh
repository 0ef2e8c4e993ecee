#!/usr/bin/env bash
# Prepares the machine's PostgreSQL 15 for the full test run, idempotently (CI and developers):
#   - installs pg_cron, pgTAP and pg_prove from Debian's packages if missing;
#   - preloads pg_cron and points its scheduler at DB (pg_cron runs jobs in one database);
#   - creates DB afresh, then restarts PostgreSQL so the scheduler attaches to it
#     (the scheduler stops when its database is dropped).
# Usage: scripts/setup-postgres.sh [DB]   (default sigyl_dev). Needs root (apt, server config).
set -euo pipefail

DB="${1:-sigyl_dev}"
PGVER="${PGVER:-15}"
CLUSTER="${PGCLUSTER:-main}"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt)
CONF_DIR="/etc/postgresql/${PGVER}/${CLUSTER}/conf.d"

log() { printf 'setup-postgres: %s\n' "$*"; }

[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { log "bad database name: $DB"; exit 2; }

packages=(postgresql-${PGVER}-cron postgresql-${PGVER}-pgtap libtap-parser-sourcehandler-pgtap-perl)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wait_ready() {
  for _ in $(seq 1 60); do
    pg_isready -h 127.0.0.1 -p 5432 -q && return 0
    sleep 0.5
  done
  log "PostgreSQL did not come up"; exit 1
}

# The cluster may be stopped on a fresh machine.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$CLUSTER" start || true
  wait_ready
fi

conf="${CONF_DIR}/95-sigyl-pg-cron.conf"
want=$(printf "shared_preload_libraries = 'pg_cron'\ncron.database_name = '%s'\ncron.use_background_workers = on\nmax_worker_processes = 20\n" "$DB")
if [[ ! -f "$conf" ]] || [[ "$(cat "$conf")" != "$want" ]]; then
  printf '%s\n' "$want" > "$conf"
  log "configured pg_cron for database $DB"
fi

# Fresh database (force: the cron launcher may hold a connection to it).
"${PSQL[@]}" -d postgres -c "drop database if exists ${DB} with (force)" >/dev/null
"${PSQL[@]}" -d postgres -c "create database ${DB}" >/dev/null

log "restarting PostgreSQL ${PGVER}/${CLUSTER}"
pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$CLUSTER" restart
wait_ready

preload=$("${PSQL[@]}" -d "$DB" -c "show shared_preload_libraries")
cron_db=$("${PSQL[@]}" -d "$DB" -c "show cron.database_name")
[[ "$preload" == *pg_cron* && "$cron_db" == "$DB" ]] || { log "pg_cron is not preloaded for $DB"; exit 1; }
log "ready: database $DB, pg_cron scheduler attached"
