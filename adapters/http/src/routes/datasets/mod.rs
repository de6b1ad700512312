//! `/api/v1/datasets`: buckets and objects in the object store (a directory tree, or an S3-compatible server),
//! uploads and downloads streamed, and the changes as Server-Sent Events.

mod register;
mod wire;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{stream, Stream, TryStreamExt};
use pluto_duck_application::ports::{ByteStream, ObjectRead, ObjectStoreError};
use pluto_duck_application::{AppError, DatasetEvent};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::formats::Binary;
use crate::problem::ApiError;
use crate::AppState;
use wire::{
    object_headers, BucketDto, BucketPath, DatasetEventData, DatasetEventFrame, DeleteBucketParams, ListObjectsParams,
    NewBucketBody, ObjectDto, ObjectPageDto, ObjectPath, RangeHeader, UploadHeaders,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_buckets, create_bucket))
        .routes(routes!(dataset_events))
        .routes(routes!(delete_bucket))
        .routes(routes!(list_objects))
        .merge(rest_of_path(
            "/datasets/{bucket}/objects/{*key}",
            routes!(put_object, get_object, head_object, delete_object),
        ))
        .merge(rest_of_path(
            "/datasets/{bucket}/metadata/{*key}",
            routes!(object_metadata),
        ))
        .merge(register::routes())
}

/// Whether a request is an object upload: its body is limited by `datasets.max_object_mb`, not by the server's
/// body limit.
pub fn is_object_upload(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::PUT
        && path
            .strip_prefix("/api/v1/datasets/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, rest)| rest.starts_with("objects/"))
}

/// Routes whose last parameter takes the rest of the path (`{*key}` to axum, `{key}` in the document).
fn rest_of_path(
    axum_path: &str,
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new().route(axum_path, method_router);
    let doc = router.get_openapi_mut();
    doc.paths.paths.extend(paths.paths);
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    router
}

/// Every bucket, by name.
#[utoipa::path(get, path = "/datasets", tag = "datasets", responses((status = 200, body = Vec<BucketDto>)))]
async fn list_buckets(State(state): State<AppState>) -> Result<Json<Vec<BucketDto>>, ApiError> {
    let buckets = state.app.datasets.list_buckets().await?;
    Ok(Json(buckets.into_iter().map(Into::into).collect()))
}

/// A new, empty bucket. Names follow S3's rules.
#[utoipa::path(
    post, path = "/datasets", tag = "datasets", request_body = NewBucketBody,
    responses(
        (status = 201, body = BucketDto),
        (status = 409, description = "The bucket exists"),
        (status = 422, description = "Not a bucket name S3 would take"),
    )
)]
async fn create_bucket(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewBucketBody>,
) -> Result<(StatusCode, Json<BucketDto>), ApiError> {
    let name = state.app.datasets.create_bucket(&body.name).await?;
    let dto = BucketDto {
        name: name.to_string(),
        created: Some(chrono::Utc::now()),
    };
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Deletes a bucket: an empty one, or with `?force=true` one and all its objects.
#[utoipa::path(
    delete, path = "/datasets/{bucket}", tag = "datasets", params(BucketPath, DeleteBucketParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The bucket holds objects (and `force` was not given)"),
        (status = 422, description = "Not a bucket name"),
    )
)]
async fn delete_bucket(
    State(state): State<AppState>,
    ApiPath(BucketPath { bucket }): ApiPath<BucketPath>,
    ApiQuery(q): ApiQuery<DeleteBucketParams>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .datasets
        .delete_bucket(&bucket, q.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One page of the bucket's objects in key order, with `prefix`, `delimiter` (common prefixes) and `page_token`.
#[utoipa::path(
    get, path = "/datasets/{bucket}/objects", tag = "datasets", params(BucketPath, ListObjectsParams),
    responses(
        (status = 200, body = ObjectPageDto),
        (status = 422, description = "Not a bucket name, a limit out of range, a bad prefix or delimiter"),
    )
)]
async fn list_objects(
    State(state): State<AppState>,
    ApiPath(BucketPath { bucket }): ApiPath<BucketPath>,
    ApiQuery(q): ApiQuery<ListObjectsParams>,
) -> Result<Json<ObjectPageDto>, ApiError> {
    Ok(Json(state.app.datasets.list_objects(&bucket, q.into()).await?.into()))
}

/// Stores the body under the key, streamed (never held whole), replacing what was there. `Content-Type` is kept
/// (`application/octet-stream` when absent); `x-amz-meta-<key>` and `x-pd-meta-<key>` headers are kept as user
/// metadata. A body past `datasets.max_object_mb` answers 413 and stores nothing.
#[utoipa::path(
    put, path = "/datasets/{bucket}/objects/{key}", tag = "datasets",
    request_body(content(
        (Binary = "application/octet-stream"), (Binary = "text/csv"), (Binary = "text/plain"),
        (Binary = "application/x-parquet"), (Binary = "application/vnd.apache.parquet"),
        (Binary = "application/vnd.apache.arrow.stream"))),
    params(ObjectPath),
    responses(
        (status = 200, description = "Stored; what a metadata request now answers", body = ObjectDto),
        (status = 409, description = "The key cannot be stored (on a file tree: a prefix of it is an object)"),
        (status = 413, description = "Larger than `datasets.max_object_mb`"),
        (status = 422, description = "Not a bucket name or a key, a bad content type or metadata"),
    )
)]
async fn put_object(
    State(state): State<AppState>,
    ApiPath(ObjectPath { bucket, key }): ApiPath<ObjectPath>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let datasets = &state.app.datasets;
    datasets.check_declared_size(UploadHeaders::content_length(&headers))?;
    let options = UploadHeaders::options(&headers)?;
    let stream: ByteStream = Box::pin(
        body.into_data_stream()
            .map_err(|e| ObjectStoreError::Interrupted(e.to_string())),
    );
    let info = datasets.put_object(&bucket, &key, options, stream).await?;
    let mut out = HeaderMap::new();
    object_headers(&info, &mut out);
    out.remove(header::CONTENT_TYPE);
    let etag = out.get(header::ETAG).cloned();
    let mut resp = Json(ObjectDto::from(info)).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    Ok(resp)
}

