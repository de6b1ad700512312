//! Runs as OpenLineage: a run of any kind becomes a `START` and, once it ends, a `COMPLETE`, `FAIL` (failed or
//! timed out) or `ABORT` (cancelled) event of one job, with the datasets it read and wrote, through the
//! `LineageEmitter` port. The emitter queues and never waits, so reporting never holds a run up.

use std::sync::Arc;

use pluto_duck_domain::{Run, RunKind, RunStatus};
use tracing::debug;
use uuid::Uuid;

use crate::ports::{LineageDataset, LineageEmitter, LineageEvent, LineageJob};

/// What a run read and wrote, and the job it belongs to, as the service that ran it knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDatasets {
    /// The job's name within the project, stable across its runs (`sales.revenue_by_month`, `ingest.orders`);
    /// the run kind (`query`, `ingest`, ...) when `None`.
    pub job: Option<String>,
    pub inputs: Vec<LineageDataset>,
    pub outputs: Vec<LineageDataset>,
    /// Tables of the run's project database it read and wrote (`schema.table`, as `canonical_relation` writes
    /// them): named as DuckDB datasets of the project's database file when reported.
    pub tables_read: Vec<String>,
    pub tables_written: Vec<String>,
}

impl RunDatasets {
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
            && self.outputs.is_empty()
            && self.tables_read.is_empty()
            && self.tables_written.is_empty()
    }

    /// The project's tables the statements read and write (`schema.table`); another catalog's (an attached
    /// source's) are left out.
    pub fn of_sql(statements: &[pluto_duck_domain::SqlStatement]) -> Self {
        let own = |r: &String| r.split('.').count() == 2;
        let mut out = Self::default();
        for s in statements {
            let written: Vec<String> = pluto_duck_domain::written_relations(s)
                .iter()
                .map(|r| pluto_duck_domain::canonical_relation(r))
                .collect();
            for r in pluto_duck_domain::referenced_relations(&s.text) {
                let r = pluto_duck_domain::canonical_relation(&r);
                if own(&r) && !written.contains(&r) && !out.tables_read.contains(&r) {
                    out.tables_read.push(r);
                }
            }
            for r in written {
                if own(&r) && !out.tables_written.contains(&r) {
                    out.tables_written.push(r);
                }
            }
        }
        out
    }
}

/// A source's table (or the source itself when `table` is `None`) as OpenLineage names it.
pub fn source_dataset(
    source: &pluto_duck_domain::Source,
    table: Option<&str>,
) -> Option<pluto_duck_domain::DatasetName> {
    use pluto_duck_domain::{DatasetName, LocationScheme, SourceConnection, SourceKind};
    let t = table.unwrap_or(source.name.as_str());
    let (schema, name) = t.split_once('.').unwrap_or(("public", t));
    match (&source.connection, source.kind) {
        (
            SourceConnection::Server {
                host, port, database, ..
            },
            SourceKind::Postgres,
        ) => DatasetName::postgres(host, *port, database, schema, name).ok(),
        (
            SourceConnection::Server {
                host, port, database, ..
            },
            _,
        ) => DatasetName::mysql(host, *port, database, name).ok(),
        (SourceConnection::File { path }, _) => DatasetName::local_file(path).ok(),
        (SourceConnection::Located(l), _) => match l.scheme() {
            LocationScheme::Local => DatasetName::local_file(&l.uri).ok(),
            LocationScheme::S3 => {
                let rest = l.uri.strip_prefix("s3://")?;
                let (bucket, key) = rest.split_once('/')?;
                DatasetName::s3(&pluto_duck_domain::BucketName::parse(bucket).ok()?, key).ok()
            }
            LocationScheme::Http => {
                let rest = l.uri.split_once("://")?.1;
                let (host, path) = rest.split_once('/')?;
                DatasetName::new(format!("{}://{host}", l.uri.split_once("://")?.0), format!("/{path}")).ok()
            }
        },
    }
}

pub struct LineageService {
    emitter: Arc<dyn LineageEmitter>,
    namespace: String,
    /// The folder of the projects' databases (`<dir>/<project>/warehouse.duckdb`), for naming their tables.
    projects_dir: Option<String>,
}

impl LineageService {
    /// Jobs are named in `<namespace>/<project>` (`pluto-duck/sales`).
    pub fn new(emitter: Arc<dyn LineageEmitter>, namespace: impl Into<String>) -> Self {
        Self {
            emitter,
            namespace: namespace.into(),
            projects_dir: None,
        }
    }

    /// Names project tables as DuckDB datasets of `<dir>/<project>/warehouse.duckdb` (absolute).
    pub fn with_projects_dir(mut self, dir: impl Into<String>) -> Self {
        self.projects_dir = Some(dir.into());
        self
    }

