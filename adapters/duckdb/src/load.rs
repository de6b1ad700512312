//! Loads: every part staged, then the mode applied in one transaction. Parts of a stored source are read in the
//! project's sandbox into a staging table beside the target. Parts of an inline source are read in its private
//! instance into a staging file inside the project's files, which the sandbox then attaches read-only: the
//! sandbox never needs to reach the inline source itself.

use std::path::{Path, PathBuf};

use duckdb::Connection;
use pluto_duck_application::ports::{
    CsvStrictness, Load, LoadFrom, LoadMode, LoadOutcome, LoadPart, LoadProgress, PartRead, ProgressFn, RejectedRow,
    WarehouseError,
};
use pluto_duck_domain::{FileFormat, ProjectId, Relation};
use tokio_util::sync::CancellationToken;

use crate::attach::{csv_delimiter, csv_failure, reader_sql, CsvOptions};
use crate::errors::map_duckdb_error;
use crate::materialize::transaction;
use crate::sql::{ident, lit, relation as qualified};
use crate::{run_on, Inner, InterruptOnCancel};

const STAGING_PREFIX: &str = "__pd_ingest_";
const SAMPLES: usize = 5;

fn engine(e: duckdb::Error, sql: &str) -> WarehouseError {
    map_duckdb_error(&e, sql, 0, Path::new(""))
}

fn staging_name(tag: &str) -> String {
    format!(
        "{STAGING_PREFIX}{}",
        tag.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>()
    )
}

