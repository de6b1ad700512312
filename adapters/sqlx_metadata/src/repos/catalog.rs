//! The ingestion catalog: cached tables (a source's table copied into the warehouse) and ingestions (one JSON
//! document per target table; its sync history is the ingest runs).

use chrono::{DateTime, Utc};
use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{
    CachedTable, Identifier, IngestMode, Ingestion, ProjectId, RunId, RunStatus, SourceKind, TargetTable,
};

use super::{bad, clamp_i64};
use crate::dialect::{execute, fetch_all, fetch_optional, map_err, Db, Ts};

macro_rules! cache_columns {
    () => {
        "project_id, name, source, remote_schema, remote_table, filter, cursor_column, ttl_secs, rows, \
         refreshed_at, created_at"
    };
}

const PUT_CACHE: &str = concat!(
    "INSERT INTO cached_tables (",
    cache_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (project_id, name) DO UPDATE SET source = excluded.source, \
     remote_schema = excluded.remote_schema, remote_table = excluded.remote_table, filter = excluded.filter, \
     cursor_column = excluded.cursor_column, ttl_secs = excluded.ttl_secs, rows = excluded.rows, \
     refreshed_at = excluded.refreshed_at"
);
const GET_CACHE: &str = concat!(
    "SELECT ",
    cache_columns!(),
    " FROM cached_tables WHERE project_id = $1 AND name = $2"
);
const LIST_CACHES: &str = concat!(
    "SELECT ",
    cache_columns!(),
    " FROM cached_tables WHERE project_id = $1 ORDER BY name"
);
const PUT_INGESTION: &str = "INSERT INTO ingestions (project_id, target, doc, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (project_id, target) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at";

#[derive(sqlx::FromRow)]
struct CacheRow {
    project_id: String,
    name: String,
    source: String,
    remote_schema: String,
    remote_table: String,
    filter: Option<String>,
    cursor_column: Option<String>,
    ttl_secs: Option<i64>,
    rows: i64,
    refreshed_at: Ts,
    created_at: Ts,
}

impl CacheRow {
    fn into_cache(self) -> Result<CachedTable, RepoError> {
        Ok(CachedTable {
            name: Identifier::parse(self.name).map_err(bad)?,
            project: ProjectId::parse(self.project_id).map_err(bad)?,
            source: Identifier::parse(self.source).map_err(bad)?,
            remote_schema: self.remote_schema,
            remote_table: self.remote_table,
            filter: self.filter,
            cursor_column: self.cursor_column,
            ttl_secs: self.ttl_secs.and_then(|t| u64::try_from(t).ok()),
            rows: u64::try_from(self.rows).unwrap_or(0),
            refreshed_at: self.refreshed_at.0,
            created_at: self.created_at.0,
        })
    }
}

