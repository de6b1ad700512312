//! Runs: one row per run, rewritten as its state changes (`insert` and `update` are on the path of every
//! query, so each is one prepared statement on a static string).

use chrono::Utc;
use pluto_duck_application::ports::{RepoError, RunFilter};
use pluto_duck_domain::{Column, ProjectId, Run, RunFailure, RunId, RunKind, RunStatus};

use super::{bad, clamp_i64};
use crate::dialect::{execute, fetch_all, fetch_optional, map_err, Db, Ts};

macro_rules! columns {
    () => {
        "id, project_id, kind, status, input, actor, created_at, started_at, finished_at, rows, bytes, columns, \
         error, error_position, truncated, detail"
    };
}

/// Both writes bind the state a run's life changes as `$1` to `$10` (`bind_state!`), then its id.
const INSERT: &str = "INSERT INTO runs (status, started_at, finished_at, rows, bytes, columns, error, \
     error_position, truncated, detail, id, project_id, kind, input, actor, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
const UPDATE: &str = "UPDATE runs SET status = $1, started_at = $2, finished_at = $3, rows = $4, bytes = $5, \
     columns = $6, error = $7, error_position = $8, truncated = $9, detail = $10 WHERE id = $11";

macro_rules! bind_state {
    ($query:expr, $run:expr) => {
        $query
            .bind($run.status.as_str())
            .bind($run.started_at.map(Ts))
            .bind($run.finished_at.map(Ts))
            .bind(clamp_i64($run.rows))
            .bind(clamp_i64($run.bytes))
            .bind(columns_json(&$run.columns))
            .bind($run.failure.as_ref().map(|f| f.message.as_str()))
            .bind($run.failure.as_ref().and_then(|f| f.position).map(clamp_i64))
            .bind($run.truncated)
            .bind($run.detail.as_deref())
    };
}
const GET: &str = concat!("SELECT ", columns!(), " FROM runs WHERE project_id = $1 AND id = $2");
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM runs WHERE project_id = $1 AND (CAST($2 AS TEXT) IS NULL OR kind = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR status = $3) AND (CAST($4 AS TEXT) IS NULL OR input = $4) \
     ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
);
const FAIL_UNFINISHED: &str =
    "UPDATE runs SET status = $1, error = $2, finished_at = $3 WHERE status IN ('queued', 'running')";

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    project_id: String,
    kind: String,
    status: String,
    input: String,
    actor: String,
    created_at: Ts,
    started_at: Option<Ts>,
    finished_at: Option<Ts>,
    rows: i64,
    bytes: i64,
    /// JSON: `[{"name": ..., "type": ...}]`.
    columns: String,
    error: Option<String>,
    error_position: Option<i64>,
    truncated: bool,
    detail: Option<String>,
}

impl RunRow {
    fn into_run(self) -> Result<Run, RepoError> {
        let columns: Vec<serde_json::Value> = serde_json::from_str(&self.columns).map_err(bad)?;
        Ok(Run {
            id: RunId::parse(self.id).map_err(bad)?,
            project: ProjectId::parse(self.project_id).map_err(bad)?,
            kind: RunKind::parse(&self.kind).map_err(bad)?,
            status: RunStatus::parse(&self.status).map_err(bad)?,
            input: self.input,
            actor: self.actor,
            created_at: self.created_at.0,
            started_at: self.started_at.map(|t| t.0),
            finished_at: self.finished_at.map(|t| t.0),
            rows: u64::try_from(self.rows).unwrap_or(0),
            bytes: u64::try_from(self.bytes).unwrap_or(0),
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c["name"].as_str().unwrap_or_default().to_owned(),
                    data_type: c["type"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
            failure: self.error.map(|message| RunFailure {
                message,
                position: self.error_position.and_then(|p| u64::try_from(p).ok()),
            }),
            truncated: self.truncated,
            detail: self.detail,
        })
    }
}

fn columns_json(columns: &[Column]) -> String {
    serde_json::Value::Array(
        columns
            .iter()
            .map(|c| serde_json::json!({ "name": c.name, "type": c.data_type }))
            .collect(),
    )
    .to_string()
}

pub(crate) async fn insert(db: &Db, run: &Run) -> Result<(), RepoError> {
    execute!(
        db,
        bind_state!(sqlx::query(INSERT), run)
            .bind(run.id.as_str())
            .bind(run.project.as_str())
            .bind(run.kind.as_str())
            .bind(&run.input)
            .bind(&run.actor)
            .bind(Ts(run.created_at))
    )
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn update(db: &Db, run: &Run) -> Result<(), RepoError> {
    execute!(db, bind_state!(sqlx::query(UPDATE), run).bind(run.id.as_str())).map_err(map_err)?;
    Ok(())
}

pub(crate) async fn get(db: &Db, project: &ProjectId, id: &RunId) -> Result<Option<Run>, RepoError> {
    fetch_optional!(
        db,
        sqlx::query_as::<_, RunRow>(GET)
            .bind(project.as_str())
            .bind(id.as_str())
    )
    .map_err(map_err)?
    .map(RunRow::into_run)
    .transpose()
}

pub(crate) async fn list(db: &Db, filter: &RunFilter) -> Result<Vec<Run>, RepoError> {
    fetch_all!(
        db,
        sqlx::query_as::<_, RunRow>(LIST)
            .bind(filter.project.as_str())
            .bind(filter.kind.map(RunKind::as_str))
            .bind(filter.status.map(RunStatus::as_str))
            .bind(filter.input.as_deref())
            .bind(i64::from(filter.limit))
            .bind(clamp_i64(filter.offset))
    )
    .map_err(map_err)?
    .into_iter()
    .map(RunRow::into_run)
    .collect()
}

pub(crate) async fn fail_unfinished(db: &Db, message: &str) -> Result<u64, RepoError> {
    execute!(
        db,
        sqlx::query(FAIL_UNFINISHED)
            .bind(RunStatus::Failed.as_str())
            .bind(message)
            .bind(Ts(Utc::now()))
    )
    .map_err(map_err)
}
