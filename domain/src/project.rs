use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::{DomainError, Identifier};

/// Projects keep work apart; every other entity belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(Identifier);

impl ProjectId {
    pub const DEFAULT: &'static str = "default";

    /// Ids are lower-cased on the way in: `Team` and `team` are one project.
    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        Identifier::canonical(value).map(Self)
    }

    /// The project's folder under the data directory: its database, its files, its analyses. The one place this
    /// path is decided.
    pub fn folder(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("projects").join(self.as_str())
    }

    /// The file dbt builds into for this project (`<folder>/dbt.duckdb`, attached as catalog `dbt`).
    pub fn dbt_database(&self, data_dir: &Path) -> PathBuf {
        self.folder(data_dir).join("dbt.duckdb")
    }

    /// Pluto-Duck's dbt workspace of the project: profiles, the source snapshot, each invocation's artifacts.
    pub fn dbt_folder(&self, data_dir: &Path) -> PathBuf {
        self.folder(data_dir).join("dbt")
    }

    /// The copy of the project's own database dbt reads its sources from (attached as `warehouse`), alone in its
    /// folder: the sandbox may write that folder (DuckDB writes a WAL and checkpoint files beside the file).
    pub fn dbt_sources_snapshot(&self, data_dir: &Path) -> PathBuf {
        self.dbt_folder(data_dir).join("snapshot").join("sources.duckdb")
    }

    /// Where one dbt invocation keeps its artifacts.
    pub fn dbt_run_folder(&self, data_dir: &Path, run: &crate::RunId) -> PathBuf {
        self.dbt_folder(data_dir).join("runs").join(run.as_str())
    }

    pub fn default_project() -> Self {
        Self(Identifier(Self::DEFAULT.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for ProjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Project {
    pub fn default_project(now: DateTime<Utc>) -> Self {
        Self {
            id: ProjectId::default_project(),
            name: "Default".to_owned(),
            created_at: now,
        }
    }
}

/// The schema of a project's own tables (and of tables a request names without a schema).
pub const MAIN_SCHEMA: &str = "main";
/// The schema of a project's cached copies of remote tables.
pub const CACHE_SCHEMA: &str = "cache";
/// The catalog name dbt's models are attached under in a project's sandbox.
pub const DBT_CATALOG: &str = "dbt";
/// The catalog name of a project's own database (from its file name, `warehouse.duckdb`).
pub const PROJECT_CATALOG: &str = "warehouse";

/// Schemas Pluto-Duck manages in every project's database: no request writes into them directly.
pub fn is_reserved_schema(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "analysis" | "cache" | "dbt" | "information_schema" | "pg_catalog" | "temp" | "system"
    ) || n.starts_with("__pd")
}

/// Names a source cannot take in its project's sandbox: the catalogs and schemas already there.
pub fn is_reserved_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    is_reserved_schema(&n) || matches!(n.as_str(), "main" | "memory" | "warehouse")
}

/// How a relation named in SQL is known across the product: lower case, a bare name in `main`, the project's own
/// catalog left out (`Orders` and `warehouse.main.orders` are `main.orders`; `src.public.t` stays itself).
pub fn canonical_relation(name: &str) -> String {
    let parts: Vec<String> = name
        .split('.')
        .map(|p| p.trim_matches('"').to_ascii_lowercase())
        .collect();
    match parts.as_slice() {
        [table] => format!("{MAIN_SCHEMA}.{table}"),
        [catalog, schema, table] if catalog == PROJECT_CATALOG => format!("{schema}.{table}"),
        _ => parts.join("."),
    }
}

/// A table or view in a project's database: `schema.name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub schema: Identifier,
    pub name: Identifier,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_and_folders_follow_them() {
        let p = ProjectId::parse("Team").unwrap();
        assert_eq!(p.as_str(), "team");
        assert_eq!(p, ProjectId::parse("team").unwrap());
        assert_eq!(p.folder(Path::new("/d")), PathBuf::from("/d/projects/team"));
        assert!(is_reserved_schema("Cache") && is_reserved_name("warehouse") && !is_reserved_name("sales"));
        assert_eq!(canonical_relation("Orders"), "main.orders");
        assert_eq!(canonical_relation("warehouse.main.orders"), "main.orders");
        assert_eq!(canonical_relation("cache.fx"), "cache.fx");
        assert_eq!(canonical_relation("src.public.t"), "src.public.t");
    }
}
