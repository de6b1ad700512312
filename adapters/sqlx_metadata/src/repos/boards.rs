//! Boards and their items, one JSON document each (the client owns their content).

use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{Board, BoardItem, Identifier, ItemKind, ItemSource, ProjectId, Snapshot};
use sqlx::Acquire;

use super::{bad, time_of};
use crate::dialect::{execute, fetch_all, map_err, with_pool, Db};

fn board_doc(b: &Board) -> String {
    serde_json::json!({
        "name": b.name, "description": b.description, "position": b.position, "document": b.document,
        "created_at": b.created_at.to_rfc3339(), "updated_at": b.updated_at.to_rfc3339(),
    })
    .to_string()
}

fn board_from_doc(project: &ProjectId, id: String, doc: &str) -> Result<Board, RepoError> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    Ok(Board {
        id,
        project: project.clone(),
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        description: v["description"].as_str().unwrap_or_default().to_owned(),
        position: v["position"].as_u64().and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        document: v["document"].as_str().unwrap_or("{}").to_owned(),
        created_at: time_of(&v["created_at"])?,
        updated_at: time_of(&v["updated_at"])?,
    })
}

fn item_doc(i: &BoardItem) -> String {
    let source = match &i.source {
        None => serde_json::Value::Null,
        Some(ItemSource::Sql(sql)) => serde_json::json!({ "sql": sql }),
        Some(ItemSource::Analysis { id, params }) => serde_json::json!({ "analysis": id.as_str(), "params": params }),
    };
    serde_json::json!({
        "kind": i.kind.as_str(), "title": i.title, "x": i.x, "y": i.y, "w": i.w, "h": i.h, "config": i.config,
        "source": source, "refresh_secs": i.refresh_secs,
        "snapshot": i.snapshot.as_ref().map(|s| serde_json::json!({"ran_at": s.ran_at.to_rfc3339(), "data": s.data})),
        "last_error": i.last_error,
        "created_at": i.created_at.to_rfc3339(), "updated_at": i.updated_at.to_rfc3339(),
    })
    .to_string()
}

fn item_from_doc(project: &str, board: String, id: String, doc: &str) -> Result<BoardItem, RepoError> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    let n = |k: &str| v[k].as_u64().and_then(|x| u32::try_from(x).ok()).unwrap_or(0);
    let source = match &v["source"] {
        serde_json::Value::Null => None,
        s if s["sql"].is_string() => Some(ItemSource::Sql(s["sql"].as_str().unwrap_or_default().to_owned())),
        s => Some(ItemSource::Analysis {
            id: Identifier::parse(s["analysis"].as_str().unwrap_or_default()).map_err(bad)?,
            params: s["params"].as_str().unwrap_or("{}").to_owned(),
        }),
    };
    let snapshot = match &v["snapshot"] {
        serde_json::Value::Null => None,
        s => Some(Snapshot {
            ran_at: time_of(&s["ran_at"])?,
            data: s["data"].as_str().unwrap_or_default().to_owned(),
        }),
    };
    Ok(BoardItem {
        id,
        board,
        project: ProjectId::parse(project).map_err(bad)?,
        kind: ItemKind::parse(v["kind"].as_str().unwrap_or_default()).map_err(bad)?,
        title: v["title"].as_str().unwrap_or_default().to_owned(),
        x: n("x"),
        y: n("y"),
        w: n("w"),
        h: n("h"),
        config: v["config"].as_str().unwrap_or("{}").to_owned(),
        source,
        refresh_secs: v["refresh_secs"].as_u64(),
        snapshot,
        last_error: v["last_error"].as_str().map(str::to_owned),
        created_at: time_of(&v["created_at"])?,
        updated_at: time_of(&v["updated_at"])?,
    })
}

/// Inserts or replaces a board.
pub(crate) async fn put_board(db: &Db, board: &Board) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO boards (project_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(board.project.as_str())
        .bind(&board.id)
        .bind(board_doc(board))
    )
    .map_err(map_err)?;
    Ok(())
}

/// Ordered by position, then creation (both inside the document).
pub(crate) async fn list_boards(db: &Db, project: &ProjectId) -> Result<Vec<Board>, RepoError> {
    let rows: Vec<(String, String)> = fetch_all!(
        db,
        sqlx::query_as("SELECT id, doc FROM boards WHERE project_id = $1").bind(project.as_str())
    )
    .map_err(map_err)?;
    let mut boards = rows
        .into_iter()
        .map(|(id, doc)| board_from_doc(project, id, &doc))
        .collect::<Result<Vec<_>, _>>()?;
    boards.sort_by(|a, b| (a.position, a.created_at, &a.id).cmp(&(b.position, b.created_at, &b.id)));
    Ok(boards)
}

/// Removes the board and its items, in one transaction.
pub(crate) async fn delete_board(db: &Db, project: &ProjectId, id: &str) -> Result<bool, RepoError> {
    let affected = with_pool!(db, writer, |conn| async {
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM board_items WHERE project_id = $1 AND board_id = $2")
            .bind(project.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM boards WHERE project_id = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(done.rows_affected())
    }
    .await)
    .map_err(map_err)?;
    Ok(affected > 0)
}

pub(crate) async fn put_item(db: &Db, item: &BoardItem) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO board_items (project_id, board_id, id, doc) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc, board_id = excluded.board_id",
        )
        .bind(item.project.as_str())
        .bind(&item.board)
        .bind(&item.id)
        .bind(item_doc(item))
    )
    .map_err(map_err)?;
    Ok(())
}

/// A board's items, or every project's when both are `None`; ordered by row, column, creation.
pub(crate) async fn list_items(
    db: &Db,
    project: Option<&ProjectId>,
    board: Option<&str>,
) -> Result<Vec<BoardItem>, RepoError> {
    let rows: Vec<(String, String, String, String)> = fetch_all!(
        db,
        sqlx::query_as(
            "SELECT project_id, board_id, id, doc FROM board_items \
             WHERE (CAST($1 AS TEXT) IS NULL OR project_id = $1) AND (CAST($2 AS TEXT) IS NULL OR board_id = $2) \
             ORDER BY project_id, board_id, id",
        )
        .bind(project.map(ProjectId::as_str))
        .bind(board)
    )
    .map_err(map_err)?;
    let mut items = rows
        .into_iter()
        .map(|(p, b, id, doc)| item_from_doc(&p, b, id, &doc))
        .collect::<Result<Vec<_>, _>>()?;
    items.sort_by_key(|i| (i.y, i.x, i.created_at));
    Ok(items)
}

pub(crate) async fn delete_item(db: &Db, project: &ProjectId, id: &str) -> Result<bool, RepoError> {
    let affected = execute!(
        db,
        sqlx::query("DELETE FROM board_items WHERE project_id = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id)
    )
    .map_err(map_err)?;
    Ok(affected > 0)
}
