//! What an invocation leaves behind: the artifacts' paths and summaries of them, enough for a lineage graph
//! (nodes and edges) and a catalog (relations, columns, descriptions, tests).

use std::path::PathBuf;
use std::time::Duration;

use super::DbtResourceType;

/// The artifacts this invocation wrote in its target path. A file dbt did not write for this invocation (a
/// command that does not write it, a run that stopped early, one left by another invocation) is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbtArtifacts {
    pub target_path: PathBuf,
    pub run_results: Option<PathBuf>,
    pub manifest: Option<PathBuf>,
    /// Written by `docs generate`.
    pub catalog: Option<PathBuf>,
    /// dbt's own debug log of the invocation.
    pub log_file: Option<PathBuf>,
    pub run_summary: Option<RunSummary>,
    pub manifest_summary: Option<DbtManifest>,
    pub catalog_summary: Option<DbtCatalog>,
}

/// run_results.json in numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// dbt's own measure of the invocation (`elapsed_time`).
    pub elapsed: Duration,
    pub total: usize,
    /// Built (success) or passed.
    pub succeeded: usize,
    pub warned: usize,
    /// Errored or failed.
    pub failed: usize,
    pub skipped: usize,
}

/// The project as dbt parsed it (manifest.json): every node and source, and the edges between them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbtManifest {
    pub dbt_version: String,
    pub project_name: Option<String>,
    /// Models, seeds, snapshots, tests, analyses and sources, by unique id.
    pub nodes: Vec<DbtNode>,
    /// parent -> child, from dbt's parent map (tests included; filter by the nodes' types for a lineage graph).
    pub edges: Vec<DbtEdge>,
}

impl DbtManifest {
    pub fn node(&self, unique_id: &str) -> Option<&DbtNode> {
        self.nodes
            .binary_search_by(|n| n.unique_id.as_str().cmp(unique_id))
            .ok()
            .and_then(|i| self.nodes.get(i))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DbtNode {
    pub unique_id: String,
    pub resource_type: DbtResourceType,
    pub name: String,
    pub package_name: String,
    /// The file it comes from, relative to the project: `models/marts/orders.sql`.
    pub path: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    /// The relation's name in its schema (a source's identifier).
    pub alias: Option<String>,
    /// `"db"."schema"."name"`: where the node is built or read.
    pub relation_name: Option<String>,
    /// `view`, `table`, `incremental`, `ephemeral`, `seed`, `test`...
    pub materialized: Option<String>,
    pub description: String,
    /// As declared in YAML, in order (a catalog adds the columns nobody declared).
    pub columns: Vec<DbtColumn>,
    /// The nodes and sources it reads (`depends_on.nodes`).
    pub depends_on: Vec<String>,
    pub tags: Vec<String>,
    /// For a test: the node it tests.
    pub attached_node: Option<String>,
    /// For a model, seed, snapshot or source: the tests attached to it.
    pub tests: Vec<DbtTestRef>,
    /// The node's SQL as written (Jinja and all), for a model, snapshot or test.
    pub raw_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbtColumn {
    pub name: String,
    pub description: String,
    /// The declared type, when the YAML gives one.
    pub data_type: Option<String>,
}

/// A test attached to a node: `unique` on `order_id`, or a singular test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbtTestRef {
    pub unique_id: String,
    /// The generic test's name (`unique`, `relationships`), or the singular test's.
    pub test_name: String,
    pub column_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbtEdge {
    pub from: String,
    pub to: String,
}

/// What `docs generate` found in the database (catalog.json).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbtCatalog {
    /// Relations of nodes and sources, by unique id.
    pub entries: Vec<CatalogEntry>,
    /// Errors dbt met while reading the catalog.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub unique_id: String,
    pub database: Option<String>,
    pub schema: String,
    pub name: String,
    /// The database's word for it: `BASE TABLE`, `VIEW`.
    pub kind: String,
    pub comment: Option<String>,
    /// In table order.
    pub columns: Vec<CatalogColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    pub data_type: String,
    pub index: u32,
    pub comment: Option<String>,
}
