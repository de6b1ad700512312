//! `MetadataStore` on sqlx: one store for SQLite (the local profile) and PostgreSQL (the hybrid profile).
//!
//! - `store`: [`SqlxMetadataStore`], the port's methods, each a call into one repository;
//!   [`SqliteMetadataStore`] and [`PgMetadataStore`] name it by the database it opens.
//! - `repos`: one repository per aggregate (projects and settings, runs, sources, the ingestion catalog,
//!   analysis state, boards), each with its statements and row mapping, written once for both databases.
//! - `dialect`: all that differs between them: connection set-up, how a timestamp is stored, column type names.
//! - `migrations`: one set of migration files (`migrations/`), rendered per dialect.
//!
//! The contract suite `tests/tests/it/metadata_contract.rs` (crate `pluto-duck-tests`) runs the same cases
//! against both databases.

mod dialect;
mod migrations;
mod repos;
mod secrets;
mod store;

pub use secrets::{MasterKey, PgSecretStore};
pub use store::{PgMetadataStore, SqliteMetadataStore, SqlxMetadataStore};
