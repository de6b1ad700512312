//! Materializations and the project's own relations. Every build that replaces something is built aside and
//! swapped in one transaction, so a failure leaves the previous object readable.

use std::path::Path;

use duckdb::types::Value;
use duckdb::Connection;
use pluto_duck_application::ports::{
    ExportFormat, ExportedFile, Materialize, ParamValue, QueryRequest, RelationInfo, RelationKind, WarehouseError,
};
use pluto_duck_domain::{Column, Identifier, Materialization, Relation};

use crate::errors::map_duckdb_error;
use crate::sql::{ident, lit, relation as qualified};

fn engine(e: duckdb::Error, sql: &str) -> WarehouseError {
    map_duckdb_error(&e, sql, 0, Path::new(""))
}

pub(crate) fn to_value(p: &ParamValue) -> Value {
    match p {
        ParamValue::Null => Value::Null,
        ParamValue::Bool(b) => Value::Boolean(*b),
        ParamValue::Int(i) => Value::BigInt(*i),
        ParamValue::Float(f) => Value::Double(*f),
        ParamValue::Text(t) => Value::Text(t.clone()),
    }
}

/// Runs one statement with parameters.
fn exec(conn: &Connection, sql: &str, params: &[ParamValue]) -> Result<usize, WarehouseError> {
    let mut stmt = conn.prepare(sql).map_err(|e| engine(e, sql))?;
    stmt.execute(duckdb::params_from_iter(params.iter().map(to_value)))
        .map_err(|e| engine(e, sql))
}

fn batch(conn: &Connection, sql: &str) -> Result<(), WarehouseError> {
    conn.execute_batch(sql).map_err(|e| engine(e, sql))
}

fn count(conn: &Connection, rel: &str) -> Result<u64, WarehouseError> {
    let sql = format!("SELECT count(*) FROM {rel}");
    conn.query_row(&sql, [], |r| r.get::<_, i64>(0))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| engine(e, &sql))
}

/// `statements` in one transaction, rolled back when one fails.
/// Runs `statements` as one transaction; a DuckLake commit that lost a race with another server is rolled back
/// whole and tried again (a few times, with a growing pause).
pub(crate) fn transaction(conn: &Connection, statements: &[String]) -> Result<(), WarehouseError> {
    let mut attempt = 0;
    loop {
        match transaction_once(conn, statements) {
            Err((e, true)) if attempt + 1 < crate::lake::CONFLICT_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "lake commit conflict; transaction tried again");
                std::thread::sleep(crate::lake::conflict_backoff(attempt));
                attempt += 1;
            }
            other => return other.map_err(|(e, _)| e),
        }
    }
}

/// One try; the error says whether it was a commit conflict.
fn transaction_once(conn: &Connection, statements: &[String]) -> Result<(), (WarehouseError, bool)> {
    let raw = |e: duckdb::Error, sql: &str| {
        let conflict = crate::lake::is_commit_conflict(&e.to_string());
        (engine(e, sql), conflict)
    };
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(|e| raw(e, "BEGIN TRANSACTION"))?;
    for s in statements {
        if let Err(e) = conn.execute_batch(s) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(raw(e, s));
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        raw(e, "COMMIT")
    })
}

pub(crate) fn kind_of(conn: &Connection, r: &Relation) -> Result<Option<RelationKind>, WarehouseError> {
    let sql = "SELECT 'view' FROM duckdb_views() WHERE database_name = current_database() AND NOT internal \
               AND schema_name = $1 AND view_name = $2 \
               UNION ALL SELECT 'table' FROM duckdb_tables() WHERE database_name = current_database() \
               AND schema_name = $1 AND table_name = $2";
    let mut stmt = conn.prepare(sql).map_err(|e| engine(e, sql))?;
    let kinds: Vec<String> = stmt
        .query_map([r.schema.as_str(), r.name.as_str()], |row| row.get(0))
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(|e| engine(e, sql))?;
    Ok(kinds.first().map(|k| {
        if k == "view" {
            RelationKind::View
        } else {
            RelationKind::Table
        }
    }))
}

fn drop_sql(kind: RelationKind, rel: &str) -> String {
    match kind {
        RelationKind::View => format!("DROP VIEW IF EXISTS {rel}"),
        RelationKind::Table => format!("DROP TABLE IF EXISTS {rel}"),
    }
}

/// Where a Parquet analysis keeps its file inside the project's files.
fn parquet_file(files: &Path, r: &Relation) -> std::path::PathBuf {
    files.join(r.schema.as_str()).join(format!("{}.parquet", r.name))
}

