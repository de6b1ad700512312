//! Wire types of the system endpoints.

use pluto_duck_domain::{ExtensionStatus, HealthReport};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::openapi::text_enum;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExtensionDto {
    pub name: String,
    pub installed: bool,
    pub loaded: bool,
    /// How to install it when it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
}

text_enum!(
    /// Overall health.
    HealthStatus,
    "`ok`, or `degraded` when an extension or the metadata store is missing",
    ["ok", "degraded"]
);

text_enum!(
    /// Deployment profiles.
    ProfileName,
    "local or hybrid",
    ["local", "hybrid"]
);

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthDto {
    #[schema(value_type = HealthStatus)]
    pub status: String,
    pub version: String,
    pub duckdb_version: String,
    #[schema(value_type = ProfileName)]
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
