//! Files read in place: a local file, folder or glob, an HTTP(S) URL, or S3 objects. The warehouse reads them
//! with its own readers; this module decides the format, the tables a location holds and the reader SQL.

use crate::{DomainError, Identifier};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Csv,
    Parquet,
    Json,
}

impl FileFormat {
    pub const ALL: [FileFormat; 3] = [FileFormat::Csv, FileFormat::Parquet, FileFormat::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
            FileFormat::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.to_ascii_lowercase().as_str() {
            "csv" | "tsv" => Ok(FileFormat::Csv),
            "parquet" => Ok(FileFormat::Parquet),
            "json" | "ndjson" | "jsonl" => Ok(FileFormat::Json),
            _ => Err(DomainError::UnknownValue {
                what: "file format (expected csv, parquet or json)",
                value: s.to_owned(),
            }),
        }
    }

    /// The format a file name says it has (`.csv.gz` is CSV); `None` for anything else.
    pub fn detect(name: &str) -> Option<FileFormat> {
        // A URL's query and fragment are not part of the file name.
        let name = name.split(['?', '#']).next().unwrap_or(name);
        let name = name.rsplit(['/', '\\']).next().unwrap_or(name).to_ascii_lowercase();
        let name = ["gz", "zst", "gzip"]
            .iter()
            .find_map(|c| name.strip_suffix(&format!(".{c}")))
            .unwrap_or(&name);
        let ext = name.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "csv" | "tsv" | "txt" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            "json" | "ndjson" | "jsonl" => Some(FileFormat::Json),
            _ => None,
        }
    }

    fn reader(self) -> &'static str {
        match self {
            FileFormat::Csv => "read_csv",
            FileFormat::Parquet => "read_parquet",
            FileFormat::Json => "read_json",
        }
    }
}

/// Where a located source lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationScheme {
    Local,
    Http,
    S3,
}

/// Connection settings for S3-compatible storage. The secret key lives in the secret store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Settings {
    pub region: Option<String>,
    /// `host:port` of an S3-compatible server (MinIO and the like); AWS when absent.
    pub endpoint: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    pub use_ssl: bool,
    pub key_id: Option<String>,
    /// Name of the secret access key in the secret store.
    pub secret_key_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLocation {
    /// A path, folder or glob; an `http(s)://` URL; or an `s3://bucket/key` URL, folder (ending in `/`) or glob.
    pub uri: String,
    /// Detected from the file names when absent.
    pub format: Option<FileFormat>,
    /// CSV only: one character; sniffed when absent.
    pub delimiter: Option<String>,
    /// CSV only: whether the first line holds the column names; sniffed when absent.
    pub header: Option<bool>,
    /// CSV only: skip malformed rows instead of failing (a row with the wrong number of fields, an unterminated
    /// quote, a value that does not fit its column).
    pub lenient: bool,
    pub s3: Option<S3Settings>,
}

