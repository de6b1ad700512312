//! Attaching sources on a connection. Server passwords go into a temporary (in-memory) DuckDB secret, never into
//! the ATTACH text, and every error message is scrubbed of the password before it leaves. Files given as SQLite
//! or DuckDB databases are checked by their header before anything opens them.

use std::path::Path;

use duckdb::Connection;
use pluto_duck_application::ports::{FileEntry, SourceError, WarehouseError};
use pluto_duck_domain::{FileFormat, FileLocation, LocationScheme, Source, SourceConnection, SourceKind};

use crate::errors::map_duckdb_error;
use crate::sql::{ident, lit};

fn secret_name(alias: &str) -> String {
    format!("pd_source_{alias}")
}

/// The statements that attach a database source as `alias`.
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

pub(crate) fn scrub(msg: &str, password: Option<&str>) -> String {
    let mut out = msg.to_owned();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "***");
    }
    // Keep the first line: drivers append connection details below it.
    out.lines().next().unwrap_or_default().to_owned()
}

pub(crate) fn source_error(e: WarehouseError, password: Option<&str>) -> SourceError {
    match e {
        WarehouseError::MissingExtension(m) => SourceError::MissingExtension(m),
        WarehouseError::Forbidden(m) => SourceError::Forbidden(scrub(&m, password)),
        WarehouseError::Sql { message, .. } | WarehouseError::Invalid(message) => {
            SourceError::Unreachable(scrub(&message, password))
        }
        WarehouseError::Conflict(m) => SourceError::Busy(m),
        other => SourceError::Internal(scrub(&other.to_string(), password)),
    }
}

pub(crate) fn internal(e: duckdb::Error) -> SourceError {
    SourceError::Internal(e.to_string())
}

/// A file given as a SQLite or DuckDB database must start like one: anything else (a CSV, a text file) is
/// refused before the engine opens it, so it can never break a sandbox. An empty file is a new database.
pub(crate) fn check_database_file(kind: SourceKind, path: &str) -> Result<(), SourceError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| SourceError::Unreachable(format!("cannot read {path}: {e}")))?;
    if read == 0 {
        return Ok(());
    }
    let ok = match kind {
        SourceKind::Sqlite => read == 16 && &head == b"SQLite format 3\0",
        SourceKind::Duckdb => read >= 12 && &head[8..12] == b"DUCK",
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(SourceError::Unreachable(format!(
            "{path} is not a {} database file (its header says otherwise); attach a CSV or Parquet file as kind `file`",
            if kind == SourceKind::Sqlite { "SQLite" } else { "DuckDB" }
        )))
    }
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

