//! When each table of a project last changed, whoever changed it: plain SQL, an ingest, a cache refresh, an
//! analysis, dbt. Freshness reads it (an analysis reading a table written since it ran is stale) and clients can
//! follow it live.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pluto_duck_domain::{canonical_relation, ProjectId};
use tokio::sync::broadcast;
use tracing::warn;

use crate::ports::MetadataStore;
use crate::AppError;

/// One change, as followers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange {
    pub project: ProjectId,
    /// `schema.table` (or `source.schema.table`).
    pub relation: String,
    pub at: DateTime<Utc>,
    /// `sql`, `ingest`, `cache`, `analysis`, `dbt`, ...
    pub by: String,
}

/// Entries kept per project; the oldest go first.
const KEEP: usize = 10_000;

pub struct ChangeLog {
    metadata: Arc<dyn MetadataStore>,
    /// Held across a record's read and write, so concurrent records do not lose each other.
    cache: tokio::sync::Mutex<HashMap<ProjectId, BTreeMap<String, DateTime<Utc>>>>,
    tx: broadcast::Sender<TableChange>,
}

fn key(project: &ProjectId) -> String {
    format!("project.{project}.table_changes")
}

impl ChangeLog {
    pub fn new(metadata: Arc<dyn MetadataStore>) -> Self {
        Self {
            metadata,
            cache: tokio::sync::Mutex::new(HashMap::new()),
            tx: broadcast::channel(1024).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TableChange> {
        self.tx.subscribe()
    }

    /// Records that `relations` changed now.
    pub async fn record(&self, project: &ProjectId, relations: &[String], by: &str) {
        if relations.is_empty() {
            return;
        }
        let now = Utc::now();
        let mut cache = self.cache.lock().await;
        let map = match cache.get(project) {
            Some(m) => m.clone(),
            None => self.load(project).await.unwrap_or_else(|e| {
                warn!(error = %e, "table changes not read");
                BTreeMap::new()
            }),
        };
        let mut map = map;
        for r in relations {
            let relation = canonical_relation(r);
            map.insert(relation.clone(), now);
            let _ = self.tx.send(TableChange {
                project: project.clone(),
                relation,
                at: now,
                by: by.to_owned(),
            });
        }
        while map.len() > KEEP {
            let oldest = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        let doc: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_rfc3339())))
            .collect();
        if let Err(e) = self
            .metadata
            .put_setting(&key(project), &serde_json::Value::Object(doc).to_string())
            .await
        {
            warn!(error = %e, "table changes not stored");
        }
        cache.insert(project.clone(), map);
    }

    /// When each recorded relation of the project last changed.
    pub async fn changed(&self, project: &ProjectId) -> Result<BTreeMap<String, DateTime<Utc>>, AppError> {
        let mut cache = self.cache.lock().await;
        if let Some(m) = cache.get(project) {
            return Ok(m.clone());
        }
        let map = self.load(project).await?;
        cache.insert(project.clone(), map.clone());
        Ok(map)
    }

    async fn load(&self, project: &ProjectId) -> Result<BTreeMap<String, DateTime<Utc>>, AppError> {
        let stored = self.metadata.get_setting(&key(project)).await?;
        Ok(stored
            .and_then(|s| serde_json::from_str::<BTreeMap<String, String>>(&s).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| {
                DateTime::parse_from_rfc3339(&v)
                    .ok()
                    .map(|t| (k, t.with_timezone(&Utc)))
            })
            .collect())
    }

    /// Forgets a project's changes (its data went).
    pub async fn clear(&self, project: &ProjectId) {
        self.cache.lock().await.remove(project);
        let _ = self.metadata.put_setting(&key(project), "{}").await;
    }
}
