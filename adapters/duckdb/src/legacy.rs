//! The warehouse of earlier versions was one file for every project (`data/warehouse.duckdb`, other projects'
//! objects in schemas named `<project>__<schema>`). On first start it becomes the default project's database, and
//! each other project's schemas move into that project's own database.

use std::path::{Path, PathBuf};

use duckdb::Connection;
use pluto_duck_application::ports::WarehouseError;
use pluto_duck_domain::{Identifier, ProjectId};

use crate::instance::Instance;
use crate::sql::{ident, lit};
use crate::Settings;

fn internal(e: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::Internal(format!("migrating the warehouse: {e}"))
}

pub(crate) fn migrate(data_dir: &Path, settings: &Settings) -> Result<(), WarehouseError> {
    let legacy = data_dir.join("data").join("warehouse.duckdb");
    let default_folder = ProjectId::default_project().folder(data_dir);
    let target = default_folder.join("warehouse.duckdb");
    if !legacy.exists() || target.exists() {
        return Ok(());
    }
    tracing::info!(from = %legacy.display(), "migrating the warehouse to one database per project");
    let instance = Instance::open(Some(&legacy), settings)?;
    instance.with_root(|conn| split(conn, data_dir))??;
    drop(instance);
    std::fs::create_dir_all(&default_folder).map_err(internal)?;
    std::fs::rename(&legacy, &target).map_err(internal)?;
    let wal = legacy.with_extension("duckdb.wal");
    if wal.exists() {
        std::fs::rename(&wal, target.with_extension("duckdb.wal")).map_err(internal)?;
    }
    Ok(())
}

/// Old home of a project's Parquet analyses, and the new one (inside the project's files).
fn parquet_dirs(data_dir: &Path, project: &str) -> (PathBuf, PathBuf) {
    let pid = ProjectId::parse(project).unwrap_or_else(|_| ProjectId::default_project());
    (
        data_dir.join("artifacts").join("files").join(project).join("analyses"),
        pid.folder(data_dir).join("files").join("analysis"),
    )
}

fn strings(conn: &Connection, sql: &str) -> Result<Vec<(String, String, Option<String>)>, WarehouseError> {
    let mut stmt = conn.prepare(sql).map_err(internal)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal);
    rows
}

fn split(conn: &Connection, data_dir: &Path) -> Result<(), WarehouseError> {
    let main_db: String = conn
        .query_row("SELECT current_database()", [], |r| r.get(0))
        .map_err(internal)?;
    let schemas: Vec<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() AND NOT internal",
            )
            .map_err(internal)?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(internal)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(internal)?;
        rows
    };
    let mut projects: Vec<String> = Vec::new();
    for s in &schemas {
        if let Some((p, rest)) = s.split_once("__") {
            if !p.is_empty() && !rest.is_empty() && Identifier::parse(p).is_ok() && !projects.contains(&p.to_owned()) {
                projects.push(p.to_owned());
            }
        }
    }
    for project in &projects {
        let folder = ProjectId::parse(project.clone()).map_err(internal)?.folder(data_dir);
        std::fs::create_dir_all(&folder).map_err(internal)?;
        let db = folder.join("warehouse.duckdb");
        let alias = format!("__pd_migrate_{project}");
        conn.execute_batch(&format!(
            "ATTACH {} AS {}",
            lit(&db.display().to_string()),
            ident(&alias)
        ))
        .map_err(internal)?;
        let prefix = format!("{project}__");
        let tables = strings(
            conn,
            "SELECT schema_name, table_name, NULL FROM duckdb_tables() WHERE database_name = current_database()",
        )?;
        for (schema, table, _) in tables.iter().filter(|(s, _, _)| s.starts_with(&prefix)) {
            let new_schema = &schema[prefix.len()..];
            conn.execute_batch(&format!(
                "CREATE SCHEMA IF NOT EXISTS {a}.{s}; CREATE TABLE {a}.{s}.{t} AS SELECT * FROM {os}.{t}",
                a = ident(&alias),
                s = ident(new_schema),
                t = ident(table),
                os = ident(schema),
            ))
            .map_err(internal)?;
        }
        let views = strings(
            conn,
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = current_database() AND NOT internal",
        )?;
        let (old_parquet, new_parquet) = parquet_dirs(data_dir, project);
        let mut pending: Vec<String> = views
            .iter()
            .filter(|(s, _, _)| s.starts_with(&prefix))
            .filter_map(|(_, _, sql)| sql.clone())
            .map(|sql| {
                sql.replace(&format!("\"{prefix}"), "\"")
                    .replace(&prefix, "")
                    .replace(&old_parquet.display().to_string(), &new_parquet.display().to_string())
            })
            .collect();
        conn.execute_batch(&format!("USE {}", ident(&alias)))
            .map_err(internal)?;
        // Views may read each other: create what can be, until nothing more can.
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|sql| {
                let schema_of = sql
                    .split_whitespace()
                    .nth(2)
                    .and_then(|q| q.split('.').next())
                    .map(|s| s.trim_matches('"').to_owned());
                if let Some(s) = schema_of {
                    let _ = conn.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&s)));
                }
                conn.execute_batch(sql).is_err()
            });
            if pending.len() == before {
                for sql in &pending {
                    tracing::warn!(project, view = sql.as_str(), "view not migrated");
                }
                break;
            }
        }
        conn.execute_batch(&format!("USE {}", ident(&main_db)))
            .map_err(internal)?;
        for schema in schemas.iter().filter(|s| s.starts_with(&prefix)) {
            conn.execute_batch(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema)))
                .map_err(internal)?;
        }
        conn.execute_batch(&format!("DETACH {}", ident(&alias)))
            .map_err(internal)?;
        move_parquet(&old_parquet, &new_parquet)?;
    }
    // The default project's Parquet analyses move into its files too.
    let (old_parquet, new_parquet) = parquet_dirs(data_dir, ProjectId::DEFAULT);
    if old_parquet.exists() {
        let views = strings(
            conn,
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = current_database() AND NOT internal",
        )?;
        let old = old_parquet.display().to_string();
        for (_, _, sql) in views {
            if let Some(sql) = sql.filter(|s| s.contains(&old)) {
                let sql = sql
                    .replacen("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)
                    .replace(&old, &new_parquet.display().to_string());
                if let Err(e) = conn.execute_batch(&sql) {
                    tracing::warn!(error = %e, "parquet view not migrated");
                }
            }
        }
        move_parquet(&old_parquet, &new_parquet)?;
    }
    conn.execute_batch("CHECKPOINT").map_err(internal)
}

fn move_parquet(from: &Path, to: &Path) -> Result<(), WarehouseError> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    std::fs::create_dir_all(to).map_err(internal)?;
    for entry in entries.flatten() {
        std::fs::rename(entry.path(), to.join(entry.file_name())).map_err(internal)?;
    }
    Ok(())
}
