//! One contract for `MetadataStore`, run against every adapter.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use pluto_duck_application::ports::{MetadataStore, RepoError};
use pluto_duck_domain::{Project, ProjectId};
use pluto_duck_sqlx_metadata::{PgMetadataStore, SqliteMetadataStore};

use crate::helpers::required_env;

fn project(id: &str, secs: i64) -> Project {
    Project {
        id: ProjectId::parse(id).unwrap(),
        name: format!("Project {id}"),
        created_at: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
    }
}

async fn contract(store: Arc<dyn MetadataStore>, prefix: &str) {
    store.ping().await.unwrap();
    let a = project(&format!("{prefix}_a"), 1);
    let b = project(&format!("{prefix}_b"), 2);

    // ensure_project is idempotent and keeps the first version.
    let stored = store.ensure_project(&a).await.unwrap();
    assert_eq!(stored, a);
    let renamed = Project {
        name: "other".into(),
        ..a.clone()
    };
    assert_eq!(store.ensure_project(&renamed).await.unwrap(), a);

    store.create_project(&b).await.unwrap();
    let dup = store.create_project(&b).await.unwrap_err();
    assert!(matches!(dup, RepoError::Conflict { .. }), "{dup:?}");

    assert_eq!(store.get_project(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(
        store
            .get_project(&ProjectId::parse(format!("{prefix}_zz")).unwrap())
            .await
            .unwrap(),
        None
    );
    let listed: Vec<Project> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.id.as_str().starts_with(prefix))
        .collect();
    assert_eq!(listed, vec![a, b], "ordered by creation time");

    let key = format!("{prefix}.theme");
    assert_eq!(store.get_setting(&key).await.unwrap(), None);
    store.put_setting(&key, "dark").await.unwrap();
    store.put_setting(&key, "light").await.unwrap();
    assert_eq!(store.get_setting(&key).await.unwrap().as_deref(), Some("light"));
}

#[tokio::test]
async fn sqlite_store_meets_the_contract_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta/metadata.db");
    contract(Arc::new(SqliteMetadataStore::open(&path).await.unwrap()), "sq").await;
    // Reopening applies no migration twice and keeps the data.
    let again = SqliteMetadataStore::open(&path).await.unwrap();
    assert_eq!(again.get_setting("sq.theme").await.unwrap().as_deref(), Some("light"));
}

#[tokio::test]
async fn postgres_store_meets_the_contract() {
    let url = required_env("TEST_PG_URL");
    let prefix = format!("pg{}", std::process::id());
    contract(Arc::new(PgMetadataStore::connect(&url).await.unwrap()), &prefix).await;
    // A second connect (another server process) finds the schema migrated already.
    PgMetadataStore::connect(&url).await.unwrap().ping().await.unwrap();
}

#[tokio::test]
async fn postgres_wrong_password_is_unavailable_and_does_not_leak_it() {
    let url = required_env("TEST_PG_URL");
    let bad = url.replacen("pd_secret_pw", "wrong_pw_xyz", 1);
    assert_ne!(bad, url, "TEST_PG_URL is expected to carry the password pd_secret_pw");
    let err = match PgMetadataStore::connect(&bad).await {
        Err(e) => e,
        Ok(_) => panic!("connected with a wrong password"),
    };
    assert!(matches!(err, RepoError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong_pw_xyz"), "{err}");
}
