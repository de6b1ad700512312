//! Dataset names for lineage, after the OpenLineage naming conventions (openlineage.io/docs/spec/naming): a
//! dataset is a `namespace` naming its data source and a `name` unique within it. The same table must get the
//! same name from every producer (dbt-ol, Spark, us), or lineage graphs do not join up.
//!
//! | store            | namespace                 | name                          |
//! |------------------|---------------------------|-------------------------------|
//! | PostgreSQL       | `postgres://{host}:{port}`| `{database}.{schema}.{table}` |
//! | MySQL / MariaDB  | `mysql://{host}:{port}`   | `{database}.{table}`          |
//! | DuckDB           | `duckdb://{file path}`    | `{database}.{schema}.{table}` |
//! | local file       | `file`                    | `{absolute path}`             |
//! | remote file      | `file://{host}`           | `{absolute path}`             |
//! | S3               | `s3://{bucket}`           | `{object key or prefix}`      |
//!
//! The spec has no DuckDB row; the DuckDB namespace is the one OpenLineage's own dbt integration writes for a
//! dbt-duckdb profile (`duckdb://` followed by the profile's `path`, so `duckdb:///data/warehouse.duckdb` for an
//! absolute path), and the name follows the warehouse rows (`catalog.schema.table`; DuckDB's catalog is the
//! attached database, the file's stem by default).

use crate::objects::BucketName;
use crate::DomainError;

/// A dataset's identity in lineage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetName {
    pub namespace: String,
    pub name: String,
}

impl DatasetName {
    /// A name some other convention made (a producer we do not model); both parts must be non-empty.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Result<Self, DomainError> {
        let (namespace, name) = (namespace.into(), name.into());
        part("namespace", &namespace)?;
        part("name", &name)?;
        Ok(Self { namespace, name })
    }

    /// A PostgreSQL table: `postgres://{host}:{port}`, `{database}.{schema}.{table}`. The port is always written
    /// (5432 too) so that every producer writes the same namespace.
    pub fn postgres(host: &str, port: u16, database: &str, schema: &str, table: &str) -> Result<Self, DomainError> {
        Ok(Self {
            namespace: format!("postgres://{}:{port}", host_part(host)?),
            name: dotted(&[("database", database), ("schema", schema), ("table", table)])?,
        })
    }

    /// A MySQL or MariaDB table: `mysql://{host}:{port}`, `{database}.{table}` (MySQL has no schema level).
    pub fn mysql(host: &str, port: u16, database: &str, table: &str) -> Result<Self, DomainError> {
        Ok(Self {
            namespace: format!("mysql://{}:{port}", host_part(host)?),
            name: dotted(&[("database", database), ("table", table)])?,
        })
    }

    /// A DuckDB table: `duckdb://{location}`, `{database}.{schema}.{table}`. `location` is the database file's
    /// path as the engine opened it (absolute, so `duckdb:///abs/path.duckdb`) or `:memory:`.
    pub fn duckdb(location: &str, database: &str, schema: &str, table: &str) -> Result<Self, DomainError> {
        part("DuckDB location", location)?;
        if location != ":memory:" && !location.starts_with('/') {
            return Err(DomainError::InvalidLineageName(format!(
                "DuckDB location {location:?} must be an absolute path or :memory:"
            )));
        }
        Ok(Self {
            namespace: format!("duckdb://{location}"),
            name: dotted(&[("database", database), ("schema", schema), ("table", table)])?,
        })
    }

    /// A file (or folder of files) on this machine: namespace `file`, name its absolute path.
    pub fn local_file(path: &str) -> Result<Self, DomainError> {
        Ok(Self {
            namespace: "file".to_owned(),
            name: absolute_path(path)?,
        })
    }

    /// A file on another host reached as a file system: `file://{host}`, its absolute path.
    pub fn remote_file(host: &str, path: &str) -> Result<Self, DomainError> {
        Ok(Self {
            namespace: format!("file://{}", host_part(host)?),
            name: absolute_path(path)?,
        })
    }

    /// An object, or a prefix standing for a dataset of many objects: `s3://{bucket}`, the key without a
    /// leading or trailing `/`.
    pub fn s3(bucket: &BucketName, key: &str) -> Result<Self, DomainError> {
        let key = key.trim_matches('/');
        part("object key", key)?;
        Ok(Self {
            namespace: format!("s3://{bucket}"),
            name: key.to_owned(),
        })
    }
}