/// One table of a located source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTable {
    pub name: Identifier,
    /// Files or one glob the table reads.
    pub files: Vec<String>,
    pub format: FileFormat,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl FileLocation {
    pub fn scheme(&self) -> LocationScheme {
        let lower = self.uri.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            LocationScheme::Http
        } else if lower.starts_with("s3://") {
            LocationScheme::S3
        } else {
            LocationScheme::Local
        }
    }

    pub fn is_glob(&self) -> bool {
        // In a URL `?` starts the query, and HTTP servers cannot list files anyway.
        match self.scheme() {
            LocationScheme::Http => self.uri.contains('*'),
            _ => has_glob(&self.uri),
        }
    }

    /// A folder whose files become one table each: a URI ending in `/` (local folders are told by the caller,
    /// who can look at the disk).
    pub fn is_prefix(&self) -> bool {
        self.uri.ends_with('/')
    }

    /// The part of a local location before its first glob segment: what must exist and sit inside the allowed
    /// roots.
    pub fn base_path(&self) -> String {
        if !self.is_glob() {
            return self.uri.clone();
        }
        let mut base = Vec::new();
        for segment in self.uri.split('/') {
            if has_glob(segment) {
                break;
            }
            base.push(segment);
        }
        let joined = base.join("/");
        if joined.is_empty() {
            ".".into()
        } else {
            joined
        }
    }

    /// `s3://bucket/...` → `s3://bucket`, the scope of the source's DuckDB secret.
    pub fn s3_scope(&self) -> Option<String> {
        let rest = self.uri.get(5..)?;
        let bucket = rest.split('/').next().filter(|b| !b.is_empty())?;
        Some(format!("s3://{bucket}"))
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: String| DomainError::InvalidSource(m);
        if self.uri.trim().is_empty() || self.uri.contains(['\n', '\0']) {
            return Err(bad("location must be a path or URL".into()));
        }
        if self.uri.split(['/', '\\']).any(|s| s == "..") && self.scheme() != LocationScheme::Local {
            return Err(bad("location must not contain '..'".into()));
        }
        if let Some(d) = &self.delimiter {
            if d.chars().count() != 1 {
                return Err(bad(format!("delimiter must be one character, not {d:?}")));
            }
        }
        if self.scheme() != LocationScheme::S3 && self.s3.as_ref().is_some_and(|s| *s != S3Settings::default()) {
            return Err(bad("S3 settings apply only to s3:// locations".into()));
        }
        match self.scheme() {
            LocationScheme::S3 if self.s3_scope().is_none() => Err(bad(
                "an S3 location is s3://bucket/key, s3://bucket/prefix/ or a glob".into(),
            )),
            LocationScheme::Http if self.is_glob() || self.is_prefix() => Err(bad(
                "an HTTP location must name one file (HTTP servers cannot list folders)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The format of one file: the declared one, or the one its name says.
    pub fn format_of(&self, file: &str) -> Result<FileFormat, DomainError> {
        if let Some(f) = self.format {
            return Ok(f);
        }
        FileFormat::detect(file).ok_or_else(|| {
            let ext = file.rsplit('/').next().and_then(|n| n.rsplit_once('.')).map(|(_, e)| e);
            DomainError::InvalidSource(match ext {
                Some(ext) => format!(
                    "unsupported format .{ext} ({file}): supported are csv, tsv, parquet, json and ndjson \
                     (optionally .gz / .zst), or name the format"
                ),
                None => format!("cannot tell the format of {file}: name the format (csv, parquet or json)"),
            })
        })
    }

    /// The tables of this location. `listing` holds the files of a folder (ignored otherwise); files whose format
    /// is unknown are skipped in a folder and refused anywhere else.
    pub fn tables(&self, folder_listing: Option<&[String]>) -> Result<Vec<FileTable>, DomainError> {
        if let Some(files) = folder_listing {
            let mut tables: Vec<FileTable> = Vec::new();
            for file in files {
                let Ok(format) = self.format_of(file) else { continue };
                let stem = file.rsplit('/').next().unwrap_or(file);
                let stem = stem.split('.').next().unwrap_or(stem);
                let mut name = Identifier::sanitize(stem);
                if tables.iter().any(|t| t.name == name) {
                    name = Identifier::sanitize(&format!("{stem}_{}", format.as_str()));
                }
                tables.push(FileTable {
                    name,
                    files: vec![file.clone()],
                    format,
                });
            }
            if tables.is_empty() {
                return Err(DomainError::InvalidSource(format!(
                    "no csv, parquet or json files in {}",
                    self.uri
                )));
            }
            tables.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(tables);
        }
        let format = self.format_of(&self.uri)?;
        let name_from = if self.is_glob() {
            // `.../sales/*.csv` is the table `sales`: the folder the glob reads.
            self.base_path()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("data")
                .to_owned()
        } else {
            let file = self.uri.split(['?', '#']).next().unwrap_or(&self.uri);
            let file = file.rsplit('/').next().unwrap_or(file);
            file.split('.').next().unwrap_or(file).to_owned()
        };
        let name = if name_from.is_empty() || name_from == "." || name_from.ends_with(':') {
            Identifier::sanitize("data")
        } else {
            Identifier::sanitize(&name_from)
        };
        Ok(vec![FileTable {
            name,
            files: vec![self.uri.clone()],
            format,
        }])
    }

    /// The warehouse expression reading `files` in `format` with this location's options.
    pub fn reader_sql(&self, files: &[String], format: FileFormat) -> String {
        let list = if files.len() == 1 {
            lit(&files[0])
        } else {
            format!("[{}]", files.iter().map(|f| lit(f)).collect::<Vec<_>>().join(", "))
        };
        let mut opts = Vec::new();
        if files.len() > 1 || self.is_glob() {
            opts.push("union_by_name = true".to_owned());
        }
        if format == FileFormat::Csv {
            if let Some(d) = &self.delimiter {
                opts.push(format!("delim = {}", lit(d)));
            }
            if let Some(h) = self.header {
                opts.push(format!("header = {h}"));
            }
        }
        let opts: String = opts.iter().map(|o| format!(", {o}")).collect();
        format!("{}({list}{opts})", format.reader())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(uri: &str) -> FileLocation {
        FileLocation {
            lenient: false,
            uri: uri.into(),
            format: None,
            delimiter: None,
            header: None,
            s3: None,
        }
    }

    #[test]
    fn formats_come_from_names() {
        assert_eq!(FileFormat::detect("/a/b.CSV"), Some(FileFormat::Csv));
        assert_eq!(FileFormat::detect("x.csv.gz"), Some(FileFormat::Csv));
        assert_eq!(FileFormat::detect("s3://b/k/part-0.parquet"), Some(FileFormat::Parquet));
        assert_eq!(FileFormat::detect("e.ndjson"), Some(FileFormat::Json));
        assert_eq!(FileFormat::detect("book.xlsx"), None);
        let err = loc("/data/book.xlsx").tables(None).unwrap_err().to_string();
        assert!(err.contains("unsupported format .xlsx"), "{err}");
    }

    #[test]
    fn tables_of_files_globs_and_folders() {
        let t = loc("/data/Sales 2024.csv").tables(None).unwrap();
        assert_eq!(t[0].name.as_str(), "sales_2024");
        let t = loc("/data/events/*.parquet").tables(None).unwrap();
        assert_eq!((t[0].name.as_str(), t[0].format), ("events", FileFormat::Parquet));
        let t = loc("https://h:8080/x/orders.csv?raw=1").tables(None).unwrap();
        assert_eq!(t[0].name.as_str(), "orders");
        let listing = vec![
            "/d/a.csv".to_owned(),
            "/d/a.parquet".to_owned(),
            "/d/readme.md".to_owned(),
        ];
        let t = loc("/d").tables(Some(&listing)).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "a_parquet"]);
        assert!(loc("/d").tables(Some(&["/d/x.md".to_owned()])).is_err());
    }

    #[test]
    fn reader_sql_quotes_and_carries_options() {
        let mut l = loc("/d/it's.csv");
        l.delimiter = Some(";".into());
        l.header = Some(true);
        assert_eq!(
            l.reader_sql(&["/d/it's.csv".into()], FileFormat::Csv),
            "read_csv('/d/it''s.csv', delim = ';', header = true)"
        );
        assert_eq!(
            loc("/d/*.json").reader_sql(&["/d/*.json".into()], FileFormat::Json),
            "read_json('/d/*.json', union_by_name = true)"
        );
    }

    #[test]
    fn validation_and_bases() {
        assert_eq!(loc("/data/x/*/part-*.parquet").base_path(), "/data/x");
        assert_eq!(loc("s3://bucket/a/b.csv").s3_scope().as_deref(), Some("s3://bucket"));
        assert!(loc("s3:///x.csv").validate().is_err());
        assert!(loc("http://h/x/*.csv").validate().is_err());
        let mut l = loc("/x.csv");
        l.delimiter = Some(";;".into());
        assert!(l.validate().is_err());
    }
}
