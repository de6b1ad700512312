//! Finished query results as Arrow IPC files (`<run>.arrows`) plus a small index of batch sizes
//! (`<run>.idx.json`) for paging without reading what is skipped. Arrow keeps every type DuckDB produced
//! exactly, and reading back is a copy, not a decode.
//!
//! Small results stay in memory (a [`MemoryTier`]): most interactive queries answer a few rows, and two files
//! per query were most of their cost. The oldest held results spill to files when the memory budget is
//! exceeded, and [`ResultStore::persist`] writes the rest out at shutdown, so a result lives as long as a file
//! result would (a crash loses only the held ones).

mod profile;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::StreamExt;
use pluto_duck_application::ports::{
    BatchStream, ColumnProfile, ResultError, ResultPage, ResultStore, RetentionPolicy, StoredResult, WarehouseError,
};
use pluto_duck_domain::RunId;
use tokio::sync::mpsc;

/// Which results stay in memory: each at most `max_result_bytes` (Arrow buffer sizes), all together at most
/// `budget_bytes`. Zero for either keeps every result in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryTier {
    pub max_result_bytes: u64,
    pub budget_bytes: u64,
}

struct Held {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: u64,
    bytes: u64,
    at: SystemTime,
    /// Being written to a file; still served from here until the file is in place.
    spilling: bool,
}

#[derive(Default)]
struct Memory {
    held: HashMap<RunId, Held>,
    /// Oldest first; may name runs no longer held.
    order: VecDeque<RunId>,
    total: u64,
}

pub struct ArrowIpcResultStore {
    dir: PathBuf,
    tier: MemoryTier,
    memory: Mutex<Memory>,
}

impl ArrowIpcResultStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, ResultError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| ResultError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self {
            dir,
            tier: MemoryTier::default(),
            memory: Mutex::default(),
        })
    }

    /// Keeps results within the tier in memory.
    pub fn with_memory(mut self, tier: MemoryTier) -> Self {
        self.tier = tier;
        self
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes batches to the run's file (atomically: a failure leaves no file).
    async fn write_to_file(
        &self,
        run: &RunId,
        schema: SchemaRef,
        batches: BatchStream,
    ) -> Result<StoredResult, ResultError> {
        let (data, index) = (self.data_path(run), self.index_path(run));
        let tmp = data.with_extension("arrows.tmp");
        blocking(move || {
            let result = write_file(&tmp, &data, &index, schema, batches);
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
                let _ = std::fs::remove_file(&index);
            }
            result
        })
        .await
    }

    /// Holds a finished small result, then spills the oldest ones while the budget is exceeded.
    async fn hold(&self, run: &RunId, schema: SchemaRef, batches: Vec<RecordBatch>, bytes: u64) -> u64 {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let victims: Vec<(RunId, SchemaRef, Vec<RecordBatch>)> = {
            let mut m = self.memory();
            let held = Held {
                schema,
                batches,
                rows,
                bytes,
                at: SystemTime::now(),
                spilling: false,
            };
            if let Some(old) = m.held.insert(run.clone(), held) {
                m.total = m.total.saturating_sub(old.bytes);
            }
            m.order.push_back(run.clone());
            m.total += bytes;
            let mut over = m.total.saturating_sub(self.tier.budget_bytes);
            let mut victims = Vec::new();
            let mut i = 0;
            while over > 0 && i < m.order.len() {
                let id = m.order[i].clone();
                i += 1;
                if let Some(h) = m.held.get_mut(&id).filter(|h| !h.spilling) {
                    h.spilling = true;
                    over = over.saturating_sub(h.bytes);
                    victims.push((id, h.schema.clone(), h.batches.clone()));
                }
            }
            victims
        };
        for (id, schema, batches) in victims {
            let stream: BatchStream = Box::pin(futures::stream::iter(batches.into_iter().map(Ok)));
            if let Err(e) = self.write_to_file(&id, schema, stream).await {
                tracing::warn!(run = %id, error = %e, "result not spilled; kept in memory");
                if let Some(h) = self.memory().held.get_mut(&id) {
                    h.spilling = false;
                }
                continue;
            }
            self.forget(&id);
        }
        rows
    }

    /// Drops a held result; true when there was one.
    fn forget(&self, run: &RunId) -> bool {
        let mut m = self.memory();
        let Some(h) = m.held.remove(run) else { return false };
        m.total = m.total.saturating_sub(h.bytes);
        if let Some(pos) = m.order.iter().position(|id| id == run) {
            m.order.remove(pos);
        }
        true
    }

    fn held(&self, run: &RunId) -> Option<(SchemaRef, Vec<RecordBatch>, u64)> {
        let m = self.memory();
        m.held.get(run).map(|h| (h.schema.clone(), h.batches.clone(), h.rows))
    }

    fn data_path(&self, run: &RunId) -> PathBuf {
        self.dir.join(format!("{run}.arrows"))
    }

    fn index_path(&self, run: &RunId) -> PathBuf {
        self.dir.join(format!("{run}.idx.json"))
    }
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> ResultError {
    ResultError::Internal(format!("{what} {}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ResultError> + Send + 'static,
) -> Result<T, ResultError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| ResultError::Internal(format!("result task failed: {e}")))?
}

