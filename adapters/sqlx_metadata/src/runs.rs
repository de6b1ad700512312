//! Mapping between `Run` and its row, shared by both dialects.

use chrono::{DateTime, Utc};
use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{Column, ProjectId, Run, RunFailure, RunId, RunKind, RunStatus};

pub(crate) const COLUMNS: &str = "id, project_id, kind, status, input, actor, created_at, started_at, finished_at, \
     rows, bytes, columns, error, error_position, truncated";

fn bad(e: impl std::fmt::Display) -> RepoError {
    RepoError::Internal(format!("bad run row: {e}"))
}

pub(crate) fn columns_json(columns: &[Column]) -> String {
    serde_json::Value::Array(
        columns
            .iter()
            .map(|c| serde_json::json!({ "name": c.name, "type": c.data_type }))
            .collect(),
    )
    .to_string()
}

/// The raw values of a run row, read by each dialect in its own types.
pub(crate) struct RunRow {
    pub id: String,
    pub project_id: String,
    pub kind: String,
    pub status: String,
    pub input: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows: i64,
    pub bytes: i64,
    pub columns: String,
    pub error: Option<String>,
    pub error_position: Option<i64>,
    pub truncated: bool,
}

impl RunRow {
    pub(crate) fn into_run(self) -> Result<Run, RepoError> {
        let columns: Vec<serde_json::Value> = serde_json::from_str(&self.columns).map_err(bad)?;
        Ok(Run {
            id: RunId::parse(self.id).map_err(bad)?,
            project: ProjectId::parse(self.project_id).map_err(bad)?,
            kind: RunKind::parse(&self.kind).map_err(bad)?,
            status: RunStatus::parse(&self.status).map_err(bad)?,
            input: self.input,
            actor: self.actor,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
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
        })
    }
}

pub(crate) fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) const SOURCE_COLUMNS: &str =
    "project_id, name, kind, description, host, port, database_name, user_name, password_secret, path, read_only, created_at";

/// The raw values of a source row.
pub(crate) struct SourceRow {
    pub project_id: String,
    pub name: String,
    pub kind: String,
    pub description: String,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password_secret: Option<String>,
    pub path: Option<String>,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
}

impl SourceRow {
    pub(crate) fn into_source(self) -> Result<pluto_duck_domain::Source, RepoError> {
        use pluto_duck_domain::{Identifier, Source, SourceConnection, SourceKind};
        let connection = match self.path {
            Some(path) => SourceConnection::File { path },
            None => SourceConnection::Server {
                host: self.host.unwrap_or_default(),
                port: self.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                database: self.database.unwrap_or_default(),
                user: self.user.unwrap_or_default(),
                password_secret: self.password_secret,
            },
        };
        Ok(Source {
            name: Identifier::parse(self.name).map_err(bad)?,
            project: ProjectId::parse(self.project_id).map_err(bad)?,
            kind: SourceKind::parse(&self.kind).map_err(bad)?,
            description: self.description,
            connection,
            read_only: self.read_only,
            created_at: self.created_at,
        })
    }

    pub(crate) fn from_source(s: &pluto_duck_domain::Source) -> Self {
        use pluto_duck_domain::SourceConnection;
        let (host, port, database, user, password_secret, path) = match &s.connection {
            SourceConnection::Server {
                host,
                port,
                database,
                user,
                password_secret,
            } => (
                Some(host.clone()),
                Some(i32::from(*port)),
                Some(database.clone()),
                Some(user.clone()),
                password_secret.clone(),
                None,
            ),
            SourceConnection::File { path } => (None, None, None, None, None, Some(path.clone())),
        };
        Self {
            project_id: s.project.to_string(),
            name: s.name.to_string(),
            kind: s.kind.as_str().to_owned(),
            description: s.description.clone(),
            host,
            port,
            database,
            user,
            password_secret,
            path,
            read_only: s.read_only,
            created_at: s.created_at,
        }
    }
}

pub(crate) const CACHE_COLUMNS: &str =
    "project_id, name, source, remote_schema, remote_table, filter, cursor_column, ttl_secs, rows, refreshed_at, created_at";

pub(crate) struct CacheRow {
    pub project_id: String,
    pub name: String,
    pub source: String,
    pub remote_schema: String,
    pub remote_table: String,
    pub filter: Option<String>,
    pub cursor_column: Option<String>,
    pub ttl_secs: Option<i64>,
    pub rows: i64,
    pub refreshed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl CacheRow {
    pub(crate) fn into_cache(self) -> Result<pluto_duck_domain::CachedTable, RepoError> {
        use pluto_duck_domain::{CachedTable, Identifier};
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
            refreshed_at: self.refreshed_at,
            created_at: self.created_at,
        })
    }
}
