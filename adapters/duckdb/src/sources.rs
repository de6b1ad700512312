//! `SourceCatalog` on DuckDB ATTACH. Server passwords go into a temporary (in-memory) DuckDB secret, never
//! into the ATTACH text, and every error message is scrubbed of the password before it leaves.

use async_trait::async_trait;
use duckdb::Connection;
use pluto_duck_application::ports::{FileEntry, ScanInfo, SourceCatalog, SourceError, TableInfo, WarehouseError};
use pluto_duck_domain::{Column, FileLocation, LocationScheme, Source, SourceConnection, SourceKind};
use secrecy::{ExposeSecret, SecretString};

use crate::DuckDbWarehouse;

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn secret_name(alias: &str) -> String {
    format!("pd_source_{alias}")
}

/// The statements that attach `source` as `alias`.
fn attach_sql(source: &Source, alias: &str, password: Option<&str>) -> String {
    let ro = if source.read_only { ", READ_ONLY" } else { "" };
    match (&source.kind, &source.connection) {
        (
            SourceKind::Postgres | SourceKind::Mysql,
            SourceConnection::Server {
                host,
                port,
                database,
                user,
                ..
            },
        ) => {
            let ty = source.kind.as_str();
            let password = password.map(|p| format!(", PASSWORD {}", lit(p))).unwrap_or_default();
            format!(
                "CREATE OR REPLACE TEMPORARY SECRET {secret} (TYPE {ty}, HOST {host}, PORT {port}, DATABASE {db}, USER {user}{password});\n\
                 ATTACH '' AS {alias} (TYPE {ty}, SECRET {secret}{ro})",
                secret = ident(&secret_name(alias)),
                host = lit(host),
                db = lit(database),
                user = lit(user),
                alias = ident(alias),
            )
        }
        (SourceKind::Sqlite, SourceConnection::File { path }) => {
            format!("ATTACH {} AS {} (TYPE sqlite{ro})", lit(path), ident(alias))
        }
        (SourceKind::Duckdb, SourceConnection::File { path }) => {
            let opts = if source.read_only { " (READ_ONLY)" } else { "" };
            format!("ATTACH {} AS {}{opts}", lit(path), ident(alias))
        }
        _ => String::new(),
    }
}

fn scrub(msg: &str, password: Option<&str>) -> String {
    let mut out = msg.to_owned();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "***");
    }
    // Keep the first line: drivers append connection details below it.
    out.lines().next().unwrap_or_default().to_owned()
}

fn source_error(e: WarehouseError, password: Option<&str>) -> SourceError {
    match e {
        WarehouseError::MissingExtension(m) => SourceError::MissingExtension(m),
        WarehouseError::Sql { message, .. } | WarehouseError::Invalid(message) => {
            SourceError::Unreachable(scrub(&message, password))
        }
        other => SourceError::Internal(scrub(&other.to_string(), password)),
    }
}

fn internal(e: duckdb::Error) -> SourceError {
    SourceError::Internal(e.to_string())
}

/// The S3 secret of a located source, scoped to its bucket so sources with different credentials coexist.
fn s3_secret_sql(location: &FileLocation, alias: &str, secret_key: Option<&str>) -> Option<String> {
    let scope = location.s3_scope()?;
    let s3 = location.s3.clone().unwrap_or_default();
    let mut opts = vec!["TYPE s3".to_owned(), format!("SCOPE {}", lit(&scope))];
    if let Some(k) = &s3.key_id {
        opts.push(format!("KEY_ID {}", lit(k)));
    }
    if let Some(k) = secret_key {
        opts.push(format!("SECRET {}", lit(k)));
    }
    if let Some(r) = &s3.region {
        opts.push(format!("REGION {}", lit(r)));
    }
    if let Some(e) = &s3.endpoint {
        opts.push(format!("ENDPOINT {}", lit(e)));
    }
    if s3.path_style {
        opts.push("URL_STYLE 'path'".into());
    }
    opts.push(format!("USE_SSL {}", s3.use_ssl));
    Some(format!(
        "CREATE OR REPLACE TEMPORARY SECRET {} ({})",
        ident(&secret_name(alias)),
        opts.join(", ")
    ))
}

fn list_files_on(conn: &Connection, pattern: &str) -> Result<Vec<FileEntry>, SourceError> {
    let local = std::path::Path::new(pattern);
    let pattern = if !pattern.contains("://") && local.is_dir() {
        format!("{}/*", pattern.trim_end_matches('/'))
    } else if pattern.ends_with('/') {
        format!("{pattern}*")
    } else {
        pattern.to_owned()
    };
    let mut stmt = conn
        .prepare("SELECT file FROM glob(?) ORDER BY file")
        .map_err(internal)?;
    let files = stmt
        .query_map([&pattern], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SourceError::Unreachable(scrub(&e.to_string(), None)))?;
    Ok(files
        .into_iter()
        .filter(|f| !std::path::Path::new(f).is_dir())
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            FileEntry {
                bytes: meta.as_ref().map(|m| m.len()),
                modified: meta
                    .and_then(|m| m.modified().ok())
                    .map(chrono::DateTime::<chrono::Utc>::from),
                path,
            }
        })
        .collect())
}