/// DuckDB's reads that are statements of their own (`SUMMARIZE t`, `PIVOT ...`) become a subquery, so they can
/// follow `CREATE TABLE ... AS` and `COPY (...)`.
fn as_select(sql: &str) -> String {
    let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    if matches!(
        first.as_str(),
        "SUMMARIZE" | "DESCRIBE" | "SHOW" | "PIVOT" | "UNPIVOT" | "FROM"
    ) {
        format!("SELECT * FROM ({sql})")
    } else {
        sql.to_owned()
    }
}

pub(crate) fn materialize(conn: &Connection, spec: &Materialize, files: Option<&Path>) -> Result<u64, WarehouseError> {
    let r = &spec.relation;
    let dest = qualified(r);
    let build_rel = Relation {
        schema: r.schema.clone(),
        name: Identifier::sanitize(&format!("__pd_build_{}", r.name)),
    };
    let build = qualified(&build_rel);
    batch(
        conn,
        &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(r.schema.as_str())),
    )?;
    let existing = kind_of(conn, r)?;
    let drop_old = existing
        .map(|k| drop_sql(k, &dest))
        .unwrap_or_else(|| "SELECT 1".into());
    let select = &as_select(&spec.select);
    let params = spec.params.as_slice();
    let rebuild = || -> Result<u64, WarehouseError> {
        exec(conn, &format!("CREATE OR REPLACE TABLE {build} AS {select}"), params)?;
        let swapped = transaction(
            conn,
            &[
                drop_old.clone(),
                format!("ALTER TABLE {build} RENAME TO {}", ident(r.name.as_str())),
            ],
        );
        if let Err(e) = swapped {
            let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {build}"));
            return Err(e);
        }
        count(conn, &dest)
    };
    match &spec.how {
        Materialization::Ephemeral => Err(WarehouseError::Invalid(format!(
            "{r} is ephemeral: it is inlined into its readers, never built"
        ))),
        Materialization::View => {
            if !params.is_empty() {
                return Err(WarehouseError::Invalid(format!(
                    "{r}: a view cannot take parameters; materialize it as a table"
                )));
            }
            transaction(conn, &[drop_old.clone(), format!("CREATE VIEW {dest} AS {select}")])?;
            Ok(0)
        }
        Materialization::Table => rebuild(),
        Materialization::Append if existing != Some(RelationKind::Table) => rebuild(),
        Materialization::Append => {
            let n = exec(conn, &format!("INSERT INTO {dest} BY NAME {select}"), params)?;
            Ok(n as u64)
        }
        Materialization::Incremental { .. } if existing != Some(RelationKind::Table) => rebuild(),
        Materialization::Incremental { unique_key, cursor } => {
            let filter = cursor
                .as_ref()
                .map(|c| {
                    let c = ident(c);
                    format!(" WHERE (SELECT max({c}) FROM {dest}) IS NULL OR {c} > (SELECT max({c}) FROM {dest})")
                })
                .unwrap_or_default();
            exec(
                conn,
                &format!("CREATE OR REPLACE TABLE {build} AS SELECT * FROM ({select}){filter}"),
                params,
            )?;
            let added = count(conn, &build)?;
            let mut statements = Vec::new();
            if !unique_key.is_empty() {
                let on: Vec<String> = unique_key
                    .iter()
                    .map(|k| format!("{dest}.{k} IS NOT DISTINCT FROM {build}.{k}", k = ident(k)))
                    .collect();
                statements.push(format!("DELETE FROM {dest} USING {build} WHERE {}", on.join(" AND ")));
            }
            statements.push(format!("INSERT INTO {dest} BY NAME SELECT * FROM {build}"));
            let applied = transaction(conn, &statements);
            let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {build}"));
            applied.map(|()| added)
        }
        Materialization::Parquet => {
            let files =
                files.ok_or_else(|| WarehouseError::Unavailable("parquet analyses need a data directory".into()))?;
            let file = parquet_file(files, r);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| WarehouseError::Internal(format!("cannot create {}: {e}", parent.display())))?;
            }
            let file = file.display().to_string();
            // DuckDB writes beside the old file and renames, so readers never see half a file.
            let rows = exec(
                conn,
                &format!("COPY ({select}) TO {} (FORMAT parquet)", lit(&file)),
                params,
            )?;
            transaction(
                conn,
                &[
                    drop_old.clone(),
                    format!("CREATE VIEW {dest} AS SELECT * FROM read_parquet({})", lit(&file)),
                ],
            )?;
            Ok(rows as u64)
        }
    }
}

