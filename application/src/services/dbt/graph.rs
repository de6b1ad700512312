//! The project's dbt project as the rest of Pluto-Duck sees it: the last parsed manifest (kept per project, read
//! again from the newest run's artifacts after a restart), its nodes and edges in the lineage graph joined to the
//! analyses that read dbt models and to the project's tables dbt sources read, column-level lineage of simple
//! selects, and the models' descriptions for the agent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use pluto_duck_domain::{canonical_relation, ProjectId, CACHE_SCHEMA, DBT_CATALOG, PROJECT_CATALOG};

use super::DbtService;
use crate::ports::{DbtManifest, DbtNode, DbtResourceType};
use crate::services::analyses::{ColumnEdge, LineageGraph};
use crate::services::AnalysisService;
use crate::AppError;

/// A relation of the `dbt` catalog as dbt documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationDoc {
    /// `model`, `seed`, `snapshot`.
    pub resource_type: String,
    pub name: String,
    pub description: String,
    /// (column, description), the documented ones.
    pub columns: Vec<(String, String)>,
}

impl RelationDoc {
    /// `dbt model orders: One row per order...`.
    pub fn describe(&self) -> String {
        let what = format!("dbt {} {}", self.resource_type, self.name);
        if self.description.trim().is_empty() {
            what
        } else {
            format!("{what}: {}", self.description.trim())
        }
    }
}

/// Where one output column of a dbt node comes from: (upstream unique id, its column).
pub type ColumnSources = Vec<(String, Vec<(String, String)>)>;

/// The graph's kind word for a dbt node, `None` for kinds the graph leaves out.
fn kind_of(t: &DbtResourceType) -> Option<&'static str> {
    match t {
        DbtResourceType::Model => Some("dbt_model"),
        DbtResourceType::Seed => Some("dbt_seed"),
        DbtResourceType::Snapshot => Some("dbt_snapshot"),
        DbtResourceType::Source => Some("dbt_source"),
        DbtResourceType::Test => Some("dbt_test"),
        _ => None,
    }
}

fn is_relation(t: &DbtResourceType) -> bool {
    matches!(
        t,
        DbtResourceType::Model | DbtResourceType::Seed | DbtResourceType::Snapshot
    )
}

/// The Pluto-Duck table a dbt source reads, when it reads one of the project's own (database `warehouse`).
fn project_table_of(source: &DbtNode) -> Option<String> {
    let db = source.database.as_deref()?;
    if !db.eq_ignore_ascii_case(PROJECT_CATALOG) {
        return None;
    }
    let schema = source.schema.as_deref()?;
    let name = source.alias.as_deref().unwrap_or(&source.name);
    Some(canonical_relation(&format!("{schema}.{name}")))
}

/// The names a query may give a dbt relation: `dbt.main.orders`, and `dbt.orders` for the main schema.
fn relation_names(node: &DbtNode) -> Vec<String> {
    let Some(rel) = node.relation_name.as_deref() else {
        return Vec::new();
    };
    let canonical = canonical_relation(rel);
    let mut names = vec![canonical.clone()];
    if let [catalog, schema, table] = canonical.split('.').collect::<Vec<_>>().as_slice() {
        if *schema == pluto_duck_domain::MAIN_SCHEMA && catalog.eq_ignore_ascii_case(DBT_CATALOG) {
            names.push(format!("{catalog}.{table}"));
        }
    }
    names
}

/// `{{ ref('a') }}`, `{{ ref('pkg', 'a') }}`, `{{ source('s', 't') }}` and `{{ config(...) }}` in a model's SQL
/// replaced by plain names (refs and sources) or nothing (config); `None` when other Jinja remains.
fn plain_sql(raw: &str, manifest: &DbtManifest, node: &DbtNode) -> Option<(String, HashMap<String, String>)> {
    let mut out = String::new();
    let mut names = HashMap::new();
    let mut rest = raw;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}")? + start;
        let inner = rest[start + 2..end].trim();
        rest = &rest[end + 2..];
        let (call, args) = inner.split_once('(')?;
        let args: Vec<String> = args
            .trim_end()
            .strip_suffix(')')?
            .split(',')
            .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_owned())
            .collect();
        let target = match (call.trim(), args.as_slice()) {
            ("config", _) => continue,
            ("ref", [.., name]) => node.depends_on.iter().find(|id| {
                manifest
                    .node(id)
                    .is_some_and(|n| is_relation(&n.resource_type) && n.name.eq_ignore_ascii_case(name))
            })?,
            ("source", [source, table]) => {
                let suffix = format!(".{source}.{table}");
                node.depends_on
                    .iter()
                    .find(|id| id.starts_with("source.") && id.ends_with(&suffix))?
            }
            _ => return None,
        };
        let placeholder = format!("dbt_node_{}", names.len());
        out.push_str(&placeholder);
        names.insert(placeholder, target.clone());
    }
    out.push_str(rest);
    if out.contains("{%") || out.contains("{#") {
        return None;
    }
    Some((out, names))
}

