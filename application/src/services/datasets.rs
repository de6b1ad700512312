//! Datasets: buckets and objects in the `ObjectStore`, for the `/datasets` API and the `dataset` CLI. Names come
//! in as the client sent them and are checked here (S3's bucket rules, safe keys), so no transport repeats the
//! rules; every change that succeeds is published to followers, numbered in the order it happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pluto_duck_domain::{BucketName, ByteRange, ObjectKey};
use tokio::sync::broadcast;
use tracing::instrument;

use crate::ports::{
    BucketInfo, ByteStream, ListObjects, ObjectInfo, ObjectPage, ObjectRead, ObjectStore, ObjectStoreError, PutObject,
};
use crate::AppError;

/// Limits every upload obeys, whatever its caller asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetLimits {
    /// An upload past this many bytes fails (413 over HTTP) and stores nothing.
    pub max_object_size: u64,
}

impl Default for DatasetLimits {
    fn default() -> Self {
        Self {
            max_object_size: 5 * 1024 * 1024 * 1024,
        }
    }
}

/// What changed in the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetChange {
    BucketCreated {
        bucket: BucketName,
    },
    BucketDeleted {
        bucket: BucketName,
    },
    /// Stored by an upload or a copy, replacing what was there.
    ObjectWritten {
        bucket: BucketName,
        key: ObjectKey,
        size: u64,
        etag: Option<String>,
        content_type: String,
    },
    ObjectDeleted {
        bucket: BucketName,
        key: ObjectKey,
    },
}

impl DatasetChange {
    pub fn bucket(&self) -> &BucketName {
        match self {
            DatasetChange::BucketCreated { bucket }
            | DatasetChange::BucketDeleted { bucket }
            | DatasetChange::ObjectWritten { bucket, .. }
            | DatasetChange::ObjectDeleted { bucket, .. } => bucket,
        }
    }

    /// `bucket.created`, `bucket.deleted`, `object.written`, `object.deleted`: the SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            DatasetChange::BucketCreated { .. } => "bucket.created",
            DatasetChange::BucketDeleted { .. } => "bucket.deleted",
            DatasetChange::ObjectWritten { .. } => "object.written",
            DatasetChange::ObjectDeleted { .. } => "object.deleted",
        }
    }
}

/// One change as followers see it. `seq` grows by one per change of this service (the SSE event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetEvent {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub change: DatasetChange,
}

/// Changes a slow follower may fall behind by before it misses some (it is told how many, as `Lagged`).
const EVENT_BUFFER: usize = 1024;

pub struct DatasetService {
    store: Arc<dyn ObjectStore>,
    limits: DatasetLimits,
    seq: AtomicU64,
    tx: broadcast::Sender<DatasetEvent>,
}

fn bucket_name(name: &str) -> Result<BucketName, AppError> {
    Ok(BucketName::parse(name)?)
}

fn object_key(key: &str) -> Result<ObjectKey, AppError> {
    Ok(ObjectKey::parse(key)?)
}