/// Inserts or replaces the record of a cached table.
pub(crate) async fn put_cache(db: &Db, c: &CachedTable) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(PUT_CACHE)
            .bind(c.project.as_str())
            .bind(c.name.as_str())
            .bind(c.source.as_str())
            .bind(&c.remote_schema)
            .bind(&c.remote_table)
            .bind(&c.filter)
            .bind(&c.cursor_column)
            .bind(c.ttl_secs.map(clamp_i64))
            .bind(clamp_i64(c.rows))
            .bind(Ts(c.refreshed_at))
            .bind(Ts(c.created_at))
    )
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn get_cache(
    db: &Db,
    project: &ProjectId,
    name: &Identifier,
) -> Result<Option<CachedTable>, RepoError> {
    fetch_optional!(
        db,
        sqlx::query_as::<_, CacheRow>(GET_CACHE)
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?
    .map(CacheRow::into_cache)
    .transpose()
}

pub(crate) async fn list_caches(db: &Db, project: &ProjectId) -> Result<Vec<CachedTable>, RepoError> {
    fetch_all!(db, sqlx::query_as::<_, CacheRow>(LIST_CACHES).bind(project.as_str()))
        .map_err(map_err)?
        .into_iter()
        .map(CacheRow::into_cache)
        .collect()
}

pub(crate) async fn delete_cache(db: &Db, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
    let affected = execute!(
        db,
        sqlx::query("DELETE FROM cached_tables WHERE project_id = $1 AND name = $2")
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?;
    Ok(affected > 0)
}

fn ingestion_doc(i: &Ingestion) -> String {
    serde_json::json!({
        "schema": i.target.schema.as_str(), "table": i.target.table.as_str(),
        "source_kind": i.source_kind.as_str(), "source": i.source, "named_source": i.named_source,
        "input": i.input, "mode": i.mode.as_str(), "keys": i.keys,
        "created_at": i.created_at.to_rfc3339(), "updated_at": i.updated_at.to_rfc3339(),
        "last_run": i.last_run.as_ref().map(|r| r.to_string()),
        "last_status": i.last_status.map(|s| s.as_str()), "rows": i.rows,
    })
    .to_string()
}

fn ingestion_from_doc(project: &ProjectId, doc: &str) -> Result<Ingestion, RepoError> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let time = |k: &str| {
        DateTime::parse_from_rfc3339(v[k].as_str().unwrap_or_default())
            .map(|t| t.with_timezone(&Utc))
            .map_err(bad)
    };
    Ok(Ingestion {
        project: project.clone(),
        target: TargetTable {
            schema: Identifier::parse(text("schema")).map_err(bad)?,
            table: Identifier::parse(text("table")).map_err(bad)?,
        },
        source_kind: SourceKind::parse(&text("source_kind")).map_err(bad)?,
        source: text("source"),
        named_source: v["named_source"].as_bool().unwrap_or(false),
        input: text("input"),
        mode: IngestMode::parse(&text("mode")).map_err(bad)?,
        keys: v["keys"]
            .as_array()
            .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        last_run: v["last_run"].as_str().map(RunId::parse).transpose().map_err(bad)?,
        last_status: v["last_status"]
            .as_str()
            .map(RunStatus::parse)
            .transpose()
            .map_err(bad)?,
        rows: v["rows"].as_u64().unwrap_or(0),
    })
}

/// Inserts or replaces the catalog entry of an ingested table.
pub(crate) async fn put_ingestion(db: &Db, i: &Ingestion) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(PUT_INGESTION)
            .bind(i.project.as_str())
            .bind(i.target.qualified())
            .bind(ingestion_doc(i))
            .bind(Ts(i.updated_at))
    )
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn get_ingestion(
    db: &Db,
    project: &ProjectId,
    target: &TargetTable,
) -> Result<Option<Ingestion>, RepoError> {
    let doc: Option<String> = fetch_optional!(
        db,
        sqlx::query_scalar("SELECT doc FROM ingestions WHERE project_id = $1 AND target = $2")
            .bind(project.as_str())
            .bind(target.qualified())
    )
    .map_err(map_err)?;
    doc.map(|doc| ingestion_from_doc(project, &doc)).transpose()
}

pub(crate) async fn list_ingestions(db: &Db, project: &ProjectId) -> Result<Vec<Ingestion>, RepoError> {
    let docs: Vec<String> = fetch_all!(
        db,
        sqlx::query_scalar("SELECT doc FROM ingestions WHERE project_id = $1 ORDER BY target").bind(project.as_str())
    )
    .map_err(map_err)?;
    docs.iter().map(|doc| ingestion_from_doc(project, doc)).collect()
}

pub(crate) async fn delete_ingestion(db: &Db, project: &ProjectId, target: &TargetTable) -> Result<bool, RepoError> {
    let affected = execute!(
        db,
        sqlx::query("DELETE FROM ingestions WHERE project_id = $1 AND target = $2")
            .bind(project.as_str())
            .bind(target.qualified())
    )
    .map_err(map_err)?;
    Ok(affected > 0)
}
