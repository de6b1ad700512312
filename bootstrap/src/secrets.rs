//! Config never holds a secret, only a reference to one: `env:VAR` or `secret:NAME` (the secret store).
//! The store is the OS keyring or the encrypted file, chosen by `secrets.backend` when a secret is first used.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pluto_duck_application::ports::{validate_secret_name, SecretError, SecretStore};
use pluto_duck_secrets::{EncryptedFileSecretStore, KeyringBackend, KeyringProbe, KeyringSecretStore};
use secrecy::SecretString;
use tokio::sync::OnceCell;

use crate::config::{Config, SecretsBackend};
use crate::error::{CliError, CliResult};

/// How long a keyring may take to answer the probe (an unlock prompt may be waiting on a desktop).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    Store(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(Self::Env(var.to_owned())),
            Some(("secret", name)) if !name.is_empty() => Ok(Self::Store(name.to_owned())),
            // Do not echo the value: it may be the secret itself, pasted by mistake.
            _ => Err("must be a reference like env:VARIABLE or secret:NAME, not a literal value".into()),
        }
    }
}

/// The configured secret store. The backend is chosen on first use, so commands that never touch a secret never
/// probe the keyring (a probe writes an entry, which may prompt to unlock a desktop keyring).
pub fn secret_store(config: &Config) -> Arc<dyn SecretStore> {
    Arc::new(LazySecretStore {
        config: config.clone(),
        store: OnceCell::new(),
    })
}

/// The store `secrets.backend` selects, and what it is (for logs and `doctor`).
pub struct SelectedStore {
    pub store: Arc<dyn SecretStore>,
    pub description: String,
}

/// Applies `secrets.backend` and logs the choice at info level:
/// - `file`: the encrypted file;
/// - `keyring`: the Secret Service, else the kernel keyring; an error when neither works;
/// - `auto`: the encrypted file when it already exists (secrets written before stay reachable), else the Secret
///   Service when it works, else the encrypted file. A keyring that is there but refuses (locked, a dismissed
///   prompt) is an error rather than a silent switch to the file. Auto never picks the kernel keyring: it forgets
///   everything at reboot.
pub async fn select_store(config: &Config) -> Result<SelectedStore, SecretError> {
    let selected = select(config).await?;
    tracing::info!(store = %selected.description, "secret store selected");
    Ok(selected)
}

async fn select(config: &Config) -> Result<SelectedStore, SecretError> {
    let service = config.keyring_service();
    let file = |why: &str| SelectedStore {
        store: Arc::new(EncryptedFileSecretStore::new(
            config.secrets_file(),
            config.secret_key_file(),
        )),
        description: format!("encrypted file {}{why}", config.secrets_file().display()),
    };
    let keyring = |store: KeyringSecretStore| SelectedStore {
        description: format!("OS keyring: {}, service {service:?}", store.backend()),
        store: Arc::new(store),
    };
    match config.secrets.backend {
        SecretsBackend::File => Ok(file("")),
        SecretsBackend::Keyring => {
            let mut failures = Vec::new();
            for backend in [KeyringBackend::SecretService, KeyringBackend::KernelKeyring] {
                let store = KeyringSecretStore::new(service, backend);
                match probe(&store).await {
                    KeyringProbe::Usable => {
                        if !backend.is_durable() {
                            tracing::warn!(%backend, "no secret service; the kernel keyring forgets secrets at reboot");
                        }
                        return Ok(keyring(store));
                    }
                    KeyringProbe::Absent(why) | KeyringProbe::Refused(why) => failures.push(why),
                }
            }
            Err(SecretError::Unavailable(format!(
                "secrets.backend is keyring but no OS keyring is usable ({}); start one (README, \"Secret \
                 backends\") or set secrets.backend: file",
                failures.join("; ")
            )))
        }
        SecretsBackend::Auto => {
            if config.secrets_file().exists() {
                return Ok(file(" (auto: it exists)"));
            }
            let store = KeyringSecretStore::new(service, KeyringBackend::SecretService);
            match probe(&store).await {
                KeyringProbe::Usable => Ok(keyring(store)),
                KeyringProbe::Absent(why) => Ok(file(&format!(" (auto: no OS keyring: {why})"))),
                KeyringProbe::Refused(why) => Err(SecretError::Unavailable(format!(
                    "the OS keyring is there but refused a test entry ({why}); unlock it, or set \
                     secrets.backend: file to use the encrypted file"
                ))),
            }
        }
    }
}

