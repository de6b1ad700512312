//! Finished query results as Arrow IPC files (`<run>.arrows`) plus a small index of batch sizes
//! (`<run>.idx.json`) for paging without reading what is skipped. Arrow keeps every type DuckDB produced
//! exactly, and reading back is a copy, not a decode.

mod profile;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
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

pub struct ArrowIpcResultStore {
    dir: PathBuf,
}

impl ArrowIpcResultStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, ResultError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| ResultError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Self { dir })
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
    async fn write(&self, run: &RunId, schema: SchemaRef, batches: BatchStream) -> Result<StoredResult, ResultError> {
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

    async fn read(&self, run: &RunId, offset: u64, limit: Option<u64>) -> Result<ResultPage, ResultError> {
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
        let (data, run) = (self.data_path(run), run.clone());
        blocking(move || {
            let reader = open(&data, &run)?;
            profile::profile(reader).map_err(|e| io("cannot profile", &data, e))
        })
        .await
    }

    async fn delete(&self, run: &RunId) -> Result<bool, ResultError> {
        let (data, index) = (self.data_path(run), self.index_path(run));
        blocking(move || {
            let _ = std::fs::remove_file(&index);
            match std::fs::remove_file(&data) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io("cannot delete", &data, e)),
            }
        })
        .await
    }

    async fn sweep(&self, policy: RetentionPolicy) -> Result<Vec<RunId>, ResultError> {
        let dir = self.dir.clone();
        blocking(move || {
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
        .await
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
}
