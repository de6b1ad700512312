//! Ingestion connectors. A connector knows one kind of source: how to describe it without its secrets, how a
//! table or a query of it reads as a warehouse relation, and how that read splits into parts for progress.
//! Opening, listing and pulling go through the `SourceCatalog` and `Warehouse` ports, shared by all.
//!
//! Adding a connector is one module with a `Connector` impl plus one `register` line in `builtin()`.

mod attach;
mod files;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use pluto_duck_domain::{Source, SourceKind};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::ports::{QueryRequest, QueryStream, SourceCatalog, StatementText, TableInfo, Warehouse};
use crate::AppError;

/// What to read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pull {
    Table {
        schema: String,
        table: String,
    },
    /// In the source's own dialect where the warehouse can pass it through (PostgreSQL, MySQL), else warehouse
    /// SQL.
    Query(String),
}

/// One piece of a read, loaded and reported on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// A warehouse relation: `SELECT ...`.
    pub relation: String,
    pub bytes: Option<u64>,
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
        alias: &str,
        pull: &Pull,
    ) -> Result<Vec<Part>, AppError> {
        Ok(vec![Part {
            relation: self.relation(source, alias, pull)?,
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

/// A source open for reading: a stored source's own catalog, or an ad-hoc one attached under a throwaway alias
/// until `close`.
pub struct Session {
    pub source: Source,
    pub alias: String,
    pub connector: Arc<dyn Connector>,
    temporary: bool,
    catalog: Arc<dyn SourceCatalog>,
    warehouse: Arc<dyn Warehouse>,
}

impl Session {
    /// A stored source, already attached.
    pub fn attached(
        source: Source,
        connector: Arc<dyn Connector>,
        catalog: Arc<dyn SourceCatalog>,
        warehouse: Arc<dyn Warehouse>,
    ) -> Self {
        Self {
            alias: source.catalog_alias(),
            source,
            connector,
            temporary: false,
            catalog,
            warehouse,
        }
    }

    /// An ad-hoc source: attached now, detached by `close`.
    pub async fn open(
        source: Source,
        password: Option<SecretString>,
        connector: Arc<dyn Connector>,
        catalog: Arc<dyn SourceCatalog>,
        warehouse: Arc<dyn Warehouse>,
    ) -> Result<Self, AppError> {
        let alias = format!("pd_ingest_{}", uuid::Uuid::now_v7().simple());
        let mut temp = source.clone();
        // The alias comes from the name in the default project; a fresh one keeps concurrent ingests apart.
        temp.name = pluto_duck_domain::Identifier::parse(alias.clone())?;
        temp.project = pluto_duck_domain::ProjectId::default_project();
        catalog.attach(&temp, password).await?;
        Ok(Self {
            source,
            alias,
            connector,
            temporary: true,
            catalog,
            warehouse,
        })
    }

    pub async fn metadata(&self) -> Result<ConnectorMetadata, AppError> {
        Ok(ConnectorMetadata {
            connector: self.connector.name(),
            location: self.connector.describe(&self.source),
            tables: self.catalog.tables(&self.alias, None).await?,
        })
    }

    pub fn relation(&self, pull: &Pull) -> Result<String, AppError> {
        self.connector.relation(&self.source, &self.alias, pull)
    }

    pub async fn parts(&self, pull: &Pull) -> Result<Vec<Part>, AppError> {
        self.connector
            .parts(self.catalog.as_ref(), &self.source, &self.alias, pull)
            .await
    }

    /// The rows of `pull` as Arrow batches, at most `limit` of them when given.
    pub async fn pull(
        &self,
        pull: &Pull,
        limit: Option<u64>,
        cancel: CancellationToken,
    ) -> Result<QueryStream, AppError> {
        let relation = self.relation(pull)?;
        let text = match limit {
            Some(n) => format!("SELECT * FROM ({relation}) LIMIT {n}"),
            None => relation,
        };
        let request = QueryRequest {
            statements: vec![StatementText { text, offset: 0 }],
            params: Vec::new(),
        };
        Ok(self.warehouse.query(request, cancel).await?)
    }

    pub async fn close(self) {
        if self.temporary {
            if let Err(e) = self.catalog.detach(&self.alias).await {
                tracing::warn!(error = %e, "ingest source not detached");
            }
        }
    }
}
