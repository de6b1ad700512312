//! How the formats look in the OpenAPI document: the rows response every row-returning endpoint shares, the JSON
//! document's shape, binary bodies.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToResponse, ToSchema};

use super::Format;

/// A column of a result: its name and DuckDB type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ColumnDto {
    pub name: String,
    /// DuckDB type name, e.g. `DECIMAL(18,3)`, `TIMESTAMP WITH TIME ZONE`, `INTEGER[]`.
    #[serde(rename = "type")]
    pub data_type: String,
}

impl From<pluto_duck_domain::Column> for ColumnDto {
    fn from(c: pluto_duck_domain::Column) -> Self {
        Self {
            name: c.name,
            data_type: c.data_type,
        }
    }
}

/// The `json` format: the rows with their columns and counts (written by the encoder, documented here).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RowsDocument {
    run_id: String,
    columns: Vec<ColumnDto>,
    /// Arrays in column order; values as the type mapping says (numbers, exact decimals as strings, ISO 8601
    /// temporals, ...).
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    rows: Vec<Vec<()>>,
    /// Rows in this document.
    row_count: u64,
    /// Rows in the whole result.
    total_rows: u64,
    offset: u64,
    /// Whether `max_rows` cut the result.
    truncated: bool,
}

/// Bytes of a binary format.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl ToSchema for Binary {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Binary")
    }
}

/// Rows in the negotiated format (`?format=` or `Accept`), streamed.
pub struct Rows;

impl<'r> ToResponse<'r> for Rows {
    fn response() -> (&'r str, RefOr<Response>) {
        let text = || Content::new(Some(ObjectBuilder::new().schema_type(Type::String)));
        let binary = || Content::new(Some(Ref::from_schema_name(Binary::name())));
        let media = |f: Format| f.content_type().split(';').next().unwrap_or_default();
        let response = ResponseBuilder::new()
            .description(
                "The rows in the negotiated format: a JSON document, NDJSON (one array per row), CSV, an Arrow IPC \
                 stream or Parquet",
            )
            .content(
                media(Format::Json),
                Content::new(Some(Ref::from_schema_name(RowsDocument::name()))),
            )
            .content(media(Format::Ndjson), text())
            .content(media(Format::Csv), text())
            .content(media(Format::Arrow), binary())
            .content(media(Format::Parquet), binary())
            .header(
                "X-Total-Rows",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                    .description(Some("Rows in the whole result"))
                    .build(),
            )
            .header(
                "X-Query-Id",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("The run that read the rows"))
                    .build(),
            )
            .build();
        ("Rows", RefOr::T(response))
    }
}
