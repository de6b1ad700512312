//! Sources: a server's address and the name of its password's secret, a file's path, or a located source's
//! URI with its file options as JSON.

use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{
    FileFormat, FileLocation, Identifier, ProjectId, S3Settings, Source, SourceConnection, SourceKind,
};

use super::bad;
use crate::dialect::{conflict_or_err, execute, fetch_all, fetch_optional, map_err, Db, Ts};

macro_rules! columns {
    () => {
        "project_id, name, kind, description, host, port, database_name, user_name, password_secret, path, \
         read_only, created_at, options"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO sources (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sources WHERE project_id = $1 AND name = $2"
);
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sources WHERE CAST($1 AS TEXT) IS NULL OR project_id = $1 ORDER BY project_id, name"
);

#[derive(sqlx::FromRow)]
struct SourceRow {
    project_id: String,
    name: String,
    kind: String,
    description: String,
    host: Option<String>,
    port: Option<i32>,
    #[sqlx(rename = "database_name")]
    database: Option<String>,
    #[sqlx(rename = "user_name")]
    user: Option<String>,
    password_secret: Option<String>,
    path: Option<String>,
    read_only: bool,
    created_at: Ts,
    /// JSON: the file options of located sources.
    options: Option<String>,
}

impl SourceRow {
    fn into_source(self) -> Result<Source, RepoError> {
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
            created_at: self.created_at.0,
        })
    }

    fn from_source(s: &Source) -> Self {
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
            created_at: Ts(s.created_at),
            options,
        }
    }
}

fn location_to_json(l: &FileLocation) -> String {
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

fn location_from_json(uri: String, json: Option<&str>) -> Result<FileLocation, RepoError> {
    let v: serde_json::Value = serde_json::from_str(json.unwrap_or("{}")).map_err(bad)?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Ok(FileLocation {
        uri,
        format: v["format"].as_str().map(FileFormat::parse).transpose().map_err(bad)?,
        delimiter: text(&v["delimiter"]),
        lenient: v["lenient"].as_bool().unwrap_or(false),
        header: v["header"].as_bool(),
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

/// Conflict when the project has a source of that name.
pub(crate) async fn insert(db: &Db, source: &Source) -> Result<(), RepoError> {
    let r = SourceRow::from_source(source);
    execute!(
        db,
        sqlx::query(INSERT)
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
    )
    .map_err(conflict_or_err("source", &r.name))?;
    Ok(())
}

pub(crate) async fn update_description(
    db: &Db,
    project: &ProjectId,
    name: &Identifier,
    description: &str,
) -> Result<bool, RepoError> {
    let affected = execute!(
        db,
        sqlx::query("UPDATE sources SET description = $1 WHERE project_id = $2 AND name = $3")
            .bind(description)
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?;
    Ok(affected > 0)
}

pub(crate) async fn delete(db: &Db, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
    let affected = execute!(
        db,
        sqlx::query("DELETE FROM sources WHERE project_id = $1 AND name = $2")
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?;
    Ok(affected > 0)
}

pub(crate) async fn get(db: &Db, project: &ProjectId, name: &Identifier) -> Result<Option<Source>, RepoError> {
    fetch_optional!(
        db,
        sqlx::query_as::<_, SourceRow>(GET)
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?
    .map(SourceRow::into_source)
    .transpose()
}

/// Every project's when `project` is `None`; ordered by project, then name.
pub(crate) async fn list(db: &Db, project: Option<&ProjectId>) -> Result<Vec<Source>, RepoError> {
    fetch_all!(
        db,
        sqlx::query_as::<_, SourceRow>(LIST).bind(project.map(ProjectId::as_str))
    )
    .map_err(map_err)?
    .into_iter()
    .map(SourceRow::into_source)
    .collect()
}
