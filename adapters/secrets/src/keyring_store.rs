//! Secrets in the OS keyring: the Secret Service over D-Bus (GNOME Keyring, KWallet; kept on disk by the
//! keyring daemon) or the Linux kernel keyring (keyutils; in memory, forgotten at reboot).
//!
//! Each secret is one keyring entry of the configured service, its name the entry's user. A keyring cannot
//! enumerate entries, so the sorted names are kept in one more entry of the same service, the index: secrets
//! and their names never leave the keyring. The index and probe entries use names that contain `#`, which
//! secret names cannot, so no secret can collide with them. Two processes writing at the same instant can lose
//! a name from the index (the secret itself is stored); `put` or `delete` of that name repairs it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use keyring::keyutils::KeyutilsCredential;
use keyring::secret_service::SsCredential;
use keyring::Entry;
use pluto_duck_application::ports::{validate_secret_name, SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// The keyring entry (user) that holds the sorted secret names.
const INDEX_ENTRY: &str = "#index";
/// First line of the index entry, the names follow one a line; with no names there is no index entry.
const INDEX_HEADER: &str = "pluto-duck secret names v1";

/// Which keyring holds the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringBackend {
    /// The freedesktop Secret Service on the D-Bus session bus: durable.
    SecretService,
    /// The Linux kernel keyring (session and persistent keyrings): lost at reboot.
    KernelKeyring,
}

impl KeyringBackend {
    /// Whether entries survive a reboot.
    pub fn is_durable(self) -> bool {
        matches!(self, KeyringBackend::SecretService)
    }
}

impl fmt::Display for KeyringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyringBackend::SecretService => "secret service",
            KeyringBackend::KernelKeyring => "kernel keyring",
        })
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringProbe {
    /// A probe entry was written, read back and deleted.
    Usable,
    /// No such keyring here (no session bus, no Secret Service on it, no kernel keyring): use another store.
    Absent(String),
    /// The keyring is there but would not store the probe (locked, access refused, a dismissed prompt).
    Refused(String),
}

pub struct KeyringSecretStore {
    keyring: Keyring,
    // One keyring call at a time: the Secret Service dislikes concurrent calls, and the index is
    // read-modified-written. Owned guards move into the blocking task, so a dropped future keeps the lock until
    // the keyring call really ends.
    lock: Arc<Mutex<()>>,
}

impl KeyringSecretStore {
    /// `service` names this application's entries in the keyring (`pluto-duck`; tests use their own).
    pub fn new(service: impl Into<String>, backend: KeyringBackend) -> Self {
        Self {
            keyring: Keyring {
                service: service.into(),
                backend,
            },
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn backend(&self) -> KeyringBackend {
        self.keyring.backend
    }

    pub fn service(&self) -> &str {
        &self.keyring.service
    }

    /// Writes, reads back and deletes a probe entry: whether this keyring can hold secrets here.
    pub async fn probe(&self) -> KeyringProbe {
        let result = self
            .blocking(|k| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or_default();
                let user = format!("#probe.{}.{nanos}", std::process::id());
                let value = format!("probe {nanos}");
                let entry = k.entry(&user).map_err(Failure::from)?;
                entry.set_password(&value).map_err(Failure::from)?;
                let read = entry.get_password().map_err(Failure::from);
                let deleted = entry.delete_credential().map_err(Failure::from);
                if read? != value {
                    return Err(Failure::Refused(
                        "it returned another value than the one written".into(),
                    ));
                }
                deleted
            })
            .await;
        let backend = self.keyring.backend;
        match result {
            Ok(Ok(())) => KeyringProbe::Usable,
            Ok(Err(Failure::Absent(why))) => KeyringProbe::Absent(format!("{backend}: {why}")),
            Ok(Err(Failure::Refused(why))) => KeyringProbe::Refused(format!("{backend}: {why}")),
            Err(e) => KeyringProbe::Refused(format!("{backend}: {e}")),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Keyring) -> T + Send + 'static,
    ) -> Result<T, SecretError> {
        let guard = self.lock.clone().lock_owned().await;
        let keyring = self.keyring.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            span.in_scope(|| f(&keyring))
        })
        .await
        .map_err(|e| SecretError::Internal(format!("keyring task failed: {e}")))
    }
}

/// The blocking side: owned, cheap to clone into a blocking task.
#[derive(Clone)]
struct Keyring {
    service: String,
    backend: KeyringBackend,
}

impl Keyring {
    fn entry(&self, user: &str) -> keyring::Result<Entry> {
        let credential: Box<keyring::Credential> = match self.backend {
            KeyringBackend::SecretService => Box::new(SsCredential::new_with_target(None, &self.service, user)?),
            KeyringBackend::KernelKeyring => Box::new(KeyutilsCredential::new_with_target(None, &self.service, user)?),
        };
        Ok(Entry::new_with_credential(credential))
    }

