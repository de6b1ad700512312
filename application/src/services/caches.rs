//! Local copies of remote tables. A build writes a new table aside and swaps it in inside one transaction, so a
//! failed load or refresh leaves the previous copy untouched. Incremental refresh appends rows past the cursor.
//! Every build and refresh is a `cache_refresh` run through [`Jobs`]: events, cancellation, history, lineage.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use pluto_duck_domain::{parse_condition, CachedTable, Identifier, ProjectId, Run, RunKind, Source};
use tokio::sync::oneshot;
use tracing::{info, instrument};

use super::changes::ChangeLog;
use super::jobs::{JobContext, JobSpec, Jobs, Outcome, Work};
use super::sources::SourceService;
use crate::connectors::quote;
use crate::ports::{CsvStrictness, Load, LoadFrom, LoadMode, LoadPart, MetadataStore, PartRead, RunFilter, Warehouse};
use crate::AppError;

#[derive(Debug, Clone, Default)]
pub struct CacheRequest {
    pub schema: String,
    pub table: String,
    /// Local name; defaults to the remote table's name made an identifier.
    pub name: Option<String>,
    pub filter: Option<String>,
    pub cursor_column: Option<String>,
    pub ttl_secs: Option<u64>,
}

pub struct CacheService {
    warehouse: Arc<dyn Warehouse>,
    metadata: Arc<dyn MetadataStore>,
    sources: Arc<SourceService>,
    changes: Arc<ChangeLog>,
    jobs: Arc<Jobs>,
}

/// One build or refresh of a copy. The copy's catalog entry is written by the run itself, so a caller that stops
/// waiting loses nothing; the caller gets the typed error through `done`, the run keeps its message.
struct CacheWork {
    warehouse: Arc<dyn Warehouse>,
    metadata: Arc<dyn MetadataStore>,
    changes: Arc<ChangeLog>,
    remote: String,
    cache: CachedTable,
    mode: LoadMode,
    done: Option<oneshot::Sender<Result<CachedTable, AppError>>>,
}

impl CacheWork {
    async fn build(&mut self, ctx: &JobContext) -> Result<CachedTable, AppError> {
        let load = Load {
            from: LoadFrom::Sandbox,
            parts: vec![LoadPart {
                read: PartRead::Relation(self.remote.clone()),
                bytes: None,
            }],
            target: self.cache.relation(),
            mode: self.mode.clone(),
            filter: self.cache.filter.clone(),
            csv: CsvStrictness::Strict,
            tag: format!("cache_{}", self.cache.name),
        };
        let outcome = self
            .warehouse
            .load(&self.cache.project, load, ctx.load_progress(), ctx.cancel.clone())
            .await?;
        self.changes
            .record(&self.cache.project, &[self.cache.relation().to_string()], "cache")
            .await;
        let mut cache = self.cache.clone();
        cache.rows = outcome.rows;
        cache.refreshed_at = Utc::now();
        self.metadata.put_cache(&cache).await?;
        Ok(cache)
    }
}

#[async_trait]
impl Work for CacheWork {
    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let result = self.build(&ctx).await;
        let outcome = match &result {
            Ok(cache) => Ok(Outcome {
                rows: cache.rows,
                ..Outcome::default()
            }),
            // The run records the message; the waiting caller gets the error itself.
            Err(e) => Err(AppError::Invalid(e.to_string())),
        };
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
        outcome
    }
}

