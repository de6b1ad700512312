#!/usr/bin/env bash
# Sourced by test.sh and bench.sh: starts throwaway PostgreSQL, MariaDB and an S3-compatible server (moto) on
# loopback, exports TEST_PG_URL, TEST_MYSQL_URL and TEST_S3_ENDPOINT, and stops them when the caller exits. A
# service whose variable is already set is used as it is.
WORK="$(mktemp -d /tmp/pluto-duck-test.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
  set +e
  [ -n "${PG_DATA:-}" ] && as_user postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Poll until a command succeeds, with a deadline: no fixed sleeps.
wait_for() {
  local what="$1" deadline=$((SECONDS + 60)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not start within 60 s"
    sleep 0.2
  done
}
as_user() {
  local user="$1"; shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

# --- PostgreSQL -------------------------------------------------------------------------------------------------
if [ -z "${TEST_PG_URL:-}" ]; then
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  PG_DATA="$WORK/pg"
  PG_PORT="$(free_port)"
  mkdir -p "$PG_DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DATA"
  as_user postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  as_user postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  psql -h "$PG_DATA" -p "$PG_PORT" -U postgres -qc "CREATE ROLE pd LOGIN SUPERUSER PASSWORD 'pd_secret_pw'" >/dev/null
  psql -h "$PG_DATA" -p "$PG_PORT" -U postgres -qc "CREATE DATABASE pluto OWNER pd" >/dev/null
  export TEST_PG_URL="postgres://pd:pd_secret_pw@127.0.0.1:$PG_PORT/pluto"
  log "PostgreSQL on 127.0.0.1:$PG_PORT"
fi

# --- MariaDB ----------------------------------------------------------------------------------------------------
if [ -z "${TEST_MYSQL_URL:-}" ]; then
  MY_DIR="$WORK/mariadb"
  MY_PORT="$(free_port)"
  mkdir -p "$MY_DIR/data"
  [ "$(id -u)" -eq 0 ] && chown -R mysql "$MY_DIR"
  mariadb-install-db --no-defaults --user=mysql --datadir="$MY_DIR/data" --auth-root-authentication-method=socket >/dev/null 2>&1
  mariadbd --no-defaults --user=mysql --datadir="$MY_DIR/data" --port="$MY_PORT" --bind-address=127.0.0.1 \
    --socket="$MY_DIR/mysql.sock" --skip-name-resolve --log-error="$MY_DIR/error.log" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_for MariaDB mariadb-admin --socket="$MY_DIR/mysql.sock" -u root ping
  mariadb --socket="$MY_DIR/mysql.sock" -u root -e \
    "CREATE DATABASE pluto; CREATE USER 'pd'@'127.0.0.1' IDENTIFIED BY 'pd_secret_pw'; GRANT ALL ON *.* TO 'pd'@'127.0.0.1';"
  export TEST_MYSQL_URL="mysql://pd:pd_secret_pw@127.0.0.1:$MY_PORT/pluto"
  log "MariaDB on 127.0.0.1:$MY_PORT"
fi

# --- S3-compatible object storage (moto) ------------------------------------------------------------------------
if [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  S3_PORT="$(free_port)"
  "$PLUTODUCK_SHARE/tools-venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
  wait_for "S3 server" curl -sf "http://127.0.0.1:$S3_PORT/"
  export TEST_S3_ENDPOINT="127.0.0.1:$S3_PORT"
  log "S3 (moto) on 127.0.0.1:$S3_PORT"
fi

