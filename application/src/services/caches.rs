//! Local copies of remote tables. A build writes a new table aside and swaps it in inside one transaction, so a
//! failed load or refresh leaves the previous copy untouched. Incremental refresh appends rows past the cursor.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use chrono::Utc;
use futures::StreamExt;
use pluto_duck_domain::{split_statements, CachedTable, Identifier, ProjectId, Source};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument};

use super::sources::SourceService;
use crate::ports::{MetadataStore, QueryRequest, StatementText, Warehouse};
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
    // One build at a time: concurrent swaps of the same table would conflict in DuckDB.
    builds: tokio::sync::Mutex<()>,
}

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Runs statements as one transaction; returns the single BIGINT the last one selects.
pub(crate) async fn exec_count(
    warehouse: &dyn Warehouse,
    statements: Vec<String>,
    cancel: &CancellationToken,
) -> Result<u64, AppError> {
    let request = QueryRequest {
        statements: statements
            .into_iter()
            .map(|text| StatementText { text, offset: 0 })
            .collect(),
        params: Vec::new(),
    };
    let mut stream = warehouse.query(request, cancel.clone()).await?;
    let mut count = 0u64;
    while let Some(batch) = stream.batches.next().await {
        let batch = batch?;
        if batch.num_rows() > 0 {
            if let Some(col) = batch.column(0).as_primitive_opt::<Int64Type>() {
                count = u64::try_from(col.value(0)).unwrap_or(0);
            }
        }
    }
    Ok(count)
}

fn check_filter(filter: &str) -> Result<(), AppError> {
    let ok = split_statements(&format!("SELECT 1 WHERE {filter}"))
        .map(|s| s.len() == 1 && s[0].is_read)
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(AppError::Invalid("filter must be one boolean SQL expression".into()))
    }
}

impl CacheService {
    pub fn new(warehouse: Arc<dyn Warehouse>, metadata: Arc<dyn MetadataStore>, sources: Arc<SourceService>) -> Self {
        Self {
            warehouse,
            metadata,
            sources,
            builds: tokio::sync::Mutex::new(()),
        }
    }

    fn remote(source: &Source, cache: &CachedTable) -> String {
        format!(
            "{}.{}.{}",
            q(&source.catalog_alias()),
            q(&cache.remote_schema),
            q(&cache.remote_table)
        )
    }

    fn local(cache: &CachedTable) -> String {
        format!(
            "{}.{}",
            q(&CachedTable::schema_for(&cache.project)),
            q(cache.name.as_str())
        )
    }

    async fn run(&self, statements: Vec<String>) -> Result<u64, AppError> {
        exec_count(self.warehouse.as_ref(), statements, &CancellationToken::new()).await
    }

    async fn build(&self, source: &Source, cache: &CachedTable) -> Result<u64, AppError> {
        let schema = q(&CachedTable::schema_for(&cache.project));
        let building = format!("{schema}.{}", q(&format!("{}__building", cache.name)));
        let filter = cache
            .filter
            .as_ref()
            .map(|f| format!(" WHERE ({f})"))
            .unwrap_or_default();
        let _guard = self.builds.lock().await;
        self.run(vec![
            format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
            format!(
                "CREATE OR REPLACE TABLE {building} AS SELECT * FROM {}{filter}",
                Self::remote(source, cache)
            ),
            format!("DROP TABLE IF EXISTS {}", Self::local(cache)),
            format!("ALTER TABLE {building} RENAME TO {}", q(cache.name.as_str())),
            format!("SELECT count(*)::BIGINT FROM {}", Self::local(cache)),
        ])
        .await
    }

    async fn append(&self, source: &Source, cache: &CachedTable, cursor: &str) -> Result<u64, AppError> {
        let (local, c) = (Self::local(cache), q(cursor));
        let filter = cache.filter.as_ref().map(|f| format!(" AND ({f})")).unwrap_or_default();
        let _guard = self.builds.lock().await;
        self.run(vec![
            format!(
                "INSERT INTO {local} SELECT * FROM {} WHERE ((SELECT max({c}) FROM {local}) IS NULL OR {c} > (SELECT max({c}) FROM {local})){filter}",
                Self::remote(source, cache)
            ),
            format!("SELECT count(*)::BIGINT FROM {local}"),
        ])
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
            Some(n) => Identifier::parse(n.clone())?,
            None => Identifier::sanitize(&req.table),
        };
        if self.metadata.get_cache(project, &name).await?.is_some() {
            return Err(AppError::Conflict(format!("cached table {name} already exists")));
        }
        if let Some(f) = &req.filter {
            check_filter(f)?;
        }
        let now = Utc::now();
        let mut cache = CachedTable {
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
        cache.rows = self.build(&source, &cache).await?;
        self.metadata.put_cache(&cache).await?;
        info!(table = %cache.name, rows = cache.rows, "table cached");
        Ok(cache)
    }

    /// Rebuilds the copy, or with a cursor column and `full = false` appends only newer rows.
    #[instrument(skip_all, fields(project = %project, cache = %name))]
    pub async fn refresh(&self, project: &ProjectId, name: &str, full: bool) -> Result<CachedTable, AppError> {
        let mut cache = self.get(project, name).await?;
        let source = self.sources.attached(project, cache.source.as_str()).await?;
        cache.rows = match (&cache.cursor_column, full) {
            (Some(cursor), false) => self.append(&source, &cache, &cursor.clone()).await?,
            _ => self.build(&source, &cache).await?,
        };
        cache.refreshed_at = Utc::now();
        self.metadata.put_cache(&cache).await?;
        Ok(cache)
    }

    pub async fn get(&self, project: &ProjectId, name: &str) -> Result<CachedTable, AppError> {
        let name = Identifier::parse(name)?;
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
        let _guard = self.builds.lock().await;
        self.run(vec![
            format!("DROP TABLE IF EXISTS {}", Self::local(&cache)),
            "SELECT 0::BIGINT".into(),
        ])
        .await?;
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

    #[test]
    fn filters_must_be_one_expression() {
        assert!(check_filter("amount > 10 AND region = 'eu'").is_ok());
        assert!(check_filter("1=1; DROP TABLE t").is_err());
        assert!(check_filter("x IN (SELECT 1)").is_ok());
    }
}