/// The object, streamed with its content type, `ETag`, `Last-Modified` and user metadata (`x-amz-meta-*`).
/// With one `Range` (`bytes=0-99`, `bytes=100-`, `bytes=-100`) only that part: 206 with `Content-Range`, or 416
/// when it starts past the end.
#[utoipa::path(
    get, path = "/datasets/{bucket}/objects/{key}", tag = "datasets", params(ObjectPath, RangeHeader),
    responses(
        (status = 200, description = "The whole object", content((Binary = "*/*"))),
        (status = 206, description = "The part the range asks for", content((Binary = "*/*"))),
        (status = 416, description = "The range starts past the end (`Content-Range: bytes */<size>`)"),
        (status = 422, description = "Not a bucket name or a key"),
    )
)]
async fn get_object(
    State(state): State<AppState>,
    ApiPath(ObjectPath { bucket, key }): ApiPath<ObjectPath>,
    headers: HeaderMap,
) -> Response {
    let range = RangeHeader::parse(&headers);
    match state.app.datasets.get_object(&bucket, &key, range).await {
        Ok(read) => download(read, range.is_some()),
        Err(e) => download_problem(e),
    }
}

/// The headers a download would have, without the body.
#[utoipa::path(
    head, path = "/datasets/{bucket}/objects/{key}", tag = "datasets", params(ObjectPath),
    responses(
        (status = 200, description = "The object's headers: type, length, `ETag`, `Last-Modified`, `x-amz-meta-*`"),
        (status = 422, description = "Not a bucket name or a key"),
    )
)]
async fn head_object(
    State(state): State<AppState>,
    ApiPath(ObjectPath { bucket, key }): ApiPath<ObjectPath>,
) -> Result<Response, ApiError> {
    let info = state.app.datasets.head_object(&bucket, &key).await?;
    let mut resp = StatusCode::OK.into_response();
    object_headers(&info, resp.headers_mut());
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    Ok(resp)
}

/// The object's metadata as JSON: size, `etag`, content type, user metadata.
#[utoipa::path(
    get, path = "/datasets/{bucket}/metadata/{key}", tag = "datasets", params(ObjectPath),
    responses((status = 200, body = ObjectDto), (status = 422, description = "Not a bucket name or a key"))
)]
async fn object_metadata(
    State(state): State<AppState>,
    ApiPath(ObjectPath { bucket, key }): ApiPath<ObjectPath>,
) -> Result<Json<ObjectDto>, ApiError> {
    Ok(Json(state.app.datasets.head_object(&bucket, &key).await?.into()))
}

/// Deletes the object; deleting an absent key succeeds, as on S3.
#[utoipa::path(
    delete, path = "/datasets/{bucket}/objects/{key}", tag = "datasets", params(ObjectPath),
    responses((status = 204, description = "Deleted"), (status = 422, description = "Not a bucket name or a key"))
)]
async fn delete_object(
    State(state): State<AppState>,
    ApiPath(ObjectPath { bucket, key }): ApiPath<ObjectPath>,
) -> Result<StatusCode, ApiError> {
    state.app.datasets.delete_object(&bucket, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Server-Sent Events of every change from now on: `bucket.created`, `bucket.deleted`, `object.written`,
/// `object.deleted`. Ids increase by one per change; the stream does not end.
#[utoipa::path(
    get, path = "/datasets/events", tag = "datasets",
    responses((status = 200, description = "The changes as they happen", content_type = "text/event-stream", body = DatasetEventFrame))
)]
async fn dataset_events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.app.datasets.subscribe();
    let events = stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => return Some((Ok(sse_event(&e)), rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "dataset event follower fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn sse_event(e: &DatasetEvent) -> Event {
    let data = serde_json::to_string(&DatasetEventData::from(e)).unwrap_or_default();
    Event::default().id(e.seq.to_string()).event(e.change.name()).data(data)
}

/// The body streamed with its headers: 206 and `Content-Range` when a range was asked.
fn download(read: ObjectRead, partial: bool) -> Response {
    let ObjectRead { info, range, body } = read;
    let mut resp = Body::from_stream(body).into_response();
    object_headers(&info, resp.headers_mut());
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
    if partial {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let last = range.end.saturating_sub(1);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{last}/{}", range.start, info.size)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// A problem, with `Content-Range: bytes */<size>` when the range was not satisfiable.
fn download_problem(e: AppError) -> Response {
    let size = match &e {
        AppError::Objects(ObjectStoreError::RangeNotSatisfiable { size }) => Some(*size),
        _ => None,
    };
    let mut resp = ApiError::from(e).into_response();
    if let Some(v) = size.and_then(|s| HeaderValue::from_str(&format!("bytes */{s}")).ok()) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn only_object_puts_skip_the_server_body_limit() {
        assert!(is_object_upload(&Method::PUT, "/api/v1/datasets/lake/objects/a/b.csv"));
        assert!(!is_object_upload(&Method::GET, "/api/v1/datasets/lake/objects/a.csv"));
        assert!(!is_object_upload(&Method::PUT, "/api/v1/boards/x/items/y/image"));
        assert!(!is_object_upload(
            &Method::PUT,
            "/api/v1/datasets/lake/metadata/objects/a"
        ));
        assert!(!is_object_upload(&Method::POST, "/api/v1/datasets"));
    }
}