/// A located source becomes an in-memory catalog holding one view per table, so it lists, previews and caches
/// like an attached database.
fn attach_located(
    conn: &Connection,
    location: &FileLocation,
    alias: &str,
    secret_key: Option<&str>,
    dir: &std::path::Path,
) -> Result<(), SourceError> {
    let fail = |e: duckdb::Error| source_error(crate::errors::map_duckdb_error(&e, "", 0, dir), secret_key);
    if let Some(sql) = s3_secret_sql(location, alias, secret_key) {
        conn.execute_batch(&sql).map_err(fail)?;
    }
    let local_dir = location.scheme() == LocationScheme::Local && std::path::Path::new(&location.uri).is_dir();
    if location.scheme() == LocationScheme::Local
        && !local_dir
        && !location.is_glob()
        && !std::path::Path::new(&location.uri).is_file()
    {
        return Err(SourceError::Unreachable(format!(
            "file {} does not exist",
            location.uri
        )));
    }
    let listing = if local_dir || (location.is_prefix() && location.scheme() == LocationScheme::S3) {
        Some(
            list_files_on(conn, &location.uri)?
                .into_iter()
                .map(|f| f.path)
                .collect::<Vec<_>>(),
        )
    } else {
        if location.is_glob() && list_files_on(conn, &location.uri)?.is_empty() {
            return Err(SourceError::Unreachable(format!("no file matches {}", location.uri)));
        }
        None
    };
    let tables = location
        .tables(listing.as_deref())
        .map_err(|e| SourceError::Invalid(e.to_string().trim_start_matches("invalid source ").to_owned()))?;
    conn.execute_batch(&format!("ATTACH ':memory:' AS {}", ident(alias)))
        .map_err(fail)?;
    for t in &tables {
        let sql = format!(
            "CREATE VIEW {}.main.{} AS SELECT * FROM {}",
            ident(alias),
            ident(t.name.as_str()),
            location.reader_sql(&t.files, t.format)
        );
        conn.execute_batch(&sql).map_err(fail)?;
    }
    Ok(())
}

fn attach_on(
    conn: &Connection,
    source: &Source,
    alias: &str,
    password: Option<&str>,
    dir: &std::path::Path,
) -> Result<(), SourceError> {
    if let SourceConnection::Located(location) = &source.connection {
        let result = attach_located(conn, location, alias, password, dir);
        if result.is_err() {
            let _ = detach_on(conn, alias);
        }
        return result;
    }
    if let SourceConnection::File { path } = &source.connection {
        if !std::path::Path::new(path).is_file() {
            return Err(SourceError::Unreachable(format!("file {path} does not exist")));
        }
    }
    let sql = attach_sql(source, alias, password);
    conn.execute_batch(&sql)
        .map_err(|e| source_error(crate::errors::map_duckdb_error(&e, "", 0, dir), password))
}

fn detach_on(conn: &Connection, alias: &str) -> Result<(), SourceError> {
    conn.execute_batch(&format!("DETACH DATABASE IF EXISTS {}", ident(alias)))
        .map_err(internal)?;
    conn.execute_batch(&format!(
        "DROP TEMPORARY SECRET IF EXISTS {}",
        ident(&secret_name(alias))
    ))
    .map_err(internal)
}

