//! Runs across a fleet of servers sharing one metadata store (the hybrid profile): a run executes on the server
//! that started it; another server cancels it by writing a request into the store (the setting
//! `run.cancel.<id>`, which the owner polls), and streams its events by polling the stored state (queued,
//! started, then the terminal event; progress events stay with the owner).

use std::sync::Weak;
use std::time::Duration;

use pluto_duck_domain::{Run, RunEvent, RunId};
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::jobs::Jobs;
use super::run_hub::{RunHub, Subscription};
use crate::ports::MetadataStore;
use crate::AppError;

fn cancel_key(run: &RunId) -> String {
    format!("run.cancel.{run}")
}

/// Asks the server running `run` to cancel it.
pub(crate) async fn request_cancel(metadata: &dyn MetadataStore, run: &RunId) -> Result<(), AppError> {
    metadata.put_setting(&cancel_key(run), "requested").await?;
    Ok(())
}

/// Polls the stored run until it is terminal or `max` passed; returns its latest state.
pub(crate) async fn wait_stored(
    metadata: &dyn MetadataStore,
    run: &Run,
    poll: Duration,
    max: Duration,
) -> Result<Run, AppError> {
    let deadline = tokio::time::Instant::now() + max;
    let mut latest = run.clone();
    loop {
        if let Some(r) = metadata.get_run(&run.project, &run.id).await? {
            latest = r;
        }
        if latest.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(latest);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Applies cancel requests for this server's runs, every `poll`, for as long as the `Jobs` lives.
pub(crate) fn spawn_cancel_poller(jobs: Weak<Jobs>, metadata: std::sync::Arc<dyn MetadataStore>, poll: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(jobs) = jobs.upgrade() else { break };
            let active = jobs.active_tokens();
            drop(jobs);
            for (run, token) in active {
                if token.is_cancelled() {
                    continue;
                }
                match metadata.get_setting(&cancel_key(&run)).await {
                    Ok(Some(_)) => {
                        info!(run_id = %run, "run cancelled through another server");
                        token.cancel();
                    }
                    Ok(None) => {}
                    Err(e) => warn!(run_id = %run, error = %e, "cancel requests not readable"),
                }
            }
        }
    });
}

/// The events of a run another server executes: those its stored state implies so far, then, live, the
/// state changes the store shows until it is terminal.
pub(crate) fn watch_stored(
    metadata: std::sync::Arc<dyn MetadataStore>,
    run: &Run,
    after: u64,
    poll: Duration,
) -> Subscription {
    let past = RunHub::replay(run, after);
    let (tx, rx) = broadcast::channel(16);
    let mut seen = RunHub::replay(run, 0).len();
    let run = run.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            let latest = match metadata.get_run(&run.project, &run.id).await {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    warn!(run_id = %run.id, error = %e, "stored run not readable");
                    continue;
                }
            };
            let events: Vec<RunEvent> = RunHub::replay(&latest, 0);
            for e in events.iter().skip(seen) {
                if tx.send(e.clone()).is_err() {
                    return; // nobody listens any more
                }
            }
            seen = seen.max(events.len());
            if latest.status.is_terminal() {
                break;
            }
        }
    });
    Subscription { past, live: Some(rx) }
}
