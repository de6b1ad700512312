//! Wire types of `/api/v1/datasets`: buckets, object listings and metadata, the headers an object travels with,
//! and the change events.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use pluto_duck_application::ports::{BucketInfo, ListObjects, ObjectEntry, ObjectInfo, ObjectPage, PutObject};
use pluto_duck_application::{DatasetChange, DatasetEvent};
use pluto_duck_domain::ByteRange;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::extract::text_header;
use crate::openapi::text_enum;
use crate::problem::ApiError;

/// User metadata comes in as `x-amz-meta-<key>` (what S3 clients send) or `x-pd-meta-<key>`, and goes out as
/// `x-amz-meta-<key>`.
const META_PREFIXES: [&str; 2] = ["x-amz-meta-", "x-pd-meta-"];
const META_OUT: &str = "x-amz-meta-";

/// A bucket name as S3 has it; the rules a pattern cannot say (no `..`, not an IP address, S3's reserved
/// prefixes and suffixes) answer 422.
pub struct BucketNameText;

impl PartialSchema for BucketNameText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit \
                 (S3's rules: no two adjacent dots, not an IP address, none of S3's reserved prefixes and suffixes)",
            ))
            .pattern(Some("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"))
            .examples(["lake"])
            .into()
    }
}

impl ToSchema for BucketNameText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BucketNameText")
    }
}

/// An object key: a relative path of `/`-separated segments.
pub struct ObjectKeyText;

impl PartialSchema for ObjectKeyText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1 to 1024 bytes of `/`-separated segments: no empty, `.` or `..` segment, no leading or trailing \
                 `/`, no control characters",
            ))
            .min_length(Some(1))
            .max_length(Some(1024))
            .examples(["raw/2024/orders.csv"])
            .into()
    }
}

impl ToSchema for ObjectKeyText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ObjectKeyText")
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BucketPath {
    /// The bucket.
    #[param(value_type = BucketNameText)]
    pub bucket: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ObjectPath {
    /// The bucket.
    #[param(value_type = BucketNameText)]
    pub bucket: String,
    /// The object's key; its `/` may be sent as they are or encoded.
    #[param(value_type = ObjectKeyText)]
    pub key: String,
}

/// A new bucket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBucketBody {
    #[schema(value_type = BucketNameText)]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BucketDto {
    #[schema(value_type = BucketNameText)]
    pub name: String,
    /// When the store knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
}

impl From<BucketInfo> for BucketDto {
    fn from(b: BucketInfo) -> Self {
        Self {
            name: b.name.to_string(),
            created: b.created,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteBucketParams {
    /// Delete the bucket's objects too (default false: a bucket that holds objects answers 409).
    pub force: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListObjectsParams {
    /// Only keys starting with this text.
    #[param(max_length = 1024)]
    pub prefix: Option<String>,
    /// Group keys sharing the text up to the next delimiter after the prefix into `common_prefixes` (`/`
    /// lists one folder level).
    #[param(min_length = 1, max_length = 1024)]
    pub delimiter: Option<String>,
    /// The `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Objects and common prefixes per page together (default and most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

impl From<ListObjectsParams> for ListObjects {
    fn from(q: ListObjectsParams) -> Self {
        let defaults = ListObjects::default();
        ListObjects {
            prefix: q.prefix,
            delimiter: q.delimiter,
            page_token: q.page_token,
            limit: q.limit.unwrap_or(defaults.limit),
        }
    }
}

/// An object as a listing shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectEntryDto {
    #[schema(value_type = ObjectKeyText)]
    pub key: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

impl From<ObjectEntry> for ObjectEntryDto {
    fn from(e: ObjectEntry) -> Self {
        Self {
            key: e.key.to_string(),
            size: e.size,
            etag: e.etag,
            last_modified: e.last_modified,
        }
    }
}

/// One page of a bucket's objects.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectPageDto {
    /// In key order.
    pub objects: Vec<ObjectEntryDto>,
    /// With the delimiter at their end (only with `delimiter`).
    pub common_prefixes: Vec<String>,
    /// Present when there is more: pass it as `page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

impl From<ObjectPage> for ObjectPageDto {
    fn from(p: ObjectPage) -> Self {
        Self {
            objects: p.objects.into_iter().map(Into::into).collect(),
            common_prefixes: p.common_prefixes,
            next_page_token: p.next_page_token,
        }
    }
}

/// An object's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectDto {
    #[schema(value_type = ObjectKeyText)]
    pub key: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub content_type: String,
    /// User metadata, sent as `x-amz-meta-<key>` or `x-pd-meta-<key>` headers with the upload.
    pub metadata: BTreeMap<String, String>,
}

impl From<ObjectInfo> for ObjectDto {
    fn from(i: ObjectInfo) -> Self {
        Self {
            key: i.key.to_string(),
            size: i.size,
            etag: i.etag,
            last_modified: i.last_modified,
            content_type: i.content_type,
            metadata: i.metadata,
        }
    }
}

/// The headers of an upload: its content type, user metadata and declared size.
pub struct UploadHeaders;

impl UploadHeaders {
    /// The content type and user metadata the request carries.
    pub fn options(headers: &HeaderMap) -> Result<PutObject, ApiError> {
        let content_type = match headers.get(header::CONTENT_TYPE) {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::bad_request("Content-Type must be text"))?
                    .to_owned(),
            ),
            None => None,
        };
        let mut metadata = BTreeMap::new();
        for (name, value) in headers {
            let Some(key) = META_PREFIXES.iter().find_map(|p| name.as_str().strip_prefix(p)) else {
                continue;
            };
            let value = value
                .to_str()
                .map_err(|_| ApiError::bad_request(format!("{name} must be printable ASCII")))?;
            metadata.insert(key.to_owned(), value.to_owned());
        }
        Ok(PutObject {
            content_type,
            metadata,
            max_size: None,
        })
    }

    /// The declared size, when the request says it.
    pub fn content_length(headers: &HeaderMap) -> Option<u64> {
        headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }
}

/// The `Range` header of a download.
pub struct RangeHeader;

impl IntoParams for RangeHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![text_header(
            "Range",
            "One byte range (`bytes=0-99`, `bytes=100-`, `bytes=-100`): answers 206 with that part, or 416 when it \
             starts past the end. A range that does not parse, or several, is ignored (the whole object, 200).",
        )]
    }
}

