//! Ad-hoc SQL as jobs: validated up front, run in the background as a `Run`, results stored as artifacts,
//! progress on the run's event stream, stopped by cancel or timeout through the engine's interrupt.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::Stream;
use pluto_duck_domain::{split_statements, ProjectId, Run, RunEventKind, RunFailure, RunId, RunKind, RunStatus};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn, Instrument};

use super::run_hub::{RunHub, Subscription};
use crate::ports::{
    BatchStream, ColumnProfile, MetadataStore, ParamValue, QueryRequest, ResultPage, ResultStore, RunFilter,
    StatementText, StoredResult, Warehouse, WarehouseError,
};
use crate::AppError;

#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Applied when a request gives none; `None` keeps every row.
    pub default_max_rows: Option<u64>,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            default_timeout_ms: 300_000,
            max_timeout_ms: 6 * 3_600_000,
            default_max_rows: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct QuerySubmission {
    pub sql: String,
    pub timeout_ms: Option<u64>,
    pub max_rows: Option<u64>,
    pub read_only: bool,
    pub params: Vec<ParamValue>,
    pub actor: Option<String>,
}

pub struct QueryService {
    warehouse: Arc<dyn Warehouse>,
    results: Arc<dyn ResultStore>,
    metadata: Arc<dyn MetadataStore>,
    hub: Arc<RunHub>,
    limits: QueryLimits,
    active: Mutex<HashMap<RunId, CancellationToken>>,
}

const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long `submit` waits for the engine to accept the SQL, so parse and bind errors answer the request
/// itself instead of surfacing later in the run.
const ADMISSION_WAIT: Duration = Duration::from_millis(500);

