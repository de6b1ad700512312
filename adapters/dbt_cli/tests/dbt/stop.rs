//! Cancelling a running dbt: stopped, its finished nodes reported, its process reaped.

use std::path::Path;
use std::time::{Duration, Instant};

use pluto_duck_application::ports::{DbtCommand, DbtEvent, DbtOutcome, DbtStatus, NodeStatus, TransformationRunner};
use pluto_duck_dbt_cli::{DbtCli, DbtCliConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{dbt_executable, log_text, Project};

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &Path) -> Vec<u32> {
    let needle = needle.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

struct Stopped {
    outcome: DbtOutcome,
    events: Vec<DbtEvent>,
    /// dbt's processes seen while it ran.
    pids: Vec<u32>,
    /// From the cancel to the outcome.
    stopped_in: Duration,
}

/// Builds `+slow` (a model that would run for minutes) and cancels `delay` after `slow` starts.
async fn cancel_slow_model(config: DbtCliConfig, delay: Duration) -> Stopped {
    let p = Project::starter();
    // Forty billion rows to add up.
    p.write(
        "models/marts/slow.sql",
        "-- depends_on: {{ ref('stg_customers') }}\n\
         select sum(a.range * b.range) as s from range(200000) a cross join range(200000) b\n",
    );
    let runner = DbtCli::new(config);
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(64);
    let watcher = {
        let cancel = cancel.clone();
        let dir = p.dir.path().to_owned();
        tokio::spawn(async move {
            let mut events = Vec::new();
            let mut pids = Vec::new();
            let mut cancelled_at = None;
            while let Some(e) = rx.recv().await {
                if cancelled_at.is_none() && matches!(&e, DbtEvent::NodeStarted { name, .. } if name == "slow") {
                    tokio::time::sleep(delay).await;
                    pids = processes_mentioning(&dir);
                    cancel.cancel();
                    cancelled_at = Some(Instant::now());
                }
                events.push(e);
            }
            (events, pids, cancelled_at)
        })
    };
    let outcome = runner
        .invoke(p.invocation(DbtCommand::Build).select("+slow"), tx, cancel)
        .await
        .unwrap();
    let (events, pids, cancelled_at) = watcher.await.unwrap();
    let stopped_in = cancelled_at.expect("slow started").elapsed();
    eprintln!(
        "dbt stopped {stopped_in:?} after the cancel, exit code {:?}",
        outcome.exit_code
    );
    Stopped {
        outcome,
        events,
        pids,
        stopped_in,
    }
}

fn assert_cancelled_with_finished_nodes(s: &Stopped) {
    assert_eq!(s.outcome.status, DbtStatus::Cancelled, "{}", log_text(&s.events));
    let finished: Vec<(&str, &NodeStatus)> = s
        .outcome
        .node_results
        .iter()
        .map(|r| (r.name.as_str(), &r.status))
        .collect();
    for name in ["raw_customers", "stg_customers", "unique_stg_customers_customer_id"] {
        assert!(
            finished.iter().any(|(n, st)| *n == name && !st.is_failure()),
            "{name} in {finished:?}"
        );
    }
    assert!(
        !finished
            .iter()
            .any(|(n, st)| *n == "slow" && **st == NodeStatus::Success),
        "{finished:?}"
    );
    assert!(matches!(
        s.events.last(),
        Some(DbtEvent::InvocationFinished {
            status: DbtStatus::Cancelled,
            ..
        })
    ));
    // dbt was running, and now is gone: exited and reaped, no zombie left.
    assert!(!s.pids.is_empty(), "dbt's process was seen while it ran");
    for pid in &s.pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is still there"
        );
    }
}

#[tokio::test]
async fn a_cancel_as_a_node_starts_still_stops_dbt() {
    // The interrupt lands before the node's query runs: dbt-duckdb has nothing to interrupt yet and dbt then
    // waits for the query. The runner's SIGTERM after the grace period ends it.
    let mut config = DbtCliConfig::new(dbt_executable());
    config.interrupt_grace = Duration::from_secs(3);
    config.terminate_grace = Duration::from_secs(3);
    let s = cancel_slow_model(config, Duration::ZERO).await;
    assert_cancelled_with_finished_nodes(&s);
    assert!(
        s.stopped_in < Duration::from_secs(30),
        "stopped by the signals, not by the query ending"
    );
}

#[tokio::test]
async fn an_interrupt_during_a_query_lets_dbt_stop_by_itself() {
    // Long enough that only dbt's own handling of the interrupt can end the run before it.
    let mut config = DbtCliConfig::new(dbt_executable());
    config.interrupt_grace = Duration::from_secs(120);
    // The query runs by then (compiling it takes milliseconds): dbt-duckdb can interrupt it.
    let s = cancel_slow_model(config, Duration::from_secs(3)).await;
    assert_cancelled_with_finished_nodes(&s);
    assert!(
        s.stopped_in < Duration::from_secs(120),
        "stopped by the interrupt, not a later signal"
    );
    assert_eq!(
        s.outcome.exit_code,
        Some(2),
        "dbt handled the interrupt and exited by itself"
    );
    assert!(
        s.outcome.artifacts.run_results.is_some(),
        "dbt wrote run_results.json on its way out"
    );
}

#[tokio::test]
async fn a_cancel_before_the_start_runs_nothing() {
    let p = Project::starter();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (tx, _rx) = mpsc::channel(8);
    let runner = DbtCli::new(DbtCliConfig::new(dbt_executable()));
    let outcome = runner
        .invoke(p.invocation(DbtCommand::Build), tx, cancel)
        .await
        .unwrap();
    assert_eq!(outcome.status, DbtStatus::Cancelled);
    assert!(outcome.node_results.is_empty() && outcome.exit_code.is_none());
    assert!(!p.database.exists());
}
