//! dbt's artifacts, read into the port's summaries. Only the fields used are declared; the rest is skipped.
//! Schemas: run_results v6, manifest v12, catalog v1 (https://schemas.getdbt.com/).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::time::SystemTime;

use pluto_duck_application::ports::{
    CatalogColumn, CatalogEntry, DbtArtifacts, DbtCatalog, DbtColumn, DbtEdge, DbtManifest, DbtNode, DbtResourceType,
    DbtTestRef, NodeResult, NodeStatus, RunSummary,
};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::events::{name_of_unique_id, rows_affected, seconds};

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    invocation_id: Option<String>,
    #[serde(default)]
    dbt_version: Option<String>,
    #[serde(default)]
    project_name: Option<String>,
}

#[derive(Deserialize)]
struct RunResults {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    elapsed_time: Option<f64>,
    #[serde(default)]
    results: Vec<RunResult>,
}

#[derive(Deserialize)]
struct RunResult {
    unique_id: String,
    status: String,
    #[serde(default)]
    execution_time: Option<f64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    failures: Option<u64>,
    #[serde(default)]
    adapter_response: Value,
    #[serde(default)]
    relation_name: Option<String>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    nodes: HashMap<String, ManifestNode>,
    #[serde(default)]
    sources: HashMap<String, ManifestNode>,
    #[serde(default)]
    parent_map: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct ManifestNode {
    unique_id: String,
    resource_type: String,
    name: String,
    #[serde(default)]
    package_name: String,
    #[serde(default)]
    original_file_path: String,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    /// Models, seeds, snapshots, tests.
    #[serde(default)]
    alias: Option<String>,
    /// Sources.
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    relation_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "in_order")]
    columns: Vec<(String, ManifestColumn)>,
    #[serde(default)]
    depends_on: Option<DependsOn>,
    #[serde(default)]
    config: Option<NodeConfig>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    attached_node: Option<String>,
    #[serde(default)]
    column_name: Option<String>,
    #[serde(default)]
    test_metadata: Option<TestMetadata>,
    #[serde(default)]
    raw_code: Option<String>,
}

#[derive(Deserialize)]
struct ManifestColumn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    data_type: Option<String>,
}

#[derive(Deserialize)]
struct DependsOn {
    #[serde(default)]
    nodes: Vec<String>,
}

#[derive(Deserialize)]
struct NodeConfig {
    #[serde(default)]
    materialized: Option<String>,
}

#[derive(Deserialize)]
struct TestMetadata {
    name: String,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    nodes: BTreeMap<String, CatalogTable>,
    #[serde(default)]
    sources: BTreeMap<String, CatalogTable>,
    #[serde(default)]
    errors: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct CatalogTable {
    metadata: CatalogMetadata,
    #[serde(default)]
    columns: BTreeMap<String, CatalogTableColumn>,
}

#[derive(Deserialize)]
struct CatalogMetadata {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    database: Option<String>,
    schema: String,
    name: String,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct CatalogTableColumn {
    #[serde(rename = "type", default)]
    data_type: String,
    #[serde(default)]
    index: u32,
    name: String,
    #[serde(default)]
    comment: Option<String>,
}

/// A JSON object as its entries in document order (dbt writes a model's columns in the order of its YAML).
fn in_order<'de, D, V>(d: D) -> Result<Vec<(String, V)>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
        type Value = Vec<(String, V)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Entries(PhantomData))
}

/// What the invocation produced, told apart from what an earlier one left: by invocation id when dbt said it,
/// else by modification time.
pub(crate) struct Freshness<'a> {
    pub invocation_id: Option<&'a str>,
    pub started: SystemTime,
}

impl Freshness<'_> {
    fn accepts(&self, path: &Path, metadata: &Metadata) -> bool {
        match (self.invocation_id, metadata.invocation_id.as_deref()) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => std::fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= self.started),
        }
    }
}

/// A file dbt did not write is absent; one it could not finish (dbt killed while writing it) or cannot be
/// read is absent too, with a warning: the invocation's outcome does not depend on it.
fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "dbt artifact unreadable");
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "dbt artifact unparsable"))
        .ok()
}

/// Everything read from the target path, for the outcome.
pub(crate) struct Read {
    pub artifacts: DbtArtifacts,
    /// From run_results.json, when it belongs to this invocation.
    pub node_results: Option<Vec<NodeResult>>,
}