impl QueryService {
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        results: Arc<dyn ResultStore>,
        metadata: Arc<dyn MetadataStore>,
        hub: Arc<RunHub>,
        limits: QueryLimits,
    ) -> Self {
        Self {
            warehouse,
            results,
            metadata,
            hub,
            limits,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// Validates and queues the query; it runs in the background. Invalid SQL that the parser catches, a write
    /// in a read-only request and bad limits are refused here, before a run exists.
    #[instrument(skip_all, fields(project = %project))]
    pub async fn submit(self: &Arc<Self>, project: &ProjectId, sub: QuerySubmission) -> Result<Run, AppError> {
        let statements = split_statements(&sub.sql)?;
        if sub.read_only {
            if let Some((i, s)) = statements.iter().enumerate().find(|(_, s)| !s.is_read) {
                return Err(AppError::Invalid(format!(
                    "read_only query refused: statement {} is {} (a write); only reads are allowed",
                    i + 1,
                    s.kind
                )));
            }
        }
        let timeout_ms = sub.timeout_ms.unwrap_or(self.limits.default_timeout_ms);
        if timeout_ms == 0 || timeout_ms > self.limits.max_timeout_ms {
            return Err(AppError::Invalid(format!(
                "timeout_ms must be between 1 and {}",
                self.limits.max_timeout_ms
            )));
        }
        let max_rows = sub.max_rows.or(self.limits.default_max_rows);
        let id = RunId::parse(uuid::Uuid::now_v7().to_string())?;
        let mut run = Run::new(id, project.clone(), RunKind::Query, sub.sql, Utc::now());
        if let Some(actor) = sub.actor.filter(|a| !a.is_empty()) {
            run.actor = actor.chars().take(64).collect();
        }
        self.metadata.insert_run(&run).await?;
        self.hub.emit(&run.id, RunEventKind::Queued);
        let token = CancellationToken::new();
        self.lock_active().insert(run.id.clone(), token.clone());
        let request = QueryRequest {
            statements: statements
                .into_iter()
                .map(|s| StatementText {
                    text: s.text,
                    offset: s.offset as u64,
                })
                .collect(),
            params: sub.params,
        };
        let this = self.clone();
        let queued = run.clone();
        let span = tracing::info_span!("query_run", run_id = %run.id);
        let (admitted_tx, admitted_rx) = tokio::sync::oneshot::channel();
        let job = Job {
            request,
            timeout_ms,
            max_rows,
            user_cancel: token,
            admitted: admitted_tx,
        };
        tokio::spawn(async move { this.execute(queued, job).await }.instrument(span));
        match tokio::time::timeout(ADMISSION_WAIT, admitted_rx).await {
            // Only the engine's verdict on the SQL itself; a timeout or cancel is the run's outcome.
            Ok(Ok(Err(
                e @ (WarehouseError::Sql { .. } | WarehouseError::Invalid(_) | WarehouseError::MissingExtension(_)),
            ))) => Err(AppError::Warehouse(e)),
            _ => Ok(run),
        }
    }

    async fn execute(self: Arc<Self>, mut run: Run, job: Job) {
        let Job {
            request,
            timeout_ms,
            max_rows,
            user_cancel,
            admitted,
        } = job;
        let timeout = Duration::from_millis(timeout_ms);
        if user_cancel.is_cancelled() {
            let _ = run.cancel(Utc::now());
            drop(admitted);
            return self.finish(run).await;
        }
        if let Err(e) = run.start(Utc::now()) {
            warn!(error = %e, "run could not start");
            return;
        }
        if let Err(e) = self.metadata.update_run(&run).await {
            warn!(error = %e, "run state not stored");
        }
        self.hub.emit(&run.id, RunEventKind::Started);
        let engine = user_cancel.child_token();
        let truncated = Arc::new(AtomicBool::new(false));
        let run_id = run.id.clone();
        let work = self.run_to_store(&run_id, request, max_rows, engine.clone(), truncated.clone(), admitted);
        tokio::pin!(work);
        let mut timed_out = false;
        let outcome = tokio::select! {
            r = &mut work => r,
            _ = tokio::time::sleep(timeout) => {
                timed_out = true;
                engine.cancel();
                // The interrupt makes the engine stop; wait for the store to drop its partial result.
                (&mut work).await
            }
        };
        let now = Utc::now();
        let transition = match outcome {
            Ok((stored, columns)) => {
                run.rows = stored.rows;
                run.bytes = stored.bytes;
                run.columns = columns;
                run.truncated = truncated.load(Ordering::Relaxed);
                run.succeed(now)
            }
            Err(_) if user_cancel.is_cancelled() => run.cancel(now),
            Err(_) if timed_out => run.time_out(timeout_ms, now),
            Err(e) => run.fail(
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
        self.finish(run).await;
    }

    async fn finish(&self, run: Run) {
        self.lock_active().remove(&run.id);
        if let Err(e) = self.metadata.update_run(&run).await {
            warn!(error = %e, "run state not stored");
        }
        info!(status = run.status.as_str(), rows = run.rows, "query finished");
        if let Some(kind) = RunEventKind::terminal_for(&run) {
            self.hub.emit(&run.id, kind);
        }
    }

    async fn run_to_store(
        &self,
        id: &RunId,
        request: QueryRequest,
        max_rows: Option<u64>,
        engine: CancellationToken,
        truncated: Arc<AtomicBool>,
        admitted: tokio::sync::oneshot::Sender<Result<(), WarehouseError>>,
    ) -> Result<(StoredResult, Vec<pluto_duck_domain::Column>), AppError> {
        let stream = match self.warehouse.query(request, engine).await {
            Ok(s) => {
                let _ = admitted.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = admitted.send(Err(e.clone()));
                return Err(e.into());
            }
        };
        let hub = self.hub.clone();
        let run_id = id.clone();
        let mut last = Instant::now();
        let progress = move |rows: u64, bytes: u64| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                hub.emit(&run_id, RunEventKind::Progress { rows, bytes });
            }
        };
        let counted: BatchStream = Box::pin(Counted {
            inner: stream.batches,
            remaining: max_rows,
            rows: 0,
            bytes: 0,
            done: false,
            truncated,
            progress: Box::new(progress),
        });
        let stored = self.results.write(id, stream.schema, counted).await?;
        Ok((stored, stream.columns))
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, CancellationToken>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let id = RunId::parse(id)?;
        self.metadata
            .get_run(project, &id)
            .await?
            .filter(|r| r.kind == RunKind::Query)
            .ok_or_else(|| AppError::NotFound {
                what: "query",
                id: id.to_string(),
            })
    }

    pub async fn list(
        &self,
        project: &ProjectId,
        status: Option<RunStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Run>, AppError> {
        Ok(self
            .metadata
            .list_runs(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::Query),
                status,
                input: None,
                limit: limit.clamp(1, 1000),
                offset,
            })
            .await?)
    }

    /// Waits up to `max` for the run to finish; returns its state either way.
    pub async fn wait(&self, project: &ProjectId, id: &str, max: Duration) -> Result<Run, AppError> {
        let run = self.get(project, id).await?;
        if run.status.is_terminal() || max.is_zero() {
            return Ok(run);
        }
        self.hub.wait_terminal(&run.id, max).await;
        self.get(project, id).await
    }

    /// Interrupts a queued or running query and returns its final state.
    #[instrument(skip_all, fields(run_id = %id))]
    pub async fn cancel(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let run = self.get(project, id).await?;
        if run.status.is_terminal() {
            return Err(AppError::Conflict(format!(
                "query {} already finished ({})",
                run.id,
                run.status.as_str()
            )));
        }
        if let Some(token) = self.lock_active().get(&run.id) {
            token.cancel();
        }
        self.wait(project, id, Duration::from_secs(30)).await
    }

    /// Events after `after` (the last id a client saw), and the live tail while the run goes on.
    pub async fn events(&self, project: &ProjectId, id: &str, after: u64) -> Result<Subscription, AppError> {
        let run = self.get(project, id).await?;
        Ok(self.hub.events_of(&run, after))
    }

    /// A window of a finished query's rows.
    pub async fn result(
        &self,
        project: &ProjectId,
        id: &str,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<(Run, ResultPage), AppError> {
        let run = self.finished(project, id).await?;
        let page = self.results.read(&run.id, offset, limit).await?;
        Ok((run, page))
    }

    pub async fn profile(&self, project: &ProjectId, id: &str) -> Result<Vec<ColumnProfile>, AppError> {
        let run = self.finished(project, id).await?;
        Ok(self.results.profile(&run.id).await?)
    }

    async fn finished(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let run = self.get(project, id).await?;
        match run.status {
            RunStatus::Succeeded => Ok(run),
            RunStatus::Queued | RunStatus::Running => Err(AppError::Conflict(format!(
                "query {} is {}; its result is not ready",
                run.id,
                run.status.as_str()
            ))),
            other => Err(AppError::Conflict(format!(
                "query {} {}: {}",
                run.id,
                other.as_str(),
                run.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("")
            ))),
        }
    }

    /// Start-up housekeeping: runs a crash left unfinished are failed.
    pub async fn recover(&self) -> Result<u64, AppError> {
        Ok(self
            .metadata
            .fail_unfinished_runs("the server stopped while the query was running")
            .await?)
    }
}

struct Job {
    request: QueryRequest,
    timeout_ms: u64,
    max_rows: Option<u64>,
    user_cancel: CancellationToken,
    admitted: tokio::sync::oneshot::Sender<Result<(), WarehouseError>>,
}

/// Counts rows and bytes for progress, and cuts the stream at the row limit.
struct Counted {
    inner: BatchStream,
    remaining: Option<u64>,
    rows: u64,
    bytes: u64,
    done: bool,
    truncated: Arc<AtomicBool>,
    progress: Box<dyn FnMut(u64, u64) + Send>,
}

impl Stream for Counted {
    type Item = Result<arrow_array::RecordBatch, WarehouseError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let batch = match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => b,
            other => return other,
        };
        if self.remaining == Some(0) {
            // One batch past the limit tells whether rows were cut.
            if batch.num_rows() > 0 {
                self.truncated.store(true, Ordering::Relaxed);
                self.done = true;
                return Poll::Ready(None);
            }
            return Poll::Ready(Some(Ok(batch)));
        }
        let batch = match self.remaining {
            Some(rem) if batch.num_rows() as u64 > rem => {
                self.truncated.store(true, Ordering::Relaxed);
                self.done = true;
                batch.slice(0, rem as usize)
            }
            _ => batch,
        };
        let n = batch.num_rows() as u64;
        if let Some(rem) = self.remaining.as_mut() {
            *rem -= n;
        }
        self.rows += n;
        self.bytes += batch.get_array_memory_size() as u64;
        let (rows, bytes) = (self.rows, self.bytes);
        (self.progress)(rows, bytes);
        Poll::Ready(Some(Ok(batch)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use futures::StreamExt;
    use pluto_duck_domain::Column;

    use super::*;
    use crate::ports::{MockMetadataStore, MockResultStore, MockWarehouse, QueryStream};
    use crate::ErrorKind;

    fn service(wh: MockWarehouse, results: MockResultStore, md: MockMetadataStore) -> Arc<QueryService> {
        Arc::new(QueryService::new(
            Arc::new(wh),
            Arc::new(results),
            Arc::new(md),
            Arc::new(RunHub::new(100)),
            QueryLimits::default(),
        ))
    }

    /// A metadata mock that remembers the last stored state of each run.
    fn recording_metadata() -> (MockMetadataStore, Arc<StdMutex<Vec<Run>>>) {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let mut md = MockMetadataStore::new();
        let l1 = log.clone();
        md.expect_insert_run().returning(move |r| {
            l1.lock().unwrap().push(r.clone());
            Ok(())
        });
        let l2 = log.clone();
        md.expect_update_run().returning(move |r| {
            l2.lock().unwrap().push(r.clone());
            Ok(())
        });
        let l3 = log.clone();
        md.expect_get_run()
            .returning(move |_, id| Ok(l3.lock().unwrap().iter().rev().find(|r| &r.id == id).cloned()));
        (md, log)
    }

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
    }

    fn stream_of(batches: Vec<RecordBatch>) -> QueryStream {
        QueryStream {
            schema: batches[0].schema(),
            columns: vec![Column {
                name: "n".into(),
                data_type: "BIGINT".into(),
            }],
            batches: Box::pin(futures::stream::iter(batches.into_iter().map(Ok))),
        }
    }

    /// A result store that counts the rows it is given.
    fn counting_results() -> MockResultStore {
        let mut rs = MockResultStore::new();
        rs.expect_write().returning(|_, _, batches| {
            let rows: u64 =
                futures::executor::block_on(batches.map(|b| b.unwrap().num_rows() as u64).collect::<Vec<_>>())
                    .iter()
                    .sum();
            Ok(StoredResult { rows, bytes: rows * 8 })
        });
        rs
    }

    fn submission(sql: &str) -> QuerySubmission {
        QuerySubmission {
            sql: sql.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn read_only_writes_are_refused_before_anything_is_touched() {
        // No expectations: any port call would panic.
        let svc = service(MockWarehouse::new(), MockResultStore::new(), MockMetadataStore::new());
        let sub = QuerySubmission {
            read_only: true,
            ..submission("SELECT 1; DELETE FROM t")
        };
        let err = svc.submit(&ProjectId::default_project(), sub).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("statement 2 is DELETE"), "{err}");
    }

    #[tokio::test]
    async fn timeout_bounds_are_checked() {
        let svc = service(MockWarehouse::new(), MockResultStore::new(), MockMetadataStore::new());
        for t in [0, QueryLimits::default().max_timeout_ms + 1] {
            let sub = QuerySubmission {
                timeout_ms: Some(t),
                ..submission("SELECT 1")
            };
            let err = svc.submit(&ProjectId::default_project(), sub).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }

    #[tokio::test]
    async fn a_successful_run_records_rows_columns_and_truncation() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|req, _| {
            assert_eq!(req.statements.len(), 2);
            assert_eq!(req.statements[1].offset, 10);
            Ok(stream_of(vec![batch(3), batch(4)]))
        });
        let (md, log) = recording_metadata();
        let svc = service(wh, counting_results(), md);
        let project = ProjectId::default_project();
        let sub = QuerySubmission {
            max_rows: Some(5),
            ..submission("SELECT 1; SELECT 2")
        };
        let run = svc.submit(&project, sub).await.unwrap();
        let done = svc
            .wait(&project, run.id.as_str(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.rows, 5);
        assert!(done.truncated);
        assert_eq!(done.columns[0].data_type, "BIGINT");
        let statuses: Vec<RunStatus> = log.lock().unwrap().iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            vec![RunStatus::Queued, RunStatus::Running, RunStatus::Succeeded]
        );
    }

    #[tokio::test]
    async fn sql_errors_answer_the_submit_and_are_recorded() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|_, _| {
            Err(WarehouseError::Sql {
                message: "Binder Error: nope".into(),
                position: Some(7),
            })
        });
        let (md, log) = recording_metadata();
        let svc = service(wh, MockResultStore::new(), md);
        let err = svc
            .submit(&ProjectId::default_project(), submission("SELECT nope"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.position(), Some(7));
        let last = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(r) = log.lock().unwrap().last().filter(|r| r.status.is_terminal()).cloned() {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(last.status, RunStatus::Failed);
        assert_eq!(last.failure.unwrap().position, Some(7));
    }
}
