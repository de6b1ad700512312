//! One dbt process: spawned in its own process group, its stdout read as events while it runs, its stderr kept
//! for diagnostics, stopped on cancel (SIGINT, then SIGTERM, then SIGKILL), always reaped.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Once;
use std::time::{Instant, SystemTime};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use pluto_duck_application::ports::{DbtCommand, DbtEvent, DbtInvocation, DbtOutcome, DbtStatus, TransformError};
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::artifacts::{self, Freshness};
use crate::events::{Collected, EventReader};
use crate::{args, DbtCliConfig, INSTALL_HINT};

/// How much of dbt's stderr is kept for messages.
const STDERR_TAIL: usize = 16 * 1024;

pub(crate) async fn invoke(
    config: &DbtCliConfig,
    inv: DbtInvocation,
    events: mpsc::Sender<DbtEvent>,
    cancel: CancellationToken,
) -> Result<DbtOutcome, TransformError> {
    inv.validate()?;
    check_project(&inv.project_dir)?;
    let args = args::command_line(&inv)?;
    prepare_target(&inv).await?;
    let started = Instant::now();
    let started_wall = SystemTime::now();
    if cancel.is_cancelled() {
        let outcome = outcome(&inv, DbtStatus::Cancelled, None, Collected::default(), None, started);
        return Ok(finish(outcome, &events).await);
    }

    children_get_default_sigint();
    let mut cmd = Command::new(&config.executable);
    cmd.args(&args)
        .current_dir(&inv.project_dir)
        .envs(inv.env.iter().map(|(k, v)| (k, v.expose_secret())))
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a Ctrl-C meant for the server does not reach dbt, and a cancel reaches all of dbt.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| spawn_error(&config.executable, &e))?;
    let mut group = ProcessGroup::of(&child);
    debug!(command = %inv.command, pid = ?child.id(), "dbt started");
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(TransformError::Internal("dbt's output pipes are missing".into()));
    };
    let reader = tokio::spawn(read_events(stdout, inv.command, events.clone()));
    let stderr = tokio::spawn(read_tail(stderr));

    let (exit, cancelled) = supervise(&mut child, &mut group, config, &cancel).await?;
    // stdout closes when dbt exits; the reader then has every event (it may still be waiting on the consumer).
    let collected = reader
        .await
        .map_err(|e| TransformError::Internal(format!("dbt event reader failed: {e}")))?;
    let stderr = stderr.await.unwrap_or_default();
    debug!(%exit, cancelled, "dbt exited");

    let status = if cancelled {
        DbtStatus::Cancelled
    } else {
        match exit.code() {
            Some(0) => DbtStatus::Succeeded,
            Some(1) => DbtStatus::NodesFailed,
            Some(2) => DbtStatus::RuntimeError,
            _ => DbtStatus::Crashed,
        }
    };
    if !cancelled {
        if let Some(e) = failed_to_start(&config.executable, exit, &collected, &stderr) {
            return Err(e);
        }
    }
    let error = match status {
        DbtStatus::RuntimeError | DbtStatus::NodesFailed => collected
            .main_error
            .clone()
            .or_else(|| (status == DbtStatus::RuntimeError).then(|| last_lines(&stderr, 20))),
        DbtStatus::Crashed => Some(format!("dbt {}: {}", describe_exit(exit), last_lines(&stderr, 20))),
        DbtStatus::Succeeded | DbtStatus::Cancelled => None,
    };

    let target = inv.target_path.clone();
    let invocation_id = collected.invocation_id.clone();
    let read = tokio::task::spawn_blocking(move || {
        artifacts::read(
            &target,
            &Freshness {
                invocation_id: invocation_id.as_deref(),
                started: started_wall,
            },
        )
    })
    .await
    .map_err(|e| TransformError::Internal(format!("reading dbt's artifacts failed: {e}")))?;
    let mut out = outcome(&inv, status, exit.code(), collected, error, started);
    if let Some(results) = read.node_results {
        out.node_results = results;
    }
    out.artifacts = read.artifacts;
    Ok(finish(out, &events).await)
}

