use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pluto_duck_application::ports::{MetadataStore, RepoError, RunFilter};
use pluto_duck_domain::{
    AnalysisState, Board, BoardItem, CachedTable, Identifier, Ingestion, Project, ProjectId, Run, RunId, RunStatus,
    Source, TargetTable,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use crate::runs::{
    analysis_state_doc, analysis_state_from_doc, board_doc, board_from_doc, clamp_i64, columns_json, ingestion_doc,
    ingestion_from_doc, item_doc, item_from_doc, CacheRow, RunRow, SourceRow, CACHE_COLUMNS, COLUMNS,
    INGESTION_COLUMNS, SOURCE_COLUMNS,
};
use crate::{is_unique_violation, map_err, migrate_err};

/// The hybrid profile's control plane.
pub struct PgMetadataStore {
    pool: PgPool,
}

impl PgMetadataStore {
    /// Connects and applies pending migrations (each in a transaction; PostgreSQL DDL is transactional).
    /// The URL carries a password: it is never logged or put in an error.
    pub async fn connect(url: &str) -> Result<Self, RepoError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| RepoError::Unavailable(redacted_connect_error(&e)))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(migrate_err)?;
        Ok(Self { pool })
    }
}

/// sqlx's connect errors do not echo the URL, but keep only the first line to be safe.
fn redacted_connect_error(e: &sqlx::Error) -> String {
    format!(
        "cannot connect to PostgreSQL: {}",
        e.to_string().lines().next().unwrap_or_default()
    )
}

fn run_from_row(row: &sqlx::postgres::PgRow) -> Result<Run, RepoError> {
    RunRow {
        id: row.try_get("id").map_err(map_err)?,
        project_id: row.try_get("project_id").map_err(map_err)?,
        kind: row.try_get("kind").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        input: row.try_get("input").map_err(map_err)?,
        actor: row.try_get("actor").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        started_at: row.try_get("started_at").map_err(map_err)?,
        finished_at: row.try_get("finished_at").map_err(map_err)?,
        rows: row.try_get("rows").map_err(map_err)?,
        bytes: row.try_get("bytes").map_err(map_err)?,
        columns: row.try_get("columns").map_err(map_err)?,
        error: row.try_get("error").map_err(map_err)?,
        error_position: row.try_get("error_position").map_err(map_err)?,
        truncated: row.try_get("truncated").map_err(map_err)?,
    }
    .into_run()
}

