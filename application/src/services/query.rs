//! Ad-hoc SQL as jobs: checked against the sandbox rules up front, run in the project's sandbox as a `Run`,
//! results kept by the result store, progress on the run's event stream, stopped by cancel or timeout through the
//! engine's interrupt.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::Stream;
use pluto_duck_domain::{
    calls_side_effects, check_user_sql, written_relations, ProjectId, Run, RunEventKind, RunKind, RunStatus,
};
use tokio::sync::oneshot;
use tracing::instrument;

use super::changes::ChangeLog;
use super::jobs::{JobContext, JobSpec, Jobs, Outcome, Work};
use super::run_hub::Subscription;
use super::run_lineage::RunDatasets;
use crate::ports::{
    BatchStream, ColumnProfile, ParamValue, QueryRequest, ResultPage, ResultStore, RunFilter, StatementText, Warehouse,
    WarehouseError,
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

/// What a submit that may wait answers with.
pub enum Submitted {
    /// Still queued or running when the wait ended (or nobody waited).
    Pending(Run),
    /// Succeeded within the wait: the run and its whole result.
    Finished(Run, ResultPage),
}

/// The runs `/query` answers for: SQL jobs and agent turns.
const QUERY_KINDS: &[RunKind] = &[RunKind::Query, RunKind::AgentTurn];

pub struct QueryService {
    warehouse: Arc<dyn Warehouse>,
    results: Arc<dyn ResultStore>,
    jobs: Arc<Jobs>,
    changes: Arc<ChangeLog>,
    limits: QueryLimits,
}

/// The longest a submit waits for its result.
pub const MAX_SUBMIT_WAIT: Duration = Duration::from_secs(300);
/// The most rows a page of a query's state carries.
pub const MAX_PAGE_ROWS: u64 = 10_000;

const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long `submit` waits for the engine to accept the SQL, so parse and bind errors answer the request
/// itself instead of surfacing later in the run.
const ADMISSION_WAIT: Duration = Duration::from_millis(500);

type Admission = oneshot::Sender<Result<(), WarehouseError>>;

struct QueryWork {
    warehouse: Arc<dyn Warehouse>,
    results: Arc<dyn ResultStore>,
    changes: Arc<ChangeLog>,
    request: QueryRequest,
    max_rows: Option<u64>,
    admitted: Option<Admission>,
    /// Relations the statements write, recorded as changed when the run succeeds.
    writes: Vec<String>,
    /// Some statement writes: the run must not end before the engine has committed.
    commits: bool,
    lineage: RunDatasets,
}

#[async_trait]
impl Work for QueryWork {
    fn lineage(&self) -> RunDatasets {
        self.lineage.clone()
    }

    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let stream = self
            .warehouse
            .query(&ctx.project, self.request.clone(), ctx.cancel.clone())
            .await;
        if let Some(tx) = self.admitted.take() {
            let _ = tx.send(stream.as_ref().map(drop).map_err(Clone::clone));
        }
        let stream = stream?;
        let truncated = Arc::new(AtomicBool::new(false));
        let mut last = Instant::now();
        let progress_ctx = ctx.clone();
        let progress = move |rows: u64, bytes: u64| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                progress_ctx.emit(RunEventKind::Progress { rows, bytes });
            }
        };
        let counted: BatchStream = Box::pin(Counted {
            inner: stream.batches,
            remaining: self.max_rows,
            rows: 0,
            bytes: 0,
            done: false,
            drain: self.commits,
            truncated: truncated.clone(),
            progress: Box::new(progress),
        });
        let stored = self.results.write(&ctx.run, stream.schema, counted).await?;
        Ok(Outcome {
            rows: stored.rows,
            bytes: stored.bytes,
            columns: stream.columns,
            truncated: truncated.load(Ordering::Relaxed),
            ..Outcome::default()
        })
    }

    async fn finished(&mut self, run: &Run) {
        if run.status == RunStatus::Succeeded && !self.writes.is_empty() {
            self.changes.record(&run.project, &self.writes, "sql").await;
        }
    }
}

