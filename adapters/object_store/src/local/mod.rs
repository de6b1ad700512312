//! `LocalObjectStore`: buckets as directories under a root, objects as files at `<root>/<bucket>/<key>`, so the
//! engine can read them in place. Content type and user metadata live in a JSON sidecar at
//! `<root>/.meta/<bucket>/<key>`; uploads are written to `<root>/.tmp/` and renamed into place. Bucket names
//! never start with a dot, so neither folder can be a bucket.
//!
//! Why not `object_store::local::LocalFileSystem`: it keeps no attributes (content type, metadata), follows
//! symlinks, and refuses keys ending in `#<digits>` (its staging names); this store walks the tree with
//! `openat(O_NOFOLLOW)` instead (see `tree`).
//!
//! Consistency: a put renames its sidecar and then its data while holding a lock on the key (striped, in this
//! process), and head/get read the data handle and the sidecar under the same lock, so a reader never pairs one
//! upload's bytes with another's metadata. One process owns a root (the server), as with the warehouse file.

mod tree;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use pluto_duck_application::ports::{
    BucketInfo, ByteStream, ListObjects, ObjectEntry, ObjectInfo, ObjectLocation, ObjectPage, ObjectRead, ObjectStore,
    ObjectStoreError, PutObject, DEFAULT_CONTENT_TYPE,
};
use pluto_duck_domain::{BucketName, ByteRange, ObjectKey};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio_util::io::ReaderStream;

use crate::listing;
use tree::{FileStat, TreeError, TreeResult};

const TMP_DIR: &str = ".tmp";
const META_DIR: &str = ".meta";
const LOCK_STRIPES: usize = 64;
/// Staged files older than this are left from a crash and removed when a store opens.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// The sidecar of an object.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sidecar {
    content_type: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

pub struct LocalObjectStore {
    inner: Arc<Inner>,
}

struct Inner {
    root_path: PathBuf,
    root: OwnedFd,
    locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for LocalObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalObjectStore")
            .field("root", &self.inner.root_path)
            .finish()
    }
}

impl LocalObjectStore {
    /// Opens (creating when missing) the store rooted at `root`, and clears uploads a crash left staged.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, ObjectStoreError> {
        let root_path = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root_path)
            .map_err(|e| ObjectStoreError::Unavailable(format!("cannot create {}: {e}", root_path.display())))?;
        let root = tree::open_root(&root_path)
            .map_err(|e| ObjectStoreError::Unavailable(format!("cannot open {}: {e}", root_path.display())))?;
        let internal = |e: TreeError| internal(&format!("preparing {}", root_path.display()), e);
        tree::make_dir(&root, TMP_DIR).map_err(internal)?;
        tree::make_dir(&root, META_DIR).map_err(internal)?;
        let tmp = tree::open_dir(&root, TMP_DIR).map_err(internal)?;
        for entry in tree::entries(&tmp).map_err(internal)? {
            let stale = tree::FileStat::at(&tmp, &entry.name)
                .ok()
                .flatten()
                .and_then(|s| s.modified.elapsed().ok())
                .is_none_or(|age| age > STALE_STAGING);
            if stale {
                let _ = tree::remove_tree(&tmp, &entry.name, false).or_else(|_| tree::remove_file(&tmp, &entry.name));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root_path,
                root,
                locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root_path
    }

    /// The lock of one key; no caller holds two at once.
    fn lock(&self, bucket: &BucketName, key: &ObjectKey) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bucket.as_str(), key.as_str()).hash(&mut h);
        &self.inner.locks[(h.finish() as usize) % LOCK_STRIPES]
    }

    /// Runs blocking file-system work on the blocking pool, in the caller's span.
    async fn blocking<T, F>(&self, work: F) -> Result<T, ObjectStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, ObjectStoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(&inner)))
            .await
            .map_err(|e| ObjectStoreError::Internal(format!("file task failed: {e}")))?
    }
}

