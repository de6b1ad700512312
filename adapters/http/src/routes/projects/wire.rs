//! Wire types of `/api/v1/projects`.

use pluto_duck_application::Removed;
use pluto_duck_domain::Project;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::openapi::{DisplayName, IdentifierText};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project.
    #[param(value_type = IdentifierText)]
    pub project_id: String,
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
    /// Lower-cased on the way in; it cannot change.
    #[schema(value_type = IdentifierText)]
    pub id: String,
    /// Display name; defaults to the id.
    #[schema(value_type = Option<DisplayName>)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameProjectBody {
    #[schema(value_type = DisplayName)]
    pub name: String,
}

/// The typed phrase that confirms a destructive action: `reset <id>` or `delete <id>`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    #[schema(example = "reset default")]
    pub confirm: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedDto {
    pub sources: usize,
    pub analyses: usize,
    /// Schemas and tables dropped from the warehouse.
    pub warehouse_objects: usize,
    /// Stored query results deleted.
    pub results: usize,
}

impl From<Removed> for RemovedDto {
    fn from(r: Removed) -> Self {
        Self {
            sources: r.sources,
            analyses: r.analyses,
            warehouse_objects: r.warehouse_objects,
            results: r.results,
        }
    }
}
