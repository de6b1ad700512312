//! Ingestion connectors. A connector knows one kind of source: how to describe it without its secrets, how a
//! table or a query of it reads, and how that read splits into parts for progress. Opening, listing and pulling
//! go through the `SourceCatalog` port, shared by all.
//!
//! Adding a connector is one module with a `Connector` impl plus one `register` line in `builtin()`.

mod attach;
mod files;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use pluto_duck_domain::{Source, SourceKind};
use secrecy::SecretString;

use crate::ports::{LoadFrom, LoadPart, PartRead, QueryStream, SourceCatalog, SourceRef, TableInfo};
use crate::AppError;

/// What to read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pull {
    Table {
        schema: String,
        table: String,
    },
    /// In the source's own dialect where the warehouse can pass it through (PostgreSQL, MySQL).
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorMetadata {
    pub connector: &'static str,
    /// Where the data comes from, without secrets.
    pub location: String,
    pub tables: Vec<TableInfo>,
}

pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[async_trait]
pub trait Connector: Send + Sync {
    /// The registry key: the source kind it reads.
    fn name(&self) -> &'static str;
    /// Where the source is, safe to log and show.
    fn describe(&self, source: &Source) -> String;
    /// The relation reading `pull` from the source open as `alias`.
    fn relation(&self, source: &Source, alias: &str, pull: &Pull) -> Result<String, AppError> {
        match pull {
            Pull::Table { schema, table } => Ok(format!(
                "SELECT * FROM {}.{}.{}",
                quote(alias),
                quote(schema),
                quote(table)
            )),
            Pull::Query(_) => Err(AppError::Invalid(format!(
                "a query on a {} source runs in the warehouse: attach the source and query it by name",
                source.kind.as_str()
            ))),
        }
    }
    /// The parts of a read; one part unless the connector can split it.
    async fn parts(
        &self,
        _catalog: &dyn SourceCatalog,
        source: &Source,
        at: &SourceRef,
        pull: &Pull,
    ) -> Result<Vec<LoadPart>, AppError> {
        Ok(vec![LoadPart {
            read: PartRead::Relation(self.relation(source, &at.alias(), pull)?),
            bytes: None,
        }])
    }
}

#[derive(Default, Clone)]
pub struct ConnectorRegistry {
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
}

impl ConnectorRegistry {
    /// Every connector that ships with Pluto-Duck.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.register(Arc::new(attach::Attached(SourceKind::Postgres)));
        r.register(Arc::new(attach::Attached(SourceKind::Mysql)));
        r.register(Arc::new(attach::Attached(SourceKind::Sqlite)));
        r.register(Arc::new(attach::Attached(SourceKind::Duckdb)));
        r.register(Arc::new(files::Files(SourceKind::File)));
        r.register(Arc::new(files::Files(SourceKind::Http)));
        r.register(Arc::new(files::Files(SourceKind::S3)));
        r
    }

    pub fn register(&mut self, connector: Arc<dyn Connector>) {
        self.connectors.insert(connector.name(), connector);
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.connectors.keys().copied().collect()
    }

    pub fn get(&self, kind: SourceKind) -> Result<Arc<dyn Connector>, AppError> {
        self.connectors
            .get(kind.as_str())
            .cloned()
            .ok_or_else(|| AppError::Invalid(format!("no connector for {} sources", kind.as_str())))
    }
}

/// A source open for reading: a stored source in its project's sandbox, or an inline one opened in a private
/// session until `close`.
pub struct Session {
    pub source: Source,
    pub at: SourceRef,
    pub connector: Arc<dyn Connector>,
    catalog: Arc<dyn SourceCatalog>,
}

impl Session {
    /// A stored source, attached in its project's sandbox.
    pub fn stored(source: Source, connector: Arc<dyn Connector>, catalog: Arc<dyn SourceCatalog>) -> Self {
        Self {
            at: SourceRef::Stored {
                project: source.project.clone(),
                name: source.name.clone(),
            },
            source,
            connector,
            catalog,
        }
    }

    /// An inline source: opened in a private session now, closed by `close`.
    pub async fn open(
        source: Source,
        password: Option<SecretString>,
        connector: Arc<dyn Connector>,
        catalog: Arc<dyn SourceCatalog>,
    ) -> Result<Self, AppError> {
        let id = catalog.open_private(&source, password).await?;
        Ok(Self {
            at: SourceRef::Private(id),
            source,
            connector,
            catalog,
        })
    }

    /// Where a load reads this session's parts.
    pub fn load_from(&self) -> LoadFrom {
        match &self.at {
            SourceRef::Private(id) => LoadFrom::Private(*id),
            SourceRef::Stored { .. } | SourceRef::Project(_) => LoadFrom::Sandbox,
        }
    }

    pub async fn tables(&self) -> Result<Vec<TableInfo>, AppError> {
        Ok(self.catalog.tables(&self.at, None).await?)
    }

    pub async fn metadata(&self) -> Result<ConnectorMetadata, AppError> {
        Ok(ConnectorMetadata {
            connector: self.connector.name(),
            location: self.connector.describe(&self.source),
            tables: self.tables().await?,
        })
    }

    pub fn relation(&self, pull: &Pull) -> Result<String, AppError> {
        self.connector.relation(&self.source, &self.at.alias(), pull)
    }

    pub async fn parts(&self, pull: &Pull) -> Result<Vec<LoadPart>, AppError> {
        self.connector
            .parts(self.catalog.as_ref(), &self.source, &self.at, pull)
            .await
    }

    /// The rows of `pull` as Arrow batches, at most `limit` of them when given.
    pub async fn pull(&self, pull: &Pull, limit: Option<u64>) -> Result<QueryStream, AppError> {
        let relation = self.relation(pull)?;
        Ok(self.catalog.pull(&self.at, &relation, limit).await?)
    }

    pub async fn close(self) {
        if let SourceRef::Private(id) = self.at {
            self.catalog.close_private(id).await;
        }
    }
}