#[async_trait]
impl SourceCatalog for DuckDbWarehouse {
    async fn attach(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError> {
        let (source, alias, dir) = (source.clone(), source.catalog_alias(), self.extension_directory.clone());
        self.pool
            .run(move |conn| {
                let pw = password.as_ref().map(|p| p.expose_secret().to_owned());
                Ok(attach_on(conn, &source, &alias, pw.as_deref(), &dir))
            })
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    }

    async fn detach(&self, alias: &str) -> Result<(), SourceError> {
        let alias = alias.to_owned();
        self.pool
            .run(move |conn| Ok(detach_on(conn, &alias)))
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    }

    async fn test(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError> {
        let alias = format!("pd_test_{}", std::process::id() ^ rand_suffix());
        let (source, dir) = (source.clone(), self.extension_directory.clone());
        self.pool
            .run(move |conn| {
                let pw = password.as_ref().map(|p| p.expose_secret().to_owned());
                let result = attach_on(conn, &source, &alias, pw.as_deref(), &dir).and_then(|()| {
                    // Touch the catalog so a lazy connection really connects.
                    conn.execute_batch(&format!(
                        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = {}",
                        lit(&alias)
                    ))
                    .map_err(|e| SourceError::Unreachable(scrub(&e.to_string(), pw.as_deref())))
                });
                let _ = detach_on(conn, &alias);
                Ok(result)
            })
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    }

    async fn schemas(&self, alias: &str) -> Result<Vec<String>, SourceError> {
        let alias = alias.to_owned();
        self.pool
            .run(move |conn| {
                let mut stmt = conn
                    .prepare("SELECT DISTINCT schema_name FROM duckdb_schemas() WHERE database_name = ? ORDER BY 1")
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                let rows = stmt
                    .query_map([&alias], |r| r.get::<_, String>(0))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                Ok(rows)
            })
            .await
            .map_err(|e| source_error(e, None))
    }

    async fn tables(&self, alias: &str, schema: Option<String>) -> Result<Vec<TableInfo>, SourceError> {
        let alias = alias.to_owned();
        self.pool
            .run(move |conn| {
                let sql = "SELECT schema_name, table_name, 'table', estimated_size FROM duckdb_tables() \
                           WHERE database_name = $1 AND ($2::VARCHAR IS NULL OR schema_name = $2) \
                           UNION ALL SELECT schema_name, view_name, 'view', NULL FROM duckdb_views() \
                           WHERE database_name = $1 AND ($2::VARCHAR IS NULL OR schema_name = $2) AND NOT internal \
                           ORDER BY 1, 2";
                let mut stmt = conn.prepare(sql).map_err(|e| WarehouseError::Internal(e.to_string()))?;
                let rows = stmt
                    .query_map(duckdb::params![alias, schema], |r| {
                        Ok(TableInfo {
                            schema: r.get(0)?,
                            name: r.get(1)?,
                            kind: r.get(2)?,
                            estimated_rows: r.get::<_, Option<i64>>(3)?.and_then(|n| u64::try_from(n).ok()),
                        })
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                Ok(rows)
            })
            .await
            .map_err(|e| source_error(e, None))
    }

    async fn columns(&self, alias: &str, schema: &str, table: &str) -> Result<Vec<Column>, SourceError> {
        let (alias, schema, table) = (alias.to_owned(), schema.to_owned(), table.to_owned());
        self.pool
            .run(move |conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT column_name, data_type FROM duckdb_columns() \
                         WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
                    )
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                let rows = stmt
                    .query_map([&alias, &schema, &table], |r| {
                        Ok(Column {
                            name: r.get(0)?,
                            data_type: r.get(1)?,
                        })
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                Ok(rows)
            })
            .await
            .map_err(|e| source_error(e, None))
    }

    async fn list_files(&self, pattern: &str) -> Result<Vec<FileEntry>, SourceError> {
        self.list_files_impl(pattern).await
    }

    async fn explain(&self, sql: &str) -> Result<Vec<ScanInfo>, SourceError> {
        let (sql, dir) = (sql.to_owned(), self.extension_directory.clone());
        self.pool
            .run(move |conn| {
                let plan: Result<String, _> = conn.query_row(&format!("EXPLAIN (FORMAT json) {sql}"), [], |r| r.get(1));
                Ok(match plan {
                    Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                        .map(|v| scans_of(&v))
                        .map_err(|e| SourceError::Internal(format!("unreadable plan: {e}"))),
                    Err(e) => Err(source_error(crate::errors::map_duckdb_error(&e, &sql, 0, &dir), None)),
                })
            })
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    }
}

/// The scan operators of a JSON plan, depth first.
fn scans_of(plan: &serde_json::Value) -> Vec<ScanInfo> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = match plan {
        serde_json::Value::Array(nodes) => nodes.iter().rev().collect(),
        other => vec![other],
    };
    while let Some(node) = stack.pop() {
        let name = node["name"].as_str().unwrap_or_default().trim().to_owned();
        let info = &node["extra_info"];
        let list = |key: &str| -> Vec<String> {
            match &info[key] {
                serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                serde_json::Value::String(s) if !s.is_empty() => s.lines().map(str::to_owned).collect(),
                _ => Vec::new(),
            }
        };
        if name.ends_with("_SCAN") || name.starts_with("READ_") {
            let table = info["Table"].as_str().or(info["Function"].as_str()).map(str::to_owned);
            let (projections, filters) = (list("Projections"), list("Filters"));
            let remote_sql = match (name.as_str(), &table) {
                ("POSTGRES_SCAN" | "MYSQL_SCAN", Some(t)) => Some(format!(
                    "SELECT {} FROM {t}{}",
                    if projections.is_empty() {
                        "*".to_owned()
                    } else {
                        projections.join(", ")
                    },
                    if filters.is_empty() {
                        String::new()
                    } else {
                        format!(" WHERE {}", filters.join(" AND "))
                    }
                )),
                _ => None,
            };
            out.push(ScanInfo {
                operator: name,
                table,
                projections,
                filters,
                estimated_rows: info["Estimated Cardinality"]
                    .as_str()
                    .and_then(|s| s.trim_start_matches('~').parse().ok()),
                remote_sql,
            });
        }
        if let serde_json::Value::Array(children) = &node["children"] {
            stack.extend(children.iter().rev());
        }
    }
    out
}

impl DuckDbWarehouse {
    async fn list_files_impl(&self, pattern: &str) -> Result<Vec<FileEntry>, SourceError> {
        let pattern = pattern.to_owned();
        self.pool
            .run(move |conn| Ok(list_files_on(conn, &pattern)))
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_password_and_trailing_details() {
        let msg = "IO Error: Unable to connect: password=hunter2 rejected\nhost=x password=hunter2";
        assert_eq!(
            scrub(msg, Some("hunter2")),
            "IO Error: Unable to connect: password=*** rejected"
        );
    }
}
