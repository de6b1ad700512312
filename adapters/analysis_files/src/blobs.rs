//! `BlobStore` on files under a root folder: the key is the relative path. Keys come from the application (ids and
//! identifiers), and anything that could leave the root is refused.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use pluto_duck_application::ports::{BlobError, BlobStore};

pub struct FileBlobStore {
    root: PathBuf,
}

fn internal(e: impl std::fmt::Display) -> BlobError {
    BlobError::Internal(e.to_string())
}

impl FileBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let rel = Path::new(key);
        if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(internal(format!("bad key {key:?}")));
        }
        Ok(self.root.join(rel))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let path = self.path(key)?;
        blocking(move || {
            let dir = path.parent().ok_or_else(|| internal("no parent folder"))?;
            std::fs::create_dir_all(dir).map_err(internal)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes).map_err(internal)?;
            std::fs::rename(&tmp, &path).map_err(internal)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(internal(e)),
        })
        .await
    }

    async fn local_path(&self, key: &str) -> Result<String, BlobError> {
        let path = self.path(key)?;
        blocking(move || {
            let dir = path.parent().ok_or_else(|| internal("no parent folder"))?;
            std::fs::create_dir_all(dir).map_err(internal)?;
            Ok(path.display().to_string())
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        let path = self.path(prefix.trim_end_matches('/'))?;
        blocking(move || {
            if path.is_file() {
                std::fs::remove_file(&path).map_err(internal)?;
                return Ok(1);
            }
            if !path.is_dir() {
                return Ok(0);
            }
            let mut n = 0;
            let mut stack = vec![path.clone()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).map_err(internal)?.flatten() {
                    if e.path().is_dir() {
                        stack.push(e.path());
                    } else {
                        n += 1;
                    }
                }
            }
            std::fs::remove_dir_all(&path).map_err(internal)?;
            Ok(n)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_and_no_escape() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileBlobStore::new(dir.path());
        store.put("p/boards/b/i1", vec![1, 2]).await.unwrap();
        store.put("p/boards/b/i2", vec![3]).await.unwrap();
        store.put("q/boards/b/i1", vec![4]).await.unwrap();
        assert_eq!(store.get("p/boards/b/i1").await.unwrap(), Some(vec![1, 2]));
        assert_eq!(store.delete_prefix("p/boards/b").await.unwrap(), 2);
        assert_eq!(store.get("p/boards/b/i1").await.unwrap(), None);
        assert_eq!(store.get("q/boards/b/i1").await.unwrap(), Some(vec![4]));
        assert!(store.put("../x", vec![]).await.is_err());
        assert!(store.get("/etc/passwd").await.is_err());
    }
}