pub(crate) fn list_files_on(conn: &Connection, pattern: &str) -> Result<Vec<FileEntry>, SourceError> {
    let local = Path::new(pattern);
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
        .map_err(|e| {
            let msg = e.to_string();
            if msg.contains("Permission Error") {
                SourceError::Forbidden(scrub(&msg, None))
            } else {
                SourceError::Unreachable(scrub(&msg, None))
            }
        })?;
    Ok(files
        .into_iter()
        .filter(|f| !Path::new(f).is_dir())
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

/// How CSV files are read: strictly (a malformed row fails the read) unless lenient is asked.
#[derive(Debug, Clone, Default)]
pub(crate) struct CsvOptions {
    pub delimiter: Option<String>,
    pub header: Option<bool>,
    pub lenient: bool,
    /// Lenient reads keep their rejected rows in this temporary table.
    pub rejects_table: Option<String>,
}

/// The reader expression for `files` in `format`.
pub(crate) fn reader_sql(files: &[String], format: FileFormat, union: bool, csv: &CsvOptions) -> String {
    let list = if files.len() == 1 {
        lit(&files[0])
    } else {
        format!("[{}]", files.iter().map(|f| lit(f)).collect::<Vec<_>>().join(", "))
    };
    let mut opts = Vec::new();
    if union {
        opts.push("union_by_name = true".to_owned());
    }
    let reader = match format {
        FileFormat::Csv => {
            if let Some(d) = &csv.delimiter {
                opts.push(format!("delim = {}", lit(d)));
            }
            if let Some(h) = csv.header {
                opts.push(format!("header = {h}"));
            }
            // RFC 4180 quoting; without it the sniffer reads an unterminated quote as text.
            opts.push("quote = '\"'".into());
            if csv.lenient {
                opts.push("ignore_errors = true".into());
                if let Some(t) = &csv.rejects_table {
                    opts.push("store_rejects = true".into());
                    opts.push(format!("rejects_table = {}", lit(t)));
                    opts.push(format!("rejects_scan = {}", lit(&format!("{t}_scan"))));
                }
            } else {
                opts.push("strict_mode = true".into());
                opts.push("null_padding = false".into());
            }
            "read_csv"
        }
        FileFormat::Parquet => "read_parquet",
        FileFormat::Json => "read_json",
    };
    let opts: String = opts.iter().map(|o| format!(", {o}")).collect();
    format!("{reader}({list}{opts})")
}

/// The delimiter to read a CSV with. The sniffer, facing rows of different widths, may settle on a delimiter that
/// makes one column out of each line (`id,qty,name`); then the header's most frequent separator is the one.
pub(crate) fn csv_delimiter(conn: &Connection, file: &str, given: Option<&str>) -> Option<String> {
    if let Some(d) = given {
        return Some(d.to_owned());
    }
    let sniffed: Result<(String, String), _> = conn.query_row(
        &format!(
            "SELECT Delimiter, (Columns[1]).name FROM sniff_csv({}, quote = '\"') WHERE len(Columns) = 1",
            lit(file)
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let (_, only_column) = sniffed.ok()?;
    [',', ';', '\t', '|']
        .into_iter()
        .map(|c| (only_column.matches(c).count(), c))
        .filter(|(n, _)| *n > 0)
        .max()
        .map(|(_, c)| c.to_string())
}

/// The first line of a local, uncompressed file.
fn first_line(file: &str) -> Option<String> {
    use std::io::BufRead;
    if file.contains("://") || file.ends_with(".gz") || file.ends_with(".zst") {
        return None;
    }
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(file).ok()?)
        .read_line(&mut line)
        .ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Why a strict CSV read failed, with the file, line and reason: the first row a lenient read of it rejects. The
/// lenient read takes the header's columns as text and skips the sniffer, which gives up on such files.
pub(crate) fn csv_failure(conn: &Connection, file: &str, csv: &CsvOptions, engine_message: &str) -> String {
    let fallback = || format!("{file}: {}", engine_message.lines().next().unwrap_or(engine_message));
    let Some(header) = first_line(file) else {
        return fallback();
    };
    let delim = csv.delimiter.clone().unwrap_or_else(|| ",".into());
    let names: Vec<String> = if csv.header == Some(false) {
        (0..header.split(delim.as_str()).count())
            .map(|i| format!("column{i}"))
            .collect()
    } else {
        header
            .split(delim.as_str())
            .map(|n| n.trim().trim_matches('"').to_owned())
            .collect()
    };
    let columns = names
        .iter()
        .map(|n| format!("{}: 'VARCHAR'", lit(n)))
        .collect::<Vec<_>>()
        .join(", ");
    let table = format!("pd_rejects_{}", std::process::id());
    let probe = format!(
        "SELECT count(*) FROM read_csv({}, delim = {}, quote = '\"', header = {}, auto_detect = false, \
         columns = {{{columns}}}, ignore_errors = true, store_rejects = true, rejects_table = {}, rejects_scan = {})",
        lit(file),
        lit(&delim),
        csv.header != Some(false),
        lit(&table),
        lit(&format!("{table}_scan"))
    );
    let first = conn.execute_batch(&probe).ok().and_then(|()| {
        conn.query_row(
            &format!(
                "SELECT line, error_type, error_message, csv_line FROM {} ORDER BY line LIMIT 1",
                ident(&table)
            ),
            [],
            |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .ok()
    });
    let _ = conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {t}; DROP TABLE IF EXISTS {s}",
        t = ident(&table),
        s = ident(&format!("{table}_scan"))
    ));
    match first {
        Some((line, kind, message, text)) => format!(
            "{file} line {}: {} ({}){}; nothing was loaded (ask for lenient CSV reading to skip bad rows)",
            line.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
            kind.to_lowercase(),
            message.unwrap_or_default().lines().next().unwrap_or_default(),
            text.and_then(|t| t
                .lines()
                .next()
                .map(|l| format!(": {}", l.chars().take(120).collect::<String>())))
                .unwrap_or_default()
        ),
        None => fallback(),
    }
}

/// A located source becomes an in-memory catalog holding one view per table, so it lists, previews and caches
/// like an attached database. Called again, it brings the views up to date with the files (a folder that gained
/// files gains tables).
pub(crate) fn attach_located(
    conn: &Connection,
    location: &FileLocation,
    alias: &str,
    secret_key: Option<&str>,
    dir: &Path,
    refresh: bool,
) -> Result<(), SourceError> {
    let fail = |e: duckdb::Error| source_error(map_duckdb_error(&e, "", 0, dir), secret_key);
    if !refresh {
        if let Some(sql) = s3_secret_sql(location, alias, secret_key) {
            conn.execute_batch(&sql).map_err(fail)?;
        }
    }
    let local_dir = location.scheme() == LocationScheme::Local && Path::new(&location.uri).is_dir();
    if location.scheme() == LocationScheme::Local
        && !local_dir
        && !location.is_glob()
        && !Path::new(&location.uri).is_file()
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
    if !refresh {
        conn.execute_batch(&format!("ATTACH ':memory:' AS {}", ident(alias)))
            .map_err(fail)?;
    } else {
        // Views of files that went away go too.
        let wanted: Vec<String> = tables.iter().map(|t| t.name.to_string()).collect();
        let mut stmt = conn
            .prepare("SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal")
            .map_err(internal)?;
        let existing: Vec<String> = stmt
            .query_map([alias], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(internal)?;
        for gone in existing.iter().filter(|v| !wanted.contains(v)) {
            conn.execute_batch(&format!("DROP VIEW IF EXISTS {}.main.{}", ident(alias), ident(gone)))
                .map_err(fail)?;
        }
    }
    for t in &tables {
        let csv = CsvOptions {
            delimiter: match t.format {
                FileFormat::Csv => csv_delimiter(conn, &t.files[0], location.delimiter.as_deref()),
                _ => None,
            },
            header: location.header,
            lenient: location.lenient,
            rejects_table: None,
        };
        let union = t.files.len() > 1 || location.is_glob();
        let sql = format!(
            "CREATE OR REPLACE VIEW {}.main.{} AS SELECT * FROM {}",
            ident(alias),
            ident(t.name.as_str()),
            reader_sql(&t.files, t.format, union, &csv)
        );
        if let Err(e) = conn.execute_batch(&sql) {
            let msg = e.to_string();
            if t.format == FileFormat::Csv && t.files.len() == 1 && !t.files[0].contains(['*', '?']) {
                return Err(SourceError::Invalid(csv_failure(conn, &t.files[0], &csv, &msg)));
            }
            return Err(fail(e));
        }
    }
    Ok(())
}

/// Attaches `source` as `alias`; with `verify`, checks that its catalog can be listed (a lazy driver connects, a
/// file that is not a database says so now rather than in every later query). Listing loads a server's whole
/// catalog with its statistics, so a sandbox verifies only files: servers were tried before they were stored.
pub(crate) fn attach_on(
    conn: &Connection,
    source: &Source,
    alias: &str,
    password: Option<&str>,
    dir: &Path,
    verify: bool,
) -> Result<(), SourceError> {
    let result = attach_unchecked(conn, source, alias, password, dir).and_then(|()| {
        if !verify {
            return Ok(());
        }
        conn.query_row(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ?",
            [alias],
            |r| r.get::<_, i64>(0),
        )
        .map(drop)
        .map_err(|e| source_error(map_duckdb_error(&e, "", 0, dir), password))
    });
    if result.is_err() {
        let _ = detach_on(conn, alias);
    }
    result
}

fn attach_unchecked(
    conn: &Connection,
    source: &Source,
    alias: &str,
    password: Option<&str>,
    dir: &Path,
) -> Result<(), SourceError> {
    match &source.connection {
        SourceConnection::Located(location) => attach_located(conn, location, alias, password, dir, false),
        SourceConnection::File { path } => {
            if !Path::new(path).is_file() {
                return Err(SourceError::Unreachable(format!("file {path} does not exist")));
            }
            check_database_file(source.kind, path)?;
            conn.execute_batch(&attach_sql(source, alias, password))
                .map_err(|e| source_error(map_duckdb_error(&e, "", 0, dir), password))
        }
        SourceConnection::Server { .. } => conn
            .execute_batch(&attach_sql(source, alias, password))
            .map_err(|e| source_error(map_duckdb_error(&e, "", 0, dir), password)),
    }
}

pub(crate) fn detach_on(conn: &Connection, alias: &str) -> Result<(), SourceError> {
    conn.execute_batch(&format!("DETACH DATABASE IF EXISTS {}", ident(alias)))
        .map_err(internal)?;
    conn.execute_batch(&format!(
        "DROP TEMPORARY SECRET IF EXISTS {}",
        ident(&secret_name(alias))
    ))
    .map_err(internal)
}

/// What a sandbox must allow its SQL to read for a located source: directories (prefixes) and single paths.
pub(crate) fn allowances(source: &Source) -> (Vec<String>, Vec<String>) {
    let SourceConnection::Located(location) = &source.connection else {
        return (Vec::new(), Vec::new());
    };
    let as_dir = |p: &str| format!("{}/", p.trim_end_matches('/'));
    match location.scheme() {
        LocationScheme::Http => (Vec::new(), vec![location.uri.clone()]),
        LocationScheme::S3 if location.is_glob() || location.is_prefix() => {
            (vec![as_dir(&location.base_path())], Vec::new())
        }
        LocationScheme::S3 => (Vec::new(), vec![location.uri.clone()]),
        LocationScheme::Local => {
            let base = location.base_path();
            let resolved = std::fs::canonicalize(&base)
                .map(|p| p.display().to_string())
                .unwrap_or(base);
            if location.is_glob() || Path::new(&resolved).is_dir() {
                (vec![as_dir(&resolved)], Vec::new())
            } else {
                (Vec::new(), vec![resolved])
            }
        }
    }
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

    #[test]
    fn files_must_start_like_the_database_they_claim_to_be() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("x.sqlite");
        std::fs::write(&csv, "id,name\n1,a\n").unwrap();
        let err = check_database_file(SourceKind::Sqlite, csv.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a SQLite database"), "{err}");
        assert!(check_database_file(SourceKind::Duckdb, csv.to_str().unwrap()).is_err());
        let sqlite = dir.path().join("ok.sqlite");
        std::fs::write(&sqlite, b"SQLite format 3\0rest-of-header").unwrap();
        assert!(check_database_file(SourceKind::Sqlite, sqlite.to_str().unwrap()).is_ok());
        let empty = dir.path().join("new.sqlite");
        std::fs::write(&empty, b"").unwrap();
        assert!(check_database_file(SourceKind::Sqlite, empty.to_str().unwrap()).is_ok());
    }
}
