use chrono::{DateTime, Utc};

use crate::{DomainError, Identifier};

/// Projects keep work apart; every other entity belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(Identifier);

impl ProjectId {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        Identifier::parse(value).map(Self)
    }

    pub fn default_project() -> Self {
        Self(Identifier(Self::DEFAULT.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for ProjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Project {
    pub fn default_project(now: DateTime<Utc>) -> Self {
        Self {
            id: ProjectId::default_project(),
            name: "Default".to_owned(),
            created_at: now,
        }
    }
}
