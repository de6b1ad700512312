//! `S3ObjectStore`: any S3-compatible server (AWS, MinIO, moto...). Object calls go through `object_store`'s
//! `AmazonS3` (one client per bucket); bucket calls and cross-bucket copies, which it does not make, through
//! `signed` (one SigV4-signed request each). Content type and user metadata are `Content-Type` and
//! `x-amz-meta-*` headers (object_store's `Attribute::ContentType` / `Attribute::Metadata`).
//!
//! Uploads up to one part (8 MiB) are one PUT; larger ones a multipart upload completed at the end of the
//! stream, aborted when the stream fails, grows past the limit or the upload is dropped: S3 makes the object
//! visible only on completion, so nothing partial is ever seen.

mod signed;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore as _,
    ObjectStoreExt as _, PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use pluto_duck_application::ports::{
    BucketInfo, ByteStream, ListObjects, ObjectEntry, ObjectInfo, ObjectLocation, ObjectPage, ObjectRead, ObjectStore,
    ObjectStoreError, PutObject, DEFAULT_CONTENT_TYPE,
};
use pluto_duck_domain::{BucketName, ByteRange, ObjectKey};
use secrecy::{ExposeSecret, SecretString};

use signed::{Endpoint, Signed};

/// Part size of multipart uploads, and the most an upload buffers before it starts one.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight per upload.
const PART_CONCURRENCY: usize = 2;

/// Where and how to reach an S3-compatible server. The secret stays a `SecretString` until a request is signed.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `http://127.0.0.1:9000`, `https://minio.example.com`; `None` for AWS (`https://s3.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    pub region: String,
    /// Buckets as path segments (`<endpoint>/<bucket>/<key>`, what MinIO and moto expect) instead of host names.
    pub path_style: bool,
    /// Accept a plain `http://` endpoint (loopback test servers, a LAN MinIO).
    pub allow_http: bool,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    /// Per request; a whole streamed upload or download may take longer.
    pub timeout: Duration,
}

impl S3Config {
    /// A path-style, plain-http endpoint such as a test server's.
    pub fn local(endpoint: impl Into<String>, access_key_id: impl Into<String>, secret: SecretString) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            region: "us-east-1".to_owned(),
            path_style: true,
            allow_http: true,
            access_key_id: access_key_id.into(),
            secret_access_key: secret,
            session_token: None,
            timeout: Duration::from_secs(30),
        }
    }
}

pub struct S3ObjectStore {
    config: S3Config,
    signed: Signed,
    buckets: Mutex<HashMap<BucketName, Arc<AmazonS3>>>,
}

impl std::fmt::Debug for S3ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ObjectStore")
            .field("endpoint", &self.signed.endpoint.service_url())
            .field("region", &self.config.region)
            .finish_non_exhaustive()
    }
}

