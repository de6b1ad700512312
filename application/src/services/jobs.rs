//! Jobs: the one machine every kind of run uses (queries, ingests, analysis runs, and later dbt, agent turns and
//! scheduled jobs). A service describes what a run does as a [`Work`]; `Jobs` does the rest: the run's state
//! machine, its ordered events, waiting, cancelling, the time limit, recovery after a crash.
//!
//! Run state is written behind: the run lives in memory while it is active (and a while after), and a writer task
//! stores the latest state of each run in the metadata store, coalescing the writes of a short run into one and
//! batching under load. Reads see memory first; lists wait for the writer to catch up.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use pluto_duck_domain::{Column, ProjectId, Run, RunEventKind, RunFailure, RunId, RunKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use super::run_hub::{RunHub, Subscription};
use super::run_lineage::RunDatasets;
use crate::ports::{MetadataStore, ProgressFn, RunFilter};
use crate::AppError;

/// The longest a request waits for a job it started (ingests, syncs, analysis runs).
pub const MAX_JOB_WAIT: Duration = Duration::from_secs(3600);

/// A client's wait in seconds, between 0 and [`MAX_JOB_WAIT`].
pub fn job_wait(secs: f64) -> Result<Duration, AppError> {
    if (0.0..=MAX_JOB_WAIT.as_secs_f64()).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(AppError::Invalid(format!(
            "wait must be between 0 and {} seconds",
            MAX_JOB_WAIT.as_secs()
        )))
    }
}

/// What a finished run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub rows: u64,
    pub bytes: u64,
    pub columns: Vec<Column>,
    pub truncated: bool,
    /// Kind-specific outcome as JSON text (see `Run::detail`).
    pub detail: Option<String>,
    /// The work finished but failed as a whole (an analysis run with a failed step): the run fails with this
    /// message and keeps its rows and detail. Work that was cancelled or timed out and still answers with an
    /// outcome sets it too: the run is then cancelled or timed out, keeping the detail.
    pub failed: Option<String>,
    /// What the run read and wrote, as far as its work knows (lineage); the work's [`Work::lineage`] when `None`.
    pub lineage: Option<RunDatasets>,
}

/// Handed to a run's work: its identity, its cancellation, and its event stream.
#[derive(Clone)]
pub struct JobContext {
    pub run: RunId,
    pub project: ProjectId,
    pub cancel: CancellationToken,
    hub: Arc<RunHub>,
}

impl JobContext {
    pub fn emit(&self, kind: RunEventKind) {
        self.hub.emit(&self.run, kind);
    }

    /// A load's progress reported as this run's `progress` events.
    pub fn load_progress(&self) -> ProgressFn {
        let ctx = self.clone();
        Arc::new(move |p| {
            ctx.emit(RunEventKind::PartProgress {
                part: p.part,
                parts: p.parts,
                rows: p.rows,
                bytes: p.bytes,
            })
        })
    }
}

/// What one kind of run does. `finished` runs once the run has its final state (to update a catalog, say).
#[async_trait]
pub trait Work: Send + 'static {
    /// What the run will read and write as far as it is known before it starts (reported with its start, and
    /// with its end unless the outcome says better).
    fn lineage(&self) -> RunDatasets {
        RunDatasets::default()
    }
    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError>;
    async fn finished(&mut self, _run: &Run) {}
}

/// Told when any run starts and when it ends (lineage reporting, say). Both calls come from the run's own task
/// and must return quickly: an observer queues, it never waits on a network.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait RunObserver: Send + Sync {
    /// The run has just started (state `running`), with what it is known to read and write.
    async fn started(&self, run: &Run, datasets: &RunDatasets);
    /// The run has its final state (a run cancelled while queued ends without having started).
    async fn finished(&self, run: &Run, datasets: &RunDatasets);
}

/// A run to start.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub project: ProjectId,
    pub kind: RunKind,
    /// What runs: the SQL, the target, the analysis id.
    pub input: String,
    pub actor: Option<String>,
    /// Ends the run as timed out, interrupting its work.
    pub timeout: Option<Duration>,
}

struct Active {
    token: CancellationToken,
}

/// Finished runs kept in memory (their stored state may not be written yet).
const RECENT: usize = 4096;

struct State {
    /// Latest state of active and recent runs.
    runs: HashMap<RunId, Run>,
    recent: VecDeque<RunId>,
    active: HashMap<RunId, Active>,
}