async fn probe(store: &KeyringSecretStore) -> KeyringProbe {
    tokio::time::timeout(PROBE_TIMEOUT, store.probe())
        .await
        .unwrap_or_else(|_| {
            KeyringProbe::Refused(format!(
                "{}: no answer within {} s (an unlock prompt waiting?)",
                store.backend(),
                PROBE_TIMEOUT.as_secs()
            ))
        })
}

struct LazySecretStore {
    config: Config,
    store: OnceCell<Arc<dyn SecretStore>>,
}

impl LazySecretStore {
    /// A choice is kept, an error is not: the next call asks again (the keyring may be unlocked by then).
    async fn store(&self) -> Result<&dyn SecretStore, SecretError> {
        let store = self
            .store
            .get_or_try_init(|| async { select_store(&self.config).await.map(|s| s.store) })
            .await?;
        Ok(store.as_ref())
    }
}

#[async_trait]
impl SecretStore for LazySecretStore {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        validate_secret_name(name)?;
        self.store().await?.get(name).await
    }

    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        validate_secret_name(name)?;
        self.store().await?.put(name, value).await
    }

    async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        validate_secret_name(name)?;
        self.store().await?.delete(name).await
    }

    async fn list(&self) -> Result<Vec<String>, SecretError> {
        self.store().await?.list().await
    }
}

pub async fn resolve(store: &dyn SecretStore, key: &str, reference: &str) -> CliResult<SecretString> {
    match SecretRef::parse(reference).map_err(|e| CliError::invalid(format!("{key}: {e}")))? {
        SecretRef::Env(var) => std::env::var(&var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| CliError::invalid(format!("{key}: environment variable {var} is not set"))),
        SecretRef::Store(name) => store
            .get(&name)
            .await
            .map_err(|e| CliError::new(e.kind(), format!("{key}: {e}")))?
            .ok_or_else(|| {
                CliError::invalid(format!(
                    "{key}: secret {name:?} is not in the secret store (add it with `pluto-duck secret set {name}`)"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_and_refuses_literals_without_echoing_them() {
        assert_eq!(SecretRef::parse("env:TOKEN"), Ok(SecretRef::Env("TOKEN".into())));
        assert_eq!(SecretRef::parse("secret:pg"), Ok(SecretRef::Store("pg".into())));
        let err = SecretRef::parse("hunter2").unwrap_err();
        assert!(!err.contains("hunter2"));
        assert!(SecretRef::parse("env:").is_err());
    }

    fn config_in(dir: &std::path::Path, backend: SecretsBackend) -> Config {
        let mut c = Config {
            data_dir: dir.join("data"),
            ..Config::default()
        };
        c.secrets.backend = backend;
        c.secrets.key_file = Some(dir.join("secret.key"));
        c
    }

    #[tokio::test]
    async fn file_backend_and_auto_with_an_existing_file_use_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = config_in(dir.path(), SecretsBackend::File);
        let selected = select_store(&file).await.unwrap();
        assert!(
            selected.description.starts_with("encrypted file"),
            "{}",
            selected.description
        );
        selected.store.put("pg", SecretString::from("v1")).await.unwrap();
        assert!(file.secrets_file().is_file());

        // The file exists now: auto keeps it without asking any keyring.
        let auto = config_in(dir.path(), SecretsBackend::Auto);
        let selected = select_store(&auto).await.unwrap();
        assert!(
            selected.description.ends_with("(auto: it exists)"),
            "{}",
            selected.description
        );
        assert_eq!(secret_store(&auto).list().await.unwrap(), vec!["pg"]);
    }

    #[tokio::test]
    async fn bad_names_are_refused_before_any_backend_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let store = secret_store(&config_in(dir.path(), SecretsBackend::Keyring));
        let err = store.get("no spaces").await.unwrap_err();
        assert!(matches!(err, SecretError::InvalidName(_)), "{err}");
    }
}