    fn read(&self, user: &str) -> Result<Option<SecretString>, SecretError> {
        let what = || format!("reading {}", describe(user));
        let entry = self.entry(user).map_err(|e| self.error(&what(), e))?;
        match entry.get_password() {
            Ok(value) => Ok(Some(SecretString::from(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(self.error(&what(), e)),
        }
    }

    fn write(&self, user: &str, value: &str) -> Result<(), SecretError> {
        let what = || format!("writing {}", describe(user));
        let entry = self.entry(user).map_err(|e| self.error(&what(), e))?;
        entry.set_password(value).map_err(|e| self.error(&what(), e))
    }

    /// Whether there was an entry to remove.
    fn remove(&self, user: &str) -> Result<bool, SecretError> {
        let what = || format!("deleting {}", describe(user));
        let entry = self.entry(user).map_err(|e| self.error(&what(), e))?;
        match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(self.error(&what(), e)),
        }
    }

    fn names(&self) -> Result<BTreeSet<String>, SecretError> {
        let Some(index) = self.read(INDEX_ENTRY)? else {
            return Ok(BTreeSet::new());
        };
        let corrupt = || {
            SecretError::Internal(format!(
                "the secret name index in the {} (service {:?}) is corrupt; remove its entry {INDEX_ENTRY:?} with \
                 the keyring's own tools (secret-tool, keyctl) and set the secrets again",
                self.backend, self.service
            ))
        };
        let mut lines = index.expose_secret().lines();
        if lines.next() != Some(INDEX_HEADER) {
            return Err(corrupt());
        }
        lines
            .map(|name| {
                validate_secret_name(name)
                    .map(|()| name.to_owned())
                    .map_err(|_| corrupt())
            })
            .collect()
    }

    fn set_names(&self, names: &BTreeSet<String>) -> Result<(), SecretError> {
        if names.is_empty() {
            // Leaves nothing behind once the last secret is gone.
            return self.remove(INDEX_ENTRY).map(|_| ());
        }
        let mut index = String::from(INDEX_HEADER);
        for name in names {
            index.push('\n');
            index.push_str(name);
        }
        self.write(INDEX_ENTRY, &index)
    }

    /// A keyring error as the port's error. Never formats a value: only fixed text, names and platform messages.
    fn error(&self, what: &str, e: keyring::Error) -> SecretError {
        let backend = self.backend;
        match Failure::from(e) {
            Failure::Absent(why) => SecretError::Unavailable(format!("{backend} unavailable while {what}: {why}")),
            Failure::Refused(why) => SecretError::Unavailable(format!("{backend} failed while {what}: {why}")),
        }
    }
}

fn describe(user: &str) -> String {
    if user == INDEX_ENTRY {
        "the secret name index".into()
    } else {
        format!("secret {user:?}")
    }
}

/// A keyring error, reduced to whether the keyring is missing or misbehaving, with a message free of values.
enum Failure {
    Absent(String),
    Refused(String),
}

impl From<keyring::Error> for Failure {
    fn from(e: keyring::Error) -> Self {
        match e {
            // Connecting to the bus or the kernel keyring failed. The platform message carries no value.
            keyring::Error::PlatformFailure(err) => Failure::Absent(err.to_string()),
            keyring::Error::NoStorageAccess(err) => Failure::Refused(format!("access refused (locked?): {err}")),
            // keyutils reports a denied keyring as a missing entry.
            keyring::Error::NoEntry => Failure::Absent("no such entry, or access to the keyring denied".into()),
            // Deliberately not the bytes it carries.
            keyring::Error::BadEncoding(_) => Failure::Refused("the stored value is not UTF-8 text".into()),
            keyring::Error::TooLong(attr, limit) => {
                Failure::Refused(format!("{attr} is longer than the keyring allows ({limit})"))
            }
            keyring::Error::Invalid(attr, reason) => {
                Failure::Refused(format!("the keyring rejected the {attr}: {reason}"))
            }
            // Deliberately not the matching credentials' Debug output.
            keyring::Error::Ambiguous(items) => Failure::Refused(format!(
                "{} keyring items match one name; remove the duplicates",
                items.len()
            )),
            _ => Failure::Refused("unexpected keyring error".into()),
        }
    }
}

#[async_trait]
impl SecretStore for KeyringSecretStore {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = %self.keyring.backend, name = %name))]
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        self.blocking(move |k| k.read(&name)).await?
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = %self.keyring.backend, name = %name))]
    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        self.blocking(move |k| {
            // The secret first: a failure after it leaves a stored secret missing from `list`, which the next
            // put or delete of the name repairs, rather than a listed name without a secret.
            k.write(&name, value.expose_secret())?;
            let mut names = k.names()?;
            if names.insert(name) {
                k.set_names(&names)?;
            }
            Ok(())
        })
        .await?
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = %self.keyring.backend, name = %name))]
    async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        self.blocking(move |k| {
            let removed = k.remove(&name)?;
            let mut names = k.names()?;
            let listed = names.remove(&name);
            if listed {
                k.set_names(&names)?;
            }
            Ok(removed || listed)
        })
        .await?
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = %self.keyring.backend))]
    async fn list(&self) -> Result<Vec<String>, SecretError> {
        self.blocking(|k| Ok(k.names()?.into_iter().collect())).await?
    }
}