pub struct Jobs {
    metadata: Arc<dyn MetadataStore>,
    hub: Arc<RunHub>,
    state: Mutex<State>,
    writer: mpsc::UnboundedSender<Run>,
    /// Writes queued / writes stored: lists wait until the second catches up with the first.
    queued: AtomicU64,
    stored: watch::Receiver<u64>,
    observer: std::sync::OnceLock<Arc<dyn RunObserver>>,
    /// Set when several servers share the metadata store (the hybrid profile): runs are cancelled and watched
    /// through it, polled this often.
    fleet: std::sync::OnceLock<Duration>,
}

impl Jobs {
    /// Starts the writer task; it ends when the `Jobs` is dropped.
    pub fn new(metadata: Arc<dyn MetadataStore>, hub: Arc<RunHub>) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stored_tx, stored_rx) = watch::channel(0u64);
        tokio::spawn(write_behind(metadata.clone(), rx, stored_tx));
        Arc::new(Self {
            metadata,
            hub,
            state: Mutex::new(State {
                runs: HashMap::new(),
                recent: VecDeque::new(),
                active: HashMap::new(),
            }),
            writer: tx,
            queued: AtomicU64::new(0),
            stored: stored_rx,
            observer: std::sync::OnceLock::new(),
            fleet: std::sync::OnceLock::new(),
        })
    }

    /// Several servers share the metadata store: a run started on one can be cancelled and watched through
    /// another (see `fleet`). Starts the poller that applies cancel requests to this server's runs.
    pub fn join_fleet(self: &Arc<Self>, poll: Duration) -> Result<(), AppError> {
        self.fleet
            .set(poll)
            .map_err(|_| AppError::Conflict("already in a fleet".into()))?;
        super::fleet::spawn_cancel_poller(Arc::downgrade(self), self.metadata.clone(), poll);
        Ok(())
    }

    /// The cancellation tokens of the runs this server executes now.
    pub(crate) fn active_tokens(&self) -> Vec<(RunId, CancellationToken)> {
        self.lock()
            .active
            .iter()
            .map(|(id, a)| (id.clone(), a.token.clone()))
            .collect()
    }

    /// Sets the one observer of every run from now on (bootstrap wires lineage here); `Conflict` when one is set.
    pub fn observe(&self, observer: Arc<dyn RunObserver>) -> Result<(), AppError> {
        self.observer
            .set(observer)
            .map_err(|_| AppError::Conflict("runs already have an observer".into()))
    }

    pub fn hub(&self) -> &Arc<RunHub> {
        &self.hub
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a run's state: in memory now, in the metadata store behind.
    pub fn record(&self, run: &Run) {
        {
            let mut state = self.lock();
            if !state.runs.contains_key(&run.id) {
                state.recent.push_back(run.id.clone());
                while state.recent.len() > RECENT {
                    let Some(old) = state.recent.pop_front() else { break };
                    if !state.active.contains_key(&old) {
                        state.runs.remove(&old);
                    }
                }
            }
            state.runs.insert(run.id.clone(), run.clone());
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.writer.send(run.clone()).is_err() {
            warn!(run = %run.id, "run state not stored: the writer stopped");
        }
    }

    /// Waits until every state recorded so far is in the metadata store.
    pub async fn flush(&self) {
        let target = self.queued.load(Ordering::Relaxed);
        let mut stored = self.stored.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), stored.wait_for(|n| *n >= target)).await;
    }

    /// Queues the run and starts its work in the background.
    pub fn submit(self: &Arc<Self>, spec: JobSpec, work: impl Work) -> Result<Run, AppError> {
        let id = RunId::parse(uuid::Uuid::now_v7().to_string())?;
        let mut run = Run::new(id, spec.project.clone(), spec.kind, spec.input, Utc::now());
        if let Some(actor) = spec.actor.filter(|a| !a.is_empty()) {
            run.actor = actor.chars().take(64).collect();
        }
        let token = CancellationToken::new();
        self.lock()
            .active
            .insert(run.id.clone(), Active { token: token.clone() });
        self.record(&run);
        self.hub.emit(&run.id, RunEventKind::Queued);
        let this = self.clone();
        let span = tracing::info_span!("run", run_id = %run.id, kind = run.kind.as_str());
        let queued = run.clone();
        tokio::spawn(async move { this.execute(queued, Box::new(work), token, spec.timeout).await }.instrument(span));
        Ok(run)
    }

    async fn execute(
        self: Arc<Self>,
        mut run: Run,
        mut work: Box<dyn Work>,
        token: CancellationToken,
        timeout: Option<Duration>,
    ) {
        let planned = work.lineage();
        if token.is_cancelled() {
            let _ = run.cancel(Utc::now());
            return self.finish(run, work, planned).await;
        }
        if let Err(e) = run.start(Utc::now()) {
            warn!(error = %e, "run could not start");
        }
        self.record(&run);
        self.hub.emit(&run.id, RunEventKind::Started);
        if let Some(observer) = self.observer.get() {
            observer.started(&run, &planned).await;
        }
        let ctx = JobContext {
            run: run.id.clone(),
            project: run.project.clone(),
            cancel: token.child_token(),
            hub: self.hub.clone(),
        };
        let engine = ctx.cancel.clone();
        let result = {
            let fut = work.run(ctx);
            tokio::pin!(fut);
            let mut timed_out = false;
            let limit = timeout.unwrap_or(Duration::MAX);
            let result = tokio::select! {
                r = &mut fut => r,
                _ = tokio::time::sleep(limit) => {
                    timed_out = true;
                    engine.cancel();
                    // The interrupt stops the engine; the work cleans up before it returns.
                    (&mut fut).await
                }
            };
            (result, timed_out)
        };
        let now = Utc::now();
        let mut datasets = planned;
        let transition = match result {
            (Ok(out), timed_out) => {
                if let Some(known) = out.lineage {
                    datasets = known;
                }
                run.rows = out.rows;
                run.bytes = out.bytes;
                run.columns = out.columns;
                run.truncated = out.truncated;
                run.detail = out.detail;
                match out.failed {
                    // Work that reports what it did before it was stopped (a dbt run's finished nodes).
                    Some(_) if token.is_cancelled() => run.cancel(now),
                    Some(_) if timed_out => run.time_out(timeout.map(|t| t.as_millis() as u64).unwrap_or(0), now),
                    Some(message) => run.fail(
                        RunFailure {
                            message,
                            position: None,
                        },
                        now,
                    ),
                    None => run.succeed(now),
                }
            }
            (Err(_), _) if token.is_cancelled() => run.cancel(now),
            (Err(_), true) => run.time_out(timeout.map(|t| t.as_millis() as u64).unwrap_or(0), now),
            (Err(e), false) => run.fail(
                RunFailure {
                    position: e.position(),
                    message: e.to_string(),
                },
                now,
            ),
        };
        if let Err(e) = transition {
            warn!(error = %e, "run transition refused");
        }
        self.finish(run, work, datasets).await;
    }

    async fn finish(&self, run: Run, mut work: Box<dyn Work>, datasets: RunDatasets) {
        work.finished(&run).await;
        self.record(&run);
        self.lock().active.remove(&run.id);
        info!(status = run.status.as_str(), rows = run.rows, "run finished");
        if let Some(kind) = RunEventKind::terminal_for(&run) {
            self.hub.emit(&run.id, kind);
        }
        if let Some(observer) = self.observer.get() {
            observer.finished(&run, &datasets).await;
        }
    }

    /// Records a run whose work happens elsewhere (an outside system reports it): queued and started now, with
    /// its events and its lineage start. It is not active here: [`Self::report`] ends it.
    pub async fn open_external(&self, spec: JobSpec, datasets: &RunDatasets) -> Result<Run, AppError> {
        let id = RunId::parse(uuid::Uuid::now_v7().to_string())?;
        let mut run = Run::new(id, spec.project.clone(), spec.kind, spec.input, Utc::now());
        if let Some(actor) = spec.actor.filter(|a| !a.is_empty()) {
            run.actor = actor.chars().take(64).collect();
        }
        self.hub.emit(&run.id, RunEventKind::Queued);
        run.start(Utc::now())?;
        self.record(&run);
        self.hub.emit(&run.id, RunEventKind::Started);
        if let Some(observer) = self.observer.get() {
            observer.started(&run, datasets).await;
        }
        Ok(run)
    }

    /// Ends a run opened by [`Self::open_external`] with the state an outside system reported; `Conflict` when
    /// it has ended already or is work of this server.
    pub async fn report(&self, mut run: Run, datasets: &RunDatasets) -> Result<Run, AppError> {
        if self.lock().active.contains_key(&run.id) {
            return Err(AppError::Conflict(format!("run {} is running on this server", run.id)));
        }
        let current = self.get(&run.project, run.id.as_str(), run.kind).await?;
        if current.status.is_terminal() {
            return Err(AppError::Conflict(format!(
                "run {} already finished ({})",
                run.id,
                current.status.as_str()
            )));
        }
        run.started_at = current.started_at;
        run.created_at = current.created_at;
        run.finished_at = Some(Utc::now());
        self.record(&run);
        if let Some(kind) = RunEventKind::terminal_for(&run) {
            self.hub.emit(&run.id, kind);
        }
        if let Some(observer) = self.observer.get() {
            observer.finished(&run, datasets).await;
        }
        Ok(run)
    }

    /// A run of the project, from memory or the store; `kind` narrows what counts as found.
    pub async fn get(&self, project: &ProjectId, id: &str, kind: RunKind) -> Result<Run, AppError> {
        self.get_of(project, id, &[kind]).await
    }

    /// A run of the project of one of `kinds` (the first names what was not found).
    pub async fn get_of(&self, project: &ProjectId, id: &str, kinds: &[RunKind]) -> Result<Run, AppError> {
        let not_found = || AppError::NotFound {
            what: kinds.first().map(|k| kind_noun(*k)).unwrap_or("run"),
            id: id.to_owned(),
        };
        let id = RunId::parse(id)?;
        let cached = self.lock().runs.get(&id).cloned();
        let run = match cached {
            Some(r) => Some(r),
            None => self.metadata.get_run(project, &id).await?,
        };
        run.filter(|r| kinds.contains(&r.kind) && &r.project == project)
            .ok_or_else(not_found)
    }

    /// Waits up to `max` for the run to finish; returns its state either way.
    pub async fn wait(&self, project: &ProjectId, id: &str, kind: RunKind, max: Duration) -> Result<Run, AppError> {
        let run = self.get(project, id, kind).await?;
        if run.status.is_terminal() || max.is_zero() {
            return Ok(run);
        }
        self.hub.wait_terminal(&run.id, max).await;
        self.get(project, id, kind).await
    }

    /// Interrupts a queued or running run and returns its final state.
    pub async fn cancel(&self, project: &ProjectId, id: &str, kind: RunKind) -> Result<Run, AppError> {
        let run = self.get(project, id, kind).await?;
        if run.status.is_terminal() {
            return Err(AppError::Conflict(format!(
                "{} {} already finished ({})",
                kind_noun(kind),
                run.id,
                run.status.as_str()
            )));
        }
        let local = self.lock().active.get(&run.id).map(|a| a.token.clone());
        match (local, self.fleet.get()) {
            (Some(token), _) => token.cancel(),
            // Another server runs it: ask it through the shared store and watch the stored state.
            (None, Some(poll)) => {
                super::fleet::request_cancel(self.metadata.as_ref(), &run.id).await?;
                return super::fleet::wait_stored(self.metadata.as_ref(), &run, *poll, Duration::from_secs(30)).await;
            }
            (None, None) => {}
        }
        self.wait(project, id, kind, Duration::from_secs(30)).await
    }

    /// Events after `after` (the last id a client saw), and the live tail while the run goes on.
    pub async fn events(
        &self,
        project: &ProjectId,
        id: &str,
        kind: RunKind,
        after: u64,
    ) -> Result<Subscription, AppError> {
        let run = self.get(project, id, kind).await?;
        if let Some(sub) = self.hub.subscribe(&run.id, after) {
            return Ok(sub);
        }
        // Forgotten by the hub (evicted, or a restart): the events a run kept (agent turns do), else its replay.
        let stored: Vec<_> = self
            .metadata
            .list_run_events(&run.id)
            .await?
            .into_iter()
            .filter(|e| e.seq > after)
            .collect();
        if stored.is_empty() {
            if let (Some(poll), false) = (self.fleet.get(), run.status.is_terminal()) {
                // Another server runs it: its state changes, read from the shared store, are the live tail.
                return Ok(super::fleet::watch_stored(self.metadata.clone(), &run, after, *poll));
            }
            return Ok(self.hub.events_of(&run, after));
        }
        Ok(Subscription {
            past: stored,
            live: None,
        })
    }

    /// Stored runs, newest first (after the writer caught up).
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<Run>, AppError> {
        self.flush().await;
        Ok(self.metadata.list_runs(filter).await?)
    }

    /// Start-up: runs a previous process left queued or running are failed.
    pub async fn recover(&self) -> Result<u64, AppError> {
        if self.fleet.get().is_some() {
            // Other servers of the fleet may be running them.
            return Ok(0);
        }
        Ok(self
            .metadata
            .fail_unfinished_runs("the server stopped while the run was in progress")
            .await?)
    }
}

