# Shared paths for the project's scripts. Sourced, never run.
# Everything installed lives outside the clone so a fresh clone (CI) reuses it, and a fresh machine rebuilds it.

DUCKDB_VERSION="1.5.5"
DUCKDB_NPM_PKG="@duckdb/node-bindings-linux-x64@1.5.5-r.1"
DUCKDB_EXTENSIONS="postgres_scanner mysql_scanner sqlite_scanner httpfs ducklake tpch"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Installed runtime pieces: libduckdb, extensions, dbt and test-tool virtualenvs.
PLUTODUCK_SHARE="${PLUTODUCK_SHARE:-${XDG_DATA_HOME:-$HOME/.local/share}/pluto-duck}"
# Cargo's build output: outside the clone, kept between runs on one machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pluto-duck/target}"
BIN_DIR="${PLUTODUCK_BIN_DIR:-$HOME/.local/bin}"

# The rust toolchain may live under root's home when HOME is a fresh one.
if ! command -v cargo >/dev/null 2>&1; then
  for d in "${CARGO_HOME:-}" "$HOME/.cargo" /root/.cargo /usr/local/cargo; do
    if [ -n "$d" ] && [ -x "$d/bin/cargo" ]; then
      export PATH="$d/bin:$PATH"
      export CARGO_HOME="${CARGO_HOME:-$d}"
      [ -z "${RUSTUP_HOME:-}" ] && [ -d "$(dirname "$d")/.rustup" ] && export RUSTUP_HOME="$(dirname "$d")/.rustup"
      break
    fi
  done
fi

# With a fresh HOME, rustup's proxies find no toolchain; fall back to the machine's rustup home.
if command -v cargo >/dev/null 2>&1 && ! cargo --version >/dev/null 2>&1 && [ -z "${RUSTUP_HOME:-}" ]; then
  for d in /root/.rustup /usr/local/rustup; do
    [ -d "$d/toolchains" ] && export RUSTUP_HOME="$d" && break
  done
fi

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
