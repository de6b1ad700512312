//! DbtCli against the real dbt (dbt-core 1.11 + dbt-duckdb) and real DuckDB files in temporary folders.
//! The dbt executable comes from PLUTODUCK_TEST_DBT; without it every test fails, naming the variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod failures;
mod incremental;
mod lifecycle;
mod profile;
mod stop;
mod support;
