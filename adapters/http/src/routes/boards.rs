//! `/api/v1/boards`: boards, their items, item queries with snapshots.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pluto_duck_application::{BoardDraft, ItemDraft};
use pluto_duck_domain::{Identifier, ItemKind, ItemSource};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{BoardBody, BoardDto, ItemBody, ItemDto, Problem, ReorderBody};
use crate::extract::{ApiJson, ApiPath, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_boards, create_board))
        .routes(routes!(reorder_boards))
        .routes(routes!(get_board, update_board, delete_board))
        .routes(routes!(add_item))
        .routes(routes!(update_item, delete_item))
        .routes(routes!(execute_item))
        .routes(routes!(put_image, get_image))
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

fn board_draft(body: BoardBody) -> BoardDraft {
    BoardDraft {
        name: body.name,
        description: body.description,
        document: body.document.map(|d| d.to_string()),
    }
}

fn item_draft(body: ItemBody) -> Result<ItemDraft, ApiError> {
    let kind = body
        .kind
        .as_deref()
        .map(ItemKind::parse)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let source = match body.query {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(q) => Some(Some(match (q["sql"].as_str(), q["analysis"].as_str()) {
            (Some(sql), None) => ItemSource::Sql(sql.to_owned()),
            (None, Some(id)) => ItemSource::Analysis {
                id: Identifier::parse(id).map_err(|e| invalid(e.to_string()))?,
                params: match &q["params"] {
                    serde_json::Value::Null => "{}".to_owned(),
                    p if p.is_object() => p.to_string(),
                    _ => return Err(invalid("query.params must be an object")),
                },
            },
            _ => {
                return Err(invalid(
                    "query is {\"sql\": ...} or {\"analysis\": ..., \"params\"?: {...}}",
                ))
            }
        })),
    };
    let refresh_secs = match body.refresh_secs {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(v) => {
            Some(Some(v.as_u64().ok_or_else(|| {
                invalid("refresh_secs must be a whole number of seconds or null")
            })?))
        }
    };
    Ok(ItemDraft {
        kind,
        title: body.title,
        x: body.x,
        y: body.y,
        w: body.w,
        h: body.h,
        config: body.config.map(|c| c.to_string()),
        source,
        refresh_secs,
    })
}

#[utoipa::path(
    get, path = "/boards", tag = "boards",
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<BoardDto>))
)]
async fn list_boards(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<BoardDto>>, ApiError> {
    let boards = state.app.boards.list(&project).await?;
    Ok(Json(boards.into_iter().map(|b| BoardDto::new(b, None)).collect()))
}

#[utoipa::path(
    post, path = "/boards", tag = "boards", request_body = BoardBody,
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 201, body = BoardDto), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn create_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<BoardBody>,
) -> Result<(StatusCode, Json<BoardDto>), ApiError> {
    let b = state.app.boards.create(&project, board_draft(body)).await?;
    Ok((StatusCode::CREATED, Json(BoardDto::new(b, None))))
}

/// Puts the project's boards in the given order (every id once).
#[utoipa::path(
    post, path = "/boards/reorder", tag = "boards", request_body = ReorderBody,
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<BoardDto>), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn reorder_boards(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<ReorderBody>,
) -> Result<Json<Vec<BoardDto>>, ApiError> {
    let boards = state.app.boards.reorder(&project, &body.ids).await?;
    Ok(Json(boards.into_iter().map(|b| BoardDto::new(b, None)).collect()))
}

/// A board with its items (and their snapshots).
#[utoipa::path(
    get, path = "/boards/{id}", tag = "boards",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = BoardDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BoardDto>, ApiError> {
    let (b, items) = state.app.boards.get(&project, &id).await?;
    Ok(Json(BoardDto::new(b, Some(items))))
}

#[utoipa::path(
    patch, path = "/boards/{id}", tag = "boards", request_body = BoardBody,
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = BoardDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn update_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<BoardBody>,
) -> Result<Json<BoardDto>, ApiError> {
    Ok(Json(BoardDto::new(
        state.app.boards.update(&project, &id, board_draft(body)).await?,
        None,
    )))
}

/// Deletes the board with its items and their snapshots.
#[utoipa::path(
    delete, path = "/boards/{id}", tag = "boards",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn delete_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.boards.delete(&project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds an item; a query must be one read statement, an analysis must exist.
#[utoipa::path(
    post, path = "/boards/{id}/items", tag = "boards", request_body = ItemBody,
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 201, body = ItemDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn add_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<(StatusCode, Json<ItemDto>), ApiError> {
    let item = state.app.boards.add_item(&project, &id, item_draft(body)?).await?;
    Ok((StatusCode::CREATED, Json(item.into())))
}

/// Changes an item: position and size, title, config, query, refresh interval.
#[utoipa::path(
    patch, path = "/boards/{id}/items/{item}", tag = "boards", request_body = ItemBody,
    params(("id" = String, Path), ("item" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = ItemDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn update_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((id, item)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<Json<ItemDto>, ApiError> {
    Ok(Json(
        state
            .app
            .boards
            .update_item(&project, &id, &item, item_draft(body)?)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    delete, path = "/boards/{id}/items/{item}", tag = "boards",
    params(("id" = String, Path), ("item" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn delete_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((id, item)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.app.boards.delete_item(&project, &id, &item).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the item's query now and stores the snapshot (at most 1000 rows). A failure is recorded on the item in
/// `last_error` and the previous snapshot stays.
#[utoipa::path(
    post, path = "/boards/{id}/items/{item}/execute", tag = "boards",
    params(("id" = String, Path), ("item" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = ItemDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The item has no query", body = Problem, content_type = "application/problem+json"))
)]
async fn execute_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((id, item)): ApiPath<(String, String)>,
) -> Result<Json<ItemDto>, ApiError> {
    Ok(Json(state.app.boards.execute(&project, &id, &item).await?.into()))
}

/// Uploads the image of an image item: the raw bytes as the body. PNG, JPEG, GIF or WebP (told by the bytes), at
/// most 5 MiB.
#[utoipa::path(
    put, path = "/boards/{id}/items/{item}/image", tag = "boards",
    request_body(content = Vec<u8>, content_type = "image/png"),
    params(("id" = String, Path), ("item" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = ItemDto), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an image, too large, or not an image item", body = Problem, content_type = "application/problem+json"))
)]
async fn put_image(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((id, item)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<ItemDto>, ApiError> {
    Ok(Json(
        state
            .app
            .boards
            .put_image(&project, &id, &item, body.to_vec())
            .await?
            .into(),
    ))
}

#[utoipa::path(
    get, path = "/boards/{id}/items/{item}/image", tag = "boards",
    params(("id" = String, Path), ("item" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, description = "The image", content_type = "image/png", body = Vec<u8>),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_image(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath((id, item)): ApiPath<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let (mime, bytes) = state.app.boards.image(&project, &id, &item).await?;
    let mut response = axum::response::IntoResponse::into_response(bytes);
    if let Ok(v) = axum::http::HeaderValue::from_str(&mime) {
        response.headers_mut().insert(axum::http::header::CONTENT_TYPE, v);
    }
    Ok(response)
}
