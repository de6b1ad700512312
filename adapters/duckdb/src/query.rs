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
    let mut meta = Some(meta);
    let mut attempt = 0;
    loop {
        let outcome = run_once(conn, wrap, before, last, &request.params, &mut meta, &tx, &err);
        // Never hand a connection with an open transaction back to the pool.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        match outcome {
            // A DuckLake commit that lost a race was rolled back whole: nothing was streamed yet, so try again.
            Err((e, true))
                if meta.is_some() && attempt + 1 < crate::lake::CONFLICT_ATTEMPTS && !cancel.is_cancelled() =>
            {
                tracing::warn!(attempt, error = %e, "lake commit conflict; statements tried again");
                std::thread::sleep(crate::lake::conflict_backoff(attempt));
                attempt += 1;
            }
            Err((e, _)) => {
                match meta.take() {
                    Some(m) => {
                        let _ = m.send(Err(e));
                    }
                    None => {
                        let _ = tx.blocking_send(Err(e));
                    }
                }
                return;
            }
            Ok(()) => return,
        }
    }
}

/// One try of the statements. `Err((error, conflict))` when the error is not yet reported; errors met while
/// streaming go to the consumer directly.
#[allow(clippy::too_many_arguments)]
fn run_once(
    conn: &Connection,
    wrap: bool,
    before: &[StatementText],
    last: &StatementText,
    params: &[ParamValue],
    meta: &mut Option<oneshot::Sender<Meta>>,
    tx: &BatchTx,
    err: &dyn Fn(duckdb::Error, &StatementText) -> WarehouseError,
) -> Result<(), (WarehouseError, bool)> {
    let fail = |e: duckdb::Error, s: &StatementText| {
        let conflict = crate::lake::is_commit_conflict(&e.to_string());
        (err(e, s), conflict)
    };
    if wrap {
        conn.execute_batch("BEGIN TRANSACTION").map_err(|e| fail(e, last))?;
    }
    let ran = before
        .iter()
        .try_for_each(|s| conn.execute_batch(&s.text).map_err(|e| fail(e, s)))
        .and_then(|()| stream_last(conn, last, params, meta, tx, &fail));
    if !wrap {
        return ran.map(drop);
    }
    // Undo the earlier statements explicitly: the connection's autocommit flag does not say that a failed
    // statement left the transaction open, and the next job on this connection would see (and commit) them.
    match ran {
        Ok(true) => {
            if let Err(e) = conn.execute_batch("COMMIT") {
                let (e, _) = fail(e, last);
                // The result already went out: the consumer reads the failure at the end of the stream.
                let _ = tx.blocking_send(Err(e));
            }
            Ok(())
        }
        Ok(false) => {
            let _ = conn.execute_batch("ROLLBACK");
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn stream_last(
    conn: &Connection,
    s: &StatementText,
    params: &[ParamValue],
    meta: &mut Option<oneshot::Sender<Meta>>,
    tx: &BatchTx,
    fail: &dyn Fn(duckdb::Error, &StatementText) -> (WarehouseError, bool),
) -> Result<bool, (WarehouseError, bool)> {
    let mut stmt = conn.prepare(&s.text).map_err(|e| fail(e, s))?;
    if stmt.parameter_count() != params.len() {
        return Err((
            WarehouseError::Invalid(format!(
                "the statement takes {} parameter(s) but {} were given",
                stmt.parameter_count(),
                params.len()
            )),
            false,
        ));
    }
    let values: Vec<Value> = params.iter().map(to_value).collect();
    // `stream_arrow` executes lazily; its iterator panics on a fetch error, so fetch with `step` instead.
    stmt.stream_arrow(duckdb::params_from_iter(values))
        .map(drop)
        .map_err(|e| fail(e, s))?;
    let schema = stmt.schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: duckdb_type_name(f.data_type()),
        })
        .collect();
    let Some(m) = meta.take() else {
        return Ok(true);
    };
    if m.send(Ok((schema.clone(), columns))).is_err() {
        return Ok(true);
    }
    loop {
        match stmt.step() {
            Ok(Some(array)) => {
                let batch = RecordBatch::from(&array);
                // Re-attach the schema: the struct array's fields lose the statement's metadata.
                let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).unwrap_or(batch);
                if tx.blocking_send(Ok(batch)).is_err() {
                    return Ok(true); // the consumer has all it wants (row limit) or went away
                }
            }
            Ok(None) => return Ok(true),
            Err(e) => {
                let (e, _) = fail(e, s);
                let _ = tx.blocking_send(Err(e));
                return Ok(false);
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