impl QueryService {
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        results: Arc<dyn ResultStore>,
        jobs: Arc<Jobs>,
        changes: Arc<ChangeLog>,
        limits: QueryLimits,
    ) -> Self {
        Self {
            warehouse,
            results,
            jobs,
            changes,
            limits,
        }
    }

    /// Checks and queues the query; it runs in the background. SQL outside the sandbox rules, a write in a
    /// read-only request, bad limits, and SQL the engine rejects (parse and bind errors, within a short wait) are
    /// refused here.
    #[instrument(skip_all, fields(project = %project))]
    pub async fn submit(&self, project: &ProjectId, sub: QuerySubmission) -> Result<Run, AppError> {
        let statements = check_user_sql(&sub.sql)?;
        if sub.read_only {
            if let Some((i, s)) = statements.iter().enumerate().find(|(_, s)| !s.is_read) {
                return Err(AppError::Invalid(format!(
                    "read_only query refused: statement {} is {} (a write); only reads are allowed",
                    i + 1,
                    s.kind
                )));
            }
            if let Some((i, f)) = statements
                .iter()
                .enumerate()
                .find_map(|(i, s)| calls_side_effects(s).map(|f| (i, f)))
            {
                return Err(AppError::Invalid(format!(
                    "read_only query refused: statement {} calls {f}(), which changes state",
                    i + 1
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
        let writes: Vec<String> = statements.iter().flat_map(written_relations).collect();
        let commits = statements.iter().any(|s| !s.is_read);
        let lineage = RunDatasets::of_sql(&statements);
        let (admitted_tx, admitted_rx) = oneshot::channel();
        let work = QueryWork {
            warehouse: self.warehouse.clone(),
            results: self.results.clone(),
            changes: self.changes.clone(),
            request: QueryRequest {
                statements: statements
                    .into_iter()
                    .map(|s| StatementText {
                        text: s.text,
                        offset: s.offset as u64,
                    })
                    .collect(),
                params: sub.params,
            },
            max_rows: sub.max_rows.or(self.limits.default_max_rows),
            admitted: Some(admitted_tx),
            writes,
            commits,
            lineage,
        };
        let run = self.jobs.submit(
            JobSpec {
                project: project.clone(),
                kind: RunKind::Query,
                input: sub.sql,
                actor: sub.actor,
                timeout: Some(Duration::from_millis(timeout_ms)),
            },
            work,
        )?;
        match tokio::time::timeout(ADMISSION_WAIT, admitted_rx).await {
            // Only the engine's verdict on the SQL itself; a timeout or cancel is the run's outcome.
            Ok(Ok(Err(
                e @ (WarehouseError::Sql { .. }
                | WarehouseError::Invalid(_)
                | WarehouseError::Forbidden(_)
                | WarehouseError::MissingExtension(_)),
            ))) => Err(AppError::Warehouse(e)),
            _ => Ok(run),
        }
    }

    /// Submits the query, then waits up to `wait` (at most [`MAX_SUBMIT_WAIT`]) for its result. A run that ends
    /// otherwise within the wait answers as its error: the engine's message with its position (invalid), a timeout,
    /// or a cancel (conflict).
    pub async fn submit_and_wait(
        &self,
        project: &ProjectId,
        sub: QuerySubmission,
        wait: Option<Duration>,
    ) -> Result<Submitted, AppError> {
        let run = self.submit(project, sub).await?;
        let Some(wait) = wait.filter(|w| !w.is_zero()) else {
            return Ok(Submitted::Pending(run));
        };
        let run = self.wait(project, run.id.as_str(), wait.min(MAX_SUBMIT_WAIT)).await?;
        match run.status {
            RunStatus::Succeeded => {
                let (run, page) = self.result(project, run.id.as_str(), 0, None).await?;
                Ok(Submitted::Finished(run, page))
            }
            RunStatus::Queued | RunStatus::Running => Ok(Submitted::Pending(run)),
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Cancelled => Err(ended_error(&run)),
        }
    }

    /// Runs one read and waits for it: previews, an analysis's data, board snapshots. The rows are those of the
    /// run's result; `max` bounds the wait.
    pub async fn read(
        &self,
        project: &ProjectId,
        sql: String,
        max_rows: Option<u64>,
        actor: &str,
        max: Duration,
    ) -> Result<(Run, ResultPage), AppError> {
        let run = self
            .submit(
                project,
                QuerySubmission {
                    sql,
                    read_only: true,
                    max_rows,
                    actor: Some(actor.to_owned()),
                    timeout_ms: Some((max.as_millis() as u64).clamp(1, self.limits.max_timeout_ms)),
                    ..Default::default()
                },
            )
            .await?;
        let run = self
            .wait(project, run.id.as_str(), max + Duration::from_secs(1))
            .await?;
        let message = || run.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default();
        match run.status {
            RunStatus::Succeeded => self.result(project, run.id.as_str(), 0, None).await,
            RunStatus::Failed => Err(AppError::Warehouse(WarehouseError::Sql {
                message: message(),
                position: run.failure.as_ref().and_then(|f| f.position),
            })),
            RunStatus::TimedOut => Err(AppError::Timeout(message())),
            RunStatus::Cancelled => Err(AppError::Conflict(format!("query {} was cancelled", run.id))),
            RunStatus::Queued | RunStatus::Running => Err(AppError::Timeout(format!(
                "still {} after {} s",
                run.status.as_str(),
                max.as_secs()
            ))),
        }
    }

    /// A query, or an agent turn (a question is asked through the same endpoint and shares its URLs).
    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.get_of(project, id, QUERY_KINDS).await
    }

    async fn kind_of(&self, project: &ProjectId, id: &str) -> Result<RunKind, AppError> {
        Ok(self.get(project, id).await?.kind)
    }

    pub async fn list(
        &self,
        project: &ProjectId,
        status: Option<RunStatus>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Run>, AppError> {
        self.jobs
            .list(&RunFilter {
                project: project.clone(),
                kind: Some(RunKind::Query),
                status,
                input: None,
                limit: limit.clamp(1, 1000),
                offset,
            })
            .await
    }

    /// Waits up to `max` for the run to finish; returns its state either way.
    pub async fn wait(&self, project: &ProjectId, id: &str, max: Duration) -> Result<Run, AppError> {
        let kind = self.kind_of(project, id).await?;
        self.jobs.wait(project, id, kind, max).await
    }

    /// Interrupts a queued or running query and returns its final state.
    #[instrument(skip_all, fields(run_id = %id))]
    pub async fn cancel(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let kind = self.kind_of(project, id).await?;
        self.jobs.cancel(project, id, kind).await
    }

    /// Events after `after` (the last id a client saw), and the live tail while the run goes on.
    pub async fn events(&self, project: &ProjectId, id: &str, after: u64) -> Result<Subscription, AppError> {
        let kind = self.kind_of(project, id).await?;
        self.jobs.events(project, id, kind, after).await
    }

    /// A query's state and, once it succeeded, a page of its rows (at most [`MAX_PAGE_ROWS`]); no page when its
    /// result has expired.
    pub async fn get_with_page(
        &self,
        project: &ProjectId,
        id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Run, Option<ResultPage>), AppError> {
        let run = self.get(project, id).await?;
        if run.status != RunStatus::Succeeded || run.kind != RunKind::Query {
            return Ok((run, None));
        }
        match self.result(project, id, offset, Some(limit.min(MAX_PAGE_ROWS))).await {
            Ok((_, page)) => Ok((run, Some(page))),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok((run, None)),
            Err(e) => Err(e),
        }
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

    /// Per column statistics of a finished query, each column typed as DuckDB named it.
    pub async fn profile(&self, project: &ProjectId, id: &str) -> Result<Vec<ColumnProfile>, AppError> {
        let run = self.finished(project, id).await?;
        let mut profiles = self.results.profile(&run.id).await?;
        for (profile, column) in profiles.iter_mut().zip(&run.columns) {
            if !column.data_type.is_empty() {
                profile.data_type = column.data_type.clone();
            }
        }
        Ok(profiles)
    }

    async fn finished(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        let run = self.get(project, id).await?;
        if run.kind != RunKind::Query {
            // An agent turn keeps its rows in its answer's preview, not as a stored result.
            return Err(AppError::NotFound {
                what: "query result",
                id: id.to_owned(),
            });
        }
        match run.status {
            RunStatus::Succeeded => Ok(run),
            RunStatus::Queued | RunStatus::Running => Err(AppError::Conflict(format!(
                "query {} is {}; its result is not ready",
                run.id,
                run.status.as_str()
            ))),
            RunStatus::TimedOut => Err(AppError::Timeout(format!(
                "query {} timed out: {}",
                run.id,
                run.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("")
            ))),
            other => Err(AppError::Conflict(format!(
                "query {} {}: {}",
                run.id,
                other.as_str(),
                run.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("")
            ))),
        }
    }
}

/// The error a run that ended without a result answers with.
fn ended_error(run: &Run) -> AppError {
    let message = run.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default();
    match run.status {
        RunStatus::TimedOut => AppError::Timeout(message),
        RunStatus::Cancelled => AppError::Conflict(message),
        _ => AppError::Warehouse(WarehouseError::Sql {
            message,
            position: run.failure.as_ref().and_then(|f| f.position),
        }),
    }
}

/// Counts rows and bytes for progress, and cuts the stream at the row limit.
struct Counted {
    inner: BatchStream,
    remaining: Option<u64>,
    rows: u64,
    bytes: u64,
    done: bool,
    /// Past the limit, read the engine's stream to its end instead of dropping it: the engine commits a write
    /// after its last statement, and the stream ends only then.
    drain: bool,
    truncated: Arc<AtomicBool>,
    progress: Box<dyn FnMut(u64, u64) + Send>,
}

impl Stream for Counted {
    type Item = Result<arrow_array::RecordBatch, WarehouseError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            while self.drain {
                match self.inner.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(e))) => {
                        self.drain = false;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(None) => self.drain = false,
                    Poll::Pending => return Poll::Pending,
                }
            }
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
                return self.poll_next(cx);
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
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use futures::StreamExt;
    use pluto_duck_domain::Column;

    use super::*;
    use crate::ports::{MockMetadataStore, MockResultStore, MockWarehouse, QueryStream, StoredResult};
    use crate::services::RunHub;
    use crate::ErrorKind;
    use pluto_duck_domain::RunId;

    fn service(wh: MockWarehouse, results: MockResultStore) -> QueryService {
        let mut md = MockMetadataStore::new();
        md.expect_insert_run().returning(|_| Ok(()));
        md.expect_update_run().returning(|_| Ok(()));
        md.expect_get_setting().returning(|_| Ok(None));
        md.expect_put_setting().returning(|_, _| Ok(()));
        let md: Arc<dyn crate::ports::MetadataStore> = Arc::new(md);
        let jobs = Jobs::new(md.clone(), Arc::new(RunHub::new(100)));
        QueryService::new(
            Arc::new(wh),
            Arc::new(results),
            jobs,
            Arc::new(ChangeLog::new(md)),
            QueryLimits::default(),
        )
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
    async fn read_only_writes_and_side_effects_are_refused_before_anything_is_touched() {
        // No expectations: any warehouse call would panic.
        let svc = service(MockWarehouse::new(), MockResultStore::new());
        let p = ProjectId::default_project();
        let sub = QuerySubmission {
            read_only: true,
            ..submission("SELECT 1; DELETE FROM t")
        };
        let err = svc.submit(&p, sub).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("statement 2 is DELETE"), "{err}");
        let sub = QuerySubmission {
            read_only: true,
            ..submission("SELECT nextval('s')")
        };
        assert!(svc.submit(&p, sub).await.unwrap_err().to_string().contains("nextval"));
    }

    #[tokio::test]
    async fn sandbox_rules_refuse_before_the_engine_sees_the_sql() {
        let svc = service(MockWarehouse::new(), MockResultStore::new());
        let p = ProjectId::default_project();
        for sql in [
            "ATTACH '/tmp/x.db' AS x",
            "SELECT * FROM sqlite_scan('/etc/passwd', 't')",
            "SET threads = 1",
        ] {
            let err = svc.submit(&p, submission(sql)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Forbidden, "{sql}");
            assert_eq!(err.problem().slug, "sandbox");
        }
    }

    #[tokio::test]
    async fn timeout_bounds_are_checked() {
        let svc = service(MockWarehouse::new(), MockResultStore::new());
        for t in [0, QueryLimits::default().max_timeout_ms + 1] {
            let sub = QuerySubmission {
                timeout_ms: Some(t),
                ..submission("SELECT 1")
            };
            let err = svc.submit(&ProjectId::default_project(), sub).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_cut_at_its_row_limit_ends_only_when_the_engine_has_committed() {
        let (commit_tx, commit_rx) = oneshot::channel::<()>();
        let commit_rx = Arc::new(std::sync::Mutex::new(Some(commit_rx)));
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(move |_, _, _| {
            let rx = commit_rx.lock().unwrap().take().unwrap();
            // The engine's stream: the statement's row, then its end once the transaction committed.
            let commit = futures::stream::once(async move {
                let _ = rx.await;
            })
            .filter_map(|_| async { None });
            let mut s = stream_of(vec![batch(1)]);
            s.batches = Box::pin(s.batches.chain(commit));
            Ok(s)
        });
        let svc = service(wh, counting_results());
        let p = ProjectId::default_project();
        let sub = QuerySubmission {
            max_rows: Some(0),
            ..submission("CREATE TABLE t AS SELECT 1 AS n")
        };
        let run = svc.submit(&p, sub).await.unwrap();
        let r = svc.wait(&p, run.id.as_str(), Duration::from_millis(300)).await.unwrap();
        assert_eq!(r.status, RunStatus::Running, "not done before the commit");
        commit_tx.send(()).unwrap();
        let r = svc.wait(&p, run.id.as_str(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(r.status, RunStatus::Succeeded);
        assert!(r.truncated);
    }

    #[tokio::test]
    async fn a_successful_run_records_rows_columns_and_truncation() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|p, req, _| {
            assert_eq!(p.as_str(), "default");
            assert_eq!(req.statements.len(), 2);
            assert_eq!(req.statements[1].offset, 10);
            Ok(stream_of(vec![batch(3), batch(4)]))
        });
        let svc = service(wh, counting_results());
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
    }

    #[tokio::test]
    async fn sql_errors_answer_the_submit_and_are_recorded() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|_, _, _| {
            Err(WarehouseError::Sql {
                message: "Binder Error: nope".into(),
                position: Some(7),
            })
        });
        let svc = service(wh, MockResultStore::new());
        let p = ProjectId::default_project();
        let err = svc.submit(&p, submission("SELECT nope")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.position(), Some(7));
    }

    fn page_of(n: i64) -> ResultPage {
        let b = batch(n);
        ResultPage {
            schema: b.schema(),
            total_rows: n as u64,
            batches: Box::pin(futures::stream::iter(vec![Ok(b)])),
        }
    }

    #[tokio::test]
    async fn submit_and_wait_answers_the_rows_of_a_run_that_finished_in_time() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|_, _, _| Ok(stream_of(vec![batch(3)])));
        let mut results = counting_results();
        results.expect_read().returning(|_, offset, limit| {
            assert_eq!((offset, limit), (0, None));
            Ok(page_of(3))
        });
        let svc = service(wh, results);
        let p = ProjectId::default_project();
        let wait = Some(Duration::from_secs(5));
        match svc.submit_and_wait(&p, submission("SELECT 1"), wait).await.unwrap() {
            Submitted::Finished(run, page) => {
                assert_eq!(run.status, RunStatus::Succeeded);
                assert_eq!(page.total_rows, 3);
            }
            Submitted::Pending(run) => panic!("still {}", run.status.as_str()),
        }
    }

    #[tokio::test]
    async fn submit_without_a_wait_is_pending_and_touches_no_result() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|_, _, _| Ok(stream_of(vec![batch(1)])));
        // No `read` expectation: reading the result would panic.
        let svc = service(wh, counting_results());
        let p = ProjectId::default_project();
        for wait in [None, Some(Duration::ZERO)] {
            let answer = svc.submit_and_wait(&p, submission("SELECT 1"), wait).await.unwrap();
            assert!(matches!(answer, Submitted::Pending(_)));
        }
    }

    #[tokio::test]
    async fn a_run_that_fails_within_the_wait_answers_as_the_engine_error() {
        let mut wh = MockWarehouse::new();
        // Admitted, then the stream fails while running.
        wh.expect_query().returning(|_, _, _| {
            let mut s = stream_of(vec![batch(1)]);
            s.batches = Box::pin(futures::stream::iter(vec![Err(WarehouseError::Sql {
                message: "Conversion Error: nope".into(),
                position: Some(3),
            })]));
            Ok(s)
        });
        let mut results = MockResultStore::new();
        results
            .expect_write()
            .returning(|_, _, mut batches| match futures::executor::block_on(batches.next()) {
                Some(Err(e)) => Err(e.into()),
                _ => Ok(StoredResult::default()),
            });
        let svc = service(wh, results);
        let p = ProjectId::default_project();
        let err = svc
            .submit_and_wait(&p, submission("SELECT 1"), Some(Duration::from_secs(5)))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert_eq!(err.to_string(), "Conversion Error: nope");
        assert_eq!(err.position(), Some(3));
    }

    #[test]
    fn runs_that_ended_without_a_result_map_to_their_kind() {
        let mut run = Run::new(
            RunId::parse("r1").unwrap(),
            ProjectId::default_project(),
            RunKind::Query,
            "SELECT 1".into(),
            chrono::Utc::now(),
        );
        run.failure = Some(pluto_duck_domain::RunFailure {
            message: "too slow".into(),
            position: None,
        });
        for (status, kind) in [
            (RunStatus::TimedOut, ErrorKind::Timeout),
            (RunStatus::Cancelled, ErrorKind::Conflict),
            (RunStatus::Failed, ErrorKind::Invalid),
        ] {
            run.status = status;
            let err = ended_error(&run);
            assert_eq!((err.kind(), err.to_string()), (kind, "too slow".to_owned()));
        }
    }

    #[tokio::test]
    async fn a_page_comes_with_a_succeeded_run_and_an_expired_result_is_no_page() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|_, _, _| Ok(stream_of(vec![batch(2)])));
        let mut results = counting_results();
        let mut reads = 0;
        results.expect_read().returning(move |run, offset, limit| {
            reads += 1;
            assert_eq!((offset, limit), (1, Some(MAX_PAGE_ROWS)));
            if reads == 1 {
                Ok(page_of(1))
            } else {
                Err(crate::ports::ResultError::NotFound(run.to_string()))
            }
        });
        let svc = service(wh, results);
        let p = ProjectId::default_project();
        let run = svc.submit(&p, submission("SELECT 1")).await.unwrap();
        svc.wait(&p, run.id.as_str(), Duration::from_secs(5)).await.unwrap();
        let (run, page) = svc.get_with_page(&p, run.id.as_str(), 1, u64::MAX).await.unwrap();
        assert_eq!(page.map(|p| p.total_rows), Some(1));
        let (_, page) = svc.get_with_page(&p, run.id.as_str(), 1, u64::MAX).await.unwrap();
        assert!(page.is_none(), "an expired result is no page, not an error");
    }

    #[tokio::test]
    async fn profiles_carry_the_engine_type_names() {
        let mut wh = MockWarehouse::new();
        wh.expect_query().returning(|_, _, _| Ok(stream_of(vec![batch(2)])));
        let mut results = counting_results();
        results.expect_profile().returning(|_| {
            Ok(vec![ColumnProfile {
                name: "n".into(),
                data_type: "Int64".into(),
                count: 2,
                nulls: 0,
                distinct_estimate: 2,
                min: Some("0".into()),
                max: Some("1".into()),
                top_values: Vec::new(),
            }])
        });
        let svc = service(wh, results);
        let p = ProjectId::default_project();
        let run = svc.submit(&p, submission("SELECT 1")).await.unwrap();
        svc.wait(&p, run.id.as_str(), Duration::from_secs(5)).await.unwrap();
        let profiles = svc.profile(&p, run.id.as_str()).await.unwrap();
        assert_eq!(profiles[0].data_type, "BIGINT");
    }
}
