//! Secrets in one file encrypted with XChaCha20-Poly1305; the key lives in a separate file (by default under
//! the config directory, apart from the data directory), so a copy of the data alone reveals nothing.
//! Both files are mode 0600 and replaced atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use pluto_duck_application::ports::{validate_secret_name, SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

const NONCE_LEN: usize = 24;

pub struct EncryptedFileSecretStore {
    data_path: PathBuf,
    key_path: PathBuf,
    // Serialises read-modify-write cycles within this process.
    lock: Mutex<()>,
}

impl EncryptedFileSecretStore {
    pub fn new(data_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        Self {
            data_path: data_path.into(),
            key_path: key_path.into(),
            lock: Mutex::new(()),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path, &Path) -> Result<T, SecretError> + Send + 'static,
    ) -> Result<T, SecretError> {
        let (data, key) = (self.data_path.clone(), self.key_path.clone());
        tokio::task::spawn_blocking(move || f(&data, &key))
            .await
            .map_err(|e| SecretError::Internal(format!("secret task failed: {e}")))?
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> SecretError {
    SecretError::Unavailable(format!("{what} {}: {e}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("cannot replace", path, e))
}

fn load_key(key_path: &Path, create: bool) -> Result<Option<XChaCha20Poly1305>, SecretError> {
    match std::fs::read(key_path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mode = std::fs::metadata(key_path)
                .map_err(|e| io_err("cannot stat", key_path, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(SecretError::Unavailable(format!(
                    "key file {} is readable by others (mode {:o}); chmod 600 it",
                    key_path.display(),
                    mode & 0o777
                )));
            }
            XChaCha20Poly1305::new_from_slice(&bytes)
                .map(Some)
                .map_err(|e| SecretError::Internal(e.to_string()))
        }
        Ok(_) => Err(SecretError::Unavailable(format!(
            "key file {} is corrupt (expected 32 bytes)",
            key_path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            write_private(key_path, key.as_slice())?;
            Ok(Some(XChaCha20Poly1305::new(&key)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("cannot read", key_path, e)),
    }
}

fn read_all(data_path: &Path, key_path: &Path) -> Result<BTreeMap<String, String>, SecretError> {
    let bytes = match std::fs::read(data_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_err("cannot read", data_path, e)),
    };
    let cipher = load_key(key_path, false)?.ok_or_else(|| {
        SecretError::Unavailable(format!(
            "secrets file {} exists but its key {} is missing",
            data_path.display(),
            key_path.display()
        ))
    })?;
    if bytes.len() < NONCE_LEN {
        return Err(SecretError::Unavailable(format!(
            "secrets file {} is corrupt",
            data_path.display()
        )));
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let plain = cipher.decrypt(XNonce::from_slice(nonce), ciphertext).map_err(|_| {
        SecretError::Unavailable(format!(
            "cannot decrypt {}: wrong key {} or a damaged file",
            data_path.display(),
            key_path.display()
        ))
    })?;
    serde_json::from_slice(&plain)
        .map_err(|_| SecretError::Unavailable(format!("secrets file {} is corrupt", data_path.display())))
}

fn write_all(data_path: &Path, key_path: &Path, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
    let cipher = load_key(key_path, true)?.ok_or_else(|| SecretError::Internal("no key".into()))?;
    let plain = serde_json::to_vec(map).map_err(|e| SecretError::Internal(e.to_string()))?;
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(&nonce, plain.as_slice())
            .map_err(|_| SecretError::Internal("encryption failed".into()))?,
    );
    write_private(data_path, &out)
}

#[async_trait]
impl SecretStore for EncryptedFileSecretStore {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        let _guard = self.lock.lock().await;
        self.blocking(move |d, k| Ok(read_all(d, k)?.remove(&name).map(SecretString::from)))
            .await
    }

    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        let _guard = self.lock.lock().await;
        self.blocking(move |d, k| {
            let mut map = read_all(d, k)?;
            map.insert(name, value.expose_secret().to_owned());
            write_all(d, k, &map)
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        let _guard = self.lock.lock().await;
        self.blocking(move |d, k| {
            let mut map = read_all(d, k)?;
            let removed = map.remove(&name).is_some();
            if removed {
                write_all(d, k, &map)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<String>, SecretError> {
        let _guard = self.lock.lock().await;
        self.blocking(|d, k| Ok(read_all(d, k)?.into_keys().collect())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> EncryptedFileSecretStore {
        EncryptedFileSecretStore::new(dir.join("data/secrets.enc"), dir.join("config/secret.key"))
    }

    #[tokio::test]
    async fn round_trips_and_survives_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put("pg_main", SecretString::from("hunter2-very-secret"))
            .await
            .unwrap();
        s.put("openai", SecretString::from("sk-abc")).await.unwrap();
        let again = store(dir.path());
        assert_eq!(
            again.get("pg_main").await.unwrap().unwrap().expose_secret(),
            "hunter2-very-secret"
        );
        assert_eq!(again.list().await.unwrap(), vec!["openai", "pg_main"]);
        assert!(again.delete("openai").await.unwrap());
        assert!(!again.delete("openai").await.unwrap());
        assert!(again.get("openai").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn file_is_private_and_does_not_contain_the_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put("pg", SecretString::from("hunter2-very-secret")).await.unwrap();
        for p in ["data/secrets.enc", "config/secret.key"] {
            let mode = std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{p}");
        }
        let raw = std::fs::read(dir.path().join("data/secrets.enc")).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"hunter"));
    }

    #[tokio::test]
    async fn wrong_key_is_an_error_that_does_not_leak() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path())
            .put("pg", SecretString::from("hunter2"))
            .await
            .unwrap();
        write_private(&dir.path().join("config/secret.key"), &[7u8; 32]).unwrap();
        let err = store(dir.path()).get("pg").await.unwrap_err();
        assert!(err.to_string().contains("cannot decrypt"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn rejects_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let err = store(dir.path()).get("../etc/passwd").await.unwrap_err();
        assert!(matches!(err, SecretError::InvalidName(_)));
    }
}