    /// The run's inputs and outputs with its project tables named.
    pub fn resolve(&self, run: &Run, datasets: &RunDatasets) -> (Vec<LineageDataset>, Vec<LineageDataset>) {
        let location = match &self.projects_dir {
            Some(dir) => format!("{}/{}/warehouse.duckdb", dir.trim_end_matches('/'), run.project),
            None => ":memory:".to_owned(),
        };
        let table = |r: &String| {
            let (schema, table) = r.split_once('.')?;
            pluto_duck_domain::DatasetName::duckdb(&location, pluto_duck_domain::PROJECT_CATALOG, schema, table)
                .ok()
                .map(LineageDataset::new)
        };
        let mut inputs = datasets.inputs.clone();
        inputs.extend(datasets.tables_read.iter().filter_map(table));
        let mut outputs = datasets.outputs.clone();
        for d in datasets.tables_written.iter().filter_map(table) {
            if !outputs.iter().any(|o| o.name == d.name) {
                outputs.push(d);
            }
        }
        (inputs, outputs)
    }

    pub fn emitter(&self) -> &Arc<dyn LineageEmitter> {
        &self.emitter
    }

    /// The job `run` is a run of: its type is the run kind, and a query's SQL rides along.
    pub fn job(&self, run: &Run, datasets: &RunDatasets) -> LineageJob {
        let name = datasets.job.clone().unwrap_or_else(|| run.kind.as_str().to_owned());
        let job = LineageJob::new(format!("{}/{}", self.namespace, run.project), name)
            .with_job_type(run.kind.as_str().to_ascii_uppercase());
        match run.kind {
            RunKind::Query if !run.input.is_empty() => job.with_sql(run.input.clone()),
            _ => job,
        }
    }

    /// `START`, at the time the run started (now if it has not yet).
    pub async fn started(&self, run: &Run, datasets: &RunDatasets) {
        let mut event = LineageEvent::start(run_uuid(run), self.job(run, datasets));
        if let Some(at) = run.started_at {
            event = event.at(at);
        }
        self.emitter.emit(self.with_datasets(event, run, datasets)).await;
    }

    /// The event that ends `run`, at the time it finished; nothing for a run still queued or running.
    pub async fn finished(&self, run: &Run, datasets: &RunDatasets) {
        let (id, job) = (run_uuid(run), self.job(run, datasets));
        let message = || {
            run.failure
                .as_ref()
                .map(|f| f.message.clone())
                .unwrap_or_else(|| format!("the run {}", run.status.as_str().replace('_', " ")))
        };
        let event = match run.status {
            RunStatus::Succeeded => LineageEvent::complete(id, job),
            RunStatus::Failed | RunStatus::TimedOut => LineageEvent::fail(id, job, message()),
            RunStatus::Cancelled => LineageEvent::abort(id, job),
            RunStatus::Queued | RunStatus::Running => {
                debug!(run_id = %run.id, "lineage of an unfinished run not reported");
                return;
            }
        };
        let event = match run.finished_at {
            Some(at) => event.at(at),
            None => event,
        };
        self.emitter.emit(self.with_datasets(event, run, datasets)).await;
    }

    /// Both events of a run that has ended (a run reported by an outside system, a run recorded after the
    /// fact): `START` when it had started, then its end.
    pub async fn report(&self, run: &Run, datasets: &RunDatasets) {
        if !run.status.is_terminal() {
            return;
        }
        if run.started_at.is_some() {
            self.started(run, datasets).await;
        }
        self.finished(run, datasets).await;
    }
}

/// Every run the jobs machine runs is reported, with the datasets its work told: the job is the run kind in the
/// run's project unless the work names it, a query's SQL rides along.
#[async_trait::async_trait]
impl super::jobs::RunObserver for LineageService {
    async fn started(&self, run: &Run, datasets: &RunDatasets) {
        LineageService::started(self, run, datasets).await;
    }

    async fn finished(&self, run: &Run, datasets: &RunDatasets) {
        LineageService::finished(self, run, datasets).await;
    }
}

impl LineageService {
    fn with_datasets(&self, mut event: LineageEvent, run: &Run, datasets: &RunDatasets) -> LineageEvent {
        (event.inputs, event.outputs) = self.resolve(run, datasets);
        event
    }
}