impl RangeHeader {
    /// The one well-formed byte range asked; anything else is ignored, as RFC 9110 allows.
    pub fn parse(headers: &HeaderMap) -> Option<ByteRange> {
        let text = headers.get(header::RANGE)?.to_str().ok()?.trim();
        let spec = text.strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (start, end) = spec.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        let range = if start.trim().is_empty() {
            ByteRange::Suffix(number(end)?)
        } else {
            let end = if end.trim().is_empty() {
                None
            } else {
                Some(number(end)?)
            };
            ByteRange::From {
                start: number(start)?,
                end,
            }
        };
        range.is_well_formed().then_some(range)
    }
}

/// The headers an object is served with: type, validators, and its user metadata.
pub fn object_headers(info: &ObjectInfo, headers: &mut HeaderMap) {
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, &info.content_type);
    set(header::ACCEPT_RANGES, "bytes");
    set(
        header::LAST_MODIFIED,
        &info.last_modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
    );
    if let Some(etag) = &info.etag {
        let quoted = if etag.starts_with('"') {
            etag.clone()
        } else {
            format!("\"{etag}\"")
        };
        set(header::ETAG, &quoted);
    }
    for (key, value) in &info.metadata {
        if let Ok(name) = HeaderName::try_from(format!("{META_OUT}{key}")) {
            set(name, value);
        }
    }
}

text_enum!(
    /// What changed in the object store.
    DatasetEventName,
    "bucket.created, bucket.deleted, object.written (an upload or a copy), object.deleted",
    ["bucket.created", "bucket.deleted", "object.written", "object.deleted"]
);

/// The data of a dataset change event.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetEventData {
    #[schema(value_type = DatasetEventName)]
    pub event: &'static str,
    pub at: DateTime<Utc>,
    #[schema(value_type = BucketNameText)]
    pub bucket: String,
    /// Object events.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ObjectKeyText>)]
    pub key: Option<String>,
    /// `object.written`: the new size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl From<&DatasetEvent> for DatasetEventData {
    fn from(e: &DatasetEvent) -> Self {
        let mut data = DatasetEventData {
            event: e.change.name(),
            at: e.at,
            bucket: e.change.bucket().to_string(),
            key: None,
            size: None,
            etag: None,
            content_type: None,
        };
        match &e.change {
            DatasetChange::ObjectWritten {
                key,
                size,
                etag,
                content_type,
                ..
            } => {
                data.key = Some(key.to_string());
                data.size = Some(*size);
                data.etag = etag.clone();
                data.content_type = Some(content_type.clone());
            }
            DatasetChange::ObjectDeleted { key, .. } => data.key = Some(key.to_string()),
            DatasetChange::BucketCreated { .. } | DatasetChange::BucketDeleted { .. } => {}
        }
        data
    }
}

/// One Server-Sent Event of the dataset stream: `event` names the change, `id` orders it, `data` is a
/// [`DatasetEventData`] as JSON text.
pub struct DatasetEventFrame;

impl PartialSchema for DatasetEventFrame {
    fn schema() -> RefOr<Schema> {
        crate::routes::runs::sse_frame_schema(
            "One change, as an SSE client yields it (`event`, `id`, `data` lines)",
            &DatasetEventName::name(),
            "Increases by one per change since the server started",
            &DatasetEventData::name(),
            "The change as JSON (a DatasetEventData)",
        )
    }
}

impl ToSchema for DatasetEventFrame {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DatasetEventFrame")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((DatasetEventName::name().into_owned(), DatasetEventName::schema()));
        schemas.push((DatasetEventData::name().into_owned(), DatasetEventData::schema()));
        DatasetEventData::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Option<ByteRange> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        RangeHeader::parse(&h)
    }

    #[test]
    fn one_well_formed_range_is_taken_anything_else_ignored() {
        assert_eq!(
            range("bytes=0-99"),
            Some(ByteRange::From {
                start: 0,
                end: Some(99)
            })
        );
        assert_eq!(range("bytes=100-"), Some(ByteRange::From { start: 100, end: None }));
        assert_eq!(range("bytes=-5"), Some(ByteRange::Suffix(5)));
        for ignored in [
            "bytes=5-2",
            "bytes=-0",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(range(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn metadata_headers_of_both_spellings_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-meta-source", HeaderValue::from_static("erp"));
        h.insert("x-pd-meta-owner", HeaderValue::from_static("ana"));
        h.insert("x-other", HeaderValue::from_static("no"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        let o = UploadHeaders::options(&h).unwrap();
        assert_eq!(o.content_type.as_deref(), Some("text/csv"));
        assert_eq!(
            o.metadata.into_iter().collect::<Vec<_>>(),
            [("owner".into(), "ana".into()), ("source".into(), "erp".into())]
        );
    }
}
