//! The hybrid profile's shared warehouse: each project's tables live in a DuckLake whose catalog is a schema of
//! the control plane's PostgreSQL (`<schema_prefix><project>`) and whose data files are under
//! `<data_path>/<project>/` (S3-compatible storage or a shared directory). Every server attaches it as the
//! project's `warehouse` catalog; its local DuckDB file (`scratch.duckdb`) keeps scratch work only.
//!
//! One lake per project (not one lake with a schema per project): a project's SQL reaches its own lake's
//! schemas, snapshots and files and nothing else, the same rule as one DuckDB file per project in the local
//! profile, and snapshot ids (time travel) are the project's own.

use duckdb::Connection;
use pluto_duck_application::ports::{LakeSnapshot, WarehouseError};
use pluto_duck_domain::{ProjectId, PROJECT_CATALOG};
use secrecy::{ExposeSecret, SecretString};

use crate::sql::{ident, lit};

/// The name the lake's catalog database is attached under; names starting with `__pd` are Pluto-Duck's own and
/// the sandbox rules refuse any reference to this one.
pub const LAKE_METADATA_CATALOG: &str = "__pd_lake_meta";

/// Where the lake's catalog is: the control plane's PostgreSQL.
#[derive(Clone)]
pub struct LakePostgres {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<SecretString>,
}

/// An S3-compatible object store holding the lake's data files.
#[derive(Clone)]
pub struct LakeS3 {
    /// `host:port` (no scheme) for MinIO or another S3-compatible server; `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// Buckets as path segments (`<endpoint>/<bucket>/<key>`), as MinIO expects.
    pub path_style: bool,
    pub use_ssl: bool,
}

#[derive(Clone)]
pub struct LakeConfig {
    pub postgres: LakePostgres,
    /// `s3://bucket/prefix` or a directory every server shares; each project's files go under `<project>/`.
    pub data_path: String,
    /// Credentials for an `s3://` data path.
    pub s3: Option<LakeS3>,
    /// A project's catalog is the PostgreSQL schema `<schema_prefix><project>`.
    pub schema_prefix: String,
}

impl std::fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeConfig")
            .field("host", &self.postgres.host)
            .field("port", &self.postgres.port)
            .field("dbname", &self.postgres.dbname)
            .field("data_path", &self.data_path)
            .field("schema_prefix", &self.schema_prefix)
            .finish_non_exhaustive()
    }
}

impl LakeConfig {
    /// The project's data files' prefix, with a trailing `/` (DuckDB matches allowed directories by prefix).
    pub fn project_data_path(&self, project: &ProjectId) -> String {
        format!("{}/{}/", self.data_path.trim_end_matches('/'), project.as_str())
    }

    /// The PostgreSQL schema holding the project's lake catalog.
    pub fn metadata_schema(&self, project: &ProjectId) -> String {
        format!("{}{}", self.schema_prefix, project.as_str())
    }

    fn is_s3(&self) -> bool {
        self.data_path.starts_with("s3://")
    }
}

/// Attaches the project's lake as `warehouse` and makes it the connection's default catalog. The credentials go
/// through temporary secrets: the PostgreSQL one is dropped once attached (so a source's own PostgreSQL attach
/// never picks it up), the S3 one is scoped to the project's prefix. Nothing here is logged.
pub(crate) fn attach_lake(conn: &Connection, lake: &LakeConfig, project: &ProjectId) -> Result<(), WarehouseError> {
    let data = lake.project_data_path(project);
    s3_secret(conn, lake, &data)?;
    let pg = &lake.postgres;
    let password = pg
        .password
        .as_ref()
        .map(|p| format!(", PASSWORD {}", lit(p.expose_secret())))
        .unwrap_or_default();
    let secret = format!(
        "CREATE OR REPLACE SECRET __pd_lake_pg (TYPE postgres, HOST {}, PORT {}, DATABASE {}, USER {}{password})",
        lit(&pg.host),
        pg.port,
        lit(&pg.dbname),
        lit(&pg.user)
    );
    conn.execute_batch(&secret)
        .map_err(|e| WarehouseError::Internal(format!("the lake's catalog secret: {}", scrub(&e.to_string(), lake))))?;
    let attach = format!(
        "ATTACH IF NOT EXISTS 'ducklake:postgres:' AS {catalog} (DATA_PATH {data}, METADATA_SCHEMA {schema}, \
         METADATA_CATALOG {meta}, METADATA_PARAMETERS MAP {{'SECRET': '__pd_lake_pg'}})",
        catalog = ident(PROJECT_CATALOG),
        data = lit(&data),
        schema = lit(&lake.metadata_schema(project)),
        meta = lit(LAKE_METADATA_CATALOG),
    );
    let mut attached = conn.execute_batch(&attach);
    // Two servers creating a project's lake at once: one wins, the other finds it made and attaches it.
    for _ in 0..3 {
        match &attached {
            Err(e) if e.to_string().contains("already exists") || e.to_string().contains("duplicate key") => {
                std::thread::sleep(std::time::Duration::from_millis(200));
                attached = conn.execute_batch(&attach);
            }
            _ => break,
        }
    }
    let _ = conn.execute_batch("DROP SECRET IF EXISTS __pd_lake_pg");
    attached.map_err(|e| {
        WarehouseError::Unavailable(format!(
            "cannot attach project {project}'s lake: {}",
            scrub(&e.to_string(), lake)
        ))
    })?;
    use_lake(conn)
}