impl S3ObjectStore {
    pub fn new(config: S3Config) -> Result<Self, ObjectStoreError> {
        let endpoint = Endpoint::parse(
            config.endpoint.as_deref(),
            &config.region,
            config.path_style,
            config.allow_http,
        )?;
        let signed = Signed::new(
            endpoint,
            config.region.clone(),
            config.access_key_id.clone(),
            config.secret_access_key.clone(),
            config.session_token.clone(),
            config.timeout,
        )?;
        Ok(Self {
            config,
            signed,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The `object_store` client of one bucket, built on first use.
    fn bucket(&self, bucket: &BucketName) -> Result<Arc<AmazonS3>, ObjectStoreError> {
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| ObjectStoreError::Internal("bucket client cache poisoned".into()))?;
        if let Some(store) = buckets.get(bucket) {
            return Ok(Arc::clone(store));
        }
        let c = &self.config;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket.as_str())
            .with_region(&c.region)
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(c.secret_access_key.expose_secret())
            .with_allow_http(c.allow_http)
            .with_virtual_hosted_style_request(!c.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(c.allow_http)
                    .with_timeout(c.timeout)
                    .with_connect_timeout(Duration::from_secs(5)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
            });
        if let Some(token) = &c.session_token {
            builder = builder.with_token(token.expose_secret());
        }
        if c.endpoint.is_some() {
            // Virtual-hosted style wants the bucket's own host as the endpoint.
            let endpoint = if c.path_style {
                self.signed.endpoint.service_url()
            } else {
                self.signed.endpoint.bucket_url(bucket)
            };
            builder = builder.with_endpoint(endpoint);
        }
        let store = Arc::new(
            builder
                .build()
                .map_err(|e| ObjectStoreError::Internal(format!("configuring S3 for bucket {bucket}: {e}")))?,
        );
        buckets.insert(bucket.clone(), Arc::clone(&store));
        Ok(store)
    }

    /// A not-found from an object call: the bucket or the object?
    async fn not_found(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectStoreError {
        match self.signed.bucket_exists(bucket).await {
            Ok(false) => ObjectStoreError::BucketNotFound(bucket.to_string()),
            Ok(true) => ObjectStoreError::ObjectNotFound {
                bucket: bucket.to_string(),
                key: key.to_string(),
            },
            Err(e) => e,
        }
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectInfo, ObjectStoreError> {
        let store = self.bucket(bucket)?;
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        match store.get_opts(&path(key)?, options).await {
            Ok(result) => Ok(info(key, &result.meta, &result.attributes)),
            Err(object_store::Error::NotFound { .. }) => Err(self.not_found(bucket, key).await),
            Err(e) => Err(map_error(&format!("reading {bucket}/{key}"), e)),
        }
    }
}

fn path(key: &ObjectKey) -> Result<Path, ObjectStoreError> {
    Path::parse(key.as_str()).map_err(|_| ObjectStoreError::InvalidRequest(format!("unsupported key {key:?}")))
}

/// S3's ETag without its quotes.
fn etag(meta: &object_store::ObjectMeta) -> Option<String> {
    meta.e_tag.as_ref().map(|e| e.trim_matches('"').to_owned())
}

fn info(key: &ObjectKey, meta: &object_store::ObjectMeta, attributes: &Attributes) -> ObjectInfo {
    let mut content_type = None;
    let mut metadata = BTreeMap::new();
    for (attribute, value) in attributes {
        match attribute {
            Attribute::ContentType => content_type = Some(value.as_ref().to_owned()),
            Attribute::Metadata(k) => {
                metadata.insert(k.to_ascii_lowercase(), value.as_ref().to_owned());
            }
            _ => {}
        }
    }
    ObjectInfo {
        key: key.clone(),
        size: meta.size,
        etag: etag(meta),
        last_modified: meta.last_modified,
        content_type: content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
        metadata,
    }
}

fn attributes(options: &PutObject) -> Attributes {
    let mut attributes = Attributes::new();
    let content_type = options
        .content_type
        .clone()
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    attributes.insert(Attribute::ContentType, AttributeValue::from(content_type));
    for (k, v) in &options.metadata {
        attributes.insert(
            Attribute::Metadata(Cow::Owned(k.clone())),
            AttributeValue::from(v.clone()),
        );
    }
    attributes
}

/// Errors other than not-found. Messages name what was being done; object_store's text (URLs, no secrets) is
/// kept for internal errors, which only the log shows.
fn map_error(what: &str, e: object_store::Error) -> ObjectStoreError {
    use object_store::client::{HttpError, HttpErrorKind};
    match &e {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            return ObjectStoreError::Unavailable(format!("{what}: the S3 endpoint refused the configured credentials"))
        }
        object_store::Error::NotFound { .. } => return ObjectStoreError::Internal(format!("{what}: not found")),
        _ => {}
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            if matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Request | HttpErrorKind::Interrupted
            ) {
                return ObjectStoreError::Unavailable(format!("{what}: the S3 endpoint cannot be reached"));
            }
        }
        source = err.source();
    }
    ObjectStoreError::Internal(format!("{what}: {e}"))
}

/// A multipart upload that is aborted unless finished, also when the future driving it is dropped.
struct Multipart(Option<WriteMultipart>);

