//! A source is data the user already has, reached live by the warehouse (ATTACH) or, later, ingested.

use chrono::{DateTime, Utc};

use crate::{DomainError, FileLocation, Identifier, LocationScheme, ProjectId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Postgres,
    Mysql,
    Sqlite,
    Duckdb,
    /// Local files, a folder or a glob.
    File,
    /// One file over HTTP(S).
    Http,
    /// Objects in S3-compatible storage.
    S3,
}

impl SourceKind {
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Postgres,
        SourceKind::Mysql,
        SourceKind::Sqlite,
        SourceKind::Duckdb,
        SourceKind::File,
        SourceKind::Http,
        SourceKind::S3,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Sqlite => "sqlite",
            SourceKind::Duckdb => "duckdb",
            SourceKind::File => "file",
            SourceKind::Http => "http",
            SourceKind::S3 => "s3",
        }
    }

    /// Kinds whose data is files the warehouse reads in place, rather than a database it attaches.
    pub fn is_located(self) -> bool {
        matches!(self, SourceKind::File | SourceKind::Http | SourceKind::S3)
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::UnknownValue {
                what: "source kind",
                value: s.to_owned(),
            })
    }
}

/// How to reach a source. Passwords are not here: they live in the secret store under `password_secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConnection {
    /// PostgreSQL or MySQL/MariaDB.
    Server {
        host: String,
        port: u16,
        database: String,
        user: String,
        password_secret: Option<String>,
    },
    /// A SQLite or DuckDB file.
    File { path: String },
    /// Files read in place (file, http and s3 kinds).
    Located(FileLocation),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    Attached,
    /// Could not attach (at creation it is refused; at start-up the server keeps going and says why).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: Identifier,
    pub project: ProjectId,
    pub kind: SourceKind,
    pub description: String,
    pub connection: SourceConnection,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
}

impl Source {
    /// The name the warehouse knows the source by: its own name, in its project's sandbox
    /// (`SELECT * FROM sales.public.orders`).
    pub fn catalog_alias(&self) -> String {
        self.name.to_string()
    }

    /// Where the password of this source is kept in the secret store.
    pub fn password_secret_name(project: &ProjectId, name: &Identifier) -> String {
        format!("source.{project}.{name}.password")
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |reason: &str| DomainError::InvalidSource(format!("{}: {reason}", self.name));
        if crate::project::is_reserved_name(self.name.as_str()) {
            return Err(bad(
                "the name is reserved for the project's own database and schemas; pick another",
            ));
        }
        match (&self.kind, &self.connection) {
            (
                SourceKind::Postgres | SourceKind::Mysql,
                SourceConnection::Server {
                    host,
                    database,
                    user,
                    port,
                    ..
                },
            ) => {
                if host.trim().is_empty() || host.contains(['\'', ' ', '\n']) {
                    return Err(bad("host must be a host name or address"));
                }
                if *port == 0 {
                    return Err(bad("port must be 1..65535"));
                }
                for (field, v) in [("database", database), ("user", user)] {
                    if v.is_empty() || v.contains(['\'', '\n', '\0']) {
                        return Err(bad(&format!("{field} must be non-empty and contain no quotes")));
                    }
                }
                Ok(())
            }
            (SourceKind::Sqlite | SourceKind::Duckdb, SourceConnection::File { path }) => {
                if path.is_empty() || path.contains(['\'', '\n', '\0']) {
                    return Err(bad("path must be non-empty and contain no quotes"));
                }
                Ok(())
            }
            (kind @ (SourceKind::File | SourceKind::Http | SourceKind::S3), SourceConnection::Located(location)) => {
                location.validate()?;
                let expected = match kind {
                    SourceKind::Http => LocationScheme::Http,
                    SourceKind::S3 => LocationScheme::S3,
                    _ => LocationScheme::Local,
                };
                if location.scheme() != expected {
                    return Err(bad(&format!(
                        "a {} source needs {}",
                        kind.as_str(),
                        match kind {
                            SourceKind::Http => "an http:// or https:// URL",
                            SourceKind::S3 => "an s3:// URL",
                            _ => "a local path, folder or glob",
                        }
                    )));
                }
                Ok(())
            }
            (kind, _) => Err(bad(&format!(
                "a {} source needs {}",
                kind.as_str(),
                match kind {
                    SourceKind::Postgres | SourceKind::Mysql => "host, port, database and user",
                    SourceKind::File | SourceKind::Http | SourceKind::S3 => "a location",
                    _ => "a path",
                }
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(project: &str, kind: SourceKind, connection: SourceConnection) -> Source {
        Source {
            name: Identifier::parse("sales").unwrap(),
            project: ProjectId::parse(project).unwrap(),
            kind,
            description: String::new(),
            connection,
            read_only: true,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_source_is_known_by_its_name_in_its_project() {
        let file = SourceConnection::File {
            path: "/tmp/x.db".into(),
        };
        assert_eq!(src("team_a", SourceKind::Sqlite, file.clone()).catalog_alias(), "sales");
        let mut reserved = src("default", SourceKind::Sqlite, file);
        reserved.name = Identifier::parse("cache").unwrap();
        assert!(reserved.validate().is_err());
    }

    #[test]
    fn validation_rejects_mismatches_and_quotes() {
        let file = SourceConnection::File {
            path: "/tmp/x.db".into(),
        };
        assert!(src("default", SourceKind::Postgres, file.clone()).validate().is_err());
        assert!(src("default", SourceKind::Sqlite, file).validate().is_ok());
        let quoted = SourceConnection::File {
            path: "/tmp/x'; DROP".into(),
        };
        assert!(src("default", SourceKind::Duckdb, quoted).validate().is_err());
        let server = SourceConnection::Server {
            host: "127.0.0.1".into(),
            port: 5432,
            database: "db".into(),
            user: "u".into(),
            password_secret: None,
        };
        assert!(src("default", SourceKind::Postgres, server).validate().is_ok());
    }
}
