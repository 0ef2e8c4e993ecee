#!/usr/bin/env bash
# Prepares the machine's PostgreSQL 15 for the full test run, idempotently (CI and developers):
#   - installs pg_cron, pgTAP and pg_prove from Debian's packages if missing;
#   - builds and installs Supabase Vault (the extension hosted Supabase runs) from the team's
#     vendored source, ../shared/vendor/supabase_vault beside the checkout, in a scratch copy;
#     gives the cluster a root key of its own (made once, kept, readable only by postgres) and
#     the getkey script Vault reads it with at start. Without that source, the platform
#     stand-in (supabase/local/platform.sql) keeps its own `vault` schema, as on PGlite;
#   - preloads pg_cron (and Vault) and points pg_cron's scheduler at DB (it runs jobs in one
#     database);
#   - creates DB afresh, then restarts PostgreSQL once, so the libraries load and the
#     scheduler attaches to DB (the scheduler stops when its database is dropped).
# Usage: scripts/setup-postgres.sh [DB]   (default sigyl_dev). Needs root (apt, server config).
# Environment: SIGYL_VAULT_SRC overrides where the Vault source is looked for.
set -euo pipefail

DB="${1:-sigyl_dev}"
PGVER="${PGVER:-15}"
CLUSTER="${PGCLUSTER:-main}"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt)
CLUSTER_CONF="/etc/postgresql/${PGVER}/${CLUSTER}"
CONF_DIR="${CLUSTER_CONF}/conf.d"
PG_CONFIG="/usr/lib/postgresql/${PGVER}/bin/pg_config"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAULT_SRC="${SIGYL_VAULT_SRC:-$(dirname "$REPO_ROOT")/shared/vendor/supabase_vault}"
# The root key stays outside the data directory, so a copy of the data never carries it.
VAULT_DIR="${CLUSTER_CONF}/supabase-vault"
VAULT_KEY="${VAULT_DIR}/root.key"
VAULT_GETKEY="${VAULT_DIR}/getkey"

log() { printf 'setup-postgres: %s\n' "$*"; }
die() { log "$*"; exit 1; }

[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { log "bad database name: $DB"; exit 2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

with_vault=false
if [[ -f "$VAULT_SRC/Makefile" && -f "$VAULT_SRC/supabase_vault.control.in" ]]; then
  with_vault=true
else
  log "no Supabase Vault source at $VAULT_SRC: the platform stand-in's own vault schema will be used"
fi

packages=(postgresql-${PGVER}-cron postgresql-${PGVER}-pgtap libtap-parser-sourcehandler-pgtap-perl)
$with_vault && packages+=(postgresql-server-dev-${PGVER} libsodium-dev make gcc)
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
  return 1
}

# The cluster may be stopped on a fresh machine.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$CLUSTER" start || true
  wait_ready || die "PostgreSQL did not come up"
fi

# Builds Vault in a scratch copy (the vendored tree stays untouched) and installs it, unless
# this very source is installed already (a stamp beside the root key records its checksum).
install_vault() {
  local build="$WORK/supabase_vault" stamp="$VAULT_DIR/installed-source.sha256" sum libdir sharedir
  libdir="$("$PG_CONFIG" --pkglibdir)"
  sharedir="$("$PG_CONFIG" --sharedir)/extension"
  sum="$(cd "$VAULT_SRC" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" && -f "$libdir/supabase_vault.so" && -f "$sharedir/supabase_vault.control" ]]; then
    log "Supabase Vault is installed from this source already"
    return
  fi
  cp -a "$VAULT_SRC/." "$build/"
  make -s -C "$build" PG_CONFIG="$PG_CONFIG" >"$build/build.log" 2>&1 ||
    { cat "$build/build.log" >&2; die "building Supabase Vault failed"; }
  if ldd "$build/supabase_vault.so" | grep -q 'not found'; then
    ldd "$build/supabase_vault.so" >&2
    die "the Supabase Vault library misses a shared library"
  fi
  make -s -C "$build" PG_CONFIG="$PG_CONFIG" install >"$build/install.log" 2>&1 ||
    { cat "$build/install.log" >&2; die "installing Supabase Vault failed"; }
  install -d -m 0700 -o postgres -g postgres "$VAULT_DIR"
  printf '%s\n' "$sum" >"$stamp"
  log "installed Supabase Vault $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$build/supabase_vault.control") from $VAULT_SRC"
}

