//! `MetadataStore` on sqlx. Both stores keep the same schema (one migration folder per dialect), run their
//! migrations at connect, and pass the same contract suite (`tests/contract.rs`).

mod postgres;
mod runs;
mod sqlite;

pub use postgres::PgMetadataStore;
pub use sqlite::SqliteMetadataStore;

use pluto_duck_application::ports::RepoError;

fn map_err(e: sqlx::Error) -> RepoError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            RepoError::Unavailable(e.to_string())
        }
        other => RepoError::Internal(other.to_string()),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> RepoError {
    RepoError::Internal(format!("metadata migration failed: {e}"))
}