impl DatasetService {
    pub fn new(store: Arc<dyn ObjectStore>, limits: DatasetLimits) -> Self {
        Self {
            store,
            limits,
            seq: AtomicU64::new(0),
            tx: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    pub fn limits(&self) -> DatasetLimits {
        self.limits
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DatasetEvent> {
        self.tx.subscribe()
    }

    fn publish(&self, change: DatasetChange) {
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        // No follower is not an error.
        let _ = self.tx.send(DatasetEvent {
            seq,
            at: Utc::now(),
            change,
        });
    }

    /// Sorted by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, AppError> {
        Ok(self.store.list_buckets().await?)
    }

    /// A new, empty bucket; `Invalid` for a name S3 would refuse, `Conflict` when it exists.
    #[instrument(skip_all, fields(bucket = %name))]
    pub async fn create_bucket(&self, name: &str) -> Result<BucketName, AppError> {
        let bucket = bucket_name(name)?;
        self.store.create_bucket(&bucket).await?;
        self.publish(DatasetChange::BucketCreated { bucket: bucket.clone() });
        Ok(bucket)
    }

    /// `Conflict` when the bucket holds objects, unless `force` (then they go too).
    #[instrument(skip_all, fields(bucket = %name, force))]
    pub async fn delete_bucket(&self, name: &str, force: bool) -> Result<(), AppError> {
        let bucket = bucket_name(name)?;
        self.store.delete_bucket(&bucket, force).await?;
        self.publish(DatasetChange::BucketDeleted { bucket });
        Ok(())
    }

    /// One page of the bucket's objects (and common prefixes, with a delimiter); follow `next_page_token`.
    pub async fn list_objects(&self, bucket: &str, request: ListObjects) -> Result<ObjectPage, AppError> {
        let bucket = bucket_name(bucket)?;
        request.validate()?;
        Ok(self.store.list_objects(&bucket, request).await?)
    }

    /// Where the object lies, for reading it in place.
    pub fn locate(&self, bucket: &str, key: &str) -> Result<crate::ports::ObjectLocation, AppError> {
        Ok(self.store.locate(&bucket_name(bucket)?, &object_key(key)?))
    }

    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, AppError> {
        let (bucket, key) = (bucket_name(bucket)?, object_key(key)?);
        Ok(self.store.head_object(&bucket, &key).await?)
    }

    /// `TooLarge` (413 over HTTP) for an upload that declares more bytes than the limit, before any is read.
    pub fn check_declared_size(&self, declared: Option<u64>) -> Result<(), AppError> {
        let limit = self.limits.max_object_size;
        match declared {
            Some(size) if size > limit => Err(ObjectStoreError::TooLarge { limit }.into()),
            _ => Ok(()),
        }
    }

    /// Stores `body` (streamed, never held whole) under `key` with its content type and user metadata. The
    /// size limit is the smaller of the caller's and the service's.
    #[instrument(skip_all, fields(bucket = %bucket, key = %key))]
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        mut options: PutObject,
        body: ByteStream,
    ) -> Result<ObjectInfo, AppError> {
        let (bucket, key) = (bucket_name(bucket)?, object_key(key)?);
        options.validate()?;
        let limit = self.limits.max_object_size;
        options.max_size = Some(options.max_size.map_or(limit, |asked| asked.min(limit)));
        let info = self.store.put_object(&bucket, &key, options, body).await?;
        self.publish(DatasetChange::ObjectWritten {
            bucket,
            key,
            size: info.size,
            etag: info.etag.clone(),
            content_type: info.content_type.clone(),
        });
        Ok(info)
    }

    /// The object, or the part `range` selects, as a stream. A malformed range (`bytes=5-2`, `bytes=-0`) is
    /// `Invalid`; one past the end is `RangeNotSatisfiable` (416 over HTTP).
    pub async fn get_object(&self, bucket: &str, key: &str, range: Option<ByteRange>) -> Result<ObjectRead, AppError> {
        let (bucket, key) = (bucket_name(bucket)?, object_key(key)?);
        if let Some(range) = range.filter(|r| !r.is_well_formed()) {
            return Err(ObjectStoreError::InvalidRequest(format!("malformed byte range {range:?}")).into());
        }
        Ok(self.store.get_object(&bucket, &key, range).await?)
    }

    /// Deleting an absent key succeeds, as on S3 (and is still announced: a follower cannot tell).
    #[instrument(skip_all, fields(bucket = %bucket, key = %key))]
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), AppError> {
        let (bucket, key) = (bucket_name(bucket)?, object_key(key)?);
        self.store.delete_object(&bucket, &key).await?;
        self.publish(DatasetChange::ObjectDeleted { bucket, key });
        Ok(())
    }

