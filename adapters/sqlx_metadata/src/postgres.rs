use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pluto_duck_application::ports::{MetadataStore, RepoError};
use pluto_duck_domain::{Project, ProjectId};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use crate::{is_unique_violation, map_err, migrate_err};

/// The hybrid profile's control plane.
pub struct PgMetadataStore {
    pool: PgPool,
}

impl PgMetadataStore {
    /// Connects and applies pending migrations (each in a transaction; PostgreSQL DDL is transactional).
    /// The URL carries a password: it is never logged or put in an error.
    pub async fn connect(url: &str) -> Result<Self, RepoError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| RepoError::Unavailable(redacted_connect_error(&e)))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(migrate_err)?;
        Ok(Self { pool })
    }
}

/// sqlx's connect errors do not echo the URL, but keep only the first line to be safe.
fn redacted_connect_error(e: &sqlx::Error) -> String {
    format!(
        "cannot connect to PostgreSQL: {}",
        e.to_string().lines().next().unwrap_or_default()
    )
}

fn project_from_row(row: &sqlx::postgres::PgRow) -> Result<Project, RepoError> {
    let id: String = row.try_get("id").map_err(map_err)?;
    let created_at: DateTime<Utc> = row.try_get("created_at").map_err(map_err)?;
    Ok(Project {
        id: ProjectId::parse(id).map_err(|e| RepoError::Internal(e.to_string()))?,
        name: row.try_get("name").map_err(map_err)?,
        created_at,
    })
}

#[async_trait]
impl MetadataStore for PgMetadataStore {
    async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn ensure_project(&self, project: &Project) -> Result<Project, RepoError> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.get_project(&project.id)
            .await?
            .ok_or_else(|| RepoError::Internal("project vanished after insert".into()))
    }

    async fn create_project(&self, project: &Project) -> Result<(), RepoError> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    RepoError::Conflict {
                        what: "project",
                        id: project.id.to_string(),
                    }
                } else {
                    map_err(e)
                }
            })?;
        Ok(())
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>, RepoError> {
        sqlx::query("SELECT id, name, created_at FROM projects WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(project_from_row)
            .transpose()
    }

    async fn list_projects(&self) -> Result<Vec<Project>, RepoError> {
        sqlx::query("SELECT id, name, created_at FROM projects ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(project_from_row)
            .collect()
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>, RepoError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now()) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