/// The object store's credentials as a temporary secret scoped to `scope` (nothing for a directory data path).
fn s3_secret(conn: &Connection, lake: &LakeConfig, scope: &str) -> Result<(), WarehouseError> {
    let Some(s3) = lake.s3.as_ref().filter(|_| lake.is_s3()) else {
        return Ok(());
    };
    let endpoint = s3
        .endpoint
        .as_deref()
        .map(|e| format!(", ENDPOINT {}", lit(e)))
        .unwrap_or_default();
    let sql = format!(
        "CREATE OR REPLACE SECRET __pd_lake_s3 (TYPE s3, KEY_ID {}, SECRET {}, REGION {}{endpoint}, URL_STYLE {}, \
         USE_SSL {}, SCOPE {})",
        lit(&s3.access_key_id),
        lit(s3.secret_access_key.expose_secret()),
        lit(&s3.region),
        lit(if s3.path_style { "path" } else { "vhost" }),
        s3.use_ssl,
        lit(scope)
    );
    conn.execute_batch(&sql)
        .map_err(|e| WarehouseError::Unavailable(format!("the lake's object store: {}", scrub(&e.to_string(), lake))))
}

/// Makes the lake the connection's default catalog (each new connection starts on the local file).
pub(crate) fn use_lake(conn: &Connection) -> Result<(), WarehouseError> {
    conn.execute_batch(&format!("USE {}", ident(PROJECT_CATALOG)))
        .map_err(|e| WarehouseError::Internal(format!("cannot use the lake: {e}")))
}

/// The directories the sandbox's SQL may read besides its own: the project's data files.
pub(crate) fn allowed_directories(lake: &LakeConfig, project: &ProjectId) -> Vec<String> {
    vec![lake.project_data_path(project)]
}

/// Never echo a credential back in an error.
fn scrub(message: &str, lake: &LakeConfig) -> String {
    let mut out = message.to_owned();
    if let Some(p) = &lake.postgres.password {
        if !p.expose_secret().is_empty() {
            out = out.replace(p.expose_secret(), "***");
        }
    }
    if let Some(s3) = &lake.s3 {
        if !s3.secret_access_key.expose_secret().is_empty() {
            out = out.replace(s3.secret_access_key.expose_secret(), "***");
        }
    }
    out
}

/// A DuckLake commit lost a race with another writer: the transaction was rolled back whole, so it may be
/// tried again.
pub(crate) fn is_commit_conflict(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("conflict") && (m.contains("transaction") || m.contains("commit") || m.contains("ducklake")))
        || m.contains("could not serialize access")
        || m.contains("duplicate key value violates unique constraint \"ducklake_")
}

/// How often a statement is tried when its DuckLake commit conflicts, and how long to wait between tries.
pub(crate) const CONFLICT_ATTEMPTS: u32 = 5;

pub(crate) fn conflict_backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(20u64 << attempt.min(6))
}

