//! `/api/v1/boards`: boards, their items, item queries with snapshots, images.

mod wire;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiJson, ApiPath, ProjectScope};
use crate::formats::Binary;
use crate::problem::ApiError;
use crate::AppState;
use wire::{BoardBody, BoardDto, BoardPath, ItemBody, ItemDto, ItemPath, NewBoardBody, ReorderBody};

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

#[utoipa::path(
    get, path = "/boards", tag = "boards", params(ProjectScope),
    responses((status = 200, body = Vec<BoardDto>))
)]
async fn list_boards(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<BoardDto>>, ApiError> {
    Ok(Json(BoardDto::list(state.app.boards.list(&project).await?)))
}

#[utoipa::path(
    post, path = "/boards", tag = "boards", request_body = NewBoardBody, params(ProjectScope),
    responses((status = 201, body = BoardDto), (status = 422, description = "No name, or one over 200 characters"))
)]
async fn create_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<NewBoardBody>,
) -> Result<(StatusCode, Json<BoardDto>), ApiError> {
    let board = state.app.boards.create(&project, body.into()).await?;
    Ok((StatusCode::CREATED, Json(board.into())))
}

/// Puts the project's boards in the given order (every id once).
#[utoipa::path(
    post, path = "/boards/reorder", tag = "boards", request_body = ReorderBody, params(ProjectScope),
    responses((status = 200, body = Vec<BoardDto>), (status = 422, description = "Not every board id exactly once"))
)]
async fn reorder_boards(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<ReorderBody>,
) -> Result<Json<Vec<BoardDto>>, ApiError> {
    Ok(Json(BoardDto::list(
        state.app.boards.reorder(&project, &body.ids).await?,
    )))
}

/// A board with its items (and their snapshots).
#[utoipa::path(
    get, path = "/boards/{id}", tag = "boards", params(BoardPath, ProjectScope),
    responses((status = 200, body = BoardDto))
)]
async fn get_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(BoardPath { id }): ApiPath<BoardPath>,
) -> Result<Json<BoardDto>, ApiError> {
    Ok(Json(state.app.boards.get(&project, &id).await?.into()))
}

#[utoipa::path(
    patch, path = "/boards/{id}", tag = "boards", request_body = BoardBody, params(BoardPath, ProjectScope),
    responses((status = 200, body = BoardDto), (status = 422, description = "An empty name, or one over 200 characters"))
)]
async fn update_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(BoardPath { id }): ApiPath<BoardPath>,
    ApiJson(body): ApiJson<BoardBody>,
) -> Result<Json<BoardDto>, ApiError> {
    Ok(Json(state.app.boards.update(&project, &id, body.into()).await?.into()))
}

/// Deletes the board with its items and their snapshots.
#[utoipa::path(
    delete, path = "/boards/{id}", tag = "boards", params(BoardPath, ProjectScope),
    responses((status = 204, description = "Deleted"))
)]
async fn delete_board(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(BoardPath { id }): ApiPath<BoardPath>,
) -> Result<StatusCode, ApiError> {
    state.app.boards.delete(&project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds an item; a query must be one read statement, an analysis must exist.
#[utoipa::path(
    post, path = "/boards/{id}/items", tag = "boards", request_body = ItemBody, params(BoardPath, ProjectScope),
    responses(
        (status = 201, body = ItemDto),
        (status = 403, description = "The query reaches outside the project's sandbox"),
        (status = 422, description = "No kind, a query that is not one read, an unknown analysis, a bad config"),
    )
)]
async fn add_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(BoardPath { id }): ApiPath<BoardPath>,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<(StatusCode, Json<ItemDto>), ApiError> {
    let item = state.app.boards.add_item(&project, &id, body.try_into()?).await?;
    Ok((StatusCode::CREATED, Json(item.into())))
}

/// Changes an item: position and size, title, config, query, refresh interval.
#[utoipa::path(
    patch, path = "/boards/{id}/items/{item}", tag = "boards", request_body = ItemBody, params(ItemPath, ProjectScope),
    responses(
        (status = 200, body = ItemDto),
        (status = 403, description = "The query reaches outside the project's sandbox"),
        (status = 422, description = "A query that is not one read, an unknown analysis, a bad config"),
    )
)]
async fn update_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(ItemPath { id, item }): ApiPath<ItemPath>,
    ApiJson(body): ApiJson<ItemBody>,
) -> Result<Json<ItemDto>, ApiError> {
    let updated = state
        .app
        .boards
        .update_item(&project, &id, &item, body.try_into()?)
        .await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(
    delete, path = "/boards/{id}/items/{item}", tag = "boards", params(ItemPath, ProjectScope),
    responses((status = 204, description = "Deleted"))
)]
async fn delete_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(ItemPath { id, item }): ApiPath<ItemPath>,
) -> Result<StatusCode, ApiError> {
    state.app.boards.delete_item(&project, &id, &item).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the item's query now and stores the snapshot (at most 1000 rows). A failure is recorded on the item in
/// `last_error` and the previous snapshot stays.
#[utoipa::path(
    post, path = "/boards/{id}/items/{item}/execute", tag = "boards", params(ItemPath, ProjectScope),
    responses((status = 200, body = ItemDto), (status = 422, description = "The item has no query"))
)]
async fn execute_item(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(ItemPath { id, item }): ApiPath<ItemPath>,
) -> Result<Json<ItemDto>, ApiError> {
    Ok(Json(state.app.boards.execute(&project, &id, &item).await?.into()))
}

/// Uploads the image of an image item: the raw bytes as the body. PNG, JPEG, GIF or WebP (told by the bytes,
/// whatever the `Content-Type`), at most 5 MiB.
#[utoipa::path(
    put, path = "/boards/{id}/items/{item}/image", tag = "boards",
    request_body(content(
        (Binary = "image/png"), (Binary = "image/jpeg"), (Binary = "image/gif"), (Binary = "image/webp"),
        (Binary = "application/octet-stream"))),
    params(ItemPath, ProjectScope),
    responses((status = 200, body = ItemDto), (status = 422, description = "Not an image, too large, or not an image item"))
)]
async fn put_image(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(ItemPath { id, item }): ApiPath<ItemPath>,
    body: Bytes,
) -> Result<Json<ItemDto>, ApiError> {
    let updated = state.app.boards.put_image(&project, &id, &item, body.to_vec()).await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(
    get, path = "/boards/{id}/items/{item}/image", tag = "boards", params(ItemPath, ProjectScope),
    responses((status = 200, description = "The image", content(
        (Binary = "image/png"), (Binary = "image/jpeg"), (Binary = "image/gif"), (Binary = "image/webp"))))
)]
async fn get_image(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(ItemPath { id, item }): ApiPath<ItemPath>,
) -> Result<Response, ApiError> {
    let (mime, bytes) = state.app.boards.image(&project, &id, &item).await?;
    let mut response = bytes.into_response();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(response)
}