fn internal(what: &str, e: TreeError) -> ObjectStoreError {
    match e {
        TreeError::Io(e) => ObjectStoreError::Internal(format!("{what}: {e}")),
        TreeError::Missing => ObjectStoreError::Internal(format!("{what}: missing")),
        TreeError::NotAllowed(why) => ObjectStoreError::Internal(format!("{what}: {why}")),
        TreeError::NameTooLong => ObjectStoreError::Internal(format!("{what}: name too long")),
    }
}

/// Maps an error met on the way to an object: a missing or blocked path is "not found".
fn object_error(bucket: &BucketName, key: &ObjectKey, e: TreeError) -> ObjectStoreError {
    match e {
        TreeError::Missing | TreeError::NotAllowed(_) | TreeError::NameTooLong => ObjectStoreError::ObjectNotFound {
            bucket: bucket.to_string(),
            key: key.to_string(),
        },
        e => internal(&format!("reading {bucket}/{key}"), e),
    }
}

fn to_utc(t: std::time::SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

impl Inner {
    fn bucket_dir(&self, bucket: &BucketName) -> Result<OwnedFd, ObjectStoreError> {
        tree::open_dir(&self.root, bucket.as_str()).map_err(|e| match e {
            TreeError::Missing | TreeError::NotAllowed(_) => ObjectStoreError::BucketNotFound(bucket.to_string()),
            e => internal(&format!("opening bucket {bucket}"), e),
        })
    }

    /// The directory holding `key`'s file (its parent segments), and the file's name.
    fn parent<'k>(&self, base: &OwnedFd, key: &'k ObjectKey, create: bool) -> TreeResult<(OwnedFd, &'k str)> {
        let segments: Vec<&str> = key.segments().collect();
        let (name, dirs) = segments.split_last().ok_or(TreeError::Missing)?;
        Ok((tree::open_dirs(base, dirs.iter().copied(), create)?, name))
    }

    fn meta_base(&self, bucket: &BucketName, create: bool) -> TreeResult<OwnedFd> {
        tree::open_dirs(&self.root, [META_DIR, bucket.as_str()], create)
    }

    fn read_sidecar(&self, bucket: &BucketName, key: &ObjectKey) -> Sidecar {
        let read = || -> TreeResult<Option<Sidecar>> {
            let base = self.meta_base(bucket, false)?;
            let (dir, name) = self.parent(&base, key, false)?;
            let mut file = tree::open_file(&dir, name)?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut file, &mut text)?;
            Ok(serde_json::from_str(&text).ok())
        };
        match read() {
            Ok(Some(sidecar)) => sidecar,
            Ok(None) => {
                tracing::warn!(%bucket, "unreadable object sidecar ignored");
                Sidecar::default()
            }
            Err(_) => Sidecar::default(),
        }
    }

    /// Opens `key` and reads its sidecar; call under the key's lock.
    fn open_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(std::fs::File, ObjectInfo), ObjectStoreError> {
        let base = self.bucket_dir(bucket)?;
        let (dir, name) = self
            .parent(&base, key, false)
            .map_err(|e| object_error(bucket, key, e))?;
        let file = tree::open_file(&dir, name).map_err(|e| object_error(bucket, key, e))?;
        let stat = FileStat::of(&file).map_err(|e| internal(&format!("reading {bucket}/{key}"), e.into()))?;
        let sidecar = self.read_sidecar(bucket, key);
        let info = ObjectInfo {
            key: key.clone(),
            size: stat.size,
            etag: Some(stat.etag()),
            last_modified: to_utc(stat.modified),
            content_type: sidecar.content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
            metadata: sidecar.metadata,
        };
        Ok((file, info))
    }

    /// Moves a staged upload (data and sidecar in `.tmp`) into place; call under the key's lock. The data goes
    /// first: when it cannot (a folder of objects is in the way) nothing has changed.
    fn commit(&self, bucket: &BucketName, key: &ObjectKey, data: &str, sidecar: &str) -> Result<(), ObjectStoreError> {
        let tmp = tree::open_dir(&self.root, TMP_DIR).map_err(|e| internal("opening the staging folder", e))?;
        let conflict = |e: TreeError| match e {
            TreeError::NotAllowed(why) => ObjectStoreError::Conflict(format!("cannot store {bucket}/{key}: {why}")),
            TreeError::NameTooLong => ObjectStoreError::InvalidRequest(format!(
                "key {key:?} has a segment longer than the local file system allows (255 bytes)"
            )),
            e => internal(&format!("storing {bucket}/{key}"), e),
        };
        let base = self.bucket_dir(bucket)?;
        let (data_dir, name) = self.parent(&base, key, true).map_err(conflict)?;
        let meta_base = self.meta_base(bucket, true).map_err(conflict)?;
        let (meta_dir, meta_name) = self.parent(&meta_base, key, true).map_err(conflict)?;
        tree::rename_into(&tmp, data, &data_dir, name).map_err(conflict)?;
        if let Err(e) = tree::rename_into(&tmp, sidecar, &meta_dir, meta_name) {
            // Better no metadata than the previous object's.
            let _ = tree::remove_file(&meta_dir, meta_name);
            return Err(internal(&format!("storing the metadata of {bucket}/{key}"), e));
        }
        Ok(())
    }

    fn remove_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), ObjectStoreError> {
        let base = self.bucket_dir(bucket)?;
        match self.parent(&base, key, false) {
            Ok((dir, name)) => match tree::remove_file(&dir, name) {
                Ok(()) | Err(TreeError::NotAllowed(_)) => {}
                Err(e) => return Err(internal(&format!("deleting {bucket}/{key}"), e)),
            },
            Err(TreeError::Missing | TreeError::NotAllowed(_) | TreeError::NameTooLong) => {}
            Err(e) => return Err(internal(&format!("deleting {bucket}/{key}"), e)),
        }
        if let Ok(meta_base) = self.meta_base(bucket, false) {
            if let Ok((dir, name)) = self.parent(&meta_base, key, false) {
                let _ = tree::remove_file(&dir, name);
            }
        }
        Ok(())
    }

    /// Every object under the directory `dir` whose key is `at` + name..., that starts with `prefix`.
    fn walk(&self, dir: &OwnedFd, at: &str, prefix: &str, out: &mut Vec<ObjectEntry>) -> TreeResult<()> {
        for entry in tree::entries(dir)? {
            let key = format!("{at}{}", entry.name);
            // Only descend where keys can still start with the prefix.
            let relevant = key.starts_with(prefix) || prefix.starts_with(&format!("{key}/"));
            if !relevant {
                continue;
            }
            match entry.kind {
                rustix::fs::FileType::Directory => {
                    let sub = match tree::open_dir(dir, &entry.name) {
                        Ok(sub) => sub,
                        Err(TreeError::Missing | TreeError::NotAllowed(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    self.walk(&sub, &format!("{key}/"), prefix, out)?;
                }
                rustix::fs::FileType::RegularFile if key.starts_with(prefix) => {
                    let Ok(object_key) = ObjectKey::parse(key) else {
                        continue;
                    };
                    if let Some(stat) = FileStat::at(dir, &entry.name)? {
                        out.push(ObjectEntry {
                            key: object_key,
                            size: stat.size,
                            etag: Some(stat.etag()),
                            last_modified: to_utc(stat.modified),
                        });
                    }
                }
                // Symlinks, sockets, devices: not objects.
                _ => {}
            }
        }
        Ok(())
    }
}

/// Names of a staged upload in `.tmp`, removed on drop: a failed, oversized or cancelled upload leaves nothing.
struct Staged {
    inner: Arc<Inner>,
    data: String,
    sidecar: String,
}

impl Staged {
    fn new(inner: &Arc<Inner>) -> Self {
        let id = uuid::Uuid::new_v4().simple();
        Self {
            inner: Arc::clone(inner),
            data: format!("upload-{id}"),
            sidecar: format!("upload-{id}.meta"),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Two unlinks: cheap enough to do in place, and a dropped (cancelled) upload must not leave its file.
        if let Ok(tmp) = tree::open_dir(&self.inner.root, TMP_DIR) {
            let _ = tree::remove_file(&tmp, &self.data);
            let _ = tree::remove_file(&tmp, &self.sidecar);
        }
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    fn locate(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectLocation {
        ObjectLocation::Local(self.inner.root_path.join(bucket.as_str()).join(key.as_str()))
    }

    #[tracing::instrument(skip_all)]
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, ObjectStoreError> {
        self.blocking(|inner| {
            let mut out = Vec::new();
            for entry in tree::entries(&inner.root).map_err(|e| internal("listing buckets", e))? {
                if entry.kind != rustix::fs::FileType::Directory {
                    continue;
                }
                let Ok(name) = BucketName::parse(entry.name.clone()) else {
                    continue;
                };
                let created = std::fs::metadata(inner.root_path.join(&entry.name))
                    .and_then(|m| m.created())
                    .ok()
                    .map(to_utc);
                out.push(BucketInfo { name, created });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), ObjectStoreError> {
        let bucket = bucket.clone();
        self.blocking(move |inner| match tree::make_dir(&inner.root, bucket.as_str()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ObjectStoreError::BucketExists(bucket.to_string())),
            Err(e) => Err(internal(&format!("creating bucket {bucket}"), e)),
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(%bucket, force))]
    async fn delete_bucket(&self, bucket: &BucketName, force: bool) -> Result<(), ObjectStoreError> {
        let bucket = bucket.clone();
        self.blocking(move |inner| {
            inner.bucket_dir(&bucket)?;
            let failed = |e| internal(&format!("deleting bucket {bucket}"), e);
            if force {
                // Out of the namespace in one rename, then removed at leisure.
                let tmp = tree::open_dir(&inner.root, TMP_DIR).map_err(failed)?;
                let aside = format!("deleted-{}", uuid::Uuid::new_v4().simple());
                if !tree::move_aside(&inner.root, bucket.as_str(), &tmp, &aside).map_err(failed)? {
                    return Err(ObjectStoreError::BucketNotFound(bucket.to_string()));
                }
                tree::remove_tree(&tmp, &aside, false).map_err(failed)?;
            } else {
                // Folders left by deleted objects go; the first file stops the removal (a writer may race us).
                match tree::remove_tree(&inner.root, bucket.as_str(), true) {
                    Ok(()) => {}
                    Err(TreeError::NotAllowed(_)) => return Err(ObjectStoreError::BucketNotEmpty(bucket.to_string())),
                    Err(e) => return Err(failed(e)),
                }
            }
            if let Ok(meta) = tree::open_dir(&inner.root, META_DIR) {
                let _ = tree::remove_tree(&meta, bucket.as_str(), false);
            }
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn list_objects(&self, bucket: &BucketName, request: ListObjects) -> Result<ObjectPage, ObjectStoreError> {
        request.validate()?;
        let bucket = bucket.clone();
        self.blocking(move |inner| {
            let base = inner.bucket_dir(&bucket)?;
            let prefix = request.prefix.clone().unwrap_or_default();
            let mut entries = Vec::new();
            inner
                .walk(&base, "", &prefix, &mut entries)
                .map_err(|e| internal(&format!("listing {bucket}"), e))?;
            entries.sort_by(|a, b| a.key.as_str().as_bytes().cmp(b.key.as_str().as_bytes()));
            listing::page(
                entries,
                &prefix,
                request.delimiter.as_deref(),
                request.page_token.as_deref(),
                request.limit,
            )
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn head_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectInfo, ObjectStoreError> {
        let _guard = self.lock(bucket, key).lock().await;
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |inner| inner.open_object(&bucket, &key).map(|(_, info)| info))
            .await
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
        {
            let bucket = bucket.clone();
            self.blocking(move |inner| inner.bucket_dir(&bucket).map(|_| ()))
                .await?;
        }
        let staged = Staged::new(&self.inner);
        let (data_name, sidecar_name) = (staged.data.clone(), staged.sidecar.clone());
        let sidecar = serde_json::to_vec(&Sidecar {
            content_type: options.content_type.clone(),
            metadata: options.metadata.clone(),
        })
        .map_err(|e| ObjectStoreError::Internal(format!("encoding metadata: {e}")))?;
        let file = self
            .blocking(move |inner| {
                let tmp =
                    tree::open_dir(&inner.root, TMP_DIR).map_err(|e| internal("opening the staging folder", e))?;
                let mut meta = tree::create_file(&tmp, &sidecar_name).map_err(|e| internal("staging metadata", e))?;
                std::io::Write::write_all(&mut meta, &sidecar).map_err(|e| internal("staging metadata", e.into()))?;
                tree::create_file(&tmp, &data_name).map_err(|e| internal("staging an upload", e))
            })
            .await?;
        let mut file = tokio::fs::File::from_std(file);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if let Some(limit) = options.max_size {
                if written > limit {
                    return Err(ObjectStoreError::TooLarge { limit });
                }
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| internal("writing an upload", e.into()))?;
        }
        file.sync_data()
            .await
            .map_err(|e| internal("writing an upload", e.into()))?;
        drop(file);

        let _guard = self.lock(bucket, key).lock().await;
        let (b, k) = (bucket.clone(), key.clone());
        let (data, sidecar) = (staged.data.clone(), staged.sidecar.clone());
        // Once renamed, the staged names are gone and `staged`'s clean-up finds nothing to remove.
        self.blocking(move |inner| {
            inner.commit(&b, &k, &data, &sidecar)?;
            inner.open_object(&b, &k).map(|(_, info)| info)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectRead, ObjectStoreError> {
        let (file, info) = {
            let _guard = self.lock(bucket, key).lock().await;
            let (bucket, key) = (bucket.clone(), key.clone());
            self.blocking(move |inner| inner.open_object(&bucket, &key)).await?
        };
        let served = match range {
            None => 0..info.size,
            Some(range) => range
                .resolve(info.size)
                .ok_or(ObjectStoreError::RangeNotSatisfiable { size: info.size })?,
        };
        let mut file = tokio::fs::File::from_std(file);
        if served.start > 0 {
            file.seek(std::io::SeekFrom::Start(served.start))
                .await
                .map_err(|e| internal("reading an object", e.into()))?;
        }
        let reader = file.take(served.end - served.start);
        let body = ReaderStream::with_capacity(reader, 256 * 1024)
            .map(|r| r.map_err(|e| ObjectStoreError::Internal(format!("reading an object: {e}"))));
        Ok(ObjectRead {
            info,
            range: served,
            body: Box::pin(body),
        })
    }

    #[tracing::instrument(skip_all, fields(%bucket))]
    async fn delete_object(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), ObjectStoreError> {
        let _guard = self.lock(bucket, key).lock().await;
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |inner| inner.remove_object(&bucket, &key)).await
    }

    #[tracing::instrument(skip_all, fields(%from_bucket, %to_bucket))]
    async fn copy_object(
        &self,
        from_bucket: &BucketName,
        from_key: &ObjectKey,
        to_bucket: &BucketName,
        to_key: &ObjectKey,
    ) -> Result<ObjectInfo, ObjectStoreError> {
        let source = self.get_object(from_bucket, from_key, None).await?;
        let options = PutObject {
            content_type: Some(source.info.content_type.clone()),
            metadata: source.info.metadata.clone(),
            max_size: None,
        };
        self.put_object(to_bucket, to_key, options, source.body).await
    }
}