fn part(what: &str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::InvalidLineageName(format!("{what} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::InvalidLineageName(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

fn dotted(parts: &[(&str, &str)]) -> Result<String, DomainError> {
    for (what, value) in parts {
        part(what, value)?;
    }
    Ok(parts.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("."))
}

/// Host names compare without case (DNS), so they are written lower-case; an IPv6 literal gets its brackets.
fn host_part(host: &str) -> Result<String, DomainError> {
    let host = host.trim();
    part("host", host)?;
    if host.contains(['/', '@', ' ']) {
        return Err(DomainError::InvalidLineageName(format!(
            "host {host:?} must be a host name or address"
        )));
    }
    let host = host.to_ascii_lowercase();
    if host.contains(':') && !host.starts_with('[') {
        Ok(format!("[{host}]"))
    } else {
        Ok(host)
    }
}

fn absolute_path(path: &str) -> Result<String, DomainError> {
    part("path", path)?;
    if !path.starts_with('/') {
        return Err(DomainError::InvalidLineageName(format!(
            "path {path:?} must be absolute"
        )));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pair(d: DatasetName) -> (String, String) {
        (d.namespace, d.name)
    }

    #[test]
    fn warehouses_follow_the_naming_spec() {
        assert_eq!(
            pair(DatasetName::postgres("DB.Example.com", 5432, "pluto", "public", "orders").unwrap()),
            ("postgres://db.example.com:5432".into(), "pluto.public.orders".into())
        );
        assert_eq!(
            pair(DatasetName::mysql("127.0.0.1", 3306, "shop", "customers").unwrap()),
            ("mysql://127.0.0.1:3306".into(), "shop.customers".into())
        );
        assert_eq!(
            pair(DatasetName::postgres("::1", 5432, "d", "s", "t").unwrap()).0,
            "postgres://[::1]:5432"
        );
        // The namespace OpenLineage's dbt integration writes for dbt-duckdb, so dbt's and our lineage join.
        assert_eq!(
            pair(DatasetName::duckdb("/database/jaffle_shop.duckdb", "jaffle_shop", "main", "customers").unwrap()),
            (
                "duckdb:///database/jaffle_shop.duckdb".into(),
                "jaffle_shop.main.customers".into()
            )
        );
        assert_eq!(
            DatasetName::duckdb(":memory:", "memory", "main", "t")
                .unwrap()
                .namespace,
            "duckdb://:memory:"
        );
        assert!(DatasetName::duckdb("relative.duckdb", "d", "main", "t").is_err());
        assert!(DatasetName::postgres("", 5432, "d", "s", "t").is_err());
        assert!(DatasetName::postgres("h", 5432, "d", "", "t").is_err());
        assert!(DatasetName::mysql("user@h", 3306, "d", "t").is_err());
    }

    #[test]
    fn files_and_objects_follow_the_naming_spec() {
        assert_eq!(
            pair(DatasetName::local_file("/data/sales/2024.csv").unwrap()),
            ("file".into(), "/data/sales/2024.csv".into())
        );
        assert_eq!(DatasetName::local_file("/data/sales/").unwrap().name, "/data/sales");
        assert_eq!(DatasetName::local_file("/").unwrap().name, "/");
        assert!(DatasetName::local_file("data/sales.csv").is_err());
        assert_eq!(
            pair(DatasetName::remote_file("NAS01", "/exports/a.parquet").unwrap()),
            ("file://nas01".into(), "/exports/a.parquet".into())
        );
        let bucket = BucketName::parse("lake").unwrap();
        assert_eq!(
            pair(DatasetName::s3(&bucket, "raw/orders/part-0.parquet").unwrap()),
            ("s3://lake".into(), "raw/orders/part-0.parquet".into())
        );
        assert_eq!(DatasetName::s3(&bucket, "/raw/orders/").unwrap().name, "raw/orders");
        assert!(DatasetName::s3(&bucket, "/").is_err());
        assert!(DatasetName::new("custom://x", "").is_err());
        assert_eq!(DatasetName::new("inmemory://", "tmp").unwrap().name, "tmp");
    }
}