impl Multipart {
    async fn abort(mut self) {
        if let Some(upload) = self.0.take() {
            if let Err(e) = upload.abort().await {
                tracing::warn!(error = %e, "multipart upload not aborted");
            }
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if let (Some(upload), Ok(handle)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            handle.spawn(async move {
                let _ = upload.abort().await;
            });
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    fn locate(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectLocation {
        let c = &self.config;
        let endpoint = c.endpoint.as_deref().map(|e| {
            e.trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .to_owned()
        });
        ObjectLocation::S3 {
            uri: format!("s3://{bucket}/{key}"),
            settings: pluto_duck_domain::S3Settings {
                region: Some(c.region.clone()),
                use_ssl: !c.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
                endpoint,
                path_style: c.path_style,
                key_id: Some(c.access_key_id.clone()),
                secret_key_secret: None,
            },
            secret: c.secret_access_key.clone(),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, ObjectStoreError> {
        self.signed.list_buckets().await
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), ObjectStoreError> {
        self.signed.create_bucket(bucket).await
    }

    #[tracing::instrument(skip_all, fields(%bucket, force))]
    async fn delete_bucket(&self, bucket: &BucketName, force: bool) -> Result<(), ObjectStoreError> {
        if force {
            if !self.signed.bucket_exists(bucket).await? {
                return Err(ObjectStoreError::BucketNotFound(bucket.to_string()));
            }
            let store = self.bucket(bucket)?;
            let locations = store.list(None).map_ok(|meta| meta.location).boxed();
            store
                .delete_stream(locations)
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| map_error(&format!("emptying bucket {bucket}"), e))?;
        }
        self.signed.delete_bucket(bucket).await?;
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.remove(bucket);
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn list_objects(&self, bucket: &BucketName, request: ListObjects) -> Result<ObjectPage, ObjectStoreError> {
        request.validate()?;
        let store = self.bucket(bucket)?;
        let delimiter = request.delimiter.clone();
        let options = PaginatedListOptions {
            offset: None,
            delimiter: delimiter.clone().map(Cow::Owned),
            max_keys: Some(request.limit),
            page_token: request.page_token.clone(),
            extensions: Default::default(),
        };
        let prefix = request.prefix.as_deref().filter(|p| !p.is_empty());
        let listed = match store.list_paginated(prefix, options).await {
            Ok(listed) => listed,
            // object_store reports a missing bucket on lists as a generic error (a 404 in its text): ask.
            Err(e) => {
                return Err(match self.signed.bucket_exists(bucket).await {
                    Ok(false) => ObjectStoreError::BucketNotFound(bucket.to_string()),
                    Ok(true) => map_error(&format!("listing {bucket}"), e),
                    Err(unreachable) => unreachable,
                })
            }
        };
        let mut objects: Vec<ObjectEntry> = listed
            .result
            .objects
            .iter()
            .filter_map(|meta| {
                // Keys other tools wrote that are not valid here (folder markers like `dir/`) are not shown.
                let key = ObjectKey::parse(meta.location.as_ref()).ok()?;
                Some(ObjectEntry {
                    key,
                    size: meta.size,
                    etag: etag(meta),
                    last_modified: meta.last_modified,
                })
            })
            .collect();
        objects.sort_by(|a, b| a.key.as_str().as_bytes().cmp(b.key.as_str().as_bytes()));
        // object_store hands common prefixes back as paths, without a trailing '/'.
        let mut common_prefixes: Vec<String> = listed
            .result
            .common_prefixes
            .iter()
            .map(|p| {
                let p = p.as_ref().to_owned();
                match &delimiter {
                    Some(d) if !p.ends_with(d.as_str()) => format!("{p}{d}"),
                    _ => p,
                }
            })
            .collect();
        common_prefixes.sort();
        Ok(ObjectPage {
            objects,
            common_prefixes,
            next_page_token: listed.page_token.filter(|t| !t.is_empty()),
        })
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn head_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectInfo, ObjectStoreError> {
        self.head(bucket, key).await
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        options: PutObject,
        mut body: ByteStream,
    ) -> Result<ObjectInfo, ObjectStoreError> {
        options.validate()?;
        let store = self.bucket(bucket)?;
        let location = path(key)?;
        let failed = |e| map_error(&format!("storing {bucket}/{key}"), e);
        let mut buffered: Vec<Bytes> = Vec::new();
        let mut buffered_len = 0usize;
        let mut written: u64 = 0;
        let mut multipart: Option<Multipart> = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    if let Some(m) = multipart.take() {
                        m.abort().await;
                    }
                    return Err(e);
                }
            };
            written += chunk.len() as u64;
            if let Some(limit) = options.max_size.filter(|l| written > *l) {
                if let Some(m) = multipart.take() {
                    m.abort().await;
                }
                return Err(ObjectStoreError::TooLarge { limit });
            }
            match &mut multipart {
                Some(Multipart(Some(upload))) => {
                    upload.put(chunk);
                    if let Err(e) = upload.wait_for_capacity(PART_CONCURRENCY).await {
                        if let Some(m) = multipart.take() {
                            m.abort().await;
                        }
                        return Err(failed(e));
                    }
                }
                _ => {
                    buffered_len += chunk.len();
                    buffered.push(chunk);
                    if buffered_len >= PART_SIZE {
                        let opts = PutMultipartOptions {
                            attributes: attributes(&options),
                            ..Default::default()
                        };
                        let upload = match store.put_multipart_opts(&location, opts).await {
                            Ok(upload) => upload,
                            Err(object_store::Error::NotFound { .. }) => return Err(self.not_found(bucket, key).await),
                            Err(e) => return Err(failed(e)),
                        };
                        let mut upload = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                        for part in buffered.drain(..) {
                            upload.put(part);
                        }
                        multipart = Some(Multipart(Some(upload)));
                    }
                }
            }
        }
        let stored = match multipart.as_mut().and_then(|m| m.0.take()) {
            Some(upload) => upload.finish().await,
            None => {
                let opts = PutOptions {
                    attributes: attributes(&options),
                    ..Default::default()
                };
                store.put_opts(&location, PutPayload::from_iter(buffered), opts).await
            }
        };
        match stored {
            Ok(_) => self.head(bucket, key).await,
            Err(object_store::Error::NotFound { .. }) => Err(self.not_found(bucket, key).await),
            Err(e) => Err(failed(e)),
        }
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectRead, ObjectStoreError> {
        let store = self.bucket(bucket)?;
        let unsatisfiable = |info: ObjectInfo| ObjectStoreError::RangeNotSatisfiable { size: info.size };
        let get_range = match range {
            None => None,
            Some(r) if !r.is_well_formed() => return Err(unsatisfiable(self.head(bucket, key).await?)),
            Some(ByteRange::From { start, end: None }) => Some(GetRange::Offset(start)),
            Some(ByteRange::From { start, end: Some(end) }) => Some(GetRange::Bounded(start..end.saturating_add(1))),
            Some(ByteRange::Suffix(n)) => Some(GetRange::Suffix(n)),
        };
        let options = GetOptions {
            range: get_range,
            ..Default::default()
        };
        match store.get_opts(&path(key)?, options).await {
            Ok(result) => {
                let info = info(key, &result.meta, &result.attributes);
                let served = result.range.clone();
                let what = format!("reading {bucket}/{key}");
                let body = result.into_stream().map_err(move |e| map_error(&what, e));
                Ok(ObjectRead {
                    info,
                    range: served,
                    body: Box::pin(body),
                })
            }
            Err(object_store::Error::NotFound { .. }) => Err(self.not_found(bucket, key).await),
            Err(e) => match range {
                // 416, or a partial answer that does not fit: say which with the object's size.
                Some(r) => {
                    let info = self.head(bucket, key).await?;
                    match r.resolve(info.size) {
                        None => Err(unsatisfiable(info)),
                        Some(_) => Err(map_error(&format!("reading {bucket}/{key}"), e)),
                    }
                }
                None => Err(map_error(&format!("reading {bucket}/{key}"), e)),
            },
        }
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), ObjectStoreError> {
        let store = self.bucket(bucket)?;
        match store.delete(&path(key)?).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => match self.not_found(bucket, key).await {
                ObjectStoreError::ObjectNotFound { .. } => Ok(()),
                e => Err(e),
            },
            Err(e) => Err(map_error(&format!("deleting {bucket}/{key}"), e)),
        }
    }

    #[tracing::instrument(skip_all, fields(%from_bucket, %to_bucket))]
    async fn copy_object(
        &self,
        from_bucket: &BucketName,
        from_key: &ObjectKey,
        to_bucket: &BucketName,
        to_key: &ObjectKey,
    ) -> Result<ObjectInfo, ObjectStoreError> {
        self.signed
            .copy_object(from_bucket, from_key, to_bucket, to_key)
            .await?;
        self.head(to_bucket, to_key).await
    }
}
