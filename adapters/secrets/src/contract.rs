//! The `SecretStore` contract, run against every adapter in this crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pluto_duck_application::ports::{SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};

async fn value(store: &dyn SecretStore, name: &str) -> Option<String> {
    store
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"))
        .map(|v| v.expose_secret().to_owned())
}

async fn put(store: &dyn SecretStore, name: &str, value: &str) {
    store
        .put(name, SecretString::from(value.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("put {name}: {e}"));
}

/// `store` must be empty. `reopen` gives a second instance over the same storage (a later process).
pub(crate) async fn secret_store_contract(store: &dyn SecretStore, reopen: &dyn Fn() -> Box<dyn SecretStore>) {
    assert_eq!(store.list().await.unwrap(), Vec::<String>::new(), "starts empty");
    assert_eq!(value(store, "pg_main").await, None, "absent is None, not an error");
    assert!(
        !store.delete("pg_main").await.unwrap(),
        "deleting an absent secret removes nothing"
    );

    put(store, "pg_main", "hunter2-very-secret").await;
    put(store, "openai:key", "sk-abc").await;
    // Names may look like the store's own bookkeeping entries.
    put(store, "__index__", "not the index").await;
    assert_eq!(value(store, "pg_main").await.as_deref(), Some("hunter2-very-secret"));
    assert_eq!(
        store.list().await.unwrap(),
        vec!["__index__", "openai:key", "pg_main"],
        "names only, sorted"
    );

    // Overwrite keeps one entry.
    put(store, "pg_main", "rotated-value").await;
    assert_eq!(value(store, "pg_main").await.as_deref(), Some("rotated-value"));
    assert_eq!(store.list().await.unwrap().len(), 3);

    // Values are kept exactly: unicode, newlines, spaces, a few kilobytes.
    let odd = format!("päss wörd\nline two\t{}", "x".repeat(4096));
    put(store, "odd.value", &odd).await;
    assert_eq!(value(store, "odd.value").await.as_deref(), Some(odd.as_str()));

    // A second instance (a later process) sees the same secrets and names.
    let again = reopen();
    assert_eq!(value(again.as_ref(), "openai:key").await.as_deref(), Some("sk-abc"));
    assert_eq!(
        again.list().await.unwrap(),
        vec!["__index__", "odd.value", "openai:key", "pg_main"]
    );

    assert!(store.delete("pg_main").await.unwrap());
    assert!(!store.delete("pg_main").await.unwrap());
    assert_eq!(value(store, "pg_main").await, None);
    assert_eq!(value(again.as_ref(), "pg_main").await, None);
    assert_eq!(
        store.list().await.unwrap(),
        vec!["__index__", "odd.value", "openai:key"]
    );

    for bad in [
        "",
        "../etc/passwd",
        "has space",
        "#index",
        "semi;colon",
        &"n".repeat(129),
    ] {
        let err = store.get(bad).await.unwrap_err();
        assert!(matches!(err, SecretError::InvalidName(_)), "get {bad:?}: {err}");
        let err = store
            .put(bad, SecretString::from("hunter2-bad-name"))
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::InvalidName(_)), "put {bad:?}: {err}");
        assert!(
            !err.to_string().contains("hunter2"),
            "errors never carry the value: {err}"
        );
        let err = store.delete(bad).await.unwrap_err();
        assert!(matches!(err, SecretError::InvalidName(_)), "delete {bad:?}: {err}");
    }
    assert_eq!(store.list().await.unwrap().len(), 3, "refused names changed nothing");

    for name in ["__index__", "odd.value", "openai:key"] {
        assert!(store.delete(name).await.unwrap(), "{name}");
    }
    assert_eq!(store.list().await.unwrap(), Vec::<String>::new(), "ends empty");
    assert_eq!(again.list().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn encrypted_file_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key) = (
        dir.path().join("data/secrets.enc"),
        dir.path().join("config/secret.key"),
    );
    let open = || crate::EncryptedFileSecretStore::new(data.clone(), key.clone());
    secret_store_contract(&open(), &|| Box::new(open())).await;
}
