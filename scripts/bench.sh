#!/usr/bin/env bash
# Runs the benchmarks (release build). Each compares our path with DuckDB in-process in the same run and
# prints the ratio. Sizes: BENCH_ROWS (default 5000000), BENCH_REQUESTS (default 300).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/setup.sh --no-serve --debug >/dev/null
cargo bench --locked -p pluto-duck-tests --bench query
