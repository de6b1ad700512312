//! One place that sets up tracing: stderr (pretty on a terminal, JSON otherwise or when asked) and, for the
//! server, a JSON log file under `<data_dir>/logs/` that `pluto-duck logs` reads.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::{LogFormat, LogSection};
use crate::error::{CliError, CliResult};

/// Keeps the file writer flushing until dropped.
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

pub fn init(log: &LogSection, level_flag_given: bool, log_file: Option<&Path>) -> CliResult<TelemetryGuard> {
    // An explicit --log-level wins over RUST_LOG; otherwise RUST_LOG wins over the config file.
    let directive = match std::env::var("RUST_LOG") {
        Ok(env) if !level_flag_given && !env.is_empty() => env,
        _ => log.level.clone(),
    };
    let filter = || {
        EnvFilter::try_new(&directive).map_err(|e| CliError::invalid(format!("invalid log level {directive:?}: {e}")))
    };
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let stderr = if json {
        fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter()?)
            .boxed()
    } else {
        fmt::layer().with_writer(std::io::stderr).with_filter(filter()?).boxed()
    };
    let (file_layer, guard) = match log_file {
        Some(path) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::unavailable(format!("cannot create log directory {}: {e}", dir.display())))?;
            let name = path.file_name().unwrap_or_default();
            let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::never(dir, name));
            let layer = fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter()?)
                .boxed();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init()
        .map_err(|e| CliError::internal(format!("cannot initialise logging: {e}")))?;
    Ok(TelemetryGuard { _file: guard })
}