impl CacheService {
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        metadata: Arc<dyn MetadataStore>,
        sources: Arc<SourceService>,
        changes: Arc<ChangeLog>,
        jobs: Arc<Jobs>,
    ) -> Self {
        Self {
            warehouse,
            metadata,
            sources,
            changes,
            jobs,
        }
    }

    /// Copies the remote table into `cache.<name>` as a `cache_refresh` run and waits for it: rebuilt aside and
    /// swapped in, or only the rows past the cursor appended. A failure leaves the previous copy as it was.
    async fn load(&self, source: &Source, cache: CachedTable, mode: LoadMode) -> Result<CachedTable, AppError> {
        let remote = format!(
            "SELECT * FROM {}.{}.{}",
            quote(&source.catalog_alias()),
            quote(&cache.remote_schema),
            quote(&cache.remote_table)
        );
        let (tx, rx) = oneshot::channel();
        let spec = JobSpec {
            project: cache.project.clone(),
            kind: RunKind::CacheRefresh,
            input: cache.relation().to_string(),
            actor: None,
            timeout: None,
        };
        let work = CacheWork {
            warehouse: self.warehouse.clone(),
            metadata: self.metadata.clone(),
            changes: self.changes.clone(),
            remote,
            cache,
            mode,
            done: Some(tx),
        };
        let run = self.jobs.submit(spec, work)?;
        rx.await.unwrap_or_else(|_| {
            Err(AppError::Unavailable(format!(
                "cache refresh run {} ended before it finished (the server is stopping)",
                run.id
            )))
        })
    }

    /// The build and refresh runs of one copy, newest first.
    pub async fn runs(&self, project: &ProjectId, name: &str, limit: u32) -> Result<Vec<Run>, AppError> {
        if !(1..=1000).contains(&limit) {
            return Err(AppError::Invalid("limit must be between 1 and 1000".into()));
        }
        let cache = self.get(project, name).await?;
        self.jobs
            .list(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::CacheRefresh),
                status: None,
                input: Some(cache.relation().to_string()),
                limit,
                offset: 0,
            })
            .await
    }

    #[instrument(skip_all, fields(project = %project, source = %source_name))]
    pub async fn create(
        &self,
        project: &ProjectId,
        source_name: &str,
        req: CacheRequest,
    ) -> Result<CachedTable, AppError> {
        let source = self.sources.attached(project, source_name).await?;
        let name = match &req.name {
            Some(n) => Identifier::canonical(n.clone())?,
            None => Identifier::sanitize(&req.table),
        };
        if self.metadata.get_cache(project, &name).await?.is_some() {
            return Err(AppError::Conflict(format!("cached table {name} already exists")));
        }
        if let Some(f) = &req.filter {
            parse_condition(f)?;
        }
        let now = Utc::now();
        let cache = CachedTable {
            name,
            project: project.clone(),
            source: source.name.clone(),
            remote_schema: req.schema,
            remote_table: req.table,
            filter: req.filter,
            cursor_column: req.cursor_column,
            ttl_secs: req.ttl_secs,
            rows: 0,
            refreshed_at: now,
            created_at: now,
        };
        cache.validate()?;
        let cache = self.load(&source, cache, LoadMode::Replace).await?;
        info!(table = %cache.name, rows = cache.rows, "table cached");
        Ok(cache)
    }

    /// Rebuilds the copy, or with a cursor column and `full = false` appends only newer rows.
    #[instrument(skip_all, fields(project = %project, cache = %name))]
    pub async fn refresh(&self, project: &ProjectId, name: &str, full: bool) -> Result<CachedTable, AppError> {
        let cache = self.get(project, name).await?;
        let source = self.sources.attached(project, cache.source.as_str()).await?;
        let mode = match (&cache.cursor_column, full) {
            (Some(cursor), false) => LoadMode::AppendAfter { cursor: cursor.clone() },
            _ => LoadMode::Replace,
        };
        self.load(&source, cache, mode).await
    }

    pub async fn get(&self, project: &ProjectId, name: &str) -> Result<CachedTable, AppError> {
        let name = Identifier::canonical(name)?;
        self.metadata
            .get_cache(project, &name)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "cached table",
                id: name.to_string(),
            })
    }

    pub async fn list(&self, project: &ProjectId) -> Result<Vec<CachedTable>, AppError> {
        Ok(self.metadata.list_caches(project).await?)
    }

    pub async fn drop_cache(&self, project: &ProjectId, name: &str) -> Result<(), AppError> {
        let cache = self.get(project, name).await?;
        self.warehouse.drop_relation(project, &cache.relation()).await?;
        self.metadata.delete_cache(project, &cache.name).await?;
        Ok(())
    }

    /// Drops every copy past its TTL; returns what went.
    pub async fn cleanup_expired(&self, project: &ProjectId) -> Result<Vec<CachedTable>, AppError> {
        let now = Utc::now();
        let mut removed = Vec::new();
        for cache in self.list(project).await? {
            if cache.is_expired(now) {
                self.drop_cache(project, cache.name.as_str()).await?;
                removed.push(cache);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_identifiers() {
        assert_eq!(Identifier::sanitize("Order Details").as_str(), "order_details");
        assert_eq!(Identifier::sanitize("2024-sales").as_str(), "_2024_sales");
    }
}
