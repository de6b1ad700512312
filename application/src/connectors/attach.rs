//! Databases the warehouse attaches: PostgreSQL, MySQL/MariaDB, SQLite and DuckDB files.

use pluto_duck_domain::{Source, SourceConnection, SourceKind};

use super::{literal, quote, Connector, Pull};
use crate::AppError;

pub struct Attached(pub SourceKind);

impl Connector for Attached {
    fn name(&self) -> &'static str {
        self.0.as_str()
    }

    fn describe(&self, source: &Source) -> String {
        match &source.connection {
            SourceConnection::Server {
                host,
                port,
                database,
                user,
                ..
            } => format!("{}://{user}@{host}:{port}/{database}", self.0.as_str()),
            SourceConnection::File { path } => format!("{}:{path}", self.0.as_str()),
            SourceConnection::Located(l) => l.uri.clone(),
        }
    }

    fn relation(&self, source: &Source, alias: &str, pull: &Pull) -> Result<String, AppError> {
        match (pull, self.0) {
            (Pull::Table { schema, table }, _) => Ok(format!(
                "SELECT * FROM {}.{}.{}",
                quote(alias),
                quote(schema),
                quote(table)
            )),
            // The remote runs the query itself, in its own dialect.
            (Pull::Query(sql), SourceKind::Postgres) => Ok(format!(
                "SELECT * FROM postgres_query({}, {})",
                literal(alias),
                literal(sql)
            )),
            (Pull::Query(sql), SourceKind::Mysql) => Ok(format!(
                "SELECT * FROM mysql_query({}, {})",
                literal(alias),
                literal(sql)
            )),
            (Pull::Query(_), _) => Err(AppError::Invalid(format!(
                "a query on a {} source runs in the warehouse: attach the source and query it by name",
                source.kind.as_str()
            ))),
        }
    }
}