/// The project lake's snapshots that touched `table` (`schema.name`, or `name` in `main`; all when `None`),
/// oldest first. A table replaced or altered keeps its history: every lake table id it had counts.
pub(crate) fn snapshots(
    conn: &Connection,
    lake: &LakeConfig,
    project: &ProjectId,
    table: Option<&str>,
) -> Result<Vec<LakeSnapshot>, WarehouseError> {
    let err = |e: duckdb::Error| WarehouseError::Internal(format!("lake snapshots: {e}"));
    let sql = format!(
        "SELECT snapshot_id, CAST(snapshot_time AS VARCHAR), schema_version, CAST(to_json(changes) AS VARCHAR) \
         FROM ducklake_snapshots({}) ORDER BY snapshot_id",
        lit(PROJECT_CATALOG)
    );
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    type Row = (i64, String, i64, Option<String>);
    let rows: Vec<Row> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(err)?;
    let wanted = match table {
        None => None,
        Some(t) => {
            let (schema, name) = t.split_once('.').unwrap_or(("main", t));
            let meta = format!(
                "{}.{}",
                ident(LAKE_METADATA_CATALOG),
                ident(&lake.metadata_schema(project))
            );
            let sql = format!(
                "SELECT CAST(t.table_id AS VARCHAR) FROM {meta}.ducklake_table t JOIN {meta}.ducklake_schema s \
                 USING (schema_id) WHERE s.schema_name = ? AND t.table_name = ?"
            );
            let mut stmt = conn.prepare(&sql).map_err(err)?;
            let ids: Vec<String> = stmt
                .query_map([schema, name], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(err)?;
            if ids.is_empty() {
                // Never in the lake: no snapshot touched it.
                return Ok(Vec::new());
            }
            Some((format!("{schema}.{name}"), ids))
        }
    };
    Ok(rows
        .into_iter()
        .filter_map(|(id, at, schema_version, changes)| {
            let changes: serde_json::Value = changes
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(serde_json::Value::Null);
            if let Some((qualified, ids)) = &wanted {
                if !touches(&changes, qualified, ids) {
                    return None;
                }
            }
            Some(LakeSnapshot {
                id: u64::try_from(id).unwrap_or_default(),
                committed_at: at,
                schema_version: u64::try_from(schema_version).unwrap_or_default(),
                changes,
            })
        })
        .collect())
}

/// Whether a snapshot's change set names the table: by name where tables are created, by lake id elsewhere.
fn touches(changes: &serde_json::Value, qualified: &str, ids: &[String]) -> bool {
    let Some(map) = changes.as_object() else {
        return false;
    };
    map.iter().any(|(kind, items)| {
        items.as_array().is_some_and(|items| {
            items.iter().filter_map(|i| i.as_str()).any(|item| {
                if kind == "tables_created" {
                    item == qualified
                } else {
                    ids.iter().any(|id| id == item)
                }
            })
        })
    })
}

impl crate::DuckDbWarehouse {
    /// Whether this warehouse is the hybrid profile's shared lake.
    pub fn is_lake(&self) -> bool {
        self.inner.settings.lake.is_some()
    }

    /// Checks that the lake's object store answers (an `s3://` data path is listed; a directory is created and
    /// written), in an engine of its own. A no-op for a local warehouse.
    pub async fn check_lake(&self) -> Result<(), WarehouseError> {
        let Some(lake) = self.inner.settings.lake.clone() else {
            return Ok(());
        };
        let settings = self.inner.settings.clone();
        tokio::task::spawn_blocking(move || {
            if !lake.is_s3() {
                let dir = std::path::Path::new(&lake.data_path);
                std::fs::create_dir_all(dir)
                    .and_then(|()| std::fs::write(dir.join(".pluto-duck-check"), b"ok"))
                    .map_err(|e| WarehouseError::Unavailable(format!("lake data path {}: {e}", dir.display())))?;
                return Ok(());
            }
            let instance = crate::instance::Instance::open(None, &settings)?;
            instance.with_root(|conn| {
                let bucket = lake.data_path["s3://".len()..]
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                s3_secret(conn, &lake, &format!("s3://{bucket}/"))?;
                let sql = format!("SELECT count(*) FROM glob({})", lit(&format!("s3://{bucket}/*")));
                conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).map(drop).map_err(|e| {
                    WarehouseError::Unavailable(format!(
                        "the lake's object store ({}) does not answer: {}",
                        lake.data_path,
                        scrub(e.to_string().lines().next().unwrap_or_default(), &lake)
                    ))
                })
            })?
        })
        .await
        .map_err(|e| WarehouseError::Internal(e.to_string()))?
    }
}

#[async_trait::async_trait]
impl pluto_duck_application::ports::Lake for crate::DuckDbWarehouse {
    async fn snapshots(&self, project: &ProjectId, table: Option<String>) -> Result<Vec<LakeSnapshot>, WarehouseError> {
        let lake = self.inner.settings.lake.clone().ok_or_else(|| {
            WarehouseError::Invalid(
                "snapshots and time travel need the hybrid profile's shared warehouse (DuckLake); \
                 this server's warehouse is a local DuckDB file"
                    .into(),
            )
        })?;
        let p = project.clone();
        self.inner
            .sandbox(project)
            .run(&self.inner.permits, move |conn| {
                snapshots(conn, &lake, &p, table.as_deref())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_found_by_name_where_created_and_by_id_elsewhere() {
        let c = serde_json::json!({"tables_created": ["s.t"], "inlined_insert": ["2"]});
        assert!(touches(&c, "s.t", &["9".into()]));
        let c = serde_json::json!({"tables_inserted_into": ["2"]});
        assert!(touches(&c, "s.t", &["2".into()]));
        assert!(!touches(&c, "s.t", &["3".into()]));
        let c = serde_json::json!({"schemas_created": ["s"]});
        assert!(!touches(&c, "s.t", &["2".into()]));
    }

    #[test]
    fn conflicts_are_told_from_other_errors() {
        assert!(is_commit_conflict(
            "TransactionContext Error: Failed to commit: Transaction conflict - attempting to insert into table"
        ));
        assert!(!is_commit_conflict("Catalog Error: Table with name t does not exist!"));
    }

    #[test]
    fn each_project_has_its_own_schema_and_prefix() {
        let lake = LakeConfig {
            postgres: LakePostgres {
                host: "h".into(),
                port: 5432,
                dbname: "d".into(),
                user: "u".into(),
                password: Some(SecretString::from("pw")),
            },
            data_path: "s3://b/lake/".into(),
            s3: None,
            schema_prefix: "lake_".into(),
        };
        let p = ProjectId::parse("sales").unwrap();
        assert_eq!(lake.project_data_path(&p), "s3://b/lake/sales/");
        assert_eq!(lake.metadata_schema(&p), "lake_sales");
        assert_eq!(scrub("password pw failed", &lake), "password *** failed");
        assert!(!format!("{lake:?}").contains("pw"));
    }
}