/// Reads run_results.json, manifest.json and catalog.json (blocking: run it off the async threads).
pub(crate) fn read(target_path: &Path, fresh: &Freshness<'_>) -> Read {
    let mut artifacts = DbtArtifacts {
        target_path: target_path.to_owned(),
        ..DbtArtifacts::default()
    };
    let log_file = target_path.join("dbt.log");
    artifacts.log_file = log_file.is_file().then_some(log_file);

    let path = target_path.join("manifest.json");
    if let Some(m) = read_json::<Manifest>(&path).filter(|m| fresh.accepts(&path, &m.metadata)) {
        artifacts.manifest_summary = Some(manifest_summary(m));
        artifacts.manifest = Some(path);
    }

    let path = target_path.join("run_results.json");
    let mut node_results = None;
    if let Some(r) = read_json::<RunResults>(&path).filter(|r| fresh.accepts(&path, &r.metadata)) {
        let results = node_results_of(r.results, artifacts.manifest_summary.as_ref());
        artifacts.run_summary = Some(run_summary(&results, r.elapsed_time));
        artifacts.run_results = Some(path);
        node_results = Some(results);
    }

    let path = target_path.join("catalog.json");
    if let Some(c) = read_json::<Catalog>(&path).filter(|c| fresh.accepts(&path, &c.metadata)) {
        artifacts.catalog_summary = Some(catalog_summary(c));
        artifacts.catalog = Some(path);
    }
    Read {
        artifacts,
        node_results,
    }
}

/// manifest.json of a target path, whoever wrote it.
pub(crate) fn read_manifest(target_path: &Path) -> Option<DbtManifest> {
    read_json::<Manifest>(&target_path.join("manifest.json")).map(manifest_summary)
}

fn node_results_of(results: Vec<RunResult>, manifest: Option<&DbtManifest>) -> Vec<NodeResult> {
    results
        .into_iter()
        .map(|r| {
            let node = manifest.and_then(|m| m.node(&r.unique_id));
            let resource_type = node
                .map(|n| n.resource_type.clone())
                .unwrap_or_else(|| DbtResourceType::of_unique_id(&r.unique_id));
            let failures = match resource_type {
                DbtResourceType::Test | DbtResourceType::UnitTest => r.failures,
                _ => None,
            };
            NodeResult {
                name: node
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| name_of_unique_id(&r.unique_id)),
                status: NodeStatus::parse(&r.status),
                execution_time: seconds(r.execution_time),
                rows_affected: rows_affected(&r.adapter_response),
                message: r.message.filter(|m| !m.is_empty()),
                failures,
                relation_name: r.relation_name.or_else(|| node.and_then(|n| n.relation_name.clone())),
                resource_type,
                unique_id: r.unique_id,
            }
        })
        .collect()
}

fn run_summary(results: &[NodeResult], elapsed: Option<f64>) -> RunSummary {
    let mut s = RunSummary {
        elapsed: seconds(elapsed),
        total: results.len(),
        ..RunSummary::default()
    };
    for r in results {
        match r.status {
            NodeStatus::Success | NodeStatus::Pass | NodeStatus::NoOp => s.succeeded += 1,
            NodeStatus::Warn | NodeStatus::PartialSuccess => s.warned += 1,
            NodeStatus::Fail | NodeStatus::Error => s.failed += 1,
            NodeStatus::Skipped => s.skipped += 1,
            NodeStatus::Other(_) => {}
        }
    }
    s
}

