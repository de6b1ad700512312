//! The attach body of a source — a typed form per kind, or a DSN — and how it becomes a `NewSource`. The ingest
//! API takes the same body for an inline source.

use pluto_duck_application::NewSource;
use pluto_duck_domain::{FileFormat, FileLocation, S3Settings, SourceConnection, SourceKind};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::openapi::{text_enum, IdentifierText};
use crate::problem::ApiError;

text_enum!(
    /// The kinds of sources.
    SourceKindName,
    "postgres, mysql, sqlite, duckdb, file, http or s3",
    ["postgres", "mysql", "sqlite", "duckdb", "file", "http", "s3"]
);

text_enum!(
    /// File formats a source reads.
    FileFormatName,
    "csv, parquet or json (also tsv, ndjson, jsonl)",
    ["csv", "parquet", "json", "tsv", "ndjson", "jsonl"]
);

text_enum!(
    /// How strictly CSV files are read.
    CsvStrictnessName,
    "`strict` refuses malformed rows, naming file, line and reason; `lenient` skips them",
    ["strict", "lenient"]
);

text_enum!(
    /// How S3 URLs name the bucket.
    UrlStyleName,
    "`path` (most S3-compatible servers) or `vhost` (AWS)",
    ["path", "vhost"]
);

/// Attach a source: a typed form per `kind`, or a `dsn` (`postgres://user:pass@host:5432/db`,
/// `mysql://...`, `sqlite:///path/file.db`, `duckdb:///path/file.duckdb`, `file:///data/*.csv`,
/// `https://host/file.parquet`, `s3://bucket/prefix/`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// Identifier: letters, digits, underscores. Required to attach; unused for an ad-hoc ingest source.
    #[schema(value_type = Option<IdentifierText>)]
    pub name: Option<String>,
    /// Required unless `dsn` is given (which implies it).
    #[schema(value_type = Option<SourceKindName>)]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// Kept in the secret store; never returned.
    pub password: Option<String>,
    /// SQLite or DuckDB file.
    pub path: Option<String>,
    /// file: a path, folder or glob (`/data/sales/*.csv`); http: a URL; s3: `s3://bucket/key`, a prefix ending
    /// in `/` or a glob. A folder gives one table per file, a glob one table over all its files.
    pub location: Option<String>,
    /// Detected from the file names when absent.
    #[schema(value_type = Option<FileFormatName>)]
    pub format: Option<String>,
    /// CSV delimiter (sniffed when absent).
    pub delimiter: Option<String>,
    /// Whether CSV files have a header line (sniffed when absent).
    pub header: Option<bool>,
    /// CSV files: `strict` (default) refuses malformed rows, naming file, line and reason; `lenient` skips them.
    #[schema(value_type = Option<CsvStrictnessName>)]
    pub csv: Option<String>,
    /// S3: region (default us-east-1).
    pub region: Option<String>,
    /// S3: `host:port` of an S3-compatible server.
    pub endpoint: Option<String>,
    /// S3: `vhost` by default.
    #[schema(value_type = Option<UrlStyleName>)]
    pub url_style: Option<String>,
    /// S3: default true.
    pub use_ssl: Option<bool>,
    /// S3: access key id.
    pub key_id: Option<String>,
    /// S3: secret access key; kept in the secret store, never returned.
    pub secret_access_key: Option<String>,
    pub dsn: Option<String>,
    /// Default true.
    pub read_only: Option<bool>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg)
}

/// `scheme://user:password@host:port/database`, `sqlite:///path`, `duckdb:///path`, `file:///path`, an
/// http(s) URL or an s3 URL.
fn parse_dsn(dsn: &str) -> Result<(SourceKind, SourceConnection, Option<String>), ApiError> {
    // Never echo the DSN: it may hold a password.
    let bad = || {
        invalid(
            "dsn must look like postgres://user:password@host:5432/database, mysql://..., sqlite:///path, \
             duckdb:///path, file:///path, https://host/file.csv or s3://bucket/key",
        )
    };
    let (scheme, rest) = dsn.split_once("://").ok_or_else(bad)?;
    let located = |kind, uri: &str| {
        let location = FileLocation {
            uri: uri.to_owned(),
            format: None,
            delimiter: None,
            header: None,
            lenient: false,
            s3: None,
        };
        Ok((kind, SourceConnection::Located(location), None))
    };
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => SourceKind::Postgres,
        "mysql" | "mariadb" => SourceKind::Mysql,
        "sqlite" => SourceKind::Sqlite,
        "duckdb" => SourceKind::Duckdb,
        "file" => return located(SourceKind::File, rest),
        "http" | "https" => return located(SourceKind::Http, dsn),
        "s3" => return located(SourceKind::S3, dsn),
        _ => return Err(bad()),
    };
    if matches!(kind, SourceKind::Sqlite | SourceKind::Duckdb) {
        return Ok((kind, SourceConnection::File { path: rest.to_owned() }, None));
    }
    let url = url::Url::parse(dsn).map_err(|_| bad())?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let connection = SourceConnection::Server {
        host: url.host_str().ok_or_else(bad)?.to_owned(),
        port: url
            .port()
            .unwrap_or(if kind == SourceKind::Postgres { 5432 } else { 3306 }),
        database: decode(url.path().trim_start_matches('/')),
        user: decode(url.username()),
        password_secret: None,
    };
    Ok((kind, connection, url.password().map(decode)))
}

