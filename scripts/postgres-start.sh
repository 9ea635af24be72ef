#!/usr/bin/env bash
# Starts a private PostgreSQL server for tests: its own data directory, a
# free loopback port, trust authentication on loopback only. Nothing global
# is touched (no system service). Prints the server URL on stdout.
#
#   scripts/postgres-start.sh DIR [PORT]    -> postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   scripts/postgres-start.sh --stop DIR
set -euo pipefail

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    echo "postgres-start: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "$d"
}

as_owner() {
  # initdb and postgres refuse to run as root: use the postgres system user.
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-}" = "--stop" ]; then
  dir=$2
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi

dir=${1:?usage: postgres-start.sh DIR [PORT]}
port=${2:-}
if [ -z "$port" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)
fi
bin=$(bindir)
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
chmod 700 "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1
fi
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300 -c full_page_writes=off" start >/dev/null
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
