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
            // Not stored yet: the unified store adds the column.
            detail: None,
        })
    }
}

pub(crate) fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) const SOURCE_COLUMNS: &str =
    "project_id, name, kind, description, host, port, database_name, user_name, password_secret, path, read_only, created_at, options";

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
    /// JSON: the file options of located sources.
    pub options: Option<String>,
}

fn location_to_json(l: &pluto_duck_domain::FileLocation) -> String {
    let s3 = l.s3.as_ref().map(|s| {
        serde_json::json!({
            "region": s.region, "endpoint": s.endpoint, "path_style": s.path_style, "use_ssl": s.use_ssl,
            "key_id": s.key_id, "secret_key_secret": s.secret_key_secret,
        })
    });
    serde_json::json!({
        "format": l.format.map(|f| f.as_str()), "delimiter": l.delimiter, "header": l.header, "s3": s3,
        "lenient": l.lenient,
    })
    .to_string()
}

fn location_from_json(uri: String, json: Option<&str>) -> Result<pluto_duck_domain::FileLocation, RepoError> {
    use pluto_duck_domain::{FileFormat, FileLocation, S3Settings};
    let v: serde_json::Value = serde_json::from_str(json.unwrap_or("{}")).map_err(bad)?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Ok(FileLocation {
        uri,
        format: v["format"].as_str().map(FileFormat::parse).transpose().map_err(bad)?,
        delimiter: text(&v["delimiter"]),
        header: v["header"].as_bool(),
        lenient: v["lenient"].as_bool().unwrap_or(false),
        s3: v.get("s3").filter(|s| s.is_object()).map(|s| S3Settings {
            region: text(&s["region"]),
            endpoint: text(&s["endpoint"]),
            path_style: s["path_style"].as_bool().unwrap_or(false),
            use_ssl: s["use_ssl"].as_bool().unwrap_or(true),
            key_id: text(&s["key_id"]),
            secret_key_secret: text(&s["secret_key_secret"]),
        }),
    })
}

impl SourceRow {
    pub(crate) fn into_source(self) -> Result<pluto_duck_domain::Source, RepoError> {
        use pluto_duck_domain::{Identifier, Source, SourceConnection, SourceKind};
        let kind = SourceKind::parse(&self.kind).map_err(bad)?;
        let connection = match self.path {
            Some(path) if kind.is_located() => {
                SourceConnection::Located(location_from_json(path, self.options.as_deref())?)
            }
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
            kind,
            description: self.description,
            connection,
            read_only: self.read_only,
            created_at: self.created_at,
        })
    }

    pub(crate) fn from_source(s: &pluto_duck_domain::Source) -> Self {
        use pluto_duck_domain::SourceConnection;
        let options = match &s.connection {
            SourceConnection::Located(l) => Some(location_to_json(l)),
            _ => None,
        };
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
            SourceConnection::Located(l) => (None, None, None, None, None, Some(l.uri.clone())),
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
            options,
        }
    }
}

pub(crate) const INGESTION_COLUMNS: &str = "project_id, target, doc, updated_at";

/// An ingestion catalog entry is stored as one JSON document keyed by project and target: both dialects read
/// and write it the same way.
pub(crate) fn ingestion_doc(i: &pluto_duck_domain::Ingestion) -> String {
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

pub(crate) fn ingestion_from_doc(project: String, doc: &str) -> Result<pluto_duck_domain::Ingestion, RepoError> {
    use pluto_duck_domain::{Identifier, IngestMode, Ingestion, SourceKind, TargetTable};
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let time = |k: &str| {
        DateTime::parse_from_rfc3339(v[k].as_str().unwrap_or_default())
            .map(|t| t.with_timezone(&Utc))
            .map_err(bad)
    };
    Ok(Ingestion {
        project: ProjectId::parse(project).map_err(bad)?,
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

/// An analysis's state as one JSON document, read and written the same way by both dialects.
pub(crate) fn analysis_state_doc(s: &pluto_duck_domain::AnalysisState) -> String {
    serde_json::json!({
        "definition_hash": s.definition_hash,
        "params_hash": s.params_hash,
        "last_run": s.last_run.as_ref().map(|r| r.to_string()),
        "last_status": s.last_status.as_str(),
        "finished_at": s.finished_at.map(|t| t.to_rfc3339()),
        "rows": s.rows,
        "error": s.error,
    })
    .to_string()
}

pub(crate) fn analysis_state_from_doc(
    project: &str,
    id: String,
    doc: &str,
) -> Result<pluto_duck_domain::AnalysisState, RepoError> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    Ok(pluto_duck_domain::AnalysisState {
        id: pluto_duck_domain::Identifier::parse(id).map_err(bad)?,
        project: ProjectId::parse(project).map_err(bad)?,
        definition_hash: v["definition_hash"].as_str().unwrap_or_default().to_owned(),
        params_hash: v["params_hash"].as_str().map(str::to_owned),
        last_run: v["last_run"].as_str().map(RunId::parse).transpose().map_err(bad)?,
        last_status: RunStatus::parse(v["last_status"].as_str().unwrap_or("failed")).map_err(bad)?,
        finished_at: v["finished_at"]
            .as_str()
            .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)))
            .transpose()
            .map_err(bad)?,
        rows: v["rows"].as_u64().unwrap_or(0),
        error: v["error"].as_str().map(str::to_owned),
    })
}

