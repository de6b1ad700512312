//! One repository per aggregate, each with its statements and its row mapping. Every function takes the store's
//! `Db` and runs the same SQL on either dialect.

pub(crate) mod analyses;
pub(crate) mod analysis_state;
pub(crate) mod boards;
pub(crate) mod catalog;
pub(crate) mod conversations;
pub(crate) mod jobs;
pub(crate) mod projects;
pub(crate) mod runs;
pub(crate) mod sources;

use chrono::{DateTime, Utc};
use pluto_duck_application::ports::RepoError;

/// A stored value the domain refuses: the store holds something it never wrote.
fn bad(e: impl std::fmt::Display) -> RepoError {
    RepoError::Internal(format!("bad metadata row: {e}"))
}

/// Counts are `u64` in the domain and signed 64-bit in both databases.
fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A time inside a JSON document (RFC 3339 text).
fn time_of(v: &serde_json::Value) -> Result<DateTime<Utc>, RepoError> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .map(|t| t.with_timezone(&Utc))
        .map_err(bad)
}