impl SourceBody {
    /// The source to attach: the connection, with a name.
    pub fn into_new_source(self) -> Result<NewSource, ApiError> {
        if self.name.is_none() {
            return Err(invalid("`name` is required"));
        }
        self.into_config()
    }

    /// The connection the body describes; `name` is left as given (an ad-hoc ingest source has none).
    pub fn into_config(self) -> Result<NewSource, ApiError> {
        let (kind, mut connection, dsn_password) = match &self.dsn {
            Some(dsn) => parse_dsn(dsn)?,
            None => self.typed_connection()?,
        };
        if let SourceConnection::Located(l) = &mut connection {
            l.format = self
                .format
                .as_deref()
                .map(FileFormat::parse)
                .transpose()
                .map_err(|e| invalid(e.to_string()))?;
            l.delimiter = self.delimiter.clone();
            l.header = self.header;
            l.lenient = match self.csv.as_deref() {
                None | Some("strict") => false,
                Some("lenient") => true,
                Some(other) => return Err(invalid(format!("csv must be strict or lenient, not {other:?}"))),
            };
            if kind == SourceKind::S3 {
                l.s3 = Some(S3Settings {
                    region: self.region.clone(),
                    endpoint: self.endpoint.clone(),
                    path_style: match self.url_style.as_deref() {
                        None | Some("vhost") => false,
                        Some("path") => true,
                        Some(_) => return Err(invalid("url_style must be path or vhost")),
                    },
                    use_ssl: self.use_ssl.unwrap_or(true),
                    key_id: self.key_id.clone(),
                    secret_key_secret: None,
                });
            }
        }
        Ok(NewSource {
            name: self.name.unwrap_or_default(),
            kind,
            description: self.description,
            connection,
            password: self
                .password
                .or(self.secret_access_key)
                .or(dsn_password)
                .filter(|p| !p.is_empty())
                .map(SecretString::from),
            read_only: self.read_only.unwrap_or(true),
        })
    }

    fn typed_connection(&self) -> Result<(SourceKind, SourceConnection, Option<String>), ApiError> {
        let kind_name = self
            .kind
            .as_deref()
            .ok_or_else(|| invalid("give `kind` (postgres, mysql, sqlite, duckdb, file, http, s3) or `dsn`"))?;
        let kind = SourceKind::parse(kind_name).map_err(|e| invalid(e.to_string()))?;
        let connection = match kind {
            SourceKind::Postgres | SourceKind::Mysql => SourceConnection::Server {
                host: self.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                port: self
                    .port
                    .unwrap_or(if kind == SourceKind::Postgres { 5432 } else { 3306 }),
                database: self.database.clone().ok_or_else(|| invalid("`database` is required"))?,
                user: self.user.clone().ok_or_else(|| invalid("`user` is required"))?,
                password_secret: None,
            },
            SourceKind::Sqlite | SourceKind::Duckdb => SourceConnection::File {
                path: self.path.clone().ok_or_else(|| invalid("`path` is required"))?,
            },
            SourceKind::File | SourceKind::Http | SourceKind::S3 => SourceConnection::Located(FileLocation {
                uri: self
                    .location
                    .clone()
                    .or(self.path.clone())
                    .ok_or_else(|| invalid("`location` is required"))?,
                format: None,
                delimiter: None,
                header: None,
                lenient: false,
                s3: None,
            }),
        };
        Ok((kind, connection, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values_are_the_ones_the_domain_takes() {
        for k in SourceKindName::VALUES {
            assert!(SourceKind::parse(k).is_ok(), "{k}");
        }
        for f in FileFormatName::VALUES {
            assert!(FileFormat::parse(f).is_ok(), "{f}");
        }
    }

    #[test]
    fn dsns_become_connections_and_never_echo_the_password() {
        let body = SourceBody {
            name: Some("s".into()),
            dsn: Some("postgres://u:p%40ss@db.local/shop".into()),
            ..Default::default()
        };
        let s = body.into_new_source().unwrap();
        assert_eq!(s.kind, SourceKind::Postgres);
        assert!(
            matches!(s.connection, SourceConnection::Server { port: 5432, ref database, .. } if database == "shop")
        );
        assert!(s.password.is_some());
        let err = SourceBody {
            name: Some("s".into()),
            dsn: Some("ftp://u:secret@h".into()),
            ..Default::default()
        }
        .into_new_source()
        .unwrap_err();
        assert!(!format!("{err:?}").contains("secret"));
    }
}