pub(crate) async fn load(
    inner: &Inner,
    project: &ProjectId,
    load: Load,
    progress: ProgressFn,
    cancel: CancellationToken,
) -> Result<LoadOutcome, WarehouseError> {
    let lock = inner.target_lock(project, &load.target);
    let _one_at_a_time = lock.lock().await;
    let sandbox = inner.sandbox(project);
    let staging = Relation {
        schema: load.target.schema.clone(),
        name: pluto_duck_domain::Identifier::sanitize(&staging_name(&load.tag)),
    };
    let runtime = tokio::runtime::Handle::current();
    match load.from {
        LoadFrom::Sandbox => {
            let (cancel2, rt) = (cancel.clone(), runtime.clone());
            sandbox
                .run(&inner.permits, move |conn| {
                    let _interrupt = InterruptOnCancel::watch(conn, &cancel2, &rt);
                    let staged = stage(
                        conn,
                        &load,
                        &qualified(&staging),
                        Some(&load.target),
                        &progress,
                        &cancel2,
                    );
                    let outcome = staged.and_then(|mut out| {
                        out.rows = apply(conn, &load.target, &staging, &load.mode)?;
                        Ok(out)
                    });
                    if outcome.is_err() {
                        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", qualified(&staging)));
                    }
                    outcome.map_err(|e| cancelled_or(e, &cancel2))
                })
                .await
        }
        LoadFrom::Private(id) => {
            let private = inner.private(id)?;
            let files = sandbox
                .files_dir()
                .ok_or_else(|| WarehouseError::Unavailable("loads of inline sources need a data directory".into()))?;
            let stage_file = files
                .join(".staging")
                .join(format!("{}.duckdb", staging_name(&load.tag)));
            let result = load_private(
                inner,
                &sandbox,
                private,
                load,
                &stage_file,
                staging,
                progress,
                cancel,
                runtime,
            )
            .await;
            let _ = tokio::fs::remove_file(&stage_file).await;
            let _ = tokio::fs::remove_file(stage_file.with_extension("duckdb.wal")).await;
            result
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn load_private(
    inner: &Inner,
    sandbox: &crate::sandbox::Sandbox,
    private: std::sync::Arc<crate::Private>,
    load: Load,
    stage_file: &Path,
    staging: Relation,
    progress: ProgressFn,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
) -> Result<LoadOutcome, WarehouseError> {
    if let Some(parent) = stage_file.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| WarehouseError::Internal(format!("cannot create {}: {e}", parent.display())))?;
    }
    let file = stage_file.display().to_string();
    let (file1, cancel1, rt1, load1) = (file.clone(), cancel.clone(), runtime.clone(), load.clone());
    let staged = run_on(private.instance.clone(), inner.permits.clone(), move |conn| {
        let _interrupt = InterruptOnCancel::watch(conn, &cancel1, &rt1);
        let attach = format!("ATTACH {} AS __pd_stage", lit(&file1));
        conn.execute_batch(&attach).map_err(|e| engine(e, &attach))?;
        let out = stage(conn, &load1, "__pd_stage.main.staging", None, &progress, &cancel1);
        let _ = conn.execute_batch("DETACH DATABASE IF EXISTS __pd_stage");
        out.map_err(|e| cancelled_or(e, &cancel1))
    })
    .await;
    drop(private);
    let mut outcome = staged?;
    let alias = format!("__pd_stage_{}", staging_name(&load.tag));
    outcome.rows = sandbox
        .run(&inner.permits, move |conn| {
            let _interrupt = InterruptOnCancel::watch(conn, &cancel, &runtime);
            let attach = format!("ATTACH {} AS {} (READ_ONLY)", lit(&file), ident(&alias));
            conn.execute_batch(&attach).map_err(|e| engine(e, &attach))?;
            let copied = format!(
                "CREATE SCHEMA IF NOT EXISTS {s}; CREATE OR REPLACE TABLE {st} AS SELECT * FROM {a}.main.staging",
                s = ident(staging.schema.as_str()),
                st = qualified(&staging),
                a = ident(&alias)
            );
            let applied = conn
                .execute_batch(&copied)
                .map_err(|e| engine(e, &copied))
                .and_then(|()| apply(conn, &load.target, &staging, &load.mode));
            let _ = conn.execute_batch(&format!("DETACH DATABASE IF EXISTS {}", ident(&alias)));
            if applied.is_err() {
                let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", qualified(&staging)));
            }
            applied.map_err(|e| cancelled_or(e, &cancel))
        })
        .await?;
    Ok(outcome)
}

fn cancelled_or(e: WarehouseError, cancel: &CancellationToken) -> WarehouseError {
    if cancel.is_cancelled() {
        WarehouseError::Interrupted
    } else {
        e
    }
}

/// The relation one part reads, and the CSV options it was read with (for diagnosis).
fn part_relation(
    conn: &Connection,
    part: &LoadPart,
    lenient: bool,
    rejects: &str,
) -> (String, Option<(String, CsvOptions)>) {
    match &part.read {
        PartRead::Relation(sql) => (sql.clone(), None),
        PartRead::Files {
            files,
            format,
            delimiter,
            header,
        } => {
            let csv = CsvOptions {
                delimiter: match format {
                    FileFormat::Csv => files.first().and_then(|f| csv_delimiter(conn, f, delimiter.as_deref())),
                    _ => None,
                },
                header: *header,
                lenient,
                rejects_table: lenient.then(|| rejects.to_owned()),
            };
            let union = files.len() > 1 || files.iter().any(|f| f.contains(['*', '?']));
            let sql = format!("SELECT * FROM {}", reader_sql(files, *format, union, &csv));
            let diag = (*format == FileFormat::Csv && files.len() == 1 && !files[0].contains(['*', '?']))
                .then(|| (files[0].clone(), csv));
            (sql, diag)
        }
    }
}

/// Reads every part into `staging` (created from the first), reporting progress after each. `target` (in the
/// same database) lets an append-after load read only rows past the target's cursor.
fn stage(
    conn: &Connection,
    load: &Load,
    staging: &str,
    target: Option<&Relation>,
    progress: &ProgressFn,
    cancel: &CancellationToken,
) -> Result<LoadOutcome, WarehouseError> {
    let lenient = load.csv == CsvStrictness::Lenient;
    let rejects = format!("pd_rejects_{}", staging_name(&load.tag));
    let mut filters = Vec::new();
    if let Some(f) = &load.filter {
        filters.push(format!("({f})"));
    }
    if let (LoadMode::AppendAfter { cursor }, Some(target)) = (&load.mode, target) {
        if crate::materialize::kind_of(conn, target)?.is_some() {
            let (c, t) = (ident(cursor), qualified(target));
            filters.push(format!(
                "((SELECT max({c}) FROM {t}) IS NULL OR {c} > (SELECT max({c}) FROM {t}))"
            ));
        }
    }
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    if let Some(schema) = staging.rsplit_once('.').map(|(s, _)| s) {
        if !schema.starts_with("__pd_stage") {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
            conn.execute_batch(&sql).map_err(|e| engine(e, &sql))?;
        }
    }
    let total = load.parts.len() as u64;
    let (mut rows, mut bytes) = (0u64, 0u64);
    // The columns of every part together: folders and globs may differ file to file.
    let whole: Vec<(String, Option<(String, CsvOptions)>)> = load
        .parts
        .iter()
        .map(|p| part_relation(conn, p, lenient, &rejects))
        .collect();
    for (i, (part, (relation, diag))) in load.parts.iter().zip(whole.iter()).enumerate() {
        if cancel.is_cancelled() {
            return Err(WarehouseError::Interrupted);
        }
        let sql = if i == 0 {
            let union = if whole.len() > 1 {
                whole
                    .iter()
                    .map(|(r, _)| format!("(SELECT * FROM ({r}) LIMIT 0)"))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL BY NAME ")
            } else {
                format!("SELECT * FROM ({relation}) LIMIT 0")
            };
            let create = format!("CREATE OR REPLACE TABLE {staging} AS {union}");
            conn.execute_batch(&create)
                .map_err(|e| read_error(conn, e, &create, diag))?;
            format!("INSERT INTO {staging} BY NAME SELECT * FROM ({relation}){where_clause}")
        } else {
            format!("INSERT INTO {staging} BY NAME SELECT * FROM ({relation}){where_clause}")
        };
        let inserted = conn.execute(&sql, []).map_err(|e| read_error(conn, e, &sql, diag))?;
        rows += inserted as u64;
        bytes += part.bytes.unwrap_or(0);
        progress(LoadProgress {
            part: i as u64 + 1,
            parts: total,
            rows,
            bytes,
        });
    }
    let mut outcome = LoadOutcome {
        rows,
        bytes,
        ..LoadOutcome::default()
    };
    if lenient {
        let (n, samples) = rejected(conn, &rejects);
        outcome.rejected = n;
        outcome.rejected_samples = samples;
        let _ = conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {r}; DROP TABLE IF EXISTS {s}",
            r = ident(&rejects),
            s = ident(&format!("{rejects}_scan"))
        ));
    }
    Ok(outcome)
}

