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

/// A warehouse table an ingest writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetTable {
    pub schema: Identifier,
    pub table: Identifier,
}

impl TargetTable {
    /// The schema a project's ingested tables go to unless told otherwise: `main` for the default project, so
    /// `SELECT * FROM orders` works, and `<project>__main` for others so projects never collide.
    pub fn default_schema(project: &ProjectId) -> Identifier {
        Self::project_schema(project, "main")
    }

    /// A schema named by the user, kept apart per project the same way.
    pub fn project_schema(project: &ProjectId, schema: &str) -> Identifier {
        if project.as_str() == ProjectId::DEFAULT {
            Identifier(schema.to_owned())
        } else {
            Identifier(format!("{project}__{schema}"))
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
    fn schemas_are_per_project() {
        let default = ProjectId::parse("default").unwrap();
        let other = ProjectId::parse("team").unwrap();
        assert_eq!(TargetTable::default_schema(&default).as_str(), "main");
        assert_eq!(TargetTable::default_schema(&other).as_str(), "team__main");
        assert_eq!(TargetTable::project_schema(&other, "raw").as_str(), "team__raw");
        assert_eq!(IngestMode::parse("merge").unwrap(), IngestMode::Merge);
        assert!(IngestMode::parse("upsert").is_err());
    }
}
