//! `FileLineage`: one OpenLineage event per line, appended to a file (the default emitter). Each line is written
//! by one `write` on a file opened in append mode, from one background task: lines of concurrent runs never
//! interleave, and neither do those of another process appending to the same file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use pluto_duck_application::ports::{LineageEmitter, LineageEvent, LineageStats};

use crate::json::event_json;
use crate::pipeline::{Pipeline, Sink};
use crate::LineageSetupError;

/// Events waiting to be written before `emit` starts dropping them.
pub const FILE_QUEUE_CAPACITY: usize = 10_000;

pub struct FileLineage {
    path: PathBuf,
    pipeline: Pipeline,
}

impl std::fmt::Debug for FileLineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLineage").field("path", &self.path).finish()
    }
}

impl FileLineage {
    /// Appends to `path` (created with its folder when missing). Call inside a tokio runtime.
    pub fn open(path: impl AsRef<Path>, producer: impl Into<String>) -> Result<Self, LineageSetupError> {
        let path = path.as_ref().to_path_buf();
        let setup = |source| LineageSetupError::File {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(setup)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(setup)?;
        let sink = FileSink {
            file: Arc::new(file),
            producer: producer.into(),
        };
        Ok(Self {
            pipeline: Pipeline::spawn(FILE_QUEUE_CAPACITY, "file", sink),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

struct FileSink {
    file: Arc<File>,
    producer: String,
}

#[async_trait]
impl Sink for FileSink {
    async fn deliver(&mut self, event: LineageEvent) -> bool {
        let mut line = match serde_json::to_vec(&event_json(&event, &self.producer)) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(error = %e, "lineage event not encoded");
                return false;
            }
        };
        line.push(b'\n');
        let file = Arc::clone(&self.file);
        // The whole line in one write, off the async threads.
        let written = tokio::task::spawn_blocking(move || (&*file).write_all(&line)).await;
        match written {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "lineage event not written");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "lineage write task failed");
                false
            }
        }
    }
}

#[async_trait]
impl LineageEmitter for FileLineage {
    async fn emit(&self, event: LineageEvent) {
        self.pipeline.emit(event);
    }

    async fn flush(&self) {
        self.pipeline.flush().await;
    }

    fn stats(&self) -> LineageStats {
        self.pipeline.stats()
    }
}