pub(crate) fn drop_relation(conn: &Connection, r: &Relation, files: Option<&Path>) -> Result<bool, WarehouseError> {
    let Some(kind) = kind_of(conn, r)? else {
        return Ok(false);
    };
    batch(conn, &drop_sql(kind, &qualified(r)))?;
    if let Some(files) = files {
        let _ = std::fs::remove_file(parquet_file(files, r));
    }
    Ok(true)
}

pub(crate) fn relations(conn: &Connection) -> Result<Vec<RelationInfo>, WarehouseError> {
    let sql = "SELECT schema_name, table_name, 'table', estimated_size, comment FROM duckdb_tables() \
                 WHERE database_name = current_database() \
               UNION ALL SELECT schema_name, view_name, 'view', NULL, comment FROM duckdb_views() \
                 WHERE database_name = current_database() AND NOT internal \
               ORDER BY 1, 2";
    let mut stmt = conn.prepare(sql).map_err(|e| engine(e, sql))?;
    type Row = (String, String, String, Option<i64>, Option<String>);
    let rows: Vec<Row> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(|e| engine(e, sql))?;
    let col_sql = "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() \
                   WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index";
    let mut stmt = conn.prepare(col_sql).map_err(|e| engine(e, col_sql))?;
    let columns: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(|e| engine(e, col_sql))?;
    let mut out = Vec::new();
    for (schema, name, kind, estimate, comment) in rows {
        if name.starts_with("__pd") || schema.starts_with("__pd") {
            continue;
        }
        let (Ok(s), Ok(n)) = (Identifier::parse(schema.clone()), Identifier::parse(name.clone())) else {
            continue; // names the product could not address are not listed
        };
        out.push(RelationInfo {
            relation: Relation { schema: s, name: n },
            kind: if kind == "view" {
                RelationKind::View
            } else {
                RelationKind::Table
            },
            columns: columns
                .iter()
                .filter(|(cs, ct, _, _)| *cs == schema && *ct == name)
                .map(|(_, _, c, t)| Column {
                    name: c.clone(),
                    data_type: t.clone(),
                })
                .collect(),
            estimated_rows: estimate.and_then(|e| u64::try_from(e).ok()),
            comment,
        });
    }
    Ok(out)
}