# The cluster's Vault root key: 32 random bytes as 64 hex digits, made once and kept (a new
# key would leave every Vault secret undecryptable). Vault runs the getkey script at start,
# as the server's user, and reads the key from its output.
vault_root_key() {
  install -d -m 0700 -o postgres -g postgres "$VAULT_DIR"
  if [[ ! -e "$VAULT_KEY" ]]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$VAULT_KEY.new")
    chown postgres:postgres "$VAULT_KEY.new"
    mv "$VAULT_KEY.new" "$VAULT_KEY"
    log "made a Vault root key for the cluster ($VAULT_KEY)"
  fi
  chown postgres:postgres "$VAULT_KEY"
  chmod 0400 "$VAULT_KEY"
  printf '#!/bin/sh\n# Prints the Supabase Vault root key of this cluster (PostgreSQL runs it at start).\nexec cat %s\n' \
    "$VAULT_KEY" >"$VAULT_GETKEY.new"
  chown root:postgres "$VAULT_GETKEY.new"
  chmod 0750 "$VAULT_GETKEY.new"
  mv "$VAULT_GETKEY.new" "$VAULT_GETKEY"
  # Vault refuses to start the server on a bad key: check it now, as postgres, before a restart.
  local printed
  printed="$(runuser -u postgres -- "$VAULT_GETKEY" 2>/dev/null || true)"
  [[ "$printed" =~ ^[0-9a-f]{64}$ ]] ||
    die "$VAULT_GETKEY does not print a 64-hex-digit key as postgres (is $VAULT_KEY damaged?)"
}

preload="pg_cron"
if $with_vault; then
  install_vault
  vault_root_key
  preload="pg_cron,supabase_vault"
fi

conf="${CONF_DIR}/95-sigyl-preload.conf"
legacy_conf="${CONF_DIR}/95-sigyl-pg-cron.conf"
want=$(printf "shared_preload_libraries = '%s'\ncron.database_name = '%s'\ncron.use_background_workers = on\nmax_worker_processes = 20\n" "$preload" "$DB")
$with_vault && want+=$(printf "\nvault.getkey_script = '%s'" "$VAULT_GETKEY")
backup="$WORK/conf-before"
mkdir "$backup"
[[ -f "$conf" ]] && cp -p "$conf" "$backup/"
[[ -f "$legacy_conf" ]] && cp -p "$legacy_conf" "$backup/"
if [[ ! -f "$conf" ]] || [[ "$(cat "$conf")" != "$want" ]]; then
  printf '%s\n' "$want" > "$conf"
  log "configured ${preload/,/ and } for database $DB"
fi
rm -f "$legacy_conf"

# Fresh database (force: the cron launcher may hold a connection to it).
"${PSQL[@]}" -d postgres -c "drop database if exists ${DB} with (force)" >/dev/null
"${PSQL[@]}" -d postgres -c "create database ${DB}" >/dev/null

log "restarting PostgreSQL ${PGVER}/${CLUSTER}"
if ! pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$CLUSTER" restart || ! wait_ready; then
  # Never leave the server down: put the previous configuration back and start it again.
  log "PostgreSQL did not restart with the new configuration; restoring the previous one"
  tail -n 20 "/var/log/postgresql/postgresql-${PGVER}-${CLUSTER}.log" >&2 || true
  rm -f "$conf"
  cp -p "$backup"/*.conf "$CONF_DIR/" 2>/dev/null || true
  pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$CLUSTER" start || true
  wait_ready || true
  die "setup failed; PostgreSQL runs with its previous configuration"
fi

loaded=$("${PSQL[@]}" -d "$DB" -c "show shared_preload_libraries")
cron_db=$("${PSQL[@]}" -d "$DB" -c "show cron.database_name")
[[ "$loaded" == *pg_cron* && "$cron_db" == "$DB" ]] || die "pg_cron is not preloaded for $DB"
if $with_vault; then
  [[ "$loaded" == *supabase_vault* ]] || die "Supabase Vault is not preloaded"
  # A round trip through the real extension, rolled back: the root key was loaded.
  roundtrip=$("${PSQL[@]}" -d "$DB" <<'SQL'
begin;
create extension supabase_vault;
select vault.create_secret('setup check', 'sigyl_setup_check') is not null;
select decrypted_secret from vault.decrypted_secrets where name = 'sigyl_setup_check';
rollback;
SQL
  )
  [[ "$roundtrip" == $'t\nsetup check' ]] || die "Supabase Vault does not encrypt and decrypt (got: $roundtrip)"
  log "ready: database $DB, pg_cron scheduler attached, Supabase Vault preloaded with the cluster's root key"
else
  log "ready: database $DB, pg_cron scheduler attached"
fi
