use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pluto_duck_application::ports::{MetadataStore, RepoError};
use pluto_duck_domain::{Project, ProjectId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use crate::{is_unique_violation, map_err, migrate_err};

pub struct SqliteMetadataStore {
    pool: SqlitePool,
}

impl SqliteMetadataStore {
    /// Opens (creating) the file and applies pending migrations. Each migration runs in a transaction, so a
    /// failed one leaves the previous schema and data intact.
    pub async fn open(path: &Path) -> Result<Self, RepoError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| RepoError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(migrate_err)?;
        Ok(Self { pool })
    }
}

fn project_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Project, RepoError> {
    let id: String = row.try_get("id").map_err(map_err)?;
    let created: String = row.try_get("created_at").map_err(map_err)?;
    Ok(Project {
        id: ProjectId::parse(id).map_err(|e| RepoError::Internal(e.to_string()))?,
        name: row.try_get("name").map_err(map_err)?,
        created_at: DateTime::parse_from_rfc3339(&created)
            .map_err(|e| RepoError::Internal(format!("bad timestamp in metadata: {e}")))?
            .with_timezone(&Utc),
    })
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn ensure_project(&self, project: &Project) -> Result<Project, RepoError> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(project.created_at.to_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.get_project(&project.id)
            .await?
            .ok_or_else(|| RepoError::Internal("project vanished after insert".into()))
    }

    async fn create_project(&self, project: &Project) -> Result<(), RepoError> {
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)")
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(project.created_at.to_rfc3339())
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
        sqlx::query("SELECT id, name, created_at FROM projects WHERE id = ?")
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
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