/// The run's OpenLineage id: its own id, which `Jobs` mints as a UUID. An id that is not one (a run recorded by
/// an older version) maps to a fixed UUID made from it, so its events still share one run id.
pub fn run_uuid(run: &Run) -> Uuid {
    if let Ok(id) = Uuid::parse_str(run.id.as_str()) {
        return id;
    }
    // Two FNV-1a hashes of the id (different offsets): stable across builds, unlike std's hasher.
    let fnv = |offset: u64| {
        run.id
            .as_str()
            .bytes()
            .fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;

    use chrono::{TimeZone, Utc};
    use pluto_duck_domain::{DatasetName, ProjectId, RunFailure, RunId};

    use super::*;
    use crate::ports::{MockLineageEmitter, RunState};

    /// A mock emitter that keeps what it is given.
    fn recording() -> (Arc<dyn LineageEmitter>, Arc<Mutex<Vec<LineageEvent>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut emitter = MockLineageEmitter::new();
        let keep = Arc::clone(&seen);
        emitter.expect_emit().returning(move |e| keep.lock().unwrap().push(e));
        (Arc::new(emitter), seen)
    }

    fn run(kind: RunKind, input: &str) -> Run {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let mut run = Run::new(
            RunId::parse(Uuid::now_v7().to_string()).unwrap(),
            ProjectId::parse("sales").unwrap(),
            kind,
            input.to_owned(),
            t0,
        );
        run.start(t0 + chrono::Duration::seconds(1)).unwrap();
        run
    }

    fn datasets() -> RunDatasets {
        RunDatasets {
            job: Some("ingest.orders".into()),
            inputs: vec![LineageDataset::new(
                DatasetName::postgres("db", 5432, "shop", "public", "orders").unwrap(),
            )],
            outputs: vec![LineageDataset::new(
                DatasetName::duckdb("/w/sales.duckdb", "sales", "raw", "orders").unwrap(),
            )],
            ..RunDatasets::default()
        }
    }

    #[tokio::test]
    async fn a_finished_run_reports_start_then_its_end_with_one_run_id() {
        let (emitter, seen) = recording();
        let lineage = LineageService::new(emitter, "pluto-duck");
        let mut ok = run(RunKind::Ingest, "raw.orders");
        ok.succeed(ok.started_at.unwrap() + chrono::Duration::seconds(5))
            .unwrap();
        let mut failed = run(RunKind::Ingest, "raw.orders");
        failed
            .fail(
                RunFailure {
                    message: "Conversion Error: could not convert".into(),
                    position: None,
                },
                failed.started_at.unwrap() + chrono::Duration::seconds(2),
            )
            .unwrap();
        let mut cancelled = run(RunKind::Ingest, "raw.orders");
        cancelled.cancel(cancelled.started_at.unwrap()).unwrap();
        for r in [&ok, &failed, &cancelled] {
            lineage.report(r, &datasets()).await;
        }

        let events = seen.lock().unwrap().clone();
        let states: Vec<RunState> = events.iter().map(|e| e.state).collect();
        use RunState::*;
        assert_eq!(states, [Start, Complete, Start, Fail, Start, Abort]);
        for (pair, r) in events.chunks(2).zip([&ok, &failed, &cancelled]) {
            let id = Uuid::parse_str(r.id.as_str()).unwrap();
            assert!(pair.iter().all(|e| e.run_id == id), "one run id per run");
            assert_eq!(pair[0].event_time, r.started_at.unwrap());
            assert_eq!(pair[1].event_time, r.finished_at.unwrap());
            for e in pair {
                assert_eq!(
                    (e.job.namespace.as_str(), e.job.name.as_str()),
                    ("pluto-duck/sales", "ingest.orders")
                );
                assert_eq!(e.job.job_type.as_ref().unwrap().job_type.as_deref(), Some("INGEST"));
                assert_eq!(e.inputs, datasets().inputs);
                assert_eq!(e.outputs, datasets().outputs);
            }
        }
        let error = events[3].run_facets.error.as_ref().unwrap();
        assert_eq!(error.message, "Conversion Error: could not convert");
    }

    #[tokio::test]
    async fn a_query_job_carries_its_sql_and_a_timeout_fails() {
        let (emitter, seen) = recording();
        let lineage = LineageService::new(emitter, "pluto-duck");
        let mut q = run(RunKind::Query, "select 1");
        q.time_out(1000, q.started_at.unwrap() + chrono::Duration::seconds(1))
            .unwrap();
        lineage.finished(&q, &RunDatasets::default()).await;
        let events = seen.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].state, RunState::Fail);
        assert_eq!(events[0].job.name, "query");
        assert_eq!(events[0].job.sql.as_ref().unwrap().query, "select 1");
        assert!(!events[0].run_facets.error.as_ref().unwrap().message.is_empty());
    }

    #[tokio::test]
    async fn unfinished_runs_report_only_their_start() {
        let (emitter, seen) = recording();
        let lineage = LineageService::new(emitter, "pluto-duck");
        let running = run(RunKind::AnalysisRun, "sales.kpis");
        lineage.report(&running, &RunDatasets::default()).await;
        lineage.finished(&running, &RunDatasets::default()).await;
        assert!(seen.lock().unwrap().is_empty());
        lineage.started(&running, &RunDatasets::default()).await;
        let events = seen.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].state, events[0].job.name.as_str()),
            (RunState::Start, "analysis_run")
        );
        assert!(events[0].job.sql.is_none());
    }

    #[test]
    fn run_ids_that_are_not_uuids_map_to_a_fixed_one() {
        let mut r = run(RunKind::Query, "select 1");
        r.id = RunId::parse("legacy-42").unwrap();
        let a = run_uuid(&r);
        assert_eq!(a, run_uuid(&r));
        r.id = RunId::parse("legacy-43").unwrap();
        assert_ne!(a, run_uuid(&r));
        assert_eq!(a.get_version_num(), 4);
    }
}
