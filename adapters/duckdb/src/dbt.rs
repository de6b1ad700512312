//! Handing a project's dbt database to a dbt run and taking it back. dbt runs in its own process and DuckDB lets
//! one process write a file only while no other process has it open, even read-only: so the sandbox detaches
//! `dbt.duckdb` for the run's duration and attaches it read-only again afterwards. dbt cannot open the project's
//! own database either (the server holds it), so it reads its sources from a copy of the project's tables taken
//! as the run starts (`dbt/sources.duckdb`), which dbt's profile attaches read-only as `warehouse`: the name of the
//! project's own catalog, so a view dbt builds over a source reads the live table when the server queries it.

use std::path::{Path, PathBuf};

use duckdb::Connection;
use pluto_duck_application::ports::{DbtHandover, RelationInfo, RelationKind, WarehouseError};
use pluto_duck_domain::{ProjectId, DBT_CATALOG};

use crate::materialize;
use crate::sandbox::attach_dbt;
use crate::sql::{ident, lit};
use crate::Inner;

const SNAPSHOT_ALIAS: &str = "__pd_dbt_snapshot";

pub(crate) async fn hand_over(inner: &Inner, project: &ProjectId) -> Result<DbtHandover, WarehouseError> {
    let sandbox = inner.sandbox(project);
    let (Some(database), Some(snapshot)) = (sandbox.dbt_path(), sandbox.dbt_snapshot_path()) else {
        return Err(WarehouseError::Unavailable(
            "dbt needs a data directory (the warehouse runs in memory)".into(),
        ));
    };
    sandbox.set_dbt_out(true);
    let snap = snapshot.clone();
    let result = sandbox
        .run(&inner.permits, move |conn| {
            conn.execute_batch(&format!("DETACH DATABASE IF EXISTS {DBT_CATALOG}"))
                .map_err(|e| {
                    WarehouseError::Conflict(format!("the dbt database is in use and cannot be handed to dbt: {e}"))
                })?;
            write_snapshot(conn, &snap)
        })
        .await;
    match result {
        Ok(relations) => Ok(DbtHandover {
            database,
            sources_snapshot: snapshot,
            relations,
        }),
        Err(e) => {
            // Nothing will run: attach it again.
            let _ = take_back(inner, project).await;
            Err(e)
        }
    }
}

pub(crate) async fn take_back(inner: &Inner, project: &ProjectId) -> Result<bool, WarehouseError> {
    let sandbox = inner.sandbox(project);
    sandbox.set_dbt_out(false);
    let Some(path) = sandbox.dbt_path().filter(|p| p.is_file()) else {
        return Ok(false);
    };
    if !sandbox.is_open() {
        return Ok(true); // attached when it opens
    }
    sandbox.run(&inner.permits, move |conn| attach_dbt(conn, &path)).await?;
    Ok(true)
}

/// Copies the project's tables (not its views, which may read remote sources) into a fresh file.
fn write_snapshot(conn: &Connection, path: &Path) -> Result<Vec<RelationInfo>, WarehouseError> {
    let io = |p: &Path, e: std::io::Error| WarehouseError::Internal(format!("cannot prepare {}: {e}", p.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    for p in [path.to_path_buf(), PathBuf::from(format!("{}.wal", path.display()))] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&p, e)),
            _ => {}
        }
    }
    let tables: Vec<RelationInfo> = materialize::relations(conn)?
        .into_iter()
        .filter(|r| r.kind == RelationKind::Table)
        .collect();
    let engine = |e: duckdb::Error| WarehouseError::Internal(format!("cannot copy the project's tables for dbt: {e}"));
    let catalog: String = conn
        .query_row("SELECT current_database()", [], |r| r.get(0))
        .map_err(engine)?;
    conn.execute_batch(&format!(
        "ATTACH {} AS {SNAPSHOT_ALIAS}",
        lit(&path.display().to_string())
    ))
    .map_err(engine)?;
    let copy = || -> Result<(), duckdb::Error> {
        let mut sql = String::from("BEGIN;");
        let mut schemas: Vec<&str> = tables.iter().map(|t| t.relation.schema.as_str()).collect();
        schemas.dedup();
        for s in schemas {
            sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {SNAPSHOT_ALIAS}.{};", ident(s)));
        }
        for t in &tables {
            let (s, n) = (ident(t.relation.schema.as_str()), ident(t.relation.name.as_str()));
            sql.push_str(&format!(
                "CREATE TABLE {SNAPSHOT_ALIAS}.{s}.{n} AS FROM {}.{s}.{n};",
                ident(&catalog)
            ));
        }
        sql.push_str("COMMIT;");
        conn.execute_batch(&sql)
    };
    let copied = copy();
    if copied.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let detached = conn.execute_batch(&format!("DETACH {SNAPSHOT_ALIAS}"));
    copied.map_err(engine)?;
    detached.map_err(engine)?;
    Ok(tables)
}
