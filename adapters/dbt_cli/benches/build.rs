//! `dbt build` of the starter project through DbtCli against the same dbt command run by hand (a plain
//! subprocess with the same flags, its output discarded): the runner's overhead is event parsing, the artifacts'
//! reading and the process handling. Three runs each, interleaved, each into a fresh database and target path.
//!
//! `PLUTODUCK_TEST_DBT=$PLUTODUCK_SHARE/dbt-venv/bin/dbt cargo bench -p pluto-duck-dbt-cli --bench build`

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pluto_duck_application::ports::{DbtCommand, DbtInvocation, DbtStatus, TransformationRunner};
use pluto_duck_dbt_cli::{DbtCli, DbtCliConfig, DuckDbProfile};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const RUNS: usize = 3;

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if ["target", "logs"].iter().any(|n| name == *n) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

fn fresh(database: &Path) {
    for f in [database.to_owned(), database.with_extension("duckdb.wal")] {
        let _ = std::fs::remove_file(f);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn by_hand(dbt: &Path, project: &Path, profiles: &Path, target: &Path) -> Duration {
    let t = Instant::now();
    let status = tokio::process::Command::new(dbt)
        .arg("build")
        .args(["--log-format", "json", "--log-level", "debug", "--no-use-colors"])
        .arg("--project-dir")
        .arg(project)
        .arg("--profiles-dir")
        .arg(profiles)
        .arg("--target-path")
        .arg(target)
        .arg("--log-path")
        .arg(target)
        .current_dir(project)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", dbt.display()));
    assert!(status.success(), "dbt build by hand: {status}");
    t.elapsed()
}

async fn through_runner(runner: &DbtCli, inv: DbtInvocation) -> Duration {
    let t = Instant::now();
    let (tx, mut rx) = mpsc::channel(256);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let outcome = runner
        .invoke(inv, tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("dbt build through DbtCli: {e}"));
    let elapsed = t.elapsed();
    let _ = drain.await;
    assert_eq!(outcome.status, DbtStatus::Succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.node_results.len(), 51);
    assert!(outcome.artifacts.manifest_summary.is_some());
    elapsed
}

fn main() {
    let Some(dbt) = std::env::var_os("PLUTODUCK_TEST_DBT").map(PathBuf::from) else {
        panic!("PLUTODUCK_TEST_DBT is not set: point it at $PLUTODUCK_SHARE/dbt-venv/bin/dbt (scripts/setup.sh)");
    };
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let project = tmp.path().join("project");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dbt_projects/core");
    copy_dir(&root, &project).unwrap_or_else(|e| panic!("copy {}: {e}", root.display()));
    let profiles = tmp.path().join("profiles");
    let database = tmp.path().join("dbt.duckdb");
    DuckDbProfile::new(&database)
        .write(&profiles)
        .unwrap_or_else(|e| panic!("profile: {e}"));
    let runner = DbtCli::new(DbtCliConfig::new(&dbt));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));

    let (mut hand, mut ours, mut cached) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        // A first build warms the OS caches (Python's modules, dbt's packages) for both.
        fresh(&database);
        by_hand(&dbt, &project, &profiles, &tmp.path().join("warm")).await;
        for i in 0..RUNS {
            fresh(&database);
            let target = tmp.path().join(format!("hand-{i}"));
            hand.push(by_hand(&dbt, &project, &profiles, &target).await);

            fresh(&database);
            let inv = DbtInvocation::new(
                DbtCommand::Build,
                &project,
                &profiles,
                tmp.path().join(format!("ours-{i}")),
            );
            ours.push(through_runner(&runner, inv).await);

            // Not part of the ratio: the same build reusing the previous invocation's parse.
            fresh(&database);
            let mut inv = DbtInvocation::new(
                DbtCommand::Build,
                &project,
                &profiles,
                tmp.path().join(format!("cached-{i}")),
            );
            inv.reuse_parse_from = Some(tmp.path().join(format!("ours-{i}")));
            cached.push(through_runner(&runner, inv).await);
            eprintln!(
                "run {}: by hand {:?}, DbtCli {:?}, DbtCli reusing the parse {:?}",
                i + 1,
                hand[i],
                ours[i],
                cached[i]
            );
        }
    });
    let (h, o, c) = (median(hand), median(ours), median(cached));
    println!("dbt build of the starter project (51 nodes), median of {RUNS}:");
    println!("  by hand (same flags, output discarded): {h:?}");
    println!("  through DbtCli (events parsed, artifacts read): {o:?}");
    println!(
        "  ratio DbtCli / by hand: {:.3}x (target <= 1.1x)",
        o.as_secs_f64() / h.as_secs_f64()
    );
    println!(
        "  DbtCli reusing the previous parse: {c:?} ({:.3}x of by hand)",
        c.as_secs_f64() / h.as_secs_f64()
    );
}
