#!/bin/bash
set -euo pipefail
# VAR or VAR_FILE (a path to a file holding the value), exactly like the official image's
# file_env: both set is an error; trailing newlines of the file are dropped.
file_env() {
  local var="$1" def="${2:-}" file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$file_var"; exit 1
  fi
  local val="$def"
  if [ -n "${!var:-}" ]; then val="${!var}"; elif [ -n "${!file_var:-}" ]; then val="$(< "${!file_var}")"; fi
  export "$var"="$val"
  unset "$file_var"
}
if [ "${1:-}" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" && chown -R postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
  exec setpriv --reuid=999 --regid=999 --init-groups "$0" "$@"
fi
file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ]; then
    echo "error: database is uninitialized and POSTGRES_PASSWORD is not specified" >&2; exit 1
  fi
  mkdir -p "$PGDATA"; chmod 700 "$PGDATA"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -q -c "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi
unset POSTGRES_PASSWORD
exec "$@"
