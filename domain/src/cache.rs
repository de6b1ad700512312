//! Local copies of remote tables: built aside and swapped in atomically, refreshed whole or incrementally.

use chrono::{DateTime, Duration, Utc};

use crate::{DomainError, Identifier, ProjectId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTable {
    /// The local table's name, unique in the project.
    pub name: Identifier,
    pub project: ProjectId,
    pub source: Identifier,
    pub remote_schema: String,
    pub remote_table: String,
    /// A boolean SQL expression over the remote table's columns.
    pub filter: Option<String>,
    /// Refresh appends rows whose cursor is past the largest one already copied.
    pub cursor_column: Option<String>,
    pub ttl_secs: Option<u64>,
    pub rows: u64,
    pub refreshed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl CachedTable {
    /// The relation holding the copy in its project's database: `cache.<name>`.
    pub fn relation(&self) -> crate::Relation {
        crate::Relation {
            schema: Identifier(crate::CACHE_SCHEMA.to_owned()),
            name: self.name.clone(),
        }
    }

    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.ttl_secs
            .and_then(|t| i64::try_from(t).ok())
            // A TTL past the calendar's end never expires (and must not overflow).
            .and_then(Duration::try_seconds)
            .and_then(|d| self.refreshed_at.checked_add_signed(d))
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at().is_some_and(|e| e <= now)
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        for (what, v) in [("schema", &self.remote_schema), ("table", &self.remote_table)] {
            if v.is_empty() || v.contains('\0') {
                return Err(DomainError::InvalidSource(format!(
                    "cache {}: remote {what} must be given",
                    self.name
                )));
            }
        }
        if let Some(c) = &self.cursor_column {
            Identifier::parse(c.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_the_ttl() {
        let t0 = Utc::now();
        let mut c = CachedTable {
            name: Identifier::parse("orders").unwrap(),
            project: ProjectId::default_project(),
            source: Identifier::parse("pg").unwrap(),
            remote_schema: "public".into(),
            remote_table: "orders".into(),
            filter: None,
            cursor_column: None,
            ttl_secs: Some(60),
            rows: 0,
            refreshed_at: t0,
            created_at: t0,
        };
        assert!(!c.is_expired(t0 + Duration::seconds(59)));
        assert!(c.is_expired(t0 + Duration::seconds(60)));
        c.ttl_secs = None;
        assert!(!c.is_expired(t0 + Duration::days(999)));
        // A TTL beyond what a timestamp can hold never expires, and does not panic.
        c.ttl_secs = Some(u64::MAX / 2);
        assert_eq!(c.expires_at(), None);
        c.ttl_secs = Some(9_000_000_000_000_000);
        assert!(!c.is_expired(t0));
        assert_eq!(c.relation().to_string(), "cache.orders");
    }
}
