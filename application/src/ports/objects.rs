//! Object storage: buckets of objects addressed by key, as S3 has them (a directory tree on a laptop, an
//! S3-compatible server in the hybrid profile). Bodies stream both ways as `Bytes`; nothing here buffers a whole
//! object.

use std::collections::BTreeMap;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;
use pluto_duck_domain::{BucketName, ByteRange, DomainError, ObjectKey};
use thiserror::Error;

use crate::ErrorKind;

/// A body in either direction. An upload whose stream yields an error is abandoned: nothing is stored.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ObjectStoreError>> + Send>>;

/// The content type an object gets when its upload names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Most entries (objects and common prefixes together) one list call returns, as on S3.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Messages name buckets and keys, never an endpoint's credentials.
#[derive(Debug, Error)]
pub enum ObjectStoreError {
    #[error("bucket {0:?} not found")]
    BucketNotFound(String),
    #[error("object {key:?} not found in bucket {bucket:?}")]
    ObjectNotFound { bucket: String, key: String },
    /// A bad bucket name, key, prefix, metadata or content type.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("range not satisfiable: the object has {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("bucket {0:?} already exists")]
    BucketExists(String),
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// The key cannot be stored as asked (on a file tree: `a/b` when `a` is an object).
    #[error("{0}")]
    Conflict(String),
    #[error("object larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body stream failed (the client went away mid-upload); nothing was stored.
    #[error("upload interrupted: {0}")]
    Interrupted(String),
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("object store error: {0}")]
    Internal(String),
}

impl ObjectStoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ObjectStoreError::BucketNotFound(_) | ObjectStoreError::ObjectNotFound { .. } => ErrorKind::NotFound,
            ObjectStoreError::Invalid(_)
            | ObjectStoreError::InvalidRequest(_)
            | ObjectStoreError::RangeNotSatisfiable { .. }
            | ObjectStoreError::TooLarge { .. }
            | ObjectStoreError::Interrupted(_) => ErrorKind::Invalid,
            ObjectStoreError::BucketExists(_) | ObjectStoreError::BucketNotEmpty(_) | ObjectStoreError::Conflict(_) => {
                ErrorKind::Conflict
            }
            ObjectStoreError::Unavailable(_) => ErrorKind::Unavailable,
            ObjectStoreError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The problem type slug refining the kind, where one fits (413 and 416 over HTTP).
    pub fn problem_slug(&self) -> Option<&'static str> {
        match self {
            ObjectStoreError::TooLarge { .. } => Some("payload-too-large"),
            ObjectStoreError::RangeNotSatisfiable { .. } => Some("range-not-satisfiable"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: BucketName,
    pub created: Option<DateTime<Utc>>,
}

/// One page of a listing. `limit` counts objects and common prefixes together (1..=1000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListObjects {
    pub prefix: Option<String>,
    /// Groups keys sharing the text up to the first delimiter after the prefix into one common prefix.
    pub delimiter: Option<String>,
    /// The `next_page_token` of the previous page; opaque.
    pub page_token: Option<String>,
    pub limit: usize,
}

impl Default for ListObjects {
    fn default() -> Self {
        Self {
            prefix: None,
            delimiter: None,
            page_token: None,
            limit: MAX_LIST_LIMIT,
        }
    }
}

impl ListObjects {
    /// Checks what every adapter relies on: prefix and delimiter lengths and characters, a non-empty
    /// delimiter, a limit in 1..=1000.
    pub fn validate(&self) -> Result<(), ObjectStoreError> {
        if let Some(prefix) = &self.prefix {
            pluto_duck_domain::validate_list_text("prefix", prefix)?;
        }
        if let Some(delimiter) = &self.delimiter {
            if delimiter.is_empty() {
                return Err(ObjectStoreError::InvalidRequest(
                    "the delimiter must not be empty".into(),
                ));
            }
            pluto_duck_domain::validate_list_text("delimiter", delimiter)?;
        }
        if !(1..=MAX_LIST_LIMIT).contains(&self.limit) {
            return Err(ObjectStoreError::InvalidRequest(format!(
                "the list limit must be between 1 and {MAX_LIST_LIMIT}"
            )));
        }
        Ok(())
    }
}

/// An object as a listing shows it (no content type or metadata: S3 lists do not carry them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: ObjectKey,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPage {
    /// In key order (UTF-8 bytes).
    pub objects: Vec<ObjectEntry>,
    /// With the delimiter at their end, in order.
    pub common_prefixes: Vec<String>,
    /// Present when there is more to list.
    pub next_page_token: Option<String>,
}

/// What a head (or a get) tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: ObjectKey,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub content_type: String,
    pub metadata: BTreeMap<String, String>,
}

/// How to store an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutObject {
    /// `application/octet-stream` when `None`.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` on S3: lowercase keys, printable ASCII values, 2 KiB in all.
    pub metadata: BTreeMap<String, String>,
    /// An upload that grows past this many bytes fails with `TooLarge` and stores nothing.
    pub max_size: Option<u64>,
}