/// Per dbt model: each output column with the upstream columns it reads, where the parser can tell (a plain
/// `SELECT ... FROM ... JOIN ...` over refs and sources; CTEs and other Jinja are left out).
pub fn column_sources(manifest: &DbtManifest) -> HashMap<String, ColumnSources> {
    let mut out = HashMap::new();
    for node in manifest
        .nodes
        .iter()
        .filter(|n| n.resource_type == DbtResourceType::Model)
    {
        let Some(raw) = node.raw_code.as_deref() else { continue };
        let Some((sql, names)) = plain_sql(raw, manifest, node) else {
            continue;
        };
        let Ok(Some(lineage)) = pluto_duck_domain::column_lineage(&sql) else {
            continue;
        };
        let columns = lineage
            .into_iter()
            .map(|c| {
                let from = c
                    .from
                    .iter()
                    .filter_map(|f| {
                        let (rel, col) = f.rsplit_once('.')?;
                        let id = names.get(&rel.to_ascii_lowercase())?;
                        Some((id.clone(), col.to_owned()))
                    })
                    .collect();
                (c.column, from)
            })
            .collect();
        out.insert(node.unique_id.clone(), columns);
    }
    out
}

impl DbtService {
    /// The project's last parsed dbt manifest: the newest run's, kept in memory; after a restart read from the
    /// newest run that left one. `None` before the first run.
    pub async fn manifest(&self, project: &ProjectId) -> Option<Arc<DbtManifest>> {
        if let Some(m) = self.manifests.lock().unwrap_or_else(|e| e.into_inner()).get(project) {
            return Some(m.clone());
        }
        let runs = self.runs(project, 20).await.ok()?;
        for run in runs {
            let Some(detail) = run.detail.as_deref() else { continue };
            let Ok(detail) = serde_json::from_str::<serde_json::Value>(detail) else {
                continue;
            };
            let Some(path) = detail["target_path"].as_str().map(std::path::PathBuf::from) else {
                continue;
            };
            let runner = self.runner.clone();
            let read = tokio::task::spawn_blocking(move || runner.read_manifest(&path)).await;
            if let Ok(Some(m)) = read {
                let m = Arc::new(m);
                self.manifests
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(project.clone(), m.clone());
                return Some(m);
            }
        }
        None
    }

    /// Descriptions of the `dbt` catalog's relations by (schema, name), lower case.
    pub async fn relation_docs(&self, project: &ProjectId) -> HashMap<(String, String), RelationDoc> {
        let Some(m) = self.manifest(project).await else {
            return HashMap::new();
        };
        m.nodes
            .iter()
            .filter(|n| is_relation(&n.resource_type))
            .filter_map(|n| {
                let schema = n.schema.as_deref()?.to_ascii_lowercase();
                let name = n.alias.as_deref().unwrap_or(&n.name).to_ascii_lowercase();
                let doc = RelationDoc {
                    resource_type: n.resource_type.as_str().to_owned(),
                    name: n.name.clone(),
                    description: n.description.clone(),
                    columns: n
                        .columns
                        .iter()
                        .filter(|c| !c.description.trim().is_empty())
                        .map(|c| (c.name.clone(), c.description.trim().to_owned()))
                        .collect(),
                };
                Some(((schema, name), doc))
            })
            .collect()
    }

