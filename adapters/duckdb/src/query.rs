//! Streaming query execution. The blocking side runs the statements and pushes Arrow batches into a bounded
//! channel (back-pressure: it waits while the consumer is behind); cancellation interrupts the connection.

use duckdb::arrow::array::RecordBatch;
use duckdb::arrow::datatypes::SchemaRef;
use duckdb::types::Value;
use duckdb::Connection;
use pluto_duck_application::ports::{
    BatchStream, ParamValue, QueryRequest, QueryStream, StatementText, WarehouseError,
};
use pluto_duck_domain::Column;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::errors::map_duckdb_error;
use crate::types::duckdb_type_name;

/// Batches in flight between DuckDB and the consumer (each ~2048 rows).
const CHANNEL_BATCHES: usize = 8;

type Meta = Result<(SchemaRef, Vec<Column>), WarehouseError>;
type BatchTx = mpsc::Sender<Result<RecordBatch, WarehouseError>>;
type BatchRx = mpsc::Receiver<Result<RecordBatch, WarehouseError>>;

pub(crate) struct Plan {
    pub request: QueryRequest,
    pub cancel: CancellationToken,
    pub extension_directory: std::path::PathBuf,
}

/// Runs on a blocking thread with a pooled connection. Reports the schema (or the first error) through
/// `meta`, then streams batches through `tx`.
pub(crate) fn run(
    conn: &Connection,
    plan: Plan,
    meta: oneshot::Sender<Meta>,
    tx: mpsc::Sender<Result<RecordBatch, WarehouseError>>,
) {
    let Plan {
        request,
        cancel,
        extension_directory,
    } = plan;
    let err = |e: duckdb::Error, s: &StatementText| {
        if cancel.is_cancelled() {
            WarehouseError::Interrupted
        } else {
            map_duckdb_error(&e, &s.text, s.offset, &extension_directory)
        }
    };
    let Some((last, before)) = request.statements.split_last() else {
        let _ = meta.send(Err(WarehouseError::Invalid("no statement to run".into())));
        return;
    };
    // Several statements run as one unit, unless the user manages transactions themselves.
    let manages_tx = request.statements.iter().any(|s| is_transaction_control(&s.text));
    let wrap = !before.is_empty() && !manages_tx;
    if wrap {
        if let Err(e) = conn.execute_batch("BEGIN TRANSACTION") {
            let _ = meta.send(Err(err(e, last)));
            return;
        }
    }
    let failure = before
        .iter()
        .find_map(|s| conn.execute_batch(&s.text).err().map(|e| err(e, s)));
    let failed = match failure {
        Some(e) => {
            let _ = meta.send(Err(e));
            true
        }
        None => !stream_last(conn, last, &request.params, meta, &tx, &err),
    };
    if wrap {
        let end = conn.execute_batch(if failed { "ROLLBACK" } else { "COMMIT" });
        if let (false, Err(e)) = (failed, end) {
            // The statements ran but did not commit: the run must fail, not report their result.
            let _ = tx.blocking_send(Err(err(e, last)));
        }
    }
    // Never hand a connection with an open transaction back to the pool.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn stream_last(
    conn: &Connection,
    s: &StatementText,
    params: &[ParamValue],
    meta: oneshot::Sender<Meta>,
    tx: &mpsc::Sender<Result<RecordBatch, WarehouseError>>,
    err: &dyn Fn(duckdb::Error, &StatementText) -> WarehouseError,
) -> bool {
    let mut stmt = match conn.prepare(&s.text) {
        Ok(stmt) => stmt,
        Err(e) => {
            let _ = meta.send(Err(err(e, s)));
            return false;
        }
    };
    if stmt.parameter_count() != params.len() {
        let _ = meta.send(Err(WarehouseError::Invalid(format!(
            "the statement takes {} parameter(s) but {} were given",
            stmt.parameter_count(),
            params.len()
        ))));
        return false;
    }
    let values: Vec<Value> = params.iter().map(to_value).collect();
    // `stream_arrow` executes lazily; its iterator panics on a fetch error, so fetch with `step` instead.
    if let Err(e) = stmt.stream_arrow(duckdb::params_from_iter(values)).map(drop) {
        let _ = meta.send(Err(err(e, s)));
        return false;
    }
    let schema = stmt.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: duckdb_type_name(f.data_type()),
        })
        .collect();
    if meta.send(Ok((schema.clone(), columns))).is_err() {
        return true;
    }
    loop {
        match stmt.step() {
            Ok(Some(array)) => {
                let batch = RecordBatch::from(&array);
                // Re-attach the schema: the struct array's fields lose the statement's metadata.
                let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).unwrap_or(batch);
                if tx.blocking_send(Ok(batch)).is_err() {
                    return true; // the consumer has all it wants (row limit) or went away
                }
            }
            Ok(None) => return true,
            Err(e) => {
                let _ = tx.blocking_send(Err(err(e, s)));
                return false;
            }
        }
    }
}

fn to_value(p: &ParamValue) -> Value {
    match p {
        ParamValue::Null => Value::Null,
        ParamValue::Bool(b) => Value::Boolean(*b),
        ParamValue::Int(i) => Value::BigInt(*i),
        ParamValue::Float(f) => Value::Double(*f),
        ParamValue::Text(t) => Value::Text(t.clone()),
    }
}

fn is_transaction_control(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    matches!(
        first.as_str(),
        "BEGIN" | "COMMIT" | "ROLLBACK" | "ABORT" | "START" | "END"
    )
}

pub(crate) fn stream_from(rx: mpsc::Receiver<Result<RecordBatch, WarehouseError>>) -> BatchStream {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

pub(crate) fn channel() -> (BatchTx, BatchRx) {
    mpsc::channel(CHANNEL_BATCHES)
}

pub(crate) fn finish(
    meta: Result<Meta, oneshot::error::RecvError>,
    rx: mpsc::Receiver<Result<RecordBatch, WarehouseError>>,
) -> Result<QueryStream, WarehouseError> {
    let (schema, columns) =
        meta.map_err(|_| WarehouseError::Internal("query task ended without a result".into()))??;
    Ok(QueryStream {
        schema,
        columns,
        batches: stream_from(rx),
    })
}
