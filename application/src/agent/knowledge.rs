//! What the agent knows of each project: its catalog (own tables, sources' tables, cached copies, analyses, dbt
//! models) with sampled values of low-cardinality text columns, indexed by an [`Explorer`]. Built on first use
//! and kept until a table of the project changes (or a while passes), so a turn costs no catalog reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pluto_duck_domain::{ProjectId, CACHE_SCHEMA, DBT_CATALOG, PROJECT_CATALOG};

use super::catalog::{CatalogColumn, CatalogSnapshot, CatalogTable, ForeignKey, TableKind, TableName};
use super::explorer::Explorer;
use crate::ports::{RelationKind, TableEntry, Warehouse};
use crate::services::{AnalysisService, ChangeLog, DbtService, SourceService};
use crate::AppError;

/// Sampled distinct values per column name.
type ColumnSamples = Vec<(String, Vec<String>)>;

/// How much of the data the catalog samples.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Tables sampled at most (the first ones, by name); the rest keep their columns only.
    pub max_tables: usize,
    /// Columns with more distinct values are not sampled.
    pub max_distinct: u64,
    pub per_column: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            max_tables: 300,
            max_distinct: 60,
            per_column: 8,
        }
    }
}

/// A project's catalog, indexed twice: with sampled values, and without (for privacy mode: values never reach
/// the model, not even in the schema context).
pub struct Known {
    pub snapshot: CatalogSnapshot,
    pub explorer: Explorer,
    pub private: Explorer,
    built: Instant,
}

pub struct Knowledge {
    warehouse: Arc<dyn Warehouse>,
    analyses: Arc<AnalysisService>,
    sources: Arc<SourceService>,
    /// dbt's descriptions of the `dbt` catalog's models, from the project's last parsed manifest.
    dbt: Option<Arc<DbtService>>,
    sampling: Sampling,
    ttl: Duration,
    known: Mutex<HashMap<ProjectId, Arc<Known>>>,
    /// One build per project at a time.
    building: Mutex<HashMap<ProjectId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Knowledge {
    /// Forgets a project's catalog whenever one of its tables changes.
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        analyses: Arc<AnalysisService>,
        sources: Arc<SourceService>,
        dbt: Option<Arc<DbtService>>,
        changes: &ChangeLog,
        sampling: Sampling,
        ttl: Duration,
    ) -> Arc<Self> {
        let this = Arc::new(Self {
            warehouse,
            analyses,
            sources,
            dbt,
            sampling,
            ttl,
            known: Mutex::new(HashMap::new()),
            building: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&this);
        let mut rx = changes.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(change) => match weak.upgrade() {
                        Some(k) => k.forget(&change.project),
                        None => break,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(k) = weak.upgrade() {
                            k.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        this
    }

    pub fn forget(&self, project: &ProjectId) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).remove(project);
    }

    fn cached(&self, project: &ProjectId) -> Option<Arc<Known>> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(project)
            .filter(|k| k.built.elapsed() < self.ttl)
            .cloned()
    }

    /// The project's catalog, built when missing or stale.
    pub async fn get(&self, project: &ProjectId) -> Result<Arc<Known>, AppError> {
        if let Some(k) = self.cached(project) {
            return Ok(k);
        }
        let lock = self
            .building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(project.clone())
            .or_default()
            .clone();
        let _one = lock.lock().await;
        if let Some(k) = self.cached(project) {
            return Ok(k);
        }
        let snapshot = self.snapshot(project).await?;
        let private = CatalogSnapshot {
            tables: snapshot
                .tables
                .iter()
                .cloned()
                .map(|mut t| {
                    for c in &mut t.columns {
                        c.sample_values.clear();
                    }
                    t
                })
                .collect(),
        };
        let kept = snapshot.clone();
        let (explorer, private) = tokio::task::spawn_blocking(move || {
            let e = Explorer::new(snapshot);
            let p = Explorer::new(private);
            (e, p)
        })
        .await
        .map_err(|e| AppError::Invalid(format!("indexing the catalog failed: {e}")))?;
        let known = Arc::new(Known {
            snapshot: kept,
            explorer,
            private,
            built: Instant::now(),
        });
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(project.clone(), known.clone());
        Ok(known)
    }