fn source_from_row(row: &sqlx::postgres::PgRow) -> Result<Source, RepoError> {
    SourceRow {
        project_id: row.try_get("project_id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        kind: row.try_get("kind").map_err(map_err)?,
        description: row.try_get("description").map_err(map_err)?,
        host: row.try_get("host").map_err(map_err)?,
        port: row.try_get("port").map_err(map_err)?,
        database: row.try_get("database_name").map_err(map_err)?,
        user: row.try_get("user_name").map_err(map_err)?,
        password_secret: row.try_get("password_secret").map_err(map_err)?,
        path: row.try_get("path").map_err(map_err)?,
        read_only: row.try_get("read_only").map_err(map_err)?,
        options: row.try_get("options").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    }
    .into_source()
}

fn cache_from_row(row: &sqlx::postgres::PgRow) -> Result<CachedTable, RepoError> {
    CacheRow {
        project_id: row.try_get("project_id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        source: row.try_get("source").map_err(map_err)?,
        remote_schema: row.try_get("remote_schema").map_err(map_err)?,
        remote_table: row.try_get("remote_table").map_err(map_err)?,
        filter: row.try_get("filter").map_err(map_err)?,
        cursor_column: row.try_get("cursor_column").map_err(map_err)?,
        ttl_secs: row.try_get("ttl_secs").map_err(map_err)?,
        rows: row.try_get("rows").map_err(map_err)?,
        refreshed_at: row.try_get("refreshed_at").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    }
    .into_cache()
}

fn project_from_row(row: &sqlx::postgres::PgRow) -> Result<Project, RepoError> {
    let id: String = row.try_get("id").map_err(map_err)?;
    let created_at: DateTime<Utc> = row.try_get("created_at").map_err(map_err)?;
    Ok(Project {
        id: ProjectId::parse(id).map_err(|e| RepoError::Internal(e.to_string()))?,
        name: row.try_get("name").map_err(map_err)?,
        created_at,
    })
}

#[async_trait]
impl MetadataStore for PgMetadataStore {
    async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn ensure_project(&self, project: &Project) -> Result<Project, RepoError> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.get_project(&project.id)
            .await?
            .ok_or_else(|| RepoError::Internal("project vanished after insert".into()))
    }

    async fn create_project(&self, project: &Project) -> Result<(), RepoError> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    RepoError::Conflict {
                        what: "project",
                        id: project.id.to_string(),
                    }
                } else {
                    map_err(e)
                }
            })?;
        Ok(())
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>, RepoError> {
        sqlx::query("SELECT id, name, created_at FROM projects WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(project_from_row)
            .transpose()
    }

    async fn list_projects(&self) -> Result<Vec<Project>, RepoError> {
        sqlx::query("SELECT id, name, created_at FROM projects ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(project_from_row)
            .collect()
    }

    async fn rename_project(&self, id: &ProjectId, name: &str) -> Result<bool, RepoError> {
        let r = sqlx::query("UPDATE projects SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn clear_project(&self, id: &ProjectId, keep_project: bool) -> Result<(), RepoError> {
        // One transaction: a project is cleared whole or not at all.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for table in [
            "board_items",
            "boards",
            "runs",
            "sources",
            "cached_tables",
            "ingestions",
            "analysis_state",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE project_id = $1"))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(format!("project.{id}.settings"))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if !keep_project {
            sqlx::query("DELETE FROM projects WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now()) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn insert_run(&self, run: &Run) -> Result<(), RepoError> {
        sqlx::query(&format!(
            "INSERT INTO runs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(run.id.as_str())
        .bind(run.project.as_str())
        .bind(run.kind.as_str())
        .bind(run.status.as_str())
        .bind(&run.input)
        .bind(&run.actor)
        .bind(run.created_at)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(clamp_i64(run.rows))
        .bind(clamp_i64(run.bytes))
        .bind(columns_json(&run.columns))
        .bind(run.failure.as_ref().map(|f| f.message.clone()))
        .bind(run.failure.as_ref().and_then(|f| f.position).map(clamp_i64))
        .bind(run.truncated)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn update_run(&self, run: &Run) -> Result<(), RepoError> {
        sqlx::query(
            "UPDATE runs SET status = $1, started_at = $2, finished_at = $3, rows = $4, bytes = $5, columns = $6, \
             error = $7, error_position = $8, truncated = $9 WHERE id = $10",
        )
        .bind(run.status.as_str())
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(clamp_i64(run.rows))
        .bind(clamp_i64(run.bytes))
        .bind(columns_json(&run.columns))
        .bind(run.failure.as_ref().map(|f| f.message.clone()))
        .bind(run.failure.as_ref().and_then(|f| f.position).map(clamp_i64))
        .bind(run.truncated)
        .bind(run.id.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_run(&self, project: &ProjectId, id: &RunId) -> Result<Option<Run>, RepoError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM runs WHERE project_id = $1 AND id = $2"))
            .bind(project.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(run_from_row)
            .transpose()
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RepoError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE project_id = $1 AND ($2::text IS NULL OR kind = $2) \
             AND ($3::text IS NULL OR status = $3) AND ($6::text IS NULL OR input = $6) \
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(filter.project.as_str())
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(filter.limit))
        .bind(clamp_i64(filter.offset))
        .bind(filter.input.as_deref())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(run_from_row)
        .collect()
    }

    async fn fail_unfinished_runs(&self, message: &str) -> Result<u64, RepoError> {
        let r = sqlx::query(
            "UPDATE runs SET status = $1, error = $2, finished_at = now() WHERE status IN ('queued', 'running')",
        )
        .bind(RunStatus::Failed.as_str())
        .bind(message)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected())
    }

    async fn insert_source(&self, source: &Source) -> Result<(), RepoError> {
        let r = SourceRow::from_source(source);
        sqlx::query(&format!(
            "INSERT INTO sources ({SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&r.project_id)
        .bind(&r.name)
        .bind(&r.kind)
        .bind(&r.description)
        .bind(&r.host)
        .bind(r.port)
        .bind(&r.database)
        .bind(&r.user)
        .bind(&r.password_secret)
        .bind(&r.path)
        .bind(r.read_only)
        .bind(r.created_at)
        .bind(&r.options)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                RepoError::Conflict {
                    what: "source",
                    id: r.name.clone(),
                }
            } else {
                map_err(e)
            }
        })?;
        Ok(())
    }

    async fn update_source_description(
        &self,
        project: &ProjectId,
        name: &Identifier,
        description: &str,
    ) -> Result<bool, RepoError> {
        let r = sqlx::query("UPDATE sources SET description = $1 WHERE project_id = $2 AND name = $3")
            .bind(description)
            .bind(project.as_str())
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_source(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
        let r = sqlx::query("DELETE FROM sources WHERE project_id = $1 AND name = $2")
            .bind(project.as_str())
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn get_source(&self, project: &ProjectId, name: &Identifier) -> Result<Option<Source>, RepoError> {
        sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE project_id = $1 AND name = $2"
        ))
        .bind(project.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(source_from_row)
        .transpose()
    }

    async fn list_sources(&self, project: Option<ProjectId>) -> Result<Vec<Source>, RepoError> {
        sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE $1::text IS NULL OR project_id = $1 ORDER BY project_id, name"
        ))
        .bind(project.as_ref().map(|p| p.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(source_from_row)
        .collect()
    }

    async fn put_cache(&self, c: &CachedTable) -> Result<(), RepoError> {
        sqlx::query(&format!(
            "INSERT INTO cached_tables ({CACHE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (project_id, name) DO UPDATE SET source = excluded.source, remote_schema = excluded.remote_schema, remote_table = excluded.remote_table, filter = excluded.filter, cursor_column = excluded.cursor_column, ttl_secs = excluded.ttl_secs, rows = excluded.rows, refreshed_at = excluded.refreshed_at"
        ))
        .bind(c.project.as_str())
        .bind(c.name.as_str())
        .bind(c.source.as_str())
        .bind(&c.remote_schema)
        .bind(&c.remote_table)
        .bind(&c.filter)
        .bind(&c.cursor_column)
        .bind(c.ttl_secs.map(clamp_i64))
        .bind(clamp_i64(c.rows))
        .bind(c.refreshed_at)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_cache(&self, project: &ProjectId, name: &Identifier) -> Result<Option<CachedTable>, RepoError> {
        sqlx::query(&format!(
            "SELECT {CACHE_COLUMNS} FROM cached_tables WHERE project_id = $1 AND name = $2"
        ))
        .bind(project.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(cache_from_row)
        .transpose()
    }

    async fn list_caches(&self, project: &ProjectId) -> Result<Vec<CachedTable>, RepoError> {
        sqlx::query(&format!(
            "SELECT {CACHE_COLUMNS} FROM cached_tables WHERE project_id = $1 ORDER BY name"
        ))
        .bind(project.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(cache_from_row)
        .collect()
    }

    async fn delete_cache(&self, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
        let r = sqlx::query("DELETE FROM cached_tables WHERE project_id = $1 AND name = $2")
            .bind(project.as_str())
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn put_ingestion(&self, i: &Ingestion) -> Result<(), RepoError> {
        sqlx::query(&format!(
            "INSERT INTO ingestions ({INGESTION_COLUMNS}) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, target) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at"
        ))
        .bind(i.project.as_str())
        .bind(i.target.qualified())
        .bind(ingestion_doc(i))
        .bind(i.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_ingestion(&self, project: &ProjectId, target: &TargetTable) -> Result<Option<Ingestion>, RepoError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT doc FROM ingestions WHERE project_id = $1 AND target = $2")
            .bind(project.as_str())
            .bind(target.qualified())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|(doc,)| ingestion_from_doc(project.to_string(), &doc))
            .transpose()
    }

    async fn list_ingestions(&self, project: &ProjectId) -> Result<Vec<Ingestion>, RepoError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT doc FROM ingestions WHERE project_id = $1 ORDER BY target")
            .bind(project.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|(doc,)| ingestion_from_doc(project.to_string(), doc))
            .collect()
    }

    async fn delete_ingestion(&self, project: &ProjectId, target: &TargetTable) -> Result<bool, RepoError> {
        let r = sqlx::query("DELETE FROM ingestions WHERE project_id = $1 AND target = $2")
            .bind(project.as_str())
            .bind(target.qualified())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn put_analysis_state(&self, state: &AnalysisState) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO analysis_state (project_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(state.project.as_str())
        .bind(state.id.as_str())
        .bind(analysis_state_doc(state))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_analysis_states(&self, project: &ProjectId) -> Result<Vec<AnalysisState>, RepoError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, doc FROM analysis_state WHERE project_id = $1 ORDER BY id")
                .bind(project.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter()
            .map(|(id, doc)| analysis_state_from_doc(project.as_str(), id, &doc))
            .collect()
    }

    async fn put_board(&self, board: &Board) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO boards (project_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(board.project.as_str())
        .bind(&board.id)
        .bind(board_doc(board))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_boards(&self, project: &ProjectId) -> Result<Vec<Board>, RepoError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, doc FROM boards WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut boards = rows
            .into_iter()
            .map(|(id, doc)| board_from_doc(project.as_str(), id, &doc))
            .collect::<Result<Vec<_>, _>>()?;
        boards.sort_by(|a, b| (a.position, a.created_at, &a.id).cmp(&(b.position, b.created_at, &b.id)));
        Ok(boards)
    }

    async fn delete_board(&self, project: &ProjectId, id: &str) -> Result<bool, RepoError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM board_items WHERE project_id = $1 AND board_id = $2")
            .bind(project.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let r = sqlx::query("DELETE FROM boards WHERE project_id = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn put_item(&self, item: &BoardItem) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO board_items (project_id, board_id, id, doc) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc, board_id = excluded.board_id",
        )
        .bind(item.project.as_str())
        .bind(&item.board)
        .bind(&item.id)
        .bind(item_doc(item))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_items(&self, project: Option<ProjectId>, board: Option<String>) -> Result<Vec<BoardItem>, RepoError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT project_id, board_id, id, doc FROM board_items WHERE ($1::text IS NULL OR project_id = $1) AND ($2::text IS NULL OR board_id = $2) ORDER BY project_id, board_id, id",
        )
            .bind(project.as_ref().map(|p| p.as_str().to_owned()))
            .bind(board)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut items = rows
            .into_iter()
            .map(|(p, b, id, doc)| item_from_doc(&p, b, id, &doc))
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|i| (i.y, i.x, i.created_at));
        Ok(items)
    }

    async fn delete_item(&self, project: &ProjectId, id: &str) -> Result<bool, RepoError> {
        let r = sqlx::query("DELETE FROM board_items WHERE project_id = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() > 0)
    }
}
