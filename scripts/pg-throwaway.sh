#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benches: on loopback, in DIR, as a non-root user.
#
#   bash scripts/pg-throwaway.sh start DIR [PORT]   # prints the URL, postgres://brama@127.0.0.1:PORT/brama
#   bash scripts/pg-throwaway.sh stop DIR           # stops it and deletes its data
#   bash scripts/pg-throwaway.sh halt DIR           # stops it, keeping its data (an outage)
#   bash scripts/pg-throwaway.sh resume DIR         # starts it again after `halt`
#
# With PG_TLS_DIR set (holding server.crt and server.key, PEM), `start` serves TLS too
# (ssl = on); clients choose it with `?sslmode=require`.
#
# Uses Debian's `postgresql` packages (any version under /usr/lib/postgresql, or initdb on PATH).
# PostgreSQL refuses to run as root: under root the cluster belongs to `nobody`. Trust
# authentication, loopback only; fsync stays on, so commits cost what they cost in production.
set -euo pipefail

cmd=${1:?usage: pg-throwaway.sh start|stop DIR [PORT]}
dir=${2:?usage: pg-throwaway.sh start|stop DIR [PORT]}

bindir=""
if command -v initdb >/dev/null; then
  bindir=$(dirname "$(readlink -f "$(command -v initdb)")")
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-throwaway: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 3
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    port=${3:-}
    if [ -z "$port" ]; then
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    fi
    mkdir -p "$dir"
    # The cluster's own directory, which its owner must be able to reach: DIR itself, or under
    # root a directory of nobody's in /tmp (DIR may sit under a directory only root can enter).
    home="$dir"
    if [ "$(id -u)" -eq 0 ]; then
      home=$(mktemp -d /tmp/brama-pg.XXXXXX)
      chown nobody:nogroup "$home"
    fi
    echo "$home" >"$dir/cluster"
    echo "$port" >"$dir/port"
    as_owner "$bindir/initdb" -D "$home/data" -U brama -A trust -E UTF8 --no-locale -k >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    opts="-h 127.0.0.1 -p $port -k $home -c max_connections=200 -c shared_buffers=128MB"
    if [ -n "${PG_TLS_DIR:-}" ]; then
      install -m 600 "$PG_TLS_DIR/server.crt" "$PG_TLS_DIR/server.key" "$home/data/"
      [ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$home/data/server.crt" "$home/data/server.key"
      opts="$opts -c ssl=on"
    fi
    echo "$opts" >"$dir/opts"
    as_owner "$bindir/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 \
      -o "$opts" start >/dev/null \
      || { cat "$home/server.log" >&2; exit 1; }
    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U brama brama
    echo "postgres://brama@127.0.0.1:$port/brama"
    ;;
  halt)
    home=$(cat "$dir/cluster")
    as_owner "$bindir/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null
    ;;
  resume)
    home=$(cat "$dir/cluster")
    as_owner "$bindir/pg_ctl" -D "$home/data" -l "$home/server.log" -w -t 60 \
      -o "$(cat "$dir/opts")" start >/dev/null \
      || { cat "$home/server.log" >&2; exit 1; }
    ;;
  stop)
    [ -f "$dir/cluster" ] || exit 0
    home=$(cat "$dir/cluster")
    as_owner "$bindir/pg_ctl" -D "$home/data" -m immediate -w stop >/dev/null 2>&1 || true
    [ "$home" != "$dir" ] && rm -rf "$home"
    rm -f "$dir/cluster"
    ;;
  *)
    echo "usage: pg-throwaway.sh start|stop|halt|resume DIR [PORT]" >&2
    exit 2
    ;;
esac