fn outcome(
    inv: &DbtInvocation,
    status: DbtStatus,
    exit_code: Option<i32>,
    collected: Collected,
    error: Option<String>,
    started: Instant,
) -> DbtOutcome {
    DbtOutcome {
        status,
        exit_code,
        invocation_id: collected.invocation_id,
        error,
        node_results: collected.finished,
        listed: collected.listed,
        compiled: collected.compiled,
        artifacts: pluto_duck_application::ports::DbtArtifacts {
            target_path: inv.target_path.clone(),
            ..Default::default()
        },
        elapsed: started.elapsed(),
    }
}

/// Sends the last event and hands the outcome back.
async fn finish(outcome: DbtOutcome, events: &mpsc::Sender<DbtEvent>) -> DbtOutcome {
    info!(
        status = ?outcome.status,
        exit_code = ?outcome.exit_code,
        nodes = outcome.node_results.len(),
        elapsed_ms = outcome.elapsed.as_millis() as u64,
        "dbt invocation finished"
    );
    let _ = events
        .send(DbtEvent::InvocationFinished {
            status: outcome.status,
            elapsed: outcome.elapsed,
        })
        .await;
    outcome
}

fn check_project(dir: &Path) -> Result<(), TransformError> {
    if !dir.is_dir() {
        return Err(TransformError::ProjectNotFound(format!(
            "dbt project directory {} does not exist",
            dir.display()
        )));
    }
    if !dir.join("dbt_project.yml").is_file() {
        return Err(TransformError::ProjectNotFound(format!(
            "{} has no dbt_project.yml: not a dbt project",
            dir.display()
        )));
    }
    Ok(())
}

async fn prepare_target(inv: &DbtInvocation) -> Result<(), TransformError> {
    tokio::fs::create_dir_all(&inv.target_path)
        .await
        .map_err(|e| TransformError::Internal(format!("cannot create {}: {e}", inv.target_path.display())))?;
    if let Some(previous) = &inv.reuse_parse_from {
        let cache = previous.join("partial_parse.msgpack");
        if previous != &inv.target_path && cache.is_file() {
            // A cache that cannot be copied only costs a full parse.
            if let Err(e) = tokio::fs::copy(&cache, inv.target_path.join("partial_parse.msgpack")).await {
                warn!(error = %e, "dbt parse cache not reused");
            }
        }
    }
    Ok(())
}

fn spawn_error(executable: &Path, e: &std::io::Error) -> TransformError {
    match e.kind() {
        std::io::ErrorKind::NotFound => TransformError::Unavailable(format!(
            "dbt executable {} not found: {INSTALL_HINT}",
            executable.display()
        )),
        std::io::ErrorKind::PermissionDenied => TransformError::Unavailable(format!(
            "dbt executable {} cannot be run (permission denied): {INSTALL_HINT}",
            executable.display()
        )),
        _ => TransformError::Internal(format!("cannot start {}: {e}", executable.display())),
    }
}

/// dbt stopped before it could run anything: a broken installation, a command line it refused, a project or
/// profile it could not load. `None` when it got as far as running the project.
fn failed_to_start(executable: &Path, exit: ExitStatus, collected: &Collected, stderr: &str) -> Option<TransformError> {
    if exit.success() || collected.project_loaded {
        return None;
    }
    if let Some(message) = &collected.main_error {
        return Some(TransformError::ProjectInvalid(message.clone()));
    }
    if collected.saw_events {
        return None;
    }
    // No event at all: dbt's logger never came up.
    if let (Some(2), Some(usage)) = (exit.code(), stderr.lines().find(|l| l.starts_with("Error:"))) {
        return Some(TransformError::InvalidInvocation(format!(
            "dbt refused its command line: {usage}"
        )));
    }
    Some(TransformError::Unavailable(format!(
        "{} failed to start ({}): {}; {INSTALL_HINT}",
        executable.display(),
        describe_exit(exit),
        last_lines(stderr, 5)
    )))
}