#[cfg(test)]
mod tests {
    //! A plain headless shell has no keyring, so each backend's tests re-run this test binary inside a wrapper
    //! that provides one: `dbus-run-session` with an unlocked gnome-keyring-daemon, or `keyctl session`. A missing
    //! wrapper fails the test, naming its Debian package; the inner test refuses to run outside a wrapper.

    use std::process::Command;

    use super::*;
    use crate::contract::secret_store_contract;

    const INNER_TEST: &str = "keyring_store::tests::contract_in_a_keyring_session";
    const BACKEND_VAR: &str = "PLUTODUCK_KEYRING_TEST_BACKEND";

    /// Unlocks a fresh gnome-keyring (the login keyring, under the sandboxed XDG_DATA_HOME), waits with a deadline
    /// until it owns the Secret Service name on the session bus, then runs "$@".
    const SECRET_SERVICE_SESSION: &str = r#"set -e
printf '%s' pluto-duck-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
tries=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
  tries=$((tries + 1))
  [ "$tries" -lt 200 ] || { echo "gnome-keyring-daemon did not take org.freedesktop.secrets within 20 s" >&2; exit 1; }
  sleep 0.1
done
exec "$@"
"#;

    fn require(program: &str, package: &str) {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
        assert!(
            found,
            "{program} not found: install the Debian package {package} (scripts/setup.sh installs it); \
             the keyring tests need it and do not skip"
        );
    }

    /// Runs the inner test in `wrapper` and fails unless it ran and passed.
    fn run_inner_test(mut wrapper: Command, backend: &str) {
        let exe = std::env::current_exe().unwrap();
        let out = wrapper
            .arg(exe)
            .args(["--exact", INNER_TEST, "--ignored", "--nocapture", "--test-threads=1"])
            .env(BACKEND_VAR, backend)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "the {backend} contract failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
    }

    #[test]
    fn secret_service_meets_the_contract() {
        require("dbus-run-session", "dbus");
        require("dbus-send", "dbus-bin");
        require("gnome-keyring-daemon", "gnome-keyring");
        // The keyring daemon keeps its files under this throwaway home, not the user's.
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut wrapper = Command::new("dbus-run-session");
        wrapper
            .args(["--", "sh", "-c", SECRET_SERVICE_SESSION, "sh"])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("share"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        run_inner_test(wrapper, "secret-service");
    }

    #[test]
    fn kernel_keyring_meets_the_contract() {
        require("keyctl", "keyutils");
        let mut wrapper = Command::new("keyctl");
        wrapper.args(["session", "-"]);
        run_inner_test(wrapper, "kernel-keyring");
    }

    #[tokio::test]
    #[ignore = "needs a keyring session: the *_meets_the_contract tests run it inside one"]
    async fn contract_in_a_keyring_session() {
        let backend = match std::env::var(BACKEND_VAR).as_deref() {
            Ok("secret-service") => KeyringBackend::SecretService,
            Ok("kernel-keyring") => KeyringBackend::KernelKeyring,
            other => panic!("{BACKEND_VAR} is {other:?}: run this through the *_meets_the_contract tests"),
        };
        // A service of its own, so a run never sees another's entries.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let service = format!("pluto-duck-test-{}-{nanos}", std::process::id());
        let open = || KeyringSecretStore::new(service.clone(), backend);
        let store = open();
        assert_eq!(store.probe().await, KeyringProbe::Usable);
        secret_store_contract(&store, &|| Box::new(open())).await;

        // Concurrent writers through one store all end up listed: the index is updated under the store's lock.
        let store = Arc::new(store);
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.put(&format!("s{i}"), SecretString::from(format!("v{i}"))).await })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        let expected: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        assert_eq!(store.list().await.unwrap(), expected);
        for name in &expected {
            assert!(store.delete(name).await.unwrap());
        }
        assert!(
            store.list().await.unwrap().is_empty(),
            "probes and deletes leave no names"
        );
        let index = store.blocking(|k| k.read(INDEX_ENTRY)).await.unwrap().unwrap();
        assert!(index.is_none(), "the index entry goes with the last secret");
    }

    #[test]
    fn keyring_errors_never_carry_values() {
        let k = Keyring {
            service: "svc".into(),
            backend: KeyringBackend::SecretService,
        };
        let err = k.error(
            "reading secret \"pg\"",
            keyring::Error::BadEncoding(b"hunter2\xff".to_vec()),
        );
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let err = k.error("reading secret \"pg\"", keyring::Error::Ambiguous(Vec::new()));
        assert!(err.to_string().contains("duplicates"), "{err}");
    }
}