/// The last statement's result written by the engine itself (CSV with a header, or Parquet) into a file of the
/// project's exports folder; the caller streams and removes it.
pub(crate) fn export(
    conn: &Connection,
    request: &QueryRequest,
    format: ExportFormat,
    files: &Path,
) -> Result<ExportedFile, WarehouseError> {
    let Some((last, before)) = request.statements.split_last() else {
        return Err(WarehouseError::Invalid("no statement to export".into()));
    };
    for s in before {
        batch(conn, &s.text)?;
    }
    let dir = files.join(".exports");
    std::fs::create_dir_all(&dir)
        .map_err(|e| WarehouseError::Internal(format!("cannot create {}: {e}", dir.display())))?;
    let (ext, opts) = match format {
        ExportFormat::Csv => ("csv", "FORMAT csv, HEADER true"),
        ExportFormat::Parquet => ("parquet", "FORMAT parquet"),
    };
    let path = dir.join(format!("{}.{ext}", uuid_like()));
    let sql = format!(
        "COPY ({}) TO {} ({opts})",
        last.text.trim().trim_end_matches(';'),
        lit(&path.display().to_string())
    );
    if let Err(e) = exec(conn, &sql, &request.params) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(ExportedFile { path, bytes })
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Every table and view the sandbox's SQL can read, attached sources' included, with their keys.
pub(crate) fn catalog(conn: &Connection) -> Result<Vec<pluto_duck_application::ports::TableEntry>, WarehouseError> {
    use pluto_duck_application::ports::{TableColumn, TableEntry, TableForeignKey};
    let sql = "SELECT database_name, schema_name, table_name, 'table', estimated_size, comment FROM duckdb_tables() \
                 WHERE NOT internal AND database_name NOT IN ('system', 'temp') \
               UNION ALL SELECT database_name, schema_name, view_name, 'view', NULL, comment FROM duckdb_views() \
                 WHERE NOT internal AND database_name NOT IN ('system', 'temp') \
               ORDER BY 1, 2, 3";
    let mut stmt = conn.prepare(sql).map_err(|e| engine(e, sql))?;
    type Row = (String, String, String, String, Option<i64>, Option<String>);
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(|e| engine(e, sql))?;
    let col_sql =
        "SELECT database_name, schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() \
                   WHERE NOT internal AND database_name NOT IN ('system', 'temp') \
                   ORDER BY database_name, schema_name, table_name, column_index";
    let mut stmt = conn.prepare(col_sql).map_err(|e| engine(e, col_sql))?;
    type ColRow = (String, String, String, String, String, Option<String>);
    let cols: Vec<ColRow> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .map_err(|e| engine(e, col_sql))?;
    let con_sql = "SELECT database_name, schema_name, table_name, constraint_type, \
                   array_to_string(constraint_column_names, chr(31)), coalesce(referenced_table, ''), \
                   coalesce(array_to_string(referenced_column_names, chr(31)), '') FROM duckdb_constraints() \
                   WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY') AND database_name NOT IN ('system', 'temp')";
    let mut stmt = conn.prepare(con_sql).map_err(|e| engine(e, con_sql))?;
    type ConRow = (String, String, String, String, String, String, String);
    let constraints: Vec<ConRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<_, _>>())
        .unwrap_or_default();
    let split = |s: &str| -> Vec<String> { s.split('\u{1f}').filter(|c| !c.is_empty()).map(str::to_owned).collect() };
    let mut out = Vec::new();
    for (catalog, schema, name, kind, estimate, comment) in rows {
        if name.starts_with("__pd") || schema.starts_with("__pd") || catalog.starts_with("__pd") {
            continue;
        }
        let mine = |(c, s, t, ..): &&ConRow| *c == catalog && *s == schema && *t == name;
        let pk: Vec<String> = constraints
            .iter()
            .filter(mine)
            .filter(|c| c.3 == "PRIMARY KEY")
            .flat_map(|c| split(&c.4))
            .collect();
        let foreign_keys = constraints
            .iter()
            .filter(mine)
            .filter(|c| c.3 == "FOREIGN KEY" && !c.5.is_empty())
            .map(|c| TableForeignKey {
                columns: split(&c.4),
                references: (catalog.clone(), schema.clone(), c.5.clone()),
                referenced_columns: split(&c.6),
            })
            .collect();
        let columns = cols
            .iter()
            .filter(|(c, s, t, ..)| *c == catalog && *s == schema && *t == name)
            .map(|(_, _, _, col, ty, comment)| TableColumn {
                primary_key: pk.contains(col),
                name: col.clone(),
                data_type: ty.clone(),
                comment: comment.clone().filter(|c| !c.is_empty()),
            })
            .collect();
        out.push(TableEntry {
            catalog,
            schema,
            name,
            kind: if kind == "view" {
                RelationKind::View
            } else {
                RelationKind::Table
            },
            columns,
            foreign_keys,
            estimated_rows: estimate.and_then(|e| u64::try_from(e).ok()),
            comment: comment.filter(|c| !c.is_empty()),
        });
    }
    Ok(out)
}

/// Rows a sample of values looks at, so a large or remote table costs a bounded scan.
const SAMPLE_ROWS: u64 = 50_000;

pub(crate) fn sample_values(
    conn: &Connection,
    table: &pluto_duck_application::ports::TableEntry,
    max_distinct: u64,
    per_column: u64,
) -> Result<Vec<(String, Vec<String>)>, WarehouseError> {
    let text: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.data_type.eq_ignore_ascii_case("VARCHAR") || c.data_type.starts_with("ENUM"))
        .map(|c| c.name.as_str())
        .collect();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let rel = format!(
        "{}.{}.{}",
        ident(&table.catalog),
        ident(&table.schema),
        ident(&table.name)
    );
    let sample = format!("(SELECT * FROM {rel} LIMIT {SAMPLE_ROWS})");
    let counts = text
        .iter()
        .map(|c| format!("approx_count_distinct({})", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {counts} FROM {sample}");
    let distinct: Vec<u64> = conn
        .query_row(&sql, [], |r| {
            (0..text.len())
                .map(|i| {
                    r.get::<_, Option<i64>>(i)
                        .map(|n| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| engine(e, &sql))?;
    let mut out = Vec::new();
    for (col, n) in text.iter().zip(distinct) {
        if n == 0 || n > max_distinct {
            continue;
        }
        let sql = format!(
            "SELECT v FROM (SELECT {c}::VARCHAR AS v, count(*) AS n FROM {sample} WHERE {c} IS NOT NULL GROUP BY 1) \
             ORDER BY n DESC, v LIMIT {per_column}",
            c = ident(col)
        );
        let mut stmt = conn.prepare(&sql).map_err(|e| engine(e, &sql))?;
        let values: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(|e| engine(e, &sql))?;
        out.push(((*col).to_owned(), values));
    }
    Ok(out)
}