fn time_of(v: &serde_json::Value) -> Result<DateTime<Utc>, RepoError> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .map(|t| t.with_timezone(&Utc))
        .map_err(bad)
}

pub(crate) fn board_doc(b: &pluto_duck_domain::Board) -> String {
    serde_json::json!({
        "name": b.name, "description": b.description, "position": b.position, "document": b.document,
        "created_at": b.created_at.to_rfc3339(), "updated_at": b.updated_at.to_rfc3339(),
    })
    .to_string()
}

pub(crate) fn board_from_doc(project: &str, id: String, doc: &str) -> Result<pluto_duck_domain::Board, RepoError> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    Ok(pluto_duck_domain::Board {
        id,
        project: ProjectId::parse(project).map_err(bad)?,
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        description: v["description"].as_str().unwrap_or_default().to_owned(),
        position: v["position"].as_u64().and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        document: v["document"].as_str().unwrap_or("{}").to_owned(),
        created_at: time_of(&v["created_at"])?,
        updated_at: time_of(&v["updated_at"])?,
    })
}

pub(crate) fn item_doc(i: &pluto_duck_domain::BoardItem) -> String {
    use pluto_duck_domain::ItemSource;
    let source = match &i.source {
        None => serde_json::Value::Null,
        Some(ItemSource::Sql(sql)) => serde_json::json!({ "sql": sql }),
        Some(ItemSource::Analysis { id, params }) => serde_json::json!({ "analysis": id.as_str(), "params": params }),
    };
    serde_json::json!({
        "kind": i.kind.as_str(), "title": i.title, "x": i.x, "y": i.y, "w": i.w, "h": i.h, "config": i.config,
        "source": source, "refresh_secs": i.refresh_secs,
        "snapshot": i.snapshot.as_ref().map(|s| serde_json::json!({"ran_at": s.ran_at.to_rfc3339(), "data": s.data})),
        "last_error": i.last_error,
        "created_at": i.created_at.to_rfc3339(), "updated_at": i.updated_at.to_rfc3339(),
    })
    .to_string()
}

pub(crate) fn item_from_doc(
    project: &str,
    board: String,
    id: String,
    doc: &str,
) -> Result<pluto_duck_domain::BoardItem, RepoError> {
    use pluto_duck_domain::{Identifier, ItemKind, ItemSource, Snapshot};
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    let n = |k: &str| v[k].as_u64().and_then(|x| u32::try_from(x).ok()).unwrap_or(0);
    let source = match &v["source"] {
        serde_json::Value::Null => None,
        s if s["sql"].is_string() => Some(ItemSource::Sql(s["sql"].as_str().unwrap_or_default().to_owned())),
        s => Some(ItemSource::Analysis {
            id: Identifier::parse(s["analysis"].as_str().unwrap_or_default()).map_err(bad)?,
            params: s["params"].as_str().unwrap_or("{}").to_owned(),
        }),
    };
    let snapshot = match &v["snapshot"] {
        serde_json::Value::Null => None,
        s => Some(Snapshot {
            ran_at: time_of(&s["ran_at"])?,
            data: s["data"].as_str().unwrap_or_default().to_owned(),
        }),
    };
    Ok(pluto_duck_domain::BoardItem {
        id,
        board,
        project: ProjectId::parse(project).map_err(bad)?,
        kind: ItemKind::parse(v["kind"].as_str().unwrap_or_default()).map_err(bad)?,
        title: v["title"].as_str().unwrap_or_default().to_owned(),
        x: n("x"),
        y: n("y"),
        w: n("w"),
        h: n("h"),
        config: v["config"].as_str().unwrap_or("{}").to_owned(),
        source,
        refresh_secs: v["refresh_secs"].as_u64(),
        snapshot,
        last_error: v["last_error"].as_str().map(str::to_owned),
        created_at: time_of(&v["created_at"])?,
        updated_at: time_of(&v["updated_at"])?,
    })
}
