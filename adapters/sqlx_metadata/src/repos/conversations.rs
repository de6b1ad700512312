//! Conversations with the agent, their messages in order, and the stored events of runs.

use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{
    Conversation, ConversationId, ConversationMessage, MessageRole, ProjectId, RunEvent, RunEventKind, RunId,
};
use sqlx::Acquire;

use super::bad;
use crate::dialect::{execute, fetch_all, fetch_optional, map_err, with_pool, Db, Ts};

#[derive(sqlx::FromRow)]
struct ConversationRow {
    project_id: String,
    id: String,
    title: String,
    privacy: bool,
    created_at: Ts,
    updated_at: Ts,
}

impl ConversationRow {
    fn into_conversation(self) -> Result<Conversation, RepoError> {
        Ok(Conversation {
            id: ConversationId::parse(self.id).map_err(bad)?,
            project: ProjectId::parse(self.project_id).map_err(bad)?,
            title: self.title,
            privacy: self.privacy,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

const CONVERSATION_COLUMNS: &str = "project_id, id, title, privacy, created_at, updated_at";

pub(crate) async fn put_conversation(db: &Db, c: &Conversation) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO conversations (project_id, id, title, privacy, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project_id, id) DO UPDATE SET title = excluded.title, \
             privacy = excluded.privacy, updated_at = excluded.updated_at",
        )
        .bind(c.project.as_str())
        .bind(c.id.as_str())
        .bind(&c.title)
        .bind(c.privacy)
        .bind(Ts(c.created_at))
        .bind(Ts(c.updated_at))
    )
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn get_conversation(
    db: &Db,
    project: &ProjectId,
    id: &ConversationId,
) -> Result<Option<Conversation>, RepoError> {
    let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE project_id = $1 AND id = $2");
    let row: Option<ConversationRow> =
        fetch_optional!(db, sqlx::query_as(&sql).bind(project.as_str()).bind(id.as_str())).map_err(map_err)?;
    row.map(ConversationRow::into_conversation).transpose()
}

/// Most recently updated first.
pub(crate) async fn list_conversations(db: &Db, project: &ProjectId) -> Result<Vec<Conversation>, RepoError> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE project_id = $1 ORDER BY updated_at DESC, id DESC"
    );
    let rows: Vec<ConversationRow> = fetch_all!(db, sqlx::query_as(&sql).bind(project.as_str())).map_err(map_err)?;
    rows.into_iter().map(ConversationRow::into_conversation).collect()
}

/// Removes the conversation and its messages, in one transaction.
pub(crate) async fn delete_conversation(db: &Db, project: &ProjectId, id: &ConversationId) -> Result<bool, RepoError> {
    let affected = with_pool!(db, writer, |conn| async {
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM conversation_messages WHERE project_id = $1 AND conversation_id = $2")
            .bind(project.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM conversations WHERE project_id = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(done.rows_affected())
    }
    .await)
    .map_err(map_err)?;
    Ok(affected > 0)
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    project_id: String,
    conversation_id: String,
    id: String,
    role: String,
    content: String,
    run_id: Option<String>,
    sql_text: Option<String>,
    data: Option<String>,
    created_at: Ts,
}

pub(crate) async fn put_message(db: &Db, m: &ConversationMessage) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO conversation_messages \
             (project_id, conversation_id, id, role, content, run_id, sql_text, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (project_id, id) DO UPDATE SET \
             content = excluded.content, run_id = excluded.run_id, sql_text = excluded.sql_text, data = excluded.data",
        )
        .bind(m.project.as_str())
        .bind(m.conversation.as_str())
        .bind(&m.id)
        .bind(m.role.as_str())
        .bind(&m.content)
        .bind(m.run.as_ref().map(|r| r.as_str().to_owned()))
        .bind(m.sql.as_deref())
        .bind(m.data.as_deref())
        .bind(Ts(m.created_at))
    )
    .map_err(map_err)?;
    Ok(())
}

/// Oldest first.
pub(crate) async fn list_messages(
    db: &Db,
    project: &ProjectId,
    conversation: &ConversationId,
) -> Result<Vec<ConversationMessage>, RepoError> {
    let rows: Vec<MessageRow> = fetch_all!(
        db,
        sqlx::query_as(
            "SELECT project_id, conversation_id, id, role, content, run_id, sql_text, data, created_at \
             FROM conversation_messages WHERE project_id = $1 AND conversation_id = $2 ORDER BY created_at, id",
        )
        .bind(project.as_str())
        .bind(conversation.as_str())
    )
    .map_err(map_err)?;
    rows.into_iter()
        .map(|r| {
            Ok(ConversationMessage {
                id: r.id,
                conversation: ConversationId::parse(r.conversation_id).map_err(bad)?,
                project: ProjectId::parse(r.project_id).map_err(bad)?,
                role: MessageRole::parse(&r.role).map_err(bad)?,
                content: r.content,
                run: r.run_id.map(RunId::parse).transpose().map_err(bad)?,
                sql: r.sql_text,
                data: r.data,
                created_at: r.created_at.0,
            })
        })
        .collect()
}