    async fn snapshot(&self, project: &ProjectId) -> Result<CatalogSnapshot, AppError> {
        let entries = self.warehouse.catalog(project).await?;
        let analyses = self.analyses.list(project, None).await.unwrap_or_default();
        let sources = self.sources.list(project).await.unwrap_or_default();
        let dbt_docs = match &self.dbt {
            Some(d) => d.relation_docs(project).await,
            None => HashMap::new(),
        };
        let mut tables = Vec::new();
        let mut to_sample = Vec::new();
        for e in entries.iter().filter(|e| worth_knowing(e)) {
            let own = e.catalog == PROJECT_CATALOG;
            let name = if own {
                TableName::new(&e.schema, &e.name)
            } else {
                TableName::new(&e.schema, &e.name).in_catalog(&e.catalog)
            };
            let kind = match (own, e.schema.as_str(), e.kind) {
                (true, CACHE_SCHEMA, _) => TableKind::CachedTable,
                (true, "analysis", _) => TableKind::Analysis,
                (false, _, _) if e.catalog == DBT_CATALOG => TableKind::DbtModel,
                (false, _, _) => TableKind::SourceTable,
                (true, _, RelationKind::View) => TableKind::View,
                (true, _, RelationKind::Table) => TableKind::Table,
            };
            let description = match kind {
                TableKind::Analysis => analyses
                    .iter()
                    .find(|a| a.id.as_str().eq_ignore_ascii_case(&e.name))
                    .map(|a| {
                        if a.description.is_empty() {
                            a.name.clone()
                        } else {
                            format!("{}: {}", a.name, a.description)
                        }
                    }),
                TableKind::SourceTable => sources
                    .iter()
                    .find(|s| s.name.as_str().eq_ignore_ascii_case(&e.catalog))
                    .map(|s| {
                        let what = format!("a table of source {} ({})", s.name, s.kind.as_str());
                        if s.description.is_empty() {
                            what
                        } else {
                            format!("{what}: {}", s.description)
                        }
                    }),
                TableKind::DbtModel => dbt_docs
                    .get(&(e.schema.to_ascii_lowercase(), e.name.to_ascii_lowercase()))
                    .map(|d| d.describe()),
                _ => None,
            }
            .or_else(|| e.comment.clone());
            let column_docs = match kind {
                TableKind::DbtModel => dbt_docs.get(&(e.schema.to_ascii_lowercase(), e.name.to_ascii_lowercase())),
                _ => None,
            };
            let mut table = CatalogTable::new(name, kind);
            table.description = description;
            table.row_count = e.estimated_rows;
            table.columns = e
                .columns
                .iter()
                .map(|c| {
                    let mut col = CatalogColumn::new(&c.name, &c.data_type);
                    col.is_primary_key = c.primary_key;
                    col.description = c.comment.clone().or_else(|| {
                        column_docs?
                            .columns
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(&c.name))
                            .map(|(_, d)| d.clone())
                    });
                    col
                })
                .collect();
            table.foreign_keys = e
                .foreign_keys
                .iter()
                .map(|fk| {
                    let (cat, schema, t) = &fk.references;
                    let target = if cat == PROJECT_CATALOG {
                        TableName::new(schema, t)
                    } else {
                        TableName::new(schema, t).in_catalog(cat)
                    };
                    ForeignKey {
                        columns: fk.columns.clone(),
                        references: target,
                        referenced_columns: fk.referenced_columns.clone(),
                    }
                })
                .collect();
            let has_text = e.columns.iter().any(|c| c.data_type.eq_ignore_ascii_case("VARCHAR"));
            if has_text
                && to_sample.len() < self.sampling.max_tables
                && e.estimated_rows.is_none_or(|r| r <= 50_000_000)
            {
                to_sample.push((tables.len(), e.clone()));
            }
            tables.push(table);
        }
        // Sampling reads the data: a few tables at a time, and a failure only loses that table's values.
        let (warehouse, s) = (self.warehouse.clone(), self.sampling);
        let samples: Vec<(usize, ColumnSamples)> = futures::stream::iter(to_sample)
            .map(|(i, entry)| {
                let warehouse = warehouse.clone();
                let project = project.clone();
                async move {
                    let values = warehouse
                        .sample_values(&project, &entry, s.max_distinct, s.per_column)
                        .await
                        .unwrap_or_default();
                    (i, values)
                }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for (i, values) in samples {
            for (column, vals) in values {
                if let Some(c) = tables[i].columns.iter_mut().find(|c| c.name == column) {
                    c.sample_values = vals;
                }
            }
        }
        Ok(CatalogSnapshot { tables })
    }
}

/// The catalog the agent sees: not the engine's own schemas, not Pluto-Duck's internals, not conversations'
/// scratch zones.
fn worth_knowing(e: &TableEntry) -> bool {
    let schema = e.schema.to_ascii_lowercase();
    !(schema == "information_schema"
        || schema == "pg_catalog"
        || schema.starts_with("zone_")
        || e.name.starts_with("__pd"))
}
