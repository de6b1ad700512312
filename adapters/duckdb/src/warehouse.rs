//! The `Warehouse` port: queries and intents, each inside its project's sandbox.

use async_trait::async_trait;
use pluto_duck_application::ports::{
    DbtHandover, ExportFormat, ExportedFile, Load, LoadOutcome, Materialize, ProgressFn, QueryRequest, QueryStream,
    RelationInfo, RelationKind, TableEntry, Warehouse, WarehouseError,
};
use pluto_duck_domain::{ExtensionStatus, ProjectId, Relation};
use tokio_util::sync::CancellationToken;

use crate::{dbt, errors, extensions, load, materialize, query, DuckDbWarehouse, InterruptOnCancel};

#[async_trait]
impl Warehouse for DuckDbWarehouse {
    async fn version(&self) -> Result<String, WarehouseError> {
        self.inner
            .probe(|conn| {
                conn.query_row("SELECT library_version FROM pragma_version()", [], |r| r.get(0))
                    .map_err(|e| WarehouseError::Internal(e.to_string()))
            })
            .await
    }

    async fn extensions(&self) -> Result<Vec<ExtensionStatus>, WarehouseError> {
        let dir = self.extension_directory().to_path_buf();
        self.inner.probe(move |conn| extensions::status(conn, &dir)).await
    }

