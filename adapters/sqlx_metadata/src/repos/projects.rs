//! Projects and settings.

use chrono::Utc;
use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{Project, ProjectId};
use sqlx::Acquire;

use super::bad;
use crate::dialect::{conflict_or_err, execute, fetch_all, fetch_optional, map_err, with_pool, Db, Ts};

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    created_at: Ts,
}

impl ProjectRow {
    fn into_project(self) -> Result<Project, RepoError> {
        Ok(Project {
            id: ProjectId::parse(self.id).map_err(bad)?,
            name: self.name,
            created_at: self.created_at.0,
        })
    }
}

const INSERT: &str = "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)";
const INSERT_IF_ABSENT: &str =
    "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";

/// What a project owns, cleared child tables first.
const CLEAR: [&str; 11] = [
    "DELETE FROM jobs WHERE project_id = $1",
    "DELETE FROM run_events WHERE run_id IN (SELECT id FROM runs WHERE project_id = $1)",
    "DELETE FROM conversation_messages WHERE project_id = $1",
    "DELETE FROM conversations WHERE project_id = $1",
    "DELETE FROM board_items WHERE project_id = $1",
    "DELETE FROM boards WHERE project_id = $1",
    "DELETE FROM runs WHERE project_id = $1",
    "DELETE FROM sources WHERE project_id = $1",
    "DELETE FROM cached_tables WHERE project_id = $1",
    "DELETE FROM ingestions WHERE project_id = $1",
    "DELETE FROM analysis_state WHERE project_id = $1",
];

pub(crate) async fn ensure(db: &Db, project: &Project) -> Result<Project, RepoError> {
    execute!(
        db,
        sqlx::query(INSERT_IF_ABSENT)
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(Ts(project.created_at))
    )
    .map_err(map_err)?;
    get(db, &project.id)
        .await?
        .ok_or_else(|| RepoError::Internal("project vanished after insert".into()))
}

pub(crate) async fn create(db: &Db, project: &Project) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(INSERT)
            .bind(project.id.as_str())
            .bind(&project.name)
            .bind(Ts(project.created_at))
    )
    .map_err(conflict_or_err("project", project.id.as_str()))?;
    Ok(())
}

pub(crate) async fn get(db: &Db, id: &ProjectId) -> Result<Option<Project>, RepoError> {
    fetch_optional!(
        db,
        sqlx::query_as::<_, ProjectRow>("SELECT id, name, created_at FROM projects WHERE id = $1").bind(id.as_str())
    )
    .map_err(map_err)?
    .map(ProjectRow::into_project)
    .transpose()
}

pub(crate) async fn list(db: &Db) -> Result<Vec<Project>, RepoError> {
    fetch_all!(
        db,
        sqlx::query_as::<_, ProjectRow>("SELECT id, name, created_at FROM projects ORDER BY created_at, id")
    )
    .map_err(map_err)?
    .into_iter()
    .map(ProjectRow::into_project)
    .collect()
}

pub(crate) async fn rename(db: &Db, id: &ProjectId, name: &str) -> Result<bool, RepoError> {
    let affected = execute!(
        db,
        sqlx::query("UPDATE projects SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.as_str())
    )
    .map_err(map_err)?;
    Ok(affected > 0)
}

/// One transaction: a project is cleared whole or not at all.
pub(crate) async fn clear(db: &Db, id: &ProjectId, keep_project: bool) -> Result<(), RepoError> {
    with_pool!(db, writer, |conn| async {
        let mut tx = conn.begin().await?;
        for statement in CLEAR {
            sqlx::query(statement).bind(id.as_str()).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(format!("project.{id}.settings"))
            .execute(&mut *tx)
            .await?;
        if !keep_project {
            sqlx::query("DELETE FROM projects WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
    .await)
    .map_err(map_err)
}

pub(crate) async fn get_setting(db: &Db, key: &str) -> Result<Option<String>, RepoError> {
    fetch_optional!(
        db,
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key)
    )
    .map_err(map_err)
}

/// A lease is the setting `lease.<name>` holding its holder; taking it over is one conditional upsert, so of
/// two servers racing for an expired lease one changes the row and the other changes nothing.
pub(crate) async fn try_lease(db: &Db, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, RepoError> {
    let now = Utc::now();
    let expired = now - chrono::Duration::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 1000).min(1 << 40));
    let taken = execute!(
        db,
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at \
             WHERE settings.value = excluded.value OR settings.updated_at < $4",
        )
        .bind(format!("lease.{name}"))
        .bind(holder)
        .bind(Ts(now))
        .bind(Ts(expired))
    )
    .map_err(map_err)?;
    Ok(taken == 1)
}

pub(crate) async fn put_setting(db: &Db, key: &str, value: &str) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(Ts(Utc::now()))
    )
    .map_err(map_err)?;
    Ok(())
}
