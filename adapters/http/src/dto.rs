//! Wire types. Domain types stay free of serde and utoipa; these mirror them for the API.

use pluto_duck_domain::{ExtensionStatus, HealthReport, Project};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// RFC 9457 problem details, served as `application/problem+json`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:pluto-duck:problem:not-found`.
    #[serde(rename = "type")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path the problem occurred on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Also in the `x-request-id` response header; quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExtensionDto {
    pub name: String,
    pub installed: bool,
    pub loaded: bool,
    /// How to install it when it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthDto {
    /// `ok`, or `degraded` when an extension or the metadata store is missing.
    pub status: String,
    pub version: String,
    pub duckdb_version: String,
    /// `local` or `hybrid`.
    pub profile: String,
    pub extensions: Vec<ExtensionDto>,
}

impl From<ExtensionStatus> for ExtensionDto {
    fn from(e: ExtensionStatus) -> Self {
        Self {
            name: e.name,
            installed: e.installed,
            loaded: e.loaded,
            install_hint: e.install_hint,
        }
    }
}

impl From<HealthReport> for HealthDto {
    fn from(h: HealthReport) -> Self {
        Self {
            status: h.status.to_owned(),
            version: h.version,
            duckdb_version: h.duckdb_version,
            profile: h.profile.as_str().to_owned(),
            extensions: h.extensions.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectDto {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Project> for ProjectDto {
    fn from(p: Project) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectBody {
    /// Identifier: a letter or underscore, then letters, digits, underscores; at most 63 characters.
    pub id: String,
    /// Display name; defaults to the id.
    pub name: Option<String>,
}
