//! Result formats. Encoding runs on a blocking thread that pulls batches and pushes encoded chunks through a
//! bounded channel into the response body: memory stays flat whatever the row count, and a client that stops
//! reading stops the whole pipeline back to DuckDB.

mod json;
mod text;

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use pluto_duck_application::ports::{BatchStream, ResultPage};
use pluto_duck_application::AppError;
use pluto_duck_domain::Run;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

pub use json::write_rows_json;

use crate::problem::ApiError;

mod docs;
pub use docs::{Binary, ColumnDto, Rows, RowsDocument};

const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
            Format::Arrow => "arrows",
            Format::Parquet => "parquet",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            "arrow" | "arrows" | "ipc" => Some(Format::Arrow),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// `?format=` wins; otherwise the first acceptable type in `Accept` (JSON when absent or `*/*`).
    pub fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Result<Self, ApiError> {
        if let Some(name) = query {
            return Self::parse(name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    format!("unknown format {name:?}: use json, ndjson, csv, arrow or parquet"),
                )
            });
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        for part in accept.split(',') {
            let mime = part.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            let f = match mime.as_str() {
                "application/json" | "*/*" | "application/*" => Format::Json,
                "application/x-ndjson" | "application/jsonl" => Format::Ndjson,
                "text/csv" | "text/*" => Format::Csv,
                "application/vnd.apache.arrow.stream" => Format::Arrow,
                "application/vnd.apache.parquet" | "application/parquet" => Format::Parquet,
                _ => continue,
            };
            return Ok(f);
        }
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            format!(
                "cannot produce {accept}: use application/json, application/x-ndjson, text/csv, \
                 application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
            ),
        ))
    }
}

/// What the JSON format reports around the rows.
#[derive(Debug, Clone, Default)]
pub struct JsonEnvelope {
    pub run_id: String,
    pub column_types: Vec<String>,
    pub total_rows: u64,
    pub offset: u64,
    pub truncated: bool,
}

/// Sends encoded bytes to the response body in chunks; fails once the client is gone.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// Pulls the next batch from an async stream on this (blocking) thread.
pub(crate) fn next_batch(batches: &mut BatchStream) -> Option<Result<RecordBatch, std::io::Error>> {
    futures::executor::block_on(batches.next()).map(|r| r.map_err(|e| std::io::Error::other(e.to_string())))
}

/// Writes `batches` in `format` to `out` (blocking: call from a blocking thread).
pub fn encode<W: Write + Send>(
    format: Format,
    schema: SchemaRef,
    mut batches: BatchStream,
    envelope: JsonEnvelope,
    out: &mut W,
) -> std::io::Result<()> {
    match format {
        Format::Json => json::write_document(&schema, &mut batches, &envelope, out)?,
        Format::Ndjson => json::write_ndjson(&schema, &mut batches, out)?,
        Format::Csv => text::write_csv(&schema, &mut batches, out)?,
        Format::Arrow => {
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut *out, &schema).map_err(std::io::Error::other)?;
            while let Some(batch) = next_batch(&mut batches) {
                w.write(&batch?).map_err(std::io::Error::other)?;
            }
            w.finish().map_err(std::io::Error::other)?;
        }
        Format::Parquet => text::write_parquet(&schema, &mut batches, out)?,
    }
    out.flush()
}

/// A streaming response of `batches` in `format`.
pub fn respond(format: Format, schema: SchemaRef, batches: BatchStream, envelope: JsonEnvelope) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let run_id = envelope.run_id.clone();
    let total = envelope.total_rows;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut out = ChannelWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: tx.clone(),
        };
        if let Err(e) = encode(format, schema, batches, envelope, &mut out) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!(error = %e, "result stream failed");
                // Ends the body with an error: the client sees a truncated transfer, not a clean end.
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        h.insert("x-total-rows", v);
    }
    if matches!(format, Format::Csv | Format::Parquet | Format::Arrow) {
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{run_id}.{}\"", format.extension())) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

/// The rows of a finished read in `format`, with its run id (`X-Query-Id`) and row count (`X-Total-Rows`).
pub fn page_response(run: &Run, page: ResultPage, format: Format, offset: u64) -> Response {
    let envelope = JsonEnvelope {
        run_id: run.id.to_string(),
        column_types: run.columns.iter().map(|c| c.data_type.clone()).collect(),
        total_rows: page.total_rows,
        offset,
        truncated: run.truncated,
    };
    let mut resp = respond(format, page.schema, page.batches, envelope);
    if let Ok(v) = HeaderValue::from_str(run.id.as_str()) {
        resp.headers_mut().insert("x-query-id", v);
    }
    resp
}

/// Rows as a JSON array of arrays in column order, for a JSON document that embeds them.
pub fn rows_json(batches: &[RecordBatch]) -> Result<Box<RawValue>, ApiError> {
    let mut buf = Vec::new();
    write_rows_json(batches, &mut buf).map_err(ApiError::internal)?;
    RawValue::from_string(String::from_utf8_lossy(&buf).into_owned()).map_err(ApiError::internal)
}

/// A page's rows as [`rows_json`], read from its stream.
pub async fn page_json(page: ResultPage) -> Result<Box<RawValue>, ApiError> {
    let batches: Vec<RecordBatch> = page
        .batches
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::from(AppError::Warehouse(e)))?;
    rows_json(&batches)
}

/// A file the engine wrote, sent as the body and gone from disk as soon as it is open (the open handle keeps it
/// readable until sent).
pub async fn file_response(
    file: pluto_duck_application::ports::ExportedFile,
    format: Format,
) -> Result<Response, ApiError> {
    let opened = tokio::fs::File::open(&file.path).await;
    let _ = tokio::fs::remove_file(&file.path).await;
    let handle = opened.map_err(ApiError::internal)?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(handle, CHUNK));
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(len) = HeaderValue::from_str(&file.bytes.to_string()) {
        resp.headers_mut().insert(header::CONTENT_LENGTH, len);
    }
    Ok(resp)
}
