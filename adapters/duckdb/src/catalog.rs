//! The `SourceCatalog` port: stored sources live in their project's sandbox; a source is tried in an instance of
//! its own before a sandbox ever sees it; inline sources are read in private instances.

use std::sync::Arc;

use async_trait::async_trait;
use duckdb::Connection;
use pluto_duck_application::ports::{
    FileEntry, PrivateSource, QueryRequest, QueryStream, ScanInfo, SourceCatalog, SourceError, SourceRef, TableInfo,
    WarehouseError,
};
use pluto_duck_domain::{Column, Identifier, ProjectId, Source, SourceConnection, SourceState};
use secrecy::{ExposeSecret, SecretString};

use crate::attach::{attach_located, attach_on, internal, list_files_on, scrub, source_error};
use crate::errors::map_duckdb_error;
use crate::instance::Instance;
use crate::{query, run_on, DuckDbWarehouse, Private};

fn to_source(e: WarehouseError) -> SourceError {
    source_error(e, None)
}

impl DuckDbWarehouse {
    /// Runs `f` where `at` is open: the project's sandbox for a stored source, the private instance otherwise.
    async fn at<T, F>(&self, at: &SourceRef, f: F) -> Result<T, SourceError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, Option<&Source>) -> Result<T, SourceError> + Send + 'static,
    {
        match at {
            SourceRef::Stored { project, name } => {
                let sandbox = self.inner.sandbox(project);
                let source = sandbox.registered(name).map(|r| r.source);
                sandbox
                    .run(&self.inner.permits, move |conn| Ok(f(conn, source.as_ref())))
                    .await
                    .map_err(to_source)?
            }
            SourceRef::Project(project) => self
                .inner
                .sandbox(project)
                .run(&self.inner.permits, move |conn| Ok(f(conn, None)))
                .await
                .map_err(to_source)?,
            SourceRef::Private(id) => {
                let private = self.inner.private(*id).map_err(to_source)?;
                let (instance, source) = (private.instance.clone(), private.source.clone());
                run_on(instance, self.inner.permits.clone(), move |conn| {
                    Ok(f(conn, Some(&source)))
                })
                .await
                .map_err(to_source)?
            }
        }
    }
}

/// Opens `source` in a fresh instance outside every project, checks it, and lets go.
fn trial(source: &Source, password: Option<&str>, settings: &crate::Settings) -> Result<(), SourceError> {
    let instance = Instance::open(None, settings).map_err(to_source)?;
    instance
        .with_root(|conn| {
            let alias = "pd_trial";
            let result = attach_on(conn, source, alias, password, &settings.extension_directory, true);
            let _ = crate::attach::detach_on(conn, alias);
            result
        })
        .map_err(to_source)?
}

