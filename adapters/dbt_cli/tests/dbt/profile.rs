//! The generated profile with real dbt: a read-only attachment and an extension loaded offline.

use pluto_duck_application::ports::{DbtCommand, DbtStatus};

use crate::support::{extension_directory, invoke, log_text, Project};

#[tokio::test]
async fn models_read_an_attached_file_with_extensions_loaded_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let pluto = tmp.path().join("warehouse.duckdb");
    {
        let db = duckdb::Connection::open(&pluto).unwrap();
        db.execute_batch("create table visits as select range as id from range(3)")
            .unwrap();
    }
    let p = Project::starter_with(|mut profile| {
        profile.extensions = vec!["parquet".into(), "sqlite_scanner".into()];
        profile.extension_directory = Some(extension_directory());
        profile.settings.insert("memory_limit".into(), "1GB".into());
        profile.attach(&pluto, "pluto", true)
    });
    // A table (marts), so reading it back needs no attachment.
    p.write(
        "models/marts/from_pluto.sql",
        "select count(*) as visits, current_setting('memory_limit') as memory_limit from pluto.main.visits\n",
    );
    let (outcome, events) = invoke(p.invocation(DbtCommand::Run).select("from_pluto")).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{}", log_text(&events));
    assert_eq!(p.query_i64("select visits from from_pluto"), 3);
    assert_eq!(
        p.query_i64("select count(*) from from_pluto where memory_limit in ('1.0 GiB', '953.6 MiB', '1000.0 MB')"),
        1
    );
    // Read-only: the attached file can be opened by someone else again and was not written.
    let db = duckdb::Connection::open(&pluto).unwrap();
    let n: i64 = db.query_row("select count(*) from visits", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3);
}
