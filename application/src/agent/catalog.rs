//! What the agent knows about a project's tables: a snapshot of the catalog, read once from the warehouse, its
//! attached sources, caches, analyses and dbt models, then handed to the [`Explorer`](super::Explorer).

use std::fmt;

/// Where a table comes from. Only rendered and reported; the ranking treats every kind alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    Table,
    View,
    SourceTable,
    CachedTable,
    Analysis,
    DbtModel,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::View => "view",
            Self::SourceTable => "source table",
            Self::CachedTable => "cached table",
            Self::Analysis => "analysis",
            Self::DbtModel => "dbt model",
        }
    }
}

/// `catalog.schema.table` or `schema.table`. Comparison is exact; [`TableName::matches`] ignores ASCII case as
/// SQL engines do for unquoted names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub catalog: Option<String>,
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            catalog: None,
            schema: schema.into(),
            table: table.into(),
        }
    }

    pub fn in_catalog(mut self, catalog: impl Into<String>) -> Self {
        self.catalog = Some(catalog.into());
        self
    }

    /// Same catalog (when both name one), schema and table, ignoring ASCII case.
    pub fn matches(&self, other: &TableName) -> bool {
        let catalog_ok = match (&self.catalog, &other.catalog) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        catalog_ok && self.schema.eq_ignore_ascii_case(&other.schema) && self.table.eq_ignore_ascii_case(&other.table)
    }

    /// The schema including its catalog: what groups tables that belong together.
    pub fn namespace(&self) -> String {
        match &self.catalog {
            Some(c) => format!("{c}.{}", self.schema),
            None => self.schema.clone(),
        }
    }
}

/// Plain dotted form; [`super::render`] quotes identifiers that need it.
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.catalog {
            write!(f, "{c}.")?;
        }
        write!(f, "{}.{}", self.schema, self.table)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogSnapshot {
    pub tables: Vec<CatalogTable>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogTable {
    pub name: TableName,
    pub kind: TableKind,
    pub description: Option<String>,
    pub row_count: Option<u64>,
    pub columns: Vec<CatalogColumn>,
    pub foreign_keys: Vec<ForeignKey>,
}

impl CatalogTable {
    pub fn new(name: TableName, kind: TableKind) -> Self {
        Self {
            name,
            kind,
            description: None,
            row_count: None,
            columns: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn rows(mut self, rows: u64) -> Self {
        self.row_count = Some(rows);
        self
    }

    pub fn column(mut self, column: CatalogColumn) -> Self {
        self.columns.push(column);
        self
    }

    pub fn foreign_key(mut self, fk: ForeignKey) -> Self {
        self.foreign_keys.push(fk);
        self
    }

    pub fn primary_key(&self) -> impl Iterator<Item = &CatalogColumn> {
        self.columns.iter().filter(|c| c.is_primary_key)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogColumn {
    pub name: String,
    pub data_type: String,
    pub description: Option<String>,
    pub is_primary_key: bool,
    /// Distinct values sampled from low-cardinality text columns; empty when none were sampled.
    pub sample_values: Vec<String>,
}

impl CatalogColumn {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            data_type: data_type.into(),
            description: None,
            is_primary_key: false,
            sample_values: Vec::new(),
        }
    }

    pub fn primary_key(mut self) -> Self {
        self.is_primary_key = true;
        self
    }

    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn values<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sample_values = values.into_iter().map(Into::into).collect();
        self
    }
}

/// `columns` of the owning table reference `referenced_columns` of `references`, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub references: TableName,
    pub referenced_columns: Vec<String>,
}

impl ForeignKey {
    pub fn new(column: impl Into<String>, references: TableName, referenced_column: impl Into<String>) -> Self {
        Self {
            columns: vec![column.into()],
            references,
            referenced_columns: vec![referenced_column.into()],
        }
    }
}