/// Writes batches to `tmp`, renaming into place only when everything arrived.
fn write_file(
    tmp: &Path,
    data: &Path,
    index: &Path,
    schema: SchemaRef,
    mut batches: BatchStream,
) -> Result<StoredResult, ResultError> {
    let file = File::create(tmp).map_err(|e| io("cannot create", tmp, e))?;
    let mut writer = FileWriter::try_new(BufWriter::with_capacity(1 << 20, file), &schema)
        .map_err(|e| io("cannot write", tmp, e))?;
    let mut sizes: Vec<usize> = Vec::new();
    // The stream is fed by another blocking thread through a channel; waiting on it here keeps this thread
    // the only one touching the file.
    while let Some(item) = futures::executor::block_on(batches.next()) {
        let batch = item?;
        if batch.num_rows() == 0 {
            continue;
        }
        writer.write(&batch).map_err(|e| io("cannot write", tmp, e))?;
        sizes.push(batch.num_rows());
    }
    writer.finish().map_err(|e| io("cannot write", tmp, e))?;
    drop(writer);
    let rows: u64 = sizes.iter().map(|n| *n as u64).sum();
    std::fs::write(index, serde_json::to_vec(&sizes).unwrap_or_default()).map_err(|e| io("cannot write", index, e))?;
    std::fs::rename(tmp, data).map_err(|e| io("cannot rename", tmp, e))?;
    let bytes = std::fs::metadata(data).map(|m| m.len()).unwrap_or(0);
    Ok(StoredResult { rows, bytes })
}

fn open(data: &Path, run: &RunId) -> Result<FileReader<BufReader<File>>, ResultError> {
    let file = match File::open(data) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ResultError::NotFound(run.to_string())),
        Err(e) => return Err(io("cannot open", data, e)),
    };
    FileReader::try_new(BufReader::with_capacity(1 << 20, file), None).map_err(|e| io("cannot read", data, e))
}

