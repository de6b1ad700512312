//! Extensions load offline from the configured directory; a missing one is named with its fix.

use pluto_duck_application::ports::{Warehouse, WarehouseError};
use pluto_duck_duckdb::{DuckDbConfig, DuckDbWarehouse};

use crate::helpers::extension_dir;

fn warehouse(ext_dir: &std::path::Path) -> DuckDbWarehouse {
    let mut config = DuckDbConfig::new(None, ext_dir.to_path_buf());
    config.threads = Some(2);
    config.memory_limit = Some("1GB".into());
    config.max_connections = 2;
    DuckDbWarehouse::open(&config).unwrap()
}

#[tokio::test]
async fn provisioned_extensions_load_offline() {
    let dir = tempfile::tempdir().unwrap();
    let wh = warehouse(&extension_dir());
    assert_eq!(wh.version().await.unwrap(), "v1.5.5");
    assert!(wh.extensions().await.unwrap().iter().all(|e| e.installed));
    // ATTACH autoloads sqlite_scanner from the directory: no network, no INSTALL.
    let db = dir.path().join("s.sqlite");
    wh.execute_batch(&format!(
        "ATTACH '{}' AS s (TYPE sqlite); CREATE TABLE s.t AS SELECT 42 AS x;",
        db.display()
    ))
    .await
    .unwrap();
    assert_eq!(
        wh.query_scalar("SELECT x::VARCHAR FROM s.t").await.unwrap().as_deref(),
        Some("42")
    );
    for ext in ["httpfs", "ducklake", "postgres_scanner", "mysql_scanner"] {
        wh.execute_batch(&format!("LOAD {ext}")).await.unwrap();
    }
}

#[tokio::test]
async fn a_missing_extension_names_the_command_that_installs_it() {
    let empty = tempfile::tempdir().unwrap();
    let wh = warehouse(empty.path());
    let status = wh.extensions().await.unwrap();
    let sqlite = status.iter().find(|e| e.name == "sqlite_scanner").unwrap();
    assert!(!sqlite.installed);
    assert!(sqlite.install_hint.as_deref().unwrap().contains("scripts/setup.sh"));

    let err = wh
        .execute_batch("ATTACH ':memory:' AS s (TYPE sqlite)")
        .await
        .unwrap_err();
    match err {
        WarehouseError::MissingExtension(msg) => {
            assert!(
                msg.contains("sqlite_scanner") && msg.contains("scripts/setup.sh"),
                "{msg}"
            );
        }
        other => panic!("expected MissingExtension, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_calls_share_the_pool() {
    let wh = std::sync::Arc::new(warehouse(&extension_dir()));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let wh = wh.clone();
            tokio::spawn(async move { wh.query_scalar(&format!("SELECT ({i} * 2)::VARCHAR")).await.unwrap() })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), Some((i * 2).to_string()));
    }
}