    /// Copies body, content type and metadata, within a bucket or across buckets.
    #[instrument(skip_all, fields(from_bucket = %from_bucket, to_bucket = %to_bucket))]
    pub async fn copy_object(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
    ) -> Result<ObjectInfo, AppError> {
        let (from_bucket, from_key) = (bucket_name(from_bucket)?, object_key(from_key)?);
        let (to_bucket, to_key) = (bucket_name(to_bucket)?, object_key(to_key)?);
        let info = self
            .store
            .copy_object(&from_bucket, &from_key, &to_bucket, &to_key)
            .await?;
        self.publish(DatasetChange::ObjectWritten {
            bucket: to_bucket,
            key: to_key,
            size: info.size,
            etag: info.etag.clone(),
            content_type: info.content_type.clone(),
        });
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use bytes::Bytes;
    use futures::{StreamExt, TryStreamExt};

    use super::*;
    use crate::ports::MockObjectStore;
    use crate::ErrorKind;

    fn service(store: MockObjectStore) -> DatasetService {
        DatasetService::new(Arc::new(store), DatasetLimits { max_object_size: 100 })
    }

    fn info(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            key: ObjectKey::parse(key).unwrap(),
            size,
            etag: Some("\"e1\"".into()),
            last_modified: Utc::now(),
            content_type: "text/csv".into(),
            metadata: BTreeMap::new(),
        }
    }

    fn body(chunks: &[&'static str]) -> ByteStream {
        Box::pin(futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        ))
    }