fn manifest_summary(m: Manifest) -> DbtManifest {
    let mut tests: HashMap<String, Vec<DbtTestRef>> = HashMap::new();
    let mut nodes: Vec<DbtNode> = m
        .nodes
        .into_values()
        .chain(m.sources.into_values())
        .map(|n| {
            let resource_type = DbtResourceType::parse(&n.resource_type);
            let depends_on = n.depends_on.map(|d| d.nodes).unwrap_or_default();
            if resource_type == DbtResourceType::Test {
                // A generic test names the node it is declared on; a singular test tests what it reads.
                let targets = match &n.attached_node {
                    Some(a) => vec![a.clone()],
                    None => depends_on.clone(),
                };
                let test = DbtTestRef {
                    unique_id: n.unique_id.clone(),
                    test_name: n
                        .test_metadata
                        .as_ref()
                        .map(|t| t.name.clone())
                        .unwrap_or_else(|| n.name.clone()),
                    column_name: n.column_name.clone(),
                };
                for t in targets {
                    tests.entry(t).or_default().push(test.clone());
                }
            }
            DbtNode {
                resource_type,
                name: n.name,
                package_name: n.package_name,
                path: n.original_file_path,
                database: n.database,
                schema: n.schema,
                alias: n.alias.or(n.identifier),
                relation_name: n.relation_name,
                materialized: n.config.and_then(|c| c.materialized),
                description: n.description.unwrap_or_default(),
                columns: n
                    .columns
                    .into_iter()
                    .map(|(key, c)| DbtColumn {
                        name: c.name.unwrap_or(key),
                        description: c.description.unwrap_or_default(),
                        data_type: c.data_type,
                    })
                    .collect(),
                depends_on,
                tags: n.tags,
                attached_node: n.attached_node,
                tests: Vec::new(),
                raw_code: n.raw_code.filter(|c| !c.is_empty()),
                unique_id: n.unique_id,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    for n in &mut nodes {
        if let Some(mut t) = tests.remove(&n.unique_id) {
            t.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
            n.tests = t;
        }
    }
    let mut edges: Vec<DbtEdge> = m
        .parent_map
        .into_iter()
        .flat_map(|(child, parents)| {
            parents.into_iter().map(move |parent| DbtEdge {
                from: parent,
                to: child.clone(),
            })
        })
        .collect();
    edges.sort();
    edges.dedup();
    DbtManifest {
        dbt_version: m.metadata.dbt_version.unwrap_or_default(),
        project_name: m.metadata.project_name,
        nodes,
        edges,
    }
}

fn catalog_summary(c: Catalog) -> DbtCatalog {
    let entries = c
        .nodes
        .into_iter()
        .chain(c.sources)
        .map(|(unique_id, t)| {
            let mut columns: Vec<CatalogColumn> = t
                .columns
                .into_values()
                .map(|c| CatalogColumn {
                    name: c.name,
                    data_type: c.data_type,
                    index: c.index,
                    comment: c.comment,
                })
                .collect();
            columns.sort_by_key(|c| c.index);
            CatalogEntry {
                unique_id,
                database: t.metadata.database,
                schema: t.metadata.schema,
                name: t.metadata.name,
                kind: t.metadata.kind,
                comment: t.metadata.comment,
                columns,
            }
        })
        .collect();
    DbtCatalog {
        entries,
        errors: c.errors.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_columns_keep_their_order_and_tests_attach_to_their_node() {
        // Text, not a `json!` value: a `Value` object sorts its keys, the file keeps the YAML order.
        let json = r#"{
            "metadata": {"dbt_version": "1.11.16", "project_name": "shop", "invocation_id": "i"},
            "nodes": {
                "model.shop.orders": {
                    "unique_id": "model.shop.orders", "resource_type": "model", "name": "orders",
                    "package_name": "shop", "original_file_path": "models/orders.sql", "database": "dbt",
                    "schema": "main", "alias": "orders", "relation_name": "\"dbt\".\"main\".\"orders\"",
                    "description": "One row per order.", "config": {"materialized": "table"},
                    "columns": {"order_id": {"name": "order_id", "description": "id"},
                                "amount": {"name": "amount", "description": "", "data_type": "decimal"},
                                "customer_id": {"name": "customer_id"}},
                    "depends_on": {"nodes": ["source.shop.raw.orders"], "macros": []}
                },
                "test.shop.unique_orders_order_id.1": {
                    "unique_id": "test.shop.unique_orders_order_id.1", "resource_type": "test",
                    "name": "unique_orders_order_id", "attached_node": "model.shop.orders",
                    "column_name": "order_id", "test_metadata": {"name": "unique"},
                    "depends_on": {"nodes": ["model.shop.orders"]}
                },
                "test.shop.assert_paid": {
                    "unique_id": "test.shop.assert_paid", "resource_type": "test", "name": "assert_paid",
                    "attached_node": null, "test_metadata": null, "depends_on": {"nodes": ["model.shop.orders"]}
                }
            },
            "sources": {
                "source.shop.raw.orders": {
                    "unique_id": "source.shop.raw.orders", "resource_type": "source", "name": "orders",
                    "identifier": "raw_orders", "schema": "raw", "columns": {}
                }
            },
            "parent_map": {"model.shop.orders": ["source.shop.raw.orders"],
                           "test.shop.assert_paid": ["model.shop.orders"], "source.shop.raw.orders": []}
        }"#;
        let m = manifest_summary(serde_json::from_str(json).unwrap());
        assert_eq!(m.project_name.as_deref(), Some("shop"));
        let orders = m.node("model.shop.orders").unwrap();
        let names: Vec<&str> = orders.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["order_id", "amount", "customer_id"]);
        assert_eq!(orders.materialized.as_deref(), Some("table"));
        let tests: Vec<(&str, Option<&str>)> = orders
            .tests
            .iter()
            .map(|t| (t.test_name.as_str(), t.column_name.as_deref()))
            .collect();
        assert_eq!(tests, [("assert_paid", None), ("unique", Some("order_id"))]);
        assert_eq!(
            m.node("source.shop.raw.orders").unwrap().alias.as_deref(),
            Some("raw_orders")
        );
        assert_eq!(
            m.edges,
            [
                DbtEdge {
                    from: "model.shop.orders".into(),
                    to: "test.shop.assert_paid".into()
                },
                DbtEdge {
                    from: "source.shop.raw.orders".into(),
                    to: "model.shop.orders".into()
                },
            ]
        );
    }

    #[test]
    fn artifacts_of_another_invocation_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("run_results.json"),
            r#"{"metadata": {"invocation_id": "old"}, "elapsed_time": 1.5, "results": [
                {"unique_id": "seed.shop.raw", "status": "success", "execution_time": 0.2, "message": "INSERT 3",
                 "failures": null, "adapter_response": {"rows_affected": 3}}]}"#,
        )
        .unwrap();
        let started = SystemTime::now();
        let stale = read(
            dir.path(),
            &Freshness {
                invocation_id: Some("new"),
                started,
            },
        );
        assert!(stale.node_results.is_none() && stale.artifacts.run_results.is_none());
        let ours = read(
            dir.path(),
            &Freshness {
                invocation_id: Some("old"),
                started,
            },
        );
        let r = &ours.node_results.unwrap()[0];
        assert_eq!((r.name.as_str(), r.rows_affected, r.failures), ("raw", Some(3), None));
        assert_eq!(ours.artifacts.run_summary.unwrap().succeeded, 1);
    }
}