    /// The project's lineage graph: the analyses' graph, with the dbt project's models, seeds, snapshots,
    /// sources and tests, dbt's edges between them, an edge from each of the project's tables a dbt source reads
    /// into that source, an edge from a dbt model into each analysis reading it, and column-level edges of simple
    /// selects.
    pub async fn lineage_graph(
        &self,
        project: &ProjectId,
        analyses: &AnalysisService,
    ) -> Result<LineageGraph, AppError> {
        let graph = analyses.graph(project).await?;
        Ok(match self.manifest(project).await {
            Some(m) => merge(graph, &m),
            None => graph,
        })
    }
}

/// Joins a dbt manifest into an analyses graph.
pub fn merge(graph: LineageGraph, manifest: &DbtManifest) -> LineageGraph {
    // A relation an analysis reads that is a dbt relation becomes that dbt node.
    let mut by_name: HashMap<String, String> = HashMap::new();
    for n in manifest.nodes.iter().filter(|n| is_relation(&n.resource_type)) {
        for name in relation_names(n) {
            by_name.insert(name, n.unique_id.clone());
        }
    }
    let rename = |id: &str| -> String {
        by_name
            .get(&canonical_relation(id))
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    };
    let mut nodes: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut add = |nodes: &mut BTreeMap<String, &'static str>, id: String, kind: &'static str| {
        if !nodes.contains_key(&id) {
            order.push(id.clone());
        }
        nodes.entry(id).or_insert(kind);
    };
    for (id, kind) in &graph.nodes {
        if !by_name.contains_key(&canonical_relation(id)) || *kind == "analysis" {
            add(&mut nodes, id.clone(), kind);
        }
    }
    let mut edges: BTreeSet<(String, String)> = graph.edges.iter().map(|(f, t)| (rename(f), rename(t))).collect();
    // The project's tables by their canonical name, to join dbt sources to the graph's own table nodes.
    let tables: HashMap<String, String> = graph
        .nodes
        .iter()
        .filter(|(_, k)| matches!(*k, "table" | "cached_table"))
        .map(|(id, _)| (canonical_relation(id), id.clone()))
        .collect();
    for n in &manifest.nodes {
        let Some(kind) = kind_of(&n.resource_type) else {
            continue;
        };
        add(&mut nodes, n.unique_id.clone(), kind);
        if n.resource_type == DbtResourceType::Source {
            if let Some(table) = project_table_of(n) {
                let id = tables.get(&table).cloned().unwrap_or_else(|| table.clone());
                let table_kind = if table.starts_with(&format!("{CACHE_SCHEMA}.")) {
                    "cached_table"
                } else {
                    "table"
                };
                add(&mut nodes, id.clone(), table_kind);
                edges.insert((id, n.unique_id.clone()));
            }
        }
    }
    for e in &manifest.edges {
        let known = |id: &str| manifest.node(id).is_some_and(|n| kind_of(&n.resource_type).is_some());
        if known(&e.from) && known(&e.to) {
            edges.insert((e.from.clone(), e.to.clone()));
        }
    }
    let mut columns: BTreeSet<ColumnEdge> = graph.columns.into_iter().collect();
    for (to, cols) in column_sources(manifest) {
        for (to_column, from) in cols {
            for (from, from_column) in from {
                columns.insert(ColumnEdge {
                    from,
                    from_column,
                    to: to.clone(),
                    to_column: to_column.clone(),
                });
            }
        }
    }
    LineageGraph {
        nodes: order
            .into_iter()
            .map(|id| {
                let kind = nodes[&id];
                (id, kind)
            })
            .collect(),
        edges: edges.into_iter().collect(),
        columns: columns.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{DbtColumn, DbtEdge};

    fn node(id: &str, raw: Option<&str>, deps: &[&str]) -> DbtNode {
        let t = DbtResourceType::of_unique_id(id);
        let name = id.rsplit('.').next().unwrap().to_owned();
        let source = t == DbtResourceType::Source;
        DbtNode {
            unique_id: id.into(),
            resource_type: t.clone(),
            name: name.clone(),
            package_name: "shop".into(),
            path: String::new(),
            database: Some(if source { "warehouse" } else { "dbt" }.into()),
            schema: Some("main".into()),
            alias: Some(name.clone()),
            relation_name: is_relation(&t).then(|| format!("\"dbt\".\"main\".\"{name}\"")),
            materialized: None,
            description: format!("about {name}"),
            columns: vec![DbtColumn {
                name: "id".into(),
                description: "the id".into(),
                data_type: None,
            }],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            tags: Vec::new(),
            attached_node: None,
            tests: Vec::new(),
            raw_code: raw.map(str::to_owned),
        }
    }

    fn manifest() -> DbtManifest {
        let mut nodes = vec![
            node("seed.shop.raw_customers", None, &[]),
            node(
                "model.shop.stg_customers",
                Some("{{ config(materialized='view') }}\nselect id as customer_id, first_name || ' ' || last_name as name\nfrom {{ ref('raw_customers') }}"),
                &["seed.shop.raw_customers"],
            ),
            node("source.shop.pluto.visits", None, &[]),
            node(
                "model.shop.visits_per_store",
                Some("select store_id, count(*) as visits from {{ source('pluto', 'visits') }} group by store_id"),
                &["source.shop.pluto.visits"],
            ),
            node("test.shop.unique_stg_customers_customer_id.1", None, &["model.shop.stg_customers"]),
        ];
        nodes.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
        let edges = nodes
            .iter()
            .flat_map(|n| {
                n.depends_on.iter().map(|d| DbtEdge {
                    from: d.clone(),
                    to: n.unique_id.clone(),
                })
            })
            .collect();
        DbtManifest {
            dbt_version: "1.11".into(),
            project_name: Some("shop".into()),
            nodes,
            edges,
        }
    }

    #[test]
    fn dbt_nodes_join_the_analyses_and_the_project_tables() {
        let analyses = LineageGraph {
            nodes: vec![
                ("top_customers".into(), "analysis"),
                ("dbt.main.stg_customers".into(), "source_table"),
                ("visits".into(), "table"),
            ],
            edges: vec![
                ("dbt.main.stg_customers".into(), "top_customers".into()),
                ("visits".into(), "top_customers".into()),
            ],
            columns: Vec::new(),
        };
        let g = merge(analyses, &manifest());
        let kind = |id: &str| g.nodes.iter().find(|(n, _)| n == id).map(|(_, k)| *k);
        assert_eq!(kind("model.shop.stg_customers"), Some("dbt_model"));
        assert_eq!(kind("seed.shop.raw_customers"), Some("dbt_seed"));
        assert_eq!(kind("source.shop.pluto.visits"), Some("dbt_source"));
        assert_eq!(kind("test.shop.unique_stg_customers_customer_id.1"), Some("dbt_test"));
        assert_eq!(kind("dbt.main.stg_customers"), None, "the relation is the dbt node");
        let has = |f: &str, t: &str| g.edges.iter().any(|(a, b)| a == f && b == t);
        assert!(has("model.shop.stg_customers", "top_customers"), "{:?}", g.edges);
        assert!(has("seed.shop.raw_customers", "model.shop.stg_customers"));
        assert!(
            has("visits", "source.shop.pluto.visits"),
            "the project's own table node"
        );
        assert!(has("visits", "top_customers"));
        assert!(has(
            "model.shop.stg_customers",
            "test.shop.unique_stg_customers_customer_id.1"
        ));
        assert!(g.columns.contains(&ColumnEdge {
            from: "seed.shop.raw_customers".into(),
            from_column: "id".into(),
            to: "model.shop.stg_customers".into(),
            to_column: "customer_id".into(),
        }));
        assert!(g.columns.contains(&ColumnEdge {
            from: "source.shop.pluto.visits".into(),
            from_column: "store_id".into(),
            to: "model.shop.visits_per_store".into(),
            to_column: "store_id".into(),
        }));
        let names: Vec<_> = g
            .columns
            .iter()
            .filter(|c| c.to_column == "name")
            .map(|c| c.from_column.as_str())
            .collect();
        assert_eq!(names, ["first_name", "last_name"]);
    }

    #[test]
    fn other_jinja_gives_no_column_lineage() {
        let mut m = manifest();
        for n in &mut m.nodes {
            if n.name == "stg_customers" {
                n.raw_code =
                    Some("select * from {{ ref('raw_customers') }} {% if is_incremental() %}where 1{% endif %}".into());
            }
        }
        let cols = column_sources(&m);
        assert!(!cols.contains_key("model.shop.stg_customers"));
        assert!(cols.contains_key("model.shop.visits_per_store"));
    }
}
