//! Ingestion: copying a source's table or query into a warehouse table, recorded in a catalog with its syncs.

use chrono::{DateTime, Utc};

use crate::{DomainError, Identifier, ProjectId, RunId, RunStatus, SourceKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestMode {
    /// Build the new table aside, then swap it in.
    Replace,
    /// Add the rows to the table (created on first use).
    Append,
    /// Update rows whose keys match, insert the others.
    Merge,
}

impl IngestMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestMode::Replace => "replace",
            IngestMode::Append => "append",
            IngestMode::Merge => "merge",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "replace" => Ok(IngestMode::Replace),
            "append" => Ok(IngestMode::Append),
            "merge" => Ok(IngestMode::Merge),
            _ => Err(DomainError::UnknownValue {
                what: "ingest mode (expected replace, append or merge)",
                value: s.to_owned(),
            }),
        }
    }
}

/// A warehouse table an ingest writes, in its project's database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetTable {
    pub schema: Identifier,
    pub table: Identifier,
}

impl TargetTable {
    /// A table a request names for writing: `main` unless a schema is given, names lower-cased, and never one of
    /// the schemas Pluto-Duck owns (`analysis`, `cache`, ...), whose records would otherwise lie.
    pub fn writable(schema: Option<&str>, table: &str) -> Result<Self, DomainError> {
        let schema = Identifier::canonical(schema.unwrap_or(crate::MAIN_SCHEMA))?;
        if crate::project::is_reserved_schema(schema.as_str()) {
            return Err(DomainError::InvalidIdentifier {
                value: schema.to_string(),
                reason: "is a schema Pluto-Duck manages (analysis, cache, dbt, system schemas); write to main or a schema of your own",
            });
        }
        let table = Identifier::canonical(table)?;
        if table.as_str().starts_with("__pd") {
            return Err(DomainError::InvalidIdentifier {
                value: table.to_string(),
                reason: "names starting with __pd are Pluto-Duck's own",
            });
        }
        Ok(Self { schema, table })
    }

    pub fn relation(&self) -> crate::Relation {
        crate::Relation {
            schema: self.schema.clone(),
            name: self.table.clone(),
        }
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// An entry of the ingestion catalog: where a target table's data comes from and how its last sync went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingestion {
    pub project: ProjectId,
    pub target: TargetTable,
    pub source_kind: SourceKind,
    /// The source's name, or a description of an ad-hoc one without its secrets (`postgres://u@h:5432/db`).
    pub source: String,
    /// Whether `source` names a stored source, so the ingestion can be synced again without its config.
    pub named_source: bool,
    /// The table read (`schema.table`) or the query run.
    pub input: String,
    pub mode: IngestMode,
    pub keys: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_run: Option<RunId>,
    pub last_status: Option<RunStatus>,
    pub rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_out_of_managed_schemas() {
        assert_eq!(
            TargetTable::writable(None, "Orders").unwrap().qualified(),
            "main.orders"
        );
        assert_eq!(TargetTable::writable(Some("Raw"), "t").unwrap().qualified(), "raw.t");
        for schema in ["analysis", "cache", "CACHE", "information_schema", "dbt", "__pd_x"] {
            assert!(TargetTable::writable(Some(schema), "t").is_err(), "{schema}");
        }
        assert!(TargetTable::writable(None, "__pd_build_x").is_err());
        assert_eq!(IngestMode::parse("merge").unwrap(), IngestMode::Merge);
        assert!(IngestMode::parse("upsert").is_err());
    }
}