fn describe_exit(exit: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (exit.code(), exit.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {sig}"),
        },
        (None, None) => "ended".to_owned(),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits for dbt to exit; on cancel interrupts it (dbt cancels its queries and writes run_results.json), then
/// terminates it after `interrupt_grace`, then kills it after `terminate_grace`. Returns its exit status and
/// whether it was stopped.
async fn supervise(
    child: &mut Child,
    group: &mut ProcessGroup,
    config: &DbtCliConfig,
    cancel: &CancellationToken,
) -> Result<(ExitStatus, bool), TransformError> {
    let mut next: Option<(tokio::time::Instant, Signal)> = None;
    let mut stopping = false;
    loop {
        let deadline = next.map(|(at, _)| at);
        tokio::select! {
            biased;
            exit = child.wait() => {
                group.reaped();
                let exit = exit.map_err(|e| TransformError::Internal(format!("waiting for dbt failed: {e}")))?;
                return Ok((exit, stopping));
            }
            _ = cancel.cancelled(), if !stopping => {
                stopping = true;
                info!("dbt cancelled: interrupting");
                group.signal(Signal::SIGINT);
                next = Some((tokio::time::Instant::now() + config.interrupt_grace, Signal::SIGTERM));
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let Some((_, signal)) = next else { continue };
                warn!(%signal, "dbt did not stop in time");
                group.signal(signal);
                next = (signal == Signal::SIGTERM)
                    .then(|| (tokio::time::Instant::now() + config.terminate_grace, Signal::SIGKILL));
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// dbt's process group. Signals go to the whole group, and only while its leader is not yet reaped (so its
/// pid cannot have been reused). Dropped unreaped (the invocation's future dropped), it kills the group;
/// tokio reaps the leader (`kill_on_drop`).
struct ProcessGroup {
    pgid: Option<Pid>,
}

impl ProcessGroup {
    fn of(child: &Child) -> Self {
        ProcessGroup {
            pgid: child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw),
        }
    }

    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            if let Err(e) = killpg(pgid, signal) {
                debug!(%signal, error = %e, "signal to dbt not delivered");
            }
        }
    }

    fn reaped(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// A process started in the background by a non-interactive shell ignores SIGINT, and its children inherit
/// that: dbt would never see the interrupt that makes it stop cleanly. A handled signal is reset to its default
/// in a child at exec, so when SIGINT is ignored here it is handled (and dropped) instead: nothing changes for
/// this process, and dbt gets the default disposition.
fn children_get_default_sigint() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let ignored = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigIgn:"))
                    .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            })
            .is_some_and(|mask| mask & (1 << (Signal::SIGINT as u64 - 1)) != 0);
        if ignored {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
                Ok(_) => debug!("SIGINT was ignored: now handled, so dbt can be interrupted"),
                Err(e) => warn!(error = %e, "SIGINT is ignored and dbt inherits that: cancel will terminate it"),
            }
        }
    });
}

async fn read_events(stdout: impl AsyncRead + Unpin, command: DbtCommand, tx: mpsc::Sender<DbtEvent>) -> Collected {
    let mut reader = EventReader::new(command);
    let mut stdout = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    let mut out = Vec::new();
    let mut listening = true;
    loop {
        line.clear();
        match stdout.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "reading dbt's output failed");
                break;
            }
        }
        reader.read_line(&String::from_utf8_lossy(&line), &mut out);
        for event in out.drain(..) {
            if listening && tx.send(event).await.is_err() {
                // Nobody listens any more: keep reading (dbt must not block on a full pipe), stop sending.
                listening = false;
            }
        }
    }
    reader.collected
}

async fn read_tail(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    if tail.len() > STDERR_TAIL {
        tail.drain(..tail.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&tail).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn a_dbt_that_never_logged_is_unavailable_or_refused() {
        let none = Collected::default();
        let exe = Path::new("/venv/bin/dbt");
        let e = failed_to_start(
            exe,
            ExitStatus::from_raw(1 << 8),
            &none,
            "Traceback\nModuleNotFoundError: dbt",
        )
        .unwrap();
        assert_eq!(e.kind(), pluto_duck_application::ErrorKind::Unavailable);
        assert!(e.to_string().contains("ModuleNotFoundError") && e.to_string().contains("scripts/setup.sh"));
        let e = failed_to_start(
            exe,
            ExitStatus::from_raw(2 << 8),
            &none,
            "Usage: dbt\nError: No such option: --x",
        )
        .unwrap();
        assert!(matches!(e, TransformError::InvalidInvocation(m) if m.contains("No such option")));
        let loaded = Collected {
            project_loaded: true,
            saw_events: true,
            ..Collected::default()
        };
        assert!(failed_to_start(exe, ExitStatus::from_raw(2 << 8), &loaded, "").is_none());
    }

    #[test]
    fn exits_read_as_words() {
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "exited with code 3");
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "was killed by SIGKILL");
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b\nc");
    }
}