/// A failed read of a single strict CSV file says which line and why.
fn read_error(conn: &Connection, e: duckdb::Error, sql: &str, diag: &Option<(String, CsvOptions)>) -> WarehouseError {
    let mapped = engine(e, sql);
    match (diag, &mapped) {
        (Some((file, csv)), WarehouseError::Sql { message, .. } | WarehouseError::Invalid(message)) if !csv.lenient => {
            WarehouseError::Invalid(csv_failure(conn, file, csv, message))
        }
        _ => mapped,
    }
}

fn rejected(conn: &Connection, table: &str) -> (u64, Vec<RejectedRow>) {
    let count = conn
        .query_row(&format!("SELECT count(*) FROM {}", ident(table)), [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
        .unwrap_or(0);
    let sql = format!(
        "SELECT coalesce(s.file_path, ''), coalesce(e.line, 0), e.error_type || coalesce(': ' || e.error_message, ''), \
         coalesce(e.csv_line, '') FROM {} e LEFT JOIN {} s USING (scan_id, file_id) ORDER BY e.line LIMIT {SAMPLES}",
        ident(table),
        ident(&format!("{table}_scan"))
    );
    let samples = conn
        .prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query_map([], |r| {
                Ok(RejectedRow {
                    file: r.get(0)?,
                    line: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    reason: r.get(2)?,
                    text: r.get::<_, String>(3)?.chars().take(200).collect(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default();
    (count, samples)
}

/// Applies the staged rows to the target in one transaction; the staging table is gone afterwards.
fn apply(conn: &Connection, target: &Relation, staging: &Relation, mode: &LoadMode) -> Result<u64, WarehouseError> {
    let dest = qualified(target);
    let st = qualified(staging);
    let create = format!("CREATE SCHEMA IF NOT EXISTS {}", ident(target.schema.as_str()));
    conn.execute_batch(&create).map_err(|e| engine(e, &create))?;
    let staged = count_of(conn, &st)?;
    let if_missing = format!("CREATE TABLE IF NOT EXISTS {dest} AS SELECT * FROM {st} LIMIT 0");
    match mode {
        LoadMode::Replace => {
            let existing = crate::materialize::kind_of(conn, target)?;
            let drop_old = match existing {
                Some(pluto_duck_application::ports::RelationKind::View) => format!("DROP VIEW IF EXISTS {dest}"),
                _ => format!("DROP TABLE IF EXISTS {dest}"),
            };
            transaction(
                conn,
                &[
                    drop_old,
                    format!("ALTER TABLE {st} RENAME TO {}", ident(target.name.as_str())),
                ],
            )?;
            count_of(conn, &dest)
        }
        LoadMode::Append => {
            transaction(
                conn,
                &[
                    if_missing,
                    format!("INSERT INTO {dest} BY NAME SELECT * FROM {st}"),
                    format!("DROP TABLE {st}"),
                ],
            )?;
            Ok(staged)
        }
        LoadMode::AppendAfter { .. } => {
            transaction(
                conn,
                &[
                    if_missing,
                    format!("INSERT INTO {dest} BY NAME SELECT * FROM {st}"),
                    format!("DROP TABLE {st}"),
                ],
            )?;
            count_of(conn, &dest)
        }
        LoadMode::Merge { keys } => {
            let cols: Vec<String> = keys.iter().map(|k| ident(k)).collect();
            let dup = count_of(
                conn,
                &format!("(SELECT 1 FROM {st} GROUP BY {} HAVING count(*) > 1)", cols.join(", ")),
            )?;
            if dup > 0 {
                return Err(WarehouseError::Invalid(format!(
                    "merge keys ({}) are not unique in the source: {dup} keys repeat",
                    keys.join(", ")
                )));
            }
            let on: Vec<String> = cols
                .iter()
                .map(|c| format!("{dest}.{c} IS NOT DISTINCT FROM {st}.{c}"))
                .collect();
            transaction(
                conn,
                &[
                    if_missing,
                    format!("DELETE FROM {dest} USING {st} WHERE {}", on.join(" AND ")),
                    format!("INSERT INTO {dest} BY NAME SELECT * FROM {st}"),
                    format!("DROP TABLE {st}"),
                ],
            )?;
            Ok(staged)
        }
    }
}

fn count_of(conn: &Connection, rel: &str) -> Result<u64, WarehouseError> {
    let sql = format!("SELECT count(*) FROM {rel}");
    conn.query_row(&sql, [], |r| r.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| engine(e, &sql))
}

/// Staging tables and files a crash left behind.
pub(crate) fn drop_orphans(conn: &Connection, files: Option<&Path>) -> Result<u64, WarehouseError> {
    let sql = "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() \
               AND (table_name LIKE '\\_\\_pd\\_ingest\\_%' ESCAPE '\\' OR table_name LIKE '\\_\\_pd\\_build\\_%' ESCAPE '\\')";
    let mut stmt = conn.prepare(sql).map_err(|e| engine(e, sql))?;
    let names: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(|e| engine(e, sql))?;
    let mut n = names.len() as u64;
    for (s, t) in names {
        let drop = format!("DROP TABLE IF EXISTS {}.{}", ident(&s), ident(&t));
        conn.execute_batch(&drop).map_err(|e| engine(e, &drop))?;
    }
    if let Some(files) = files {
        let staging: PathBuf = files.join(".staging");
        if let Ok(entries) = std::fs::read_dir(&staging) {
            for entry in entries.flatten() {
                if std::fs::remove_file(entry.path()).is_ok() {
                    n += 1;
                }
            }
        }
        // Exports are sent and removed; any left were cut off by a crash.
        if let Ok(entries) = std::fs::read_dir(files.join(".exports")) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(n)
}
