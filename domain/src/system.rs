use crate::DomainError;

/// Where metadata lives: a SQLite file next to the warehouse (local) or a PostgreSQL control plane (hybrid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Local,
    Hybrid,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Local => "local",
            Profile::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Profile::Local),
            "hybrid" => Ok(Profile::Hybrid),
            other => Err(DomainError::UnknownProfile(other.to_owned())),
        }
    }
}

/// One DuckDB extension the product relies on, as the warehouse sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionStatus {
    pub name: String,
    /// The extension file is in the extension directory, so DuckDB can load it offline.
    pub installed: bool,
    pub loaded: bool,
    /// The command that provisions it when it is missing.
    pub install_hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub status: &'static str,
    pub version: String,
    pub duckdb_version: String,
    pub profile: Profile,
    pub extensions: Vec<ExtensionStatus>,
}