fn kind_noun(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Query => "query",
        RunKind::Ingest => "ingest",
        RunKind::AnalysisStep => "analysis step",
        RunKind::AnalysisRun => "analysis run",
        RunKind::Dbt => "dbt run",
        RunKind::AgentTurn => "agent run",
        RunKind::Eval => "evaluation",
        RunKind::CacheRefresh => "cache refresh",
        RunKind::Job => "job run",
    }
}

/// Stores the latest state of each run: whatever is waiting is taken at once, so a run that started and finished
/// before the writer got to it is written once, and a burst of runs is written back to back.
async fn write_behind(
    metadata: Arc<dyn MetadataStore>,
    mut rx: mpsc::UnboundedReceiver<Run>,
    stored: watch::Sender<u64>,
) {
    let mut inserted: std::collections::HashSet<RunId> = std::collections::HashSet::new();
    let mut done = 0u64;
    let mut batch: Vec<Run> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let taken = batch.len() as u64;
        // Only the last state of each run matters.
        let mut latest: Vec<Run> = Vec::new();
        for run in batch.drain(..).rev() {
            if !latest.iter().any(|r| r.id == run.id) {
                latest.push(run);
            }
        }
        for run in latest.into_iter().rev() {
            let result = if inserted.contains(&run.id) {
                metadata.update_run(&run).await
            } else {
                let r = metadata.insert_run(&run).await;
                if r.is_ok() {
                    inserted.insert(run.id.clone());
                }
                r
            };
            if let Err(e) = result {
                warn!(run = %run.id, error = %e, "run state not stored");
            }
            if run.status.is_terminal() {
                inserted.remove(&run.id);
            }
        }
        done += taken;
        let _ = stored.send(done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockMetadataStore;
    use pluto_duck_domain::RunStatus;
    use std::sync::Mutex as StdMutex;

    struct Sleepy(Duration);

    #[async_trait]
    impl Work for Sleepy {
        async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
            tokio::select! {
                _ = tokio::time::sleep(self.0) => Ok(Outcome { rows: 7, ..Outcome::default() }),
                _ = ctx.cancel.cancelled() => Err(AppError::Invalid("interrupted".into())),
            }
        }
    }

    type Writes = Arc<StdMutex<Vec<(String, RunStatus)>>>;

    fn store() -> (MockMetadataStore, Writes) {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let mut md = MockMetadataStore::new();
        let l = log.clone();
        md.expect_insert_run().returning(move |r| {
            l.lock().unwrap().push(("insert".into(), r.status));
            Ok(())
        });
        let l = log.clone();
        md.expect_update_run().returning(move |r| {
            l.lock().unwrap().push(("update".into(), r.status));
            Ok(())
        });
        md.expect_list_runs().returning(|_| Ok(Vec::new()));
        (md, log)
    }

    fn spec(timeout: Option<Duration>) -> JobSpec {
        JobSpec {
            project: ProjectId::default_project(),
            kind: RunKind::Query,
            input: "x".into(),
            actor: None,
            timeout,
        }
    }

    #[tokio::test]
    async fn a_run_succeeds_and_its_events_are_in_order() {
        let (md, log) = store();
        let jobs = Jobs::new(Arc::new(md), Arc::new(RunHub::new(10)));
        let run = jobs.submit(spec(None), Sleepy(Duration::from_millis(5))).unwrap();
        let p = ProjectId::default_project();
        let done = jobs
            .wait(&p, run.id.as_str(), RunKind::Query, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((done.status, done.rows), (RunStatus::Succeeded, 7));
        let events = jobs.events(&p, run.id.as_str(), RunKind::Query, 0).await.unwrap().past;
        let names: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, ["queued", "started", "completed"]);
        assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        jobs.flush().await;
        let writes = log.lock().unwrap().clone();
        assert_eq!(writes.last().unwrap().1, RunStatus::Succeeded);
        assert!(writes.len() <= 3, "at most one write per state: {writes:?}");
    }

    #[tokio::test]
    async fn timeouts_and_cancels_end_the_work() {
        let (md, _) = store();
        let jobs = Jobs::new(Arc::new(md), Arc::new(RunHub::new(10)));
        let p = ProjectId::default_project();
        let slow = jobs
            .submit(spec(Some(Duration::from_millis(20))), Sleepy(Duration::from_secs(60)))
            .unwrap();
        let done = jobs
            .wait(&p, slow.id.as_str(), RunKind::Query, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(done.status, RunStatus::TimedOut);
        assert_eq!(done.failure.unwrap().message, "timed out after 20 ms");
        let other = jobs.submit(spec(None), Sleepy(Duration::from_secs(60))).unwrap();
        let cancelled = jobs.cancel(&p, other.id.as_str(), RunKind::Query).await.unwrap();
        assert_eq!(cancelled.status, RunStatus::Cancelled);
        let again = jobs.cancel(&p, other.id.as_str(), RunKind::Query).await.unwrap_err();
        assert_eq!(again.kind(), crate::ErrorKind::Conflict);
    }

    #[tokio::test]
    async fn another_kind_or_project_is_not_found() {
        let (md, _) = store();
        let mut md = md;
        md.expect_get_run().returning(|_, _| Ok(None));
        let jobs = Jobs::new(Arc::new(md), Arc::new(RunHub::new(10)));
        let run = jobs.submit(spec(None), Sleepy(Duration::from_millis(1))).unwrap();
        let p = ProjectId::default_project();
        assert!(jobs.get(&p, run.id.as_str(), RunKind::Ingest).await.is_err());
        let other = ProjectId::parse("other").unwrap();
        assert!(jobs.get(&other, run.id.as_str(), RunKind::Query).await.is_err());
        assert_eq!(
            jobs.get(&p, "bad id!", RunKind::Query).await.unwrap_err().kind(),
            crate::ErrorKind::Invalid
        );
    }

    struct Recording(Arc<StdMutex<Vec<(&'static str, RunStatus)>>>);

    #[async_trait]
    impl RunObserver for Recording {
        async fn started(&self, run: &Run, _: &RunDatasets) {
            self.0.lock().unwrap().push(("started", run.status));
        }
        async fn finished(&self, run: &Run, _: &RunDatasets) {
            self.0.lock().unwrap().push(("finished", run.status));
        }
    }

    #[tokio::test]
    async fn the_observer_sees_every_run_start_and_end() {
        let (md, _) = store();
        let jobs = Jobs::new(Arc::new(md), Arc::new(RunHub::new(10)));
        let seen = Arc::new(StdMutex::new(Vec::new()));
        jobs.observe(Arc::new(Recording(seen.clone()))).unwrap();
        assert_eq!(
            jobs.observe(Arc::new(Recording(seen.clone()))).unwrap_err().kind(),
            crate::ErrorKind::Conflict
        );
        let p = ProjectId::default_project();
        let ok = jobs.submit(spec(None), Sleepy(Duration::from_millis(1))).unwrap();
        jobs.wait(&p, ok.id.as_str(), RunKind::Query, Duration::from_secs(5))
            .await
            .unwrap();
        let slow = jobs
            .submit(spec(Some(Duration::from_millis(10))), Sleepy(Duration::from_secs(60)))
            .unwrap();
        jobs.wait(&p, slow.id.as_str(), RunKind::Query, Duration::from_secs(5))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().len() < 4 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("started", RunStatus::Running),
                ("finished", RunStatus::Succeeded),
                ("started", RunStatus::Running),
                ("finished", RunStatus::TimedOut)
            ]
        );
    }

    #[test]
    fn waits_are_bounded() {
        assert_eq!(job_wait(0.0).unwrap(), Duration::ZERO);
        assert_eq!(job_wait(1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(job_wait(3600.0).unwrap(), MAX_JOB_WAIT);
        for bad in [-1.0, 3600.5, f64::NAN, f64::INFINITY] {
            let err = job_wait(bad).unwrap_err();
            assert_eq!(err.to_string(), "wait must be between 0 and 3600 seconds");
        }
    }
}
