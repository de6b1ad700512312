#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/setup.sh), starts throwaway PostgreSQL, MariaDB and an
# S3-compatible server on loopback, runs fmt, clippy and the whole test suite, and stops the services even when
# tests fail. A service whose URL is already in the environment (TEST_PG_URL, TEST_MYSQL_URL, TEST_S3_ENDPOINT)
# is used as it is instead of being started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

bash scripts/setup.sh --no-serve --debug

source scripts/services.sh

export PLUTODUCK_TEST_EXTENSION_DIR="$PLUTODUCK_SHARE/extensions"
export PLUTODUCK_TEST_DATASETS="$PLUTODUCK_SHARE/datasets"
export PLUTODUCK_TEST_BIN="$CARGO_TARGET_DIR/debug/pluto-duck"
export PLUTODUCK_TEST_DBT="$PLUTODUCK_SHARE/dbt-venv/bin/dbt"
export PLUTODUCK_TEST_SCHEMATHESIS="$PLUTODUCK_SHARE/tools-venv/bin/schemathesis"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$WORK/cargo-test.log" || status=$?
# One closing line for the whole run (cargo prints one per test binary, the last often a doc-test with 0 tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$WORK/cargo-test.log"
exit "$status"
