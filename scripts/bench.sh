#!/usr/bin/env bash
# Runs the benchmarks (release build). Each compares our path with DuckDB in-process in the same run and
# prints the ratio. Sizes: BENCH_ROWS (default 5000000), BENCH_REQUESTS (default 300) for queries; BENCH_SF
# (TPC-H scale factor, default 0.5) and BENCH_PG_ROWS (default 2000000) for ingest and caching; BENCH_ANALYSES
# (default 300) for the analyses DAG; BENCH_PROJECTS (default 20) for the sandbox's memory;
# EXPLORER_BUDGET (default 2000 tokens) for the schema explorer on Spider; BENCH_AGENT_TABLES (default 500) and
# BENCH_AGENT_TURNS (default 50) for the agent's own overhead per turn.
# The dbt runner's bench builds the starter dbt project (fixed size); the dbt bench builds it through the server
# against dbt by hand (BENCH_DBT_RUNS, default 3). The hybrid bench: BENCH_ROWS (default 1000000 in it),
# BENCH_REQUESTS (default 200), against the services below.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/setup.sh --no-serve --debug >/dev/null
source scripts/services.sh
cargo bench --locked -p pluto-duck-tests --bench query
cargo bench --locked -p pluto-duck-tests --bench ingest
cargo bench --locked -p pluto-duck-tests --bench analyses
cargo bench --locked -p pluto-duck-tests --bench sandbox
cargo bench --locked -p pluto-duck-tests --bench hybrid
bash scripts/fetch-spider.sh
cargo bench --locked -p pluto-duck-tests --bench explorer
cargo bench --locked -p pluto-duck-tests --bench agent
PLUTODUCK_TEST_DBT="$PLUTODUCK_SHARE/dbt-venv/bin/dbt" DBT_SEND_ANONYMOUS_USAGE_STATS=false \
  cargo bench --locked -p pluto-duck-dbt-cli --bench build
PLUTODUCK_TEST_DBT="$PLUTODUCK_SHARE/dbt-venv/bin/dbt" DBT_SEND_ANONYMOUS_USAGE_STATS=false \
  cargo bench --locked -p pluto-duck-tests --bench dbt