    async fn query(
        &self,
        project: &ProjectId,
        request: QueryRequest,
        cancel: CancellationToken,
    ) -> Result<QueryStream, WarehouseError> {
        let (meta_tx, meta_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = query::channel();
        let plan = query::Plan {
            request,
            cancel: cancel.clone(),
            extension_directory: self.extension_directory().to_path_buf(),
        };
        let sandbox = self.inner.sandbox(project);
        let watched = sandbox.clone();
        let permits = self.inner.permits.clone();
        let runtime = tokio::runtime::Handle::current();
        // Detached: the statement keeps streaming after this returns, holding its connection and permit.
        tokio::spawn(async move {
            let result = sandbox
                .run(&permits, move |conn| {
                    let _interrupt = InterruptOnCancel::watch(conn, &cancel, &runtime);
                    query::run(conn, plan, meta_tx, tx);
                    Ok(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "query task failed");
            }
        });
        let out = query::finish(meta_rx.await, rx);
        if let Err(e) = &out {
            watched.note_failure(e);
        }
        out
    }

    async fn materialize(
        &self,
        project: &ProjectId,
        spec: Materialize,
        cancel: CancellationToken,
    ) -> Result<u64, WarehouseError> {
        let sandbox = self.inner.sandbox(project);
        let files = sandbox.files_dir();
        let dir = self.extension_directory().to_path_buf();
        let runtime = tokio::runtime::Handle::current();
        sandbox
            .run(&self.inner.permits, move |conn| {
                let _interrupt = InterruptOnCancel::watch(conn, &cancel, &runtime);
                materialize::materialize(conn, &spec, files.as_deref())
                    .map_err(|e| errors::interrupted_or(e, &cancel, &dir))
            })
            .await
    }

    async fn relation_kind(
        &self,
        project: &ProjectId,
        relation: &Relation,
    ) -> Result<Option<RelationKind>, WarehouseError> {
        let relation = relation.clone();
        self.inner
            .sandbox(project)
            .run(&self.inner.permits, move |conn| materialize::kind_of(conn, &relation))
            .await
    }

    async fn drop_relation(&self, project: &ProjectId, relation: &Relation) -> Result<bool, WarehouseError> {
        let sandbox = self.inner.sandbox(project);
        let files = sandbox.files_dir();
        let relation = relation.clone();
        sandbox
            .run(&self.inner.permits, move |conn| {
                materialize::drop_relation(conn, &relation, files.as_deref())
            })
            .await
    }

    async fn relations(&self, project: &ProjectId) -> Result<Vec<RelationInfo>, WarehouseError> {
        self.inner
            .sandbox(project)
            .run(&self.inner.permits, materialize::relations)
            .await
    }

    async fn load(
        &self,
        project: &ProjectId,
        load: Load,
        progress: ProgressFn,
        cancel: CancellationToken,
    ) -> Result<LoadOutcome, WarehouseError> {
        load::load(&self.inner, project, load, progress, cancel).await
    }

    async fn export(
        &self,
        project: &ProjectId,
        request: QueryRequest,
        format: ExportFormat,
        cancel: CancellationToken,
    ) -> Result<ExportedFile, WarehouseError> {
        let sandbox = self.inner.sandbox(project);
        let files = sandbox
            .files_dir()
            .ok_or_else(|| WarehouseError::Unavailable("exports need a data directory".into()))?;
        let dir = self.extension_directory().to_path_buf();
        let runtime = tokio::runtime::Handle::current();
        sandbox
            .run(&self.inner.permits, move |conn| {
                let _interrupt = InterruptOnCancel::watch(conn, &cancel, &runtime);
                materialize::export(conn, &request, format, &files)
                    .map_err(|e| errors::interrupted_or(e, &cancel, &dir))
            })
            .await
    }

    async fn drop_project(&self, project: &ProjectId) -> Result<(), WarehouseError> {
        let sandbox = self.inner.sandbox(project);
        sandbox.close().await;
        let (db, files) = (sandbox.db_path(), sandbox.files_dir());
        // dbt's database and its workspace (profiles, source snapshot, artifacts) go with the project.
        let (dbt_db, dbt_dir) = (
            sandbox.dbt_path(),
            sandbox
                .dbt_snapshot_path()
                .and_then(|p| p.parent()?.parent().map(|d| d.to_path_buf())),
        );
        tokio::task::spawn_blocking(move || {
            let dirs = files.into_iter().chain(dbt_dir);
            for path in db
                .iter()
                .chain(dbt_db.iter())
                .flat_map(|d| [d.clone(), d.with_extension("duckdb.wal")])
            {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(WarehouseError::Internal(format!(
                            "cannot remove {}: {e}",
                            path.display()
                        )))
                    }
                }
            }
            for files in dirs {
                match std::fs::remove_dir_all(&files) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(WarehouseError::Internal(format!(
                            "cannot remove {}: {e}",
                            files.display()
                        )))
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| WarehouseError::Internal(e.to_string()))?
    }

    async fn catalog(&self, project: &ProjectId) -> Result<Vec<TableEntry>, WarehouseError> {
        self.inner
            .sandbox(project)
            .run(&self.inner.permits, materialize::catalog)
            .await
    }

    async fn sample_values(
        &self,
        project: &ProjectId,
        table: &TableEntry,
        max_distinct: u64,
        per_column: u64,
    ) -> Result<Vec<(String, Vec<String>)>, WarehouseError> {
        let table = table.clone();
        self.inner
            .sandbox(project)
            .run(&self.inner.permits, move |conn| {
                materialize::sample_values(conn, &table, max_distinct, per_column)
            })
            .await
    }

    async fn drop_schema(&self, project: &ProjectId, schema: &str) -> Result<(), WarehouseError> {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", crate::sql::ident(schema));
        let sandbox = self.inner.sandbox(project);
        if sandbox.db_path().is_some_and(|p| !p.exists()) {
            return Ok(());
        }
        sandbox
            .run(&self.inner.permits, move |conn| {
                conn.execute_batch(&sql)
                    .map_err(|e| errors::map_duckdb_error(&e, &sql, 0, std::path::Path::new("")))
            })
            .await
    }

    async fn hand_over_dbt(&self, project: &ProjectId) -> Result<DbtHandover, WarehouseError> {
        dbt::hand_over(&self.inner, project).await
    }

    async fn take_back_dbt(&self, project: &ProjectId) -> Result<bool, WarehouseError> {
        dbt::take_back(&self.inner, project).await
    }

    async fn drop_orphans(&self, project: &ProjectId) -> Result<u64, WarehouseError> {
        let sandbox = self.inner.sandbox(project);
        if sandbox.db_path().is_some_and(|p| !p.exists()) {
            return Ok(0);
        }
        let files = sandbox.files_dir();
        sandbox
            .run(&self.inner.permits, move |conn| {
                load::drop_orphans(conn, files.as_deref())
            })
            .await
    }
}