    /// Every event published so far.
    fn drain(rx: &mut broadcast::Receiver<DatasetEvent>) -> Vec<DatasetEvent> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(e);
        }
        out
    }

    #[tokio::test]
    async fn bucket_names_are_checked_before_the_store_is_asked() {
        // The mock has no expectations: any call would fail the test.
        let datasets = service(MockObjectStore::new());
        let mut rx = datasets.subscribe();
        for bad in [
            "ab",
            "My-Bucket",
            "my_bucket",
            "192.168.0.1",
            "xn--abc",
            "a..b",
            "bucket-",
        ] {
            let err = datasets.create_bucket(bad).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}: {err}");
            assert_eq!(
                datasets.delete_bucket(bad, false).await.unwrap_err().kind(),
                ErrorKind::Invalid
            );
            let err = datasets.list_objects(bad, ListObjects::default()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
        assert!(drain(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn creating_and_deleting_buckets_is_announced_in_order() {
        let mut store = MockObjectStore::new();
        store
            .expect_create_bucket()
            .withf(|b| b.as_str() == "lake")
            .times(1)
            .returning(|_| Ok(()));
        store
            .expect_create_bucket()
            .withf(|b| b.as_str() == "taken")
            .times(1)
            .returning(|b| Err(ObjectStoreError::BucketExists(b.to_string())));
        store
            .expect_delete_bucket()
            .withf(|b, force| b.as_str() == "lake" && !*force)
            .times(1)
            .returning(|b, _| Err(ObjectStoreError::BucketNotEmpty(b.to_string())));
        store
            .expect_delete_bucket()
            .withf(|b, force| b.as_str() == "lake" && *force)
            .times(1)
            .returning(|_, _| Ok(()));
        let datasets = service(store);
        let mut rx = datasets.subscribe();

        assert_eq!(datasets.create_bucket("lake").await.unwrap().as_str(), "lake");
        assert_eq!(
            datasets.create_bucket("taken").await.unwrap_err().kind(),
            ErrorKind::Conflict
        );
        let err = datasets.delete_bucket("lake", false).await.unwrap_err();
        assert_eq!(err.problem().status, 409);
        datasets.delete_bucket("lake", true).await.unwrap();

        let lake = BucketName::parse("lake").unwrap();
        let events = drain(&mut rx);
        let changes: Vec<_> = events.iter().map(|e| e.change.clone()).collect();
        assert_eq!(
            changes,
            vec![
                DatasetChange::BucketCreated { bucket: lake.clone() },
                DatasetChange::BucketDeleted { bucket: lake },
            ],
            "only changes that happened"
        );
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(events[0].change.name(), "bucket.created");
    }

    #[tokio::test]
    async fn listing_passes_prefix_and_page_token_and_checks_the_limit() {
        let mut store = MockObjectStore::new();
        store
            .expect_list_objects()
            .withf(|b, r| {
                b.as_str() == "lake"
                    && r.prefix.as_deref() == Some("raw/2024/")
                    && r.delimiter.as_deref() == Some("/")
                    && r.page_token.as_deref() == Some("tok-1")
                    && r.limit == 2
            })
            .times(1)
            .returning(|_, _| {
                Ok(ObjectPage {
                    objects: vec![entry("raw/2024/a.csv")],
                    common_prefixes: vec!["raw/2024/jan/".into()],
                    next_page_token: Some("tok-2".into()),
                })
            });
        let datasets = service(store);
        let page = datasets
            .list_objects(
                "lake",
                ListObjects {
                    prefix: Some("raw/2024/".into()),
                    delimiter: Some("/".into()),
                    page_token: Some("tok-1".into()),
                    limit: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("tok-2"));
        assert_eq!(page.objects[0].key.as_str(), "raw/2024/a.csv");
        assert_eq!(page.common_prefixes, ["raw/2024/jan/"]);
        for limit in [0, 1001] {
            let request = ListObjects {
                limit,
                ..Default::default()
            };
            assert_eq!(
                datasets.list_objects("lake", request).await.unwrap_err().kind(),
                ErrorKind::Invalid
            );
        }
    }

    fn entry(key: &str) -> crate::ports::ObjectEntry {
        crate::ports::ObjectEntry {
            key: ObjectKey::parse(key).unwrap(),
            size: 3,
            etag: None,
            last_modified: Utc::now(),
        }
    }

    #[tokio::test]
    async fn uploads_stream_through_with_type_metadata_and_the_smaller_limit() {
        let mut store = MockObjectStore::new();
        store
            .expect_put_object()
            .withf(|b, k, o, _| {
                b.as_str() == "lake"
                    && k.as_str() == "raw/orders.csv"
                    && o.content_type.as_deref() == Some("text/csv")
                    && o.metadata.get("source").map(String::as_str) == Some("erp")
            })
            .times(2)
            .returning(|_, k, o, body| {
                // The body arrives as the chunks it was sent in, not gathered.
                let chunks: Vec<Bytes> = futures::executor::block_on(body.try_collect()).unwrap();
                assert_eq!(chunks, [Bytes::from_static(b"id,"), Bytes::from_static(b"total\n")]);
                let mut i = info(k.as_str(), 9);
                i.metadata = o.metadata.clone();
                // The limit handed on is the smaller of the caller's and the service's (100).
                i.etag = Some(o.max_size.unwrap().to_string());
                Ok(i)
            });
        let datasets = service(store);
        let mut rx = datasets.subscribe();
        let options = |max_size| PutObject {
            content_type: Some("text/csv".into()),
            metadata: [("source".to_owned(), "erp".to_owned())].into(),
            max_size,
        };
        let stored = datasets
            .put_object("lake", "raw/orders.csv", options(None), body(&["id,", "total\n"]))
            .await
            .unwrap();
        assert_eq!(stored.etag.as_deref(), Some("100"));
        assert_eq!(stored.metadata["source"], "erp");
        let stored = datasets
            .put_object("lake", "raw/orders.csv", options(Some(10)), body(&["id,", "total\n"]))
            .await
            .unwrap();
        assert_eq!(stored.etag.as_deref(), Some("10"));
        let events = drain(&mut rx);
        assert_eq!(events.len(), 2);
        assert!(matches!(
            &events[0].change,
            DatasetChange::ObjectWritten { key, size: 9, content_type, .. }
                if key.as_str() == "raw/orders.csv" && content_type == "text/csv"
        ));
    }

    #[tokio::test]
    async fn bad_keys_metadata_and_content_types_store_nothing() {
        let datasets = service(MockObjectStore::new());
        let mut rx = datasets.subscribe();
        for key in ["../etc/passwd", "a/../b", "/abs", "dir/", "a//b", "", "nul\0"] {
            let err = datasets
                .put_object("lake", key, PutObject::default(), body(&["x"]))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{key:?}");
            assert_eq!(
                datasets.get_object("lake", key, None).await.unwrap_err().kind(),
                ErrorKind::Invalid
            );
            assert_eq!(
                datasets.delete_object("lake", key).await.unwrap_err().kind(),
                ErrorKind::Invalid
            );
        }
        let bad_options = [
            PutObject {
                content_type: Some("csv".into()),
                ..Default::default()
            },
            PutObject {
                metadata: [("Bad Key".to_owned(), "v".to_owned())].into(),
                ..Default::default()
            },
            PutObject {
                metadata: [("k".to_owned(), "x".repeat(3000))].into(),
                ..Default::default()
            },
        ];
        for options in bad_options {
            let err = datasets
                .put_object("lake", "ok.csv", options.clone(), body(&["x"]))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{options:?}");
        }
        assert!(drain(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn a_failed_upload_is_not_announced() {
        let mut store = MockObjectStore::new();
        store
            .expect_put_object()
            .returning(|_, _, _, _| Err(ObjectStoreError::TooLarge { limit: 100 }));
        let datasets = service(store);
        let mut rx = datasets.subscribe();
        let err = datasets
            .put_object("lake", "big.bin", PutObject::default(), body(&["x"]))
            .await
            .unwrap_err();
        assert_eq!((err.kind(), err.problem().status), (ErrorKind::Invalid, 413));
        assert!(drain(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn downloads_pass_the_range_and_refuse_malformed_ones() {
        let mut store = MockObjectStore::new();
        store
            .expect_get_object()
            .withf(|b, k, r| {
                b.as_str() == "lake"
                    && k.as_str() == "raw/orders.csv"
                    && *r == Some(ByteRange::From { start: 3, end: Some(5) })
            })
            .times(1)
            .returning(|_, k, _| {
                Ok(ObjectRead {
                    info: info(k.as_str(), 9),
                    range: 3..6,
                    body: body(&["tot"]),
                })
            });
        store
            .expect_get_object()
            .withf(|_, _, r| *r == Some(ByteRange::From { start: 50, end: None }))
            .times(1)
            .returning(|_, _, _| Err(ObjectStoreError::RangeNotSatisfiable { size: 9 }));
        let datasets = service(store);
        let read = datasets
            .get_object(
                "lake",
                "raw/orders.csv",
                Some(ByteRange::From { start: 3, end: Some(5) }),
            )
            .await
            .unwrap();
        assert_eq!(
            (read.range.clone(), read.info.size, read.info.content_type.as_str()),
            (3..6, 9, "text/csv")
        );
        let got: Vec<Bytes> = read.body.map(|c| c.unwrap()).collect().await;
        assert_eq!(got, [Bytes::from_static(b"tot")]);

        let err = datasets
            .get_object("lake", "raw/orders.csv", Some(ByteRange::From { start: 50, end: None }))
            .await
            .unwrap_err();
        assert_eq!(err.problem().status, 416);
        for malformed in [ByteRange::From { start: 5, end: Some(2) }, ByteRange::Suffix(0)] {
            let err = datasets
                .get_object("lake", "raw/orders.csv", Some(malformed))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{malformed:?}");
        }
    }

    #[tokio::test]
    async fn deletes_and_copies_are_announced_and_missing_buckets_are_not_found() {
        let mut store = MockObjectStore::new();
        store
            .expect_delete_object()
            .withf(|b, _| b.as_str() == "lake")
            .times(1)
            .returning(|_, _| Ok(()));
        store
            .expect_delete_object()
            .withf(|b, _| b.as_str() == "gone")
            .times(1)
            .returning(|b, _| Err(ObjectStoreError::BucketNotFound(b.to_string())));
        store
            .expect_copy_object()
            .withf(|fb, fk, tb, tk| {
                (fb.as_str(), fk.as_str(), tb.as_str(), tk.as_str()) == ("lake", "a.csv", "archive", "2024/a.csv")
            })
            .times(1)
            .returning(|_, _, _, k| Ok(info(k.as_str(), 4)));
        let datasets = service(store);
        let mut rx = datasets.subscribe();
        datasets.delete_object("lake", "a.csv").await.unwrap();
        assert_eq!(
            datasets.delete_object("gone", "a.csv").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let copied = datasets
            .copy_object("lake", "a.csv", "archive", "2024/a.csv")
            .await
            .unwrap();
        assert_eq!(copied.key.as_str(), "2024/a.csv");
        let events = drain(&mut rx);
        assert_eq!(
            events.iter().map(|e| e.change.name()).collect::<Vec<_>>(),
            ["object.deleted", "object.written"]
        );
        assert_eq!(events[1].change.bucket().as_str(), "archive");
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    }
}