#[async_trait]
impl ResultStore for ArrowIpcResultStore {
    async fn write(
        &self,
        run: &RunId,
        schema: SchemaRef,
        mut batches: BatchStream,
    ) -> Result<StoredResult, ResultError> {
        let mut taken = Vec::new();
        if self.tier.max_result_bytes > 0 && self.tier.budget_bytes > 0 {
            let mut bytes = 0u64;
            loop {
                match batches.next().await {
                    None => {
                        let rows = self.hold(run, schema, taken, bytes).await;
                        return Ok(StoredResult { rows, bytes });
                    }
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(b)) if b.num_rows() == 0 => {}
                    Some(Ok(b)) => {
                        bytes += b.get_array_memory_size() as u64;
                        taken.push(b);
                        if bytes > self.tier.max_result_bytes {
                            break;
                        }
                    }
                }
            }
        }
        // Too big to hold: what was taken goes first, then the rest of the stream.
        let rest: BatchStream = Box::pin(futures::stream::iter(taken.into_iter().map(Ok)).chain(batches));
        self.write_to_file(run, schema, rest).await
    }

    async fn read(&self, run: &RunId, offset: u64, limit: Option<u64>) -> Result<ResultPage, ResultError> {
        if let Some((schema, batches, total)) = self.held(run) {
            let end = limit.map_or(total, |l| offset.saturating_add(l).min(total));
            let mut page = Vec::new();
            let mut row = 0u64;
            for b in batches {
                let n = b.num_rows() as u64;
                let from = offset.saturating_sub(row).min(n);
                let to = end.saturating_sub(row).min(n);
                if to > from {
                    page.push(Ok(b.slice(from as usize, (to - from) as usize)));
                }
                row += n;
                if row >= end {
                    break;
                }
            }
            return Ok(ResultPage {
                schema,
                total_rows: total,
                batches: Box::pin(futures::stream::iter(page)),
            });
        }
        let (data, index, run) = (self.data_path(run), self.index_path(run), run.clone());
        let (schema, total_rows, rx) = blocking(move || {
            let mut reader = open(&data, &run)?;
            let sizes: Vec<u64> = std::fs::read(&index)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| ResultError::Internal(format!("result index of run {run} is missing")))?;
            let total: u64 = sizes.iter().sum();
            let schema = reader.schema();
            let end = limit.map_or(total, |l| offset.saturating_add(l).min(total));
            // Skip whole batches without decoding them.
            let mut first_row = 0u64;
            let mut first_batch = 0usize;
            while first_batch < sizes.len() && first_row + sizes[first_batch] <= offset {
                first_row += sizes[first_batch];
                first_batch += 1;
            }
            let (tx, rx) = mpsc::channel::<Result<RecordBatch, WarehouseError>>(8);
            if offset < end {
                reader.set_index(first_batch).map_err(|e| io("cannot seek", &data, e))?;
                std::thread::Builder::new()
                    .name("result-reader".into())
                    .spawn(move || {
                        let mut row = first_row;
                        for batch in reader {
                            let batch = match batch {
                                Ok(b) => b,
                                Err(e) => {
                                    let _ = tx.blocking_send(Err(WarehouseError::Internal(e.to_string())));
                                    return;
                                }
                            };
                            let n = batch.num_rows() as u64;
                            let from = offset.saturating_sub(row).min(n);
                            let to = end.saturating_sub(row).min(n);
                            if to > from
                                && tx
                                    .blocking_send(Ok(batch.slice(from as usize, (to - from) as usize)))
                                    .is_err()
                            {
                                return;
                            }
                            row += n;
                            if row >= end {
                                return;
                            }
                        }
                    })
                    .map_err(|e| ResultError::Internal(e.to_string()))?;
            }
            Ok((schema, total, rx))
        })
        .await?;
        Ok(ResultPage {
            schema,
            total_rows,
            batches: Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)),
        })
    }

    async fn profile(&self, run: &RunId) -> Result<Vec<ColumnProfile>, ResultError> {
        if let Some((schema, batches, _)) = self.held(run) {
            return blocking(move || {
                profile::profile_batches(&schema, batches.into_iter().map(Ok))
                    .map_err(|e| ResultError::Internal(format!("cannot profile: {e}")))
            })
            .await;
        }
        let (data, run) = (self.data_path(run), run.clone());
        blocking(move || {
            let reader = open(&data, &run)?;
            profile::profile(reader).map_err(|e| io("cannot profile", &data, e))
        })
        .await
    }

    async fn delete(&self, run: &RunId) -> Result<bool, ResultError> {
        let was_held = self.forget(run);
        let (data, index) = (self.data_path(run), self.index_path(run));
        blocking(move || {
            let _ = std::fs::remove_file(&index);
            match std::fs::remove_file(&data) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && was_held => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io("cannot delete", &data, e)),
            }
        })
        .await
    }

    async fn sweep(&self, policy: RetentionPolicy) -> Result<Vec<RunId>, ResultError> {
        let cutoff = SystemTime::now() - Duration::from_secs(policy.max_age_secs);
        let expired: Vec<RunId> = {
            let m = self.memory();
            m.held
                .iter()
                .filter(|(_, h)| h.at < cutoff && !h.spilling)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let mut held_removed: Vec<RunId> = expired.into_iter().filter(|id| self.forget(id)).collect();
        let dir = self.dir.clone();
        let mut removed = blocking(move || {
            let mut files: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(&dir)
                .map_err(|e| io("cannot list", &dir, e))?
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "arrows"))
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((m.modified().ok()?, m.len(), e.path()))
                })
                .collect();
            files.sort(); // oldest first
            let cutoff = SystemTime::now() - Duration::from_secs(policy.max_age_secs);
            let mut total: u64 = files.iter().map(|f| f.1).sum();
            let mut removed = Vec::new();
            for (modified, size, path) in files {
                if modified >= cutoff && total <= policy.max_total_bytes {
                    break;
                }
                let Some(id) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| RunId::parse(s).ok())
                else {
                    continue;
                };
                let _ = std::fs::remove_file(path.with_extension("idx.json"));
                if std::fs::remove_file(&path).is_ok() {
                    total = total.saturating_sub(size);
                    removed.push(id);
                }
            }
            Ok(removed)
        })
        .await?;
        removed.append(&mut held_removed);
        Ok(removed)
    }

    async fn persist(&self) -> Result<u64, ResultError> {
        let all: Vec<RunId> = self.memory().order.iter().cloned().collect();
        let mut written = 0;
        for id in all {
            let Some((schema, batches, _)) = self.held(&id) else {
                continue;
            };
            let stream: BatchStream = Box::pin(futures::stream::iter(batches.into_iter().map(Ok)));
            self.write_to_file(&id, schema, stream).await?;
            self.forget(&id);
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
    }

    fn batches(ranges: impl IntoIterator<Item = std::ops::Range<i64>>, fail_at_end: bool) -> BatchStream {
        let s = schema();
        let mut items: Vec<Result<RecordBatch, WarehouseError>> = ranges
            .into_iter()
            .map(|r| Ok(RecordBatch::try_new(s.clone(), vec![Arc::new(Int64Array::from_iter_values(r))]).unwrap()))
            .collect();
        if fail_at_end {
            items.push(Err(WarehouseError::Interrupted));
        }
        Box::pin(futures::stream::iter(items))
    }

    async fn values(page: ResultPage) -> Vec<i64> {
        let batches: Vec<RecordBatch> = page.batches.map(|b| b.unwrap()).collect().await;
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArrowIpcResultStore::new(dir.path()).unwrap();
        let id = RunId::parse("r1").unwrap();
        let stored = store
            .write(&id, schema(), batches([0..10, 10..20, 20..25], false))
            .await
            .unwrap();
        assert_eq!(stored.rows, 25);
        assert!(stored.bytes > 0);
        let page = store.read(&id, 8, Some(5)).await.unwrap();
        assert_eq!(page.total_rows, 25);
        assert_eq!(values(page).await, vec![8, 9, 10, 11, 12]);
        assert_eq!(
            values(store.read(&id, 19, None).await.unwrap()).await,
            (19..25).collect::<Vec<_>>()
        );
        assert!(values(store.read(&id, 30, Some(5)).await.unwrap()).await.is_empty());
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_keeps_the_previous_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArrowIpcResultStore::new(dir.path()).unwrap();
        let id = RunId::parse("r2").unwrap();
        let err = store
            .write(&id, schema(), batches(std::iter::once(0..10), true))
            .await
            .unwrap_err();
        assert!(matches!(err, ResultError::Upstream(WarehouseError::Interrupted)));
        assert!(matches!(store.read(&id, 0, None).await, Err(ResultError::NotFound(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no partial files");
    }

    #[tokio::test]
    async fn sweep_removes_beyond_the_size_budget_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArrowIpcResultStore::new(dir.path()).unwrap();
        for i in 0..3 {
            let id = RunId::parse(format!("s{i}")).unwrap();
            store
                .write(&id, schema(), batches(std::iter::once(0..1000), false))
                .await
                .unwrap();
            // Distinct modification times, oldest first.
            let f = std::fs::File::options()
                .write(true)
                .open(dir.path().join(format!("s{i}.arrows")))
                .unwrap();
            f.set_modified(SystemTime::now() - Duration::from_secs(100 - i * 10))
                .unwrap();
        }
        let size = std::fs::metadata(dir.path().join("s0.arrows")).unwrap().len();
        let removed = store
            .sweep(RetentionPolicy {
                max_age_secs: 3600,
                max_total_bytes: size * 2,
            })
            .await
            .unwrap();
        assert_eq!(removed, vec![RunId::parse("s0").unwrap()]);
        let removed = store
            .sweep(RetentionPolicy {
                max_age_secs: 85,
                max_total_bytes: u64::MAX,
            })
            .await
            .unwrap();
        assert_eq!(removed, vec![RunId::parse("s1").unwrap()]);
        assert!(store.read(&RunId::parse("s2").unwrap(), 0, None).await.is_ok());
    }

    #[tokio::test]
    async fn profiles_a_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArrowIpcResultStore::new(dir.path()).unwrap();
        let id = RunId::parse("p").unwrap();
        store.write(&id, schema(), batches([5..10, 0..5], false)).await.unwrap();
        let p = store.profile(&id).await.unwrap();
        assert_eq!((p[0].count, p[0].nulls, p[0].distinct_estimate), (10, 0, 10));
        assert_eq!((p[0].min.as_deref(), p[0].max.as_deref()), (Some("0"), Some("9")));
    }

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    fn tiered(dir: &Path, max_result_bytes: u64, budget_bytes: u64) -> ArrowIpcResultStore {
        ArrowIpcResultStore::new(dir).unwrap().with_memory(MemoryTier {
            max_result_bytes,
            budget_bytes,
        })
    }

    #[tokio::test]
    async fn small_results_are_held_in_memory_and_served_like_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = tiered(dir.path(), 1 << 20, 64 << 20);
        let id = RunId::parse("m1").unwrap();
        let stored = store
            .write(&id, schema(), batches([0..10, 10..20, 20..25], false))
            .await
            .unwrap();
        assert_eq!(stored.rows, 25);
        assert_eq!(files(dir.path()), 0, "a small result writes no file");
        let page = store.read(&id, 8, Some(5)).await.unwrap();
        assert_eq!(page.total_rows, 25);
        assert_eq!(values(page).await, vec![8, 9, 10, 11, 12]);
        assert_eq!(
            values(store.read(&id, 19, None).await.unwrap()).await,
            (19..25).collect::<Vec<_>>()
        );
        assert_eq!(store.profile(&id).await.unwrap()[0].count, 25);
        assert!(store.delete(&id).await.unwrap());
        assert!(matches!(store.read(&id, 0, None).await, Err(ResultError::NotFound(_))));
        // A failed write holds nothing either.
        let bad = RunId::parse("m2").unwrap();
        assert!(store
            .write(&bad, schema(), batches(std::iter::once(0..10), true))
            .await
            .is_err());
        assert!(matches!(store.read(&bad, 0, None).await, Err(ResultError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_result_past_the_size_limit_goes_to_a_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = tiered(dir.path(), 1000, 64 << 20);
        let id = RunId::parse("big").unwrap();
        let stored = store
            .write(&id, schema(), batches([0..100, 100..200, 200..300, 300..400], false))
            .await
            .unwrap();
        assert_eq!(stored.rows, 400);
        assert!(dir.path().join("big.arrows").exists());
        assert_eq!(
            values(store.read(&id, 0, None).await.unwrap()).await,
            (0..400).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn past_the_budget_the_oldest_spill_to_files_and_persist_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let one = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from_iter_values(0..100))])
            .unwrap()
            .get_array_memory_size() as u64;
        // Room for two results.
        let store = tiered(dir.path(), one * 2, one * 2);
        for i in 0..3 {
            let id = RunId::parse(format!("r{i}")).unwrap();
            store
                .write(&id, schema(), batches(std::iter::once(0..100), false))
                .await
                .unwrap();
        }
        assert!(dir.path().join("r0.arrows").exists(), "the oldest spilled");
        assert!(!dir.path().join("r2.arrows").exists(), "the newest held");
        for i in 0..3 {
            let id = RunId::parse(format!("r{i}")).unwrap();
            assert_eq!(store.read(&id, 0, None).await.unwrap().total_rows, 100);
        }
        assert_eq!(store.persist().await.unwrap(), 2);
        let reopened = ArrowIpcResultStore::new(dir.path()).unwrap();
        for i in 0..3 {
            let id = RunId::parse(format!("r{i}")).unwrap();
            assert_eq!(reopened.read(&id, 0, None).await.unwrap().total_rows, 100);
        }
    }

    #[tokio::test]
    async fn sweep_forgets_held_results_past_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = tiered(dir.path(), 1 << 20, 64 << 20);
        let id = RunId::parse("old").unwrap();
        store
            .write(&id, schema(), batches(std::iter::once(0..10), false))
            .await
            .unwrap();
        let keep = RetentionPolicy {
            max_age_secs: 3600,
            max_total_bytes: u64::MAX,
        };
        assert!(store.sweep(keep).await.unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let removed = store
            .sweep(RetentionPolicy {
                max_age_secs: 0,
                max_total_bytes: u64::MAX,
            })
            .await
            .unwrap();
        assert_eq!(removed, vec![id.clone()]);
        assert!(matches!(store.read(&id, 0, None).await, Err(ResultError::NotFound(_))));
    }
}