#[async_trait]
impl SourceCatalog for DuckDbWarehouse {
    async fn test(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError> {
        let (source, settings) = (source.clone(), self.inner.settings.clone());
        tokio::task::spawn_blocking(move || {
            let pw = password.as_ref().map(|p| p.expose_secret().to_owned());
            trial(&source, pw.as_deref(), &settings)
        })
        .await
        .map_err(|e| SourceError::Internal(e.to_string()))?
    }

    async fn attach(&self, source: &Source, password: Option<SecretString>) -> Result<(), SourceError> {
        self.test(source, password.clone()).await?;
        let sandbox = self.inner.sandbox(&source.project);
        sandbox.register(source.clone(), password);
        if let Err(e) = sandbox.reopen(self.inner.reopen_wait).await {
            sandbox.unregister(&source.name);
            return Err(to_source(e));
        }
        if !sandbox.is_open() {
            return Ok(());
        }
        match sandbox.states().into_iter().find(|(n, _)| *n == source.name) {
            Some((_, SourceState::Failed(reason))) => {
                sandbox.unregister(&source.name);
                let _ = sandbox.reopen(self.inner.reopen_wait).await;
                Err(SourceError::Unreachable(reason))
            }
            _ => Ok(()),
        }
    }

    async fn detach(&self, project: &ProjectId, name: &Identifier) -> Result<(), SourceError> {
        let sandbox = self.inner.sandbox(project);
        if sandbox.unregister(name).is_some() {
            sandbox.reopen(self.inner.reopen_wait).await.map_err(to_source)?;
        }
        Ok(())
    }

    async fn register(&self, project: &ProjectId, sources: Vec<(Source, Option<SecretString>)>) {
        let sandbox = self.inner.sandbox(project);
        for (source, password) in sources {
            sandbox.register(source, password);
        }
    }

    async fn states(&self, project: &ProjectId) -> Result<Vec<(Identifier, SourceState)>, SourceError> {
        let sandbox = self.inner.sandbox(project);
        if sandbox.states().is_empty() {
            return Ok(Vec::new());
        }
        drop(sandbox.hold().await.map_err(to_source)?);
        Ok(sandbox.states())
    }

    async fn open_private(
        &self,
        source: &Source,
        password: Option<SecretString>,
    ) -> Result<PrivateSource, SourceError> {
        let (source, settings) = (source.clone(), self.inner.settings.clone());
        let instance = tokio::task::spawn_blocking(move || Instance::open(None, &settings))
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
            .map_err(to_source)?;
        let pw = password.as_ref().map(|p| p.expose_secret().to_owned());
        let id = self.inner.add_private(Private {
            instance: Arc::new(instance),
            source: source.clone(),
        });
        let alias = SourceRef::Private(id).alias();
        let private = self.inner.private(id).map_err(to_source)?;
        let dir = self.extension_directory().to_path_buf();
        let attached = run_on(private.instance.clone(), self.inner.permits.clone(), move |conn| {
            Ok(attach_on(conn, &source, &alias, pw.as_deref(), &dir, false))
        })
        .await
        .map_err(to_source)
        .and_then(|r| r);
        if let Err(e) = attached {
            self.close_private(id).await;
            return Err(e);
        }
        Ok(id)
    }

    async fn close_private(&self, id: PrivateSource) {
        if let Some(private) = self.inner.remove_private(id) {
            let _ = tokio::task::spawn_blocking(move || drop(private)).await;
        }
    }

    async fn schemas(&self, at: &SourceRef) -> Result<Vec<String>, SourceError> {
        let alias = at.alias();
        self.at(at, move |conn, _| {
            let mut stmt = conn
                .prepare("SELECT DISTINCT schema_name FROM duckdb_schemas() WHERE database_name = ? ORDER BY 1")
                .map_err(internal)?;
            stmt.query_map([&alias], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(internal)
        })
        .await
    }

    async fn tables(&self, at: &SourceRef, schema: Option<String>) -> Result<Vec<TableInfo>, SourceError> {
        let (alias, dir, refresh) = (
            at.alias(),
            self.extension_directory().to_path_buf(),
            matches!(at, SourceRef::Stored { .. }),
        );
        self.at(at, move |conn, source| {
            // A folder or prefix read in place shows the files it holds now, not those it held when attached.
            if let (
                true,
                Some(Source {
                    connection: SourceConnection::Located(location),
                    ..
                }),
            ) = (refresh, source)
            {
                attach_located(conn, location, &alias, None, &dir, true)?;
            }
            let sql = "SELECT schema_name, table_name, 'table', estimated_size FROM duckdb_tables() \
                       WHERE database_name = $1 AND ($2::VARCHAR IS NULL OR schema_name = $2) \
                       UNION ALL SELECT schema_name, view_name, 'view', NULL FROM duckdb_views() \
                       WHERE database_name = $1 AND ($2::VARCHAR IS NULL OR schema_name = $2) AND NOT internal \
                       ORDER BY 1, 2";
            let mut stmt = conn.prepare(sql).map_err(internal)?;
            stmt.query_map(duckdb::params![alias, schema], |r| {
                Ok(TableInfo {
                    schema: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    estimated_rows: r.get::<_, Option<i64>>(3)?.and_then(|n| u64::try_from(n).ok()),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| SourceError::Unreachable(scrub(&e.to_string(), None)))
        })
        .await
    }

    async fn columns(&self, at: &SourceRef, schema: &str, table: &str) -> Result<Vec<Column>, SourceError> {
        let (alias, schema, table) = (at.alias(), schema.to_owned(), table.to_owned());
        self.at(at, move |conn, _| {
            let mut stmt = conn
                .prepare(
                    "SELECT column_name, data_type FROM duckdb_columns() \
                     WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
                )
                .map_err(internal)?;
            stmt.query_map([&alias, &schema, &table], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    data_type: r.get(1)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(internal)
        })
        .await
    }

    async fn list_files(&self, at: &SourceRef, pattern: &str) -> Result<Vec<FileEntry>, SourceError> {
        let pattern = pattern.to_owned();
        self.at(at, move |conn, _| list_files_on(conn, &pattern)).await
    }

    async fn pull(&self, at: &SourceRef, relation: &str, limit: Option<u64>) -> Result<QueryStream, SourceError> {
        let text = match limit {
            Some(n) => format!("SELECT * FROM ({relation}) LIMIT {n}"),
            None => relation.to_owned(),
        };
        let (meta_tx, meta_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = query::channel();
        let plan = query::Plan {
            request: QueryRequest::sql(text),
            cancel: Default::default(),
            extension_directory: self.extension_directory().to_path_buf(),
        };
        let this = self.clone();
        let at = at.clone();
        tokio::spawn(async move {
            let result = this
                .at(&at, move |conn, _| {
                    query::run(conn, plan, meta_tx, tx);
                    Ok(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "pull failed");
            }
        });
        query::finish(meta_rx.await, rx).map_err(to_source)
    }

    async fn explain(&self, project: &ProjectId, sql: &str) -> Result<Vec<ScanInfo>, SourceError> {
        let (sql, dir) = (sql.to_owned(), self.extension_directory().to_path_buf());
        self.inner
            .sandbox(project)
            .run(&self.inner.permits, move |conn| {
                let plan: Result<String, _> = conn.query_row(&format!("EXPLAIN (FORMAT json) {sql}"), [], |r| r.get(1));
                Ok(match plan {
                    Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                        .map(|v| scans_of(&v))
                        .map_err(|e| SourceError::Internal(format!("unreadable plan: {e}"))),
                    Err(e) => Err(source_error(map_duckdb_error(&e, &sql, 0, &dir), None)),
                })
            })
            .await
            .map_err(to_source)?
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
