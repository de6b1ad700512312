//! `LineageEmitter` adapters: `FileLineage` (OpenLineage JSON lines in a file, the default), `HttpLineage` (an
//! OpenLineage endpoint such as Marquez) and `NoLineage` (off). The JSON itself is made in `json`, for all.

mod file;
mod http;
pub mod json;
mod pipeline;

use async_trait::async_trait;
use pluto_duck_application::ports::{LineageEmitter, LineageEvent, LineageStats};

pub use file::{FileLineage, FILE_QUEUE_CAPACITY};
pub use http::{HttpLineage, HttpLineageConfig};
pub use json::{event_json, DEFAULT_PRODUCER};

/// An emitter that cannot start. Messages carry no API key.
#[derive(Debug, thiserror::Error)]
pub enum LineageSetupError {
    #[error("invalid lineage endpoint: {0}")]
    Endpoint(String),
    #[error("cannot open the lineage file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Lineage off: events are dropped without a count.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLineage;

#[async_trait]
impl LineageEmitter for NoLineage {
    async fn emit(&self, _event: LineageEvent) {}

    async fn flush(&self) {}

    fn stats(&self) -> LineageStats {
        LineageStats::default()
    }
}

/// Which emitter to start: what bootstrap reads from configuration.
#[derive(Debug, Clone)]
pub enum LineageTransport {
    /// JSON lines appended to this file (the default: `<data dir>/lineage/events.jsonl`, say).
    File {
        path: std::path::PathBuf,
        producer: String,
    },
    Http(HttpLineageConfig),
    Off,
}

/// Starts the emitter `transport` names, on the current tokio runtime.
pub fn start_emitter(transport: LineageTransport) -> Result<std::sync::Arc<dyn LineageEmitter>, LineageSetupError> {
    Ok(match transport {
        LineageTransport::File { path, producer } => std::sync::Arc::new(FileLineage::open(path, producer)?),
        LineageTransport::Http(config) => std::sync::Arc::new(HttpLineage::new(config)?),
        LineageTransport::Off => std::sync::Arc::new(NoLineage),
    })
}