impl PutObject {
    pub fn validate(&self) -> Result<(), ObjectStoreError> {
        if let Some(ct) = &self.content_type {
            pluto_duck_domain::validate_content_type(ct)?;
        }
        pluto_duck_domain::validate_user_metadata(&self.metadata)?;
        Ok(())
    }
}

/// A body being read. `range` is the half-open byte range served (all of it without a range asked; `0..0` for
/// an empty object) and `info.size` the object's total size.
pub struct ObjectRead {
    pub info: ObjectInfo,
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl std::fmt::Debug for ObjectRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRead")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Where an object lies for an engine that reads it in place: a file of this machine, or an S3 URL with the
/// store's connection settings and secret key (never logged: `Debug` leaves the key out).
#[derive(Clone)]
pub enum ObjectLocation {
    Local(std::path::PathBuf),
    S3 {
        uri: String,
        settings: pluto_duck_domain::S3Settings,
        secret: secrecy::SecretString,
    },
}

impl std::fmt::Debug for ObjectLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectLocation::Local(p) => f.debug_tuple("Local").field(p).finish(),
            ObjectLocation::S3 { uri, .. } => f.debug_struct("S3").field("uri", uri).finish_non_exhaustive(),
        }
    }
}

/// Buckets and objects. Writes are atomic: a reader sees the old object or the new one, never a part; a failed,
/// interrupted or oversized upload leaves nothing behind.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Sorted by name.
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, ObjectStoreError>;
    /// `BucketExists` when it exists already.
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), ObjectStoreError>;
    /// `BucketNotEmpty` unless it is empty or `force` (then its objects go first).
    async fn delete_bucket(&self, bucket: &BucketName, force: bool) -> Result<(), ObjectStoreError>;

    async fn list_objects(&self, bucket: &BucketName, request: ListObjects) -> Result<ObjectPage, ObjectStoreError>;
    async fn head_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectInfo, ObjectStoreError>;
    /// Stores `body` under `key`, replacing what was there; returns what a head would now say.
    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        options: PutObject,
        body: ByteStream,
    ) -> Result<ObjectInfo, ObjectStoreError>;
    /// The whole object, or the part `range` selects (`RangeNotSatisfiable` when it selects nothing).
    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectRead, ObjectStoreError>;
    /// Deleting an absent key succeeds (as on S3); an absent bucket is `BucketNotFound`.
    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), ObjectStoreError>;
    /// Copies body, content type and metadata; the buckets may differ.
    async fn copy_object(
        &self,
        from_bucket: &BucketName,
        from_key: &ObjectKey,
        to_bucket: &BucketName,
        to_key: &ObjectKey,
    ) -> Result<ObjectInfo, ObjectStoreError>;
    /// Where the object lies, for reading it in place (it is not checked to exist).
    fn locate(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectLocation;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_refinements() {
        assert_eq!(ObjectStoreError::BucketNotFound("b".into()).kind(), ErrorKind::NotFound);
        assert_eq!(ObjectStoreError::BucketNotEmpty("b".into()).kind(), ErrorKind::Conflict);
        assert_eq!(ObjectStoreError::BucketExists("b".into()).kind(), ErrorKind::Conflict);
        let too_large = ObjectStoreError::TooLarge { limit: 1 };
        assert_eq!(
            (too_large.kind(), too_large.problem_slug()),
            (ErrorKind::Invalid, Some("payload-too-large"))
        );
        let range = ObjectStoreError::RangeNotSatisfiable { size: 3 };
        assert_eq!(range.problem_slug(), Some("range-not-satisfiable"));
        let invalid: ObjectStoreError = pluto_duck_domain::BucketName::parse("A").unwrap_err().into();
        assert_eq!(invalid.kind(), ErrorKind::Invalid);
        assert_eq!(ObjectStoreError::Unavailable("x".into()).kind(), ErrorKind::Unavailable);
        let app = crate::AppError::from(ObjectStoreError::TooLarge { limit: 1 });
        assert_eq!((app.problem().slug, app.problem().status), ("payload-too-large", 413));
        let app = crate::AppError::from(ObjectStoreError::RangeNotSatisfiable { size: 1 });
        assert_eq!(app.problem().status, 416);
        let app = crate::AppError::from(ObjectStoreError::BucketNotEmpty("b".into()));
        assert_eq!(app.problem().status, 409);
    }

    #[test]
    fn list_and_put_requests_are_checked() {
        assert!(ListObjects::default().validate().is_ok());
        for bad in [
            ListObjects {
                limit: 0,
                ..Default::default()
            },
            ListObjects {
                limit: 1001,
                ..Default::default()
            },
            ListObjects {
                delimiter: Some(String::new()),
                ..Default::default()
            },
            ListObjects {
                prefix: Some("a\0".into()),
                ..Default::default()
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().kind(), ErrorKind::Invalid, "{bad:?}");
        }
        let put = PutObject {
            content_type: Some("text".into()),
            ..Default::default()
        };
        assert!(put.validate().is_err());
        let put = PutObject {
            metadata: [("Bad Key".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        };
        assert!(put.validate().is_err());
    }
}