/// Appends events (their `seq` decides their place; one already stored is left as it is).
pub(crate) async fn put_events(db: &Db, run: &RunId, events: &[RunEvent]) -> Result<(), RepoError> {
    if events.is_empty() {
        return Ok(());
    }
    with_pool!(db, writer, |conn| async {
        let mut tx = conn.begin().await?;
        for e in events {
            let (name, data) = event_parts(&e.kind);
            sqlx::query(
                "INSERT INTO run_events (run_id, seq, at, name, data) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (run_id, seq) DO NOTHING",
            )
            .bind(run.as_str())
            .bind(i64::try_from(e.seq).unwrap_or(i64::MAX))
            .bind(Ts(e.at))
            .bind(name)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
    .await)
    .map_err(map_err)
}

/// In order.
pub(crate) async fn list_events(db: &Db, run: &RunId) -> Result<Vec<RunEvent>, RepoError> {
    let rows: Vec<(i64, Ts, String, String)> = fetch_all!(
        db,
        sqlx::query_as("SELECT seq, at, name, data FROM run_events WHERE run_id = $1 ORDER BY seq").bind(run.as_str())
    )
    .map_err(map_err)?;
    rows.into_iter()
        .map(|(seq, at, name, data)| {
            Ok(RunEvent {
                seq: u64::try_from(seq).unwrap_or(0),
                at: at.0,
                kind: event_kind(name, data)?,
            })
        })
        .collect()
}

/// Every kind of event as a name and a JSON object, read back by [`event_kind`].
fn event_parts(kind: &RunEventKind) -> (String, String) {
    let data = match kind {
        RunEventKind::Custom { data, .. } => return (kind.name().to_owned(), data.clone()),
        RunEventKind::Progress { rows, bytes } | RunEventKind::Completed { rows, bytes } => {
            serde_json::json!({ "rows": rows, "bytes": bytes })
        }
        RunEventKind::PartProgress {
            part,
            parts,
            rows,
            bytes,
        } => serde_json::json!({ "part": part, "parts": parts, "rows": rows, "bytes": bytes, "parted": true }),
        RunEventKind::Failed { message } | RunEventKind::TimedOut { message } => {
            serde_json::json!({ "message": message })
        }
        RunEventKind::Node(n) => serde_json::json!({
            "unique_id": n.unique_id, "name": n.name, "resource_type": n.resource_type, "status": n.status,
            "elapsed_ms": n.elapsed_ms, "rows": n.rows, "message": n.message,
        }),
        RunEventKind::Queued | RunEventKind::Started | RunEventKind::Cancelled => serde_json::json!({}),
    };
    (kind.name().to_owned(), data.to_string())
}

fn event_kind(name: String, data: String) -> Result<RunEventKind, RepoError> {
    let v: serde_json::Value = serde_json::from_str(&data).map_err(bad)?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let message = || v["message"].as_str().unwrap_or_default().to_owned();
    Ok(match name.as_str() {
        "queued" => RunEventKind::Queued,
        "started" => RunEventKind::Started,
        "progress" if v["parted"].as_bool() == Some(true) => RunEventKind::PartProgress {
            part: n("part"),
            parts: n("parts"),
            rows: n("rows"),
            bytes: n("bytes"),
        },
        "progress" => RunEventKind::Progress {
            rows: n("rows"),
            bytes: n("bytes"),
        },
        "completed" => RunEventKind::Completed {
            rows: n("rows"),
            bytes: n("bytes"),
        },
        "failed" => RunEventKind::Failed { message: message() },
        "cancelled" => RunEventKind::Cancelled,
        "timed_out" => RunEventKind::TimedOut { message: message() },
        "node" => RunEventKind::Node(pluto_duck_domain::NodeEvent {
            unique_id: v["unique_id"].as_str().unwrap_or_default().to_owned(),
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            resource_type: v["resource_type"].as_str().unwrap_or_default().to_owned(),
            status: v["status"].as_str().map(str::to_owned),
            elapsed_ms: v["elapsed_ms"].as_u64(),
            rows: v["rows"].as_u64(),
            message: v["message"].as_str().map(str::to_owned),
        }),
        _ => RunEventKind::Custom { name, data },
    })
}
