//! One integration-test binary; a module per capability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent;
mod analyses;
mod architecture;
mod boards;
mod cli;
mod datasets;
mod dbt_server;
mod eval_sets;
mod extensions;
mod helpers;
mod http_api;
mod ingest;
mod jobs;
mod lineage;
mod metadata_contract;
mod openapi;
mod projects;
mod query;
mod query_server;
mod query_types;
mod sandbox;
mod schema_fuzz;
mod secrets_keyring;
mod sources;
