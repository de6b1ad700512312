//! What the job resources (queries, ingests, analysis runs) share on the wire: run ids in paths, waits, and the
//! Server-Sent Events of a run.

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{stream, Stream, StreamExt};
use pluto_duck_application::{job_wait, Subscription};
use pluto_duck_domain::{RunEvent, RunEventKind};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::openapi::{text_enum, RunIdText};
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunPath {
    /// The run.
    #[param(value_type = RunIdText)]
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobWaitParams {
    /// Wait up to this many seconds for the job to finish (default 0: answer 202 at once).
    #[param(minimum = 0, maximum = 3600)]
    wait: Option<f64>,
}

impl JobWaitParams {
    pub fn wait(&self) -> Result<Duration, ApiError> {
        Ok(job_wait(self.wait.unwrap_or(0.0))?)
    }
}

text_enum!(
    /// The events of a run, in order: `queued`, `started`, `progress`..., then one terminal event. Agent turns
    /// and evaluations report their steps in between (with `data`); a job run names its child run (`child`).
    RunEventName,
    "queued, started, progress (repeated), the steps of agent turns and evaluations, then one of completed, \
     failed, cancelled, timed_out",
    [
        "queued", "started", "progress", "completed", "failed", "cancelled", "timed_out", "step_started",
        "step_finished", "plan", "schema", "sql", "sql_failed", "sql_doubted", "sql_verified", "repair",
        "tool_call", "tool_result", "approval_requested", "approval_decided", "text", "answer", "error",
        "question", "dataset_loading", "node", "child"
    ]
);

/// The data of a run's event: its name, when, and what it tells.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunEventData {
    pub at: chrono::DateTime<chrono::Utc>,
    /// Bytes so far (progress) or in all (completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why it failed or timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Jobs made of parts (an ingest of several files): parts done so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<u64>,
    /// Rows so far (progress) or in all (completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The event's name.
    #[schema(value_type = RunEventName)]
    pub status: String,
    /// What a step of an agent turn or an evaluation tells: a tool call, a chunk of text, an approval request...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

impl From<&RunEvent> for RunEventData {
    fn from(e: &RunEvent) -> Self {
        let mut data = RunEventData {
            at: e.at,
            bytes: None,
            error: None,
            part: None,
            parts: None,
            rows: None,
            status: e.kind.name().to_owned(),
            data: None,
        };
        match &e.kind {
            RunEventKind::Progress { rows, bytes } | RunEventKind::Completed { rows, bytes } => {
                (data.rows, data.bytes) = (Some(*rows), Some(*bytes));
            }
            RunEventKind::PartProgress {
                part,
                parts,
                rows,
                bytes,
            } => {
                (data.part, data.parts) = (Some(*part), Some(*parts));
                (data.rows, data.bytes) = (Some(*rows), Some(*bytes));
            }
            RunEventKind::Failed { message } | RunEventKind::TimedOut { message } => {
                data.error = Some(message.clone());
            }
            RunEventKind::Node(n) => {
                data.data = Some(super::dbt::node_event_json(n, e.at));
            }
            RunEventKind::Custom { data: text, .. } => {
                data.data = Some(serde_json::from_str(text).unwrap_or(serde_json::Value::Null));
            }
            RunEventKind::Queued | RunEventKind::Started | RunEventKind::Cancelled => {}
        }
        data
    }
}

/// One Server-Sent Event of a run as an SSE client reads it: `event` names it, `id` orders it, `data` is a
/// [`RunEventData`] as JSON text. Comment lines keep the connection alive.
pub struct RunEventFrame;

impl PartialSchema for RunEventFrame {
    fn schema() -> RefOr<Schema> {
        sse_frame_schema(
            "One event of the stream, as an SSE client yields it (`event`, `id`, `data` lines)",
            &RunEventName::name(),
            "Increases by one per event; send the last one seen as `Last-Event-ID`",
            &RunEventData::name(),
            "The event as JSON (a RunEventData)",
        )
    }
}

/// The schema of one Server-Sent Event as a client yields it, shared by every event stream: `event` one of the
/// names in schema `event`, `id` a decimal counter, `data` JSON text whose schema is `data`.
pub fn sse_frame_schema(frame: &str, event: &str, id: &str, data: &str, data_description: &str) -> RefOr<Schema> {
    let mut data_text = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(data_description))
        .content_media_type("application/json")
        .build();
    // JSON Schema's `contentSchema`, which utoipa has no field for.
    data_text.extensions.get_or_insert_with(Default::default).insert(
        "contentSchema".into(),
        serde_json::json!({ "$ref": Ref::from_schema_name(data).ref_location }),
    );
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(frame))
        .property("event", Ref::from_schema_name(event))
        .required("event")
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]+$"))
                .description(Some(id)),
        )
        .required("id")
        .property("data", data_text)
        .required("data")
        .into()
}

impl ToSchema for RunEventFrame {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RunEventFrame")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((RunEventName::name().into_owned(), RunEventName::schema()));
        schemas.push((RunEventData::name().into_owned(), RunEventData::schema()));
        RunEventData::schemas(schemas);
    }
}

fn sse_event(e: &RunEvent) -> Event {
    let data = serde_json::to_string(&RunEventData::from(e)).unwrap_or_default();
    Event::default().id(e.seq.to_string()).event(e.kind.name()).data(data)
}

/// The past events of a run, then its live tail until a terminal event.
pub fn sse_stream(sub: Subscription) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let done = sub.past.iter().any(|e| e.kind.is_terminal());
    let past = stream::iter(sub.past.into_iter().map(|e| Ok(sse_event(&e))));
    let live = match sub.live.filter(|_| !done) {
        Some(rx) => stream::unfold((rx, false), |(mut rx, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let end = e.kind.is_terminal();
                        return Some((Ok(sse_event(&e)), (rx, end)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        })
        .boxed(),
        None => stream::empty().boxed(),
    };
    Sse::new(past.chain(live)).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_keeps_its_wire_shape() {
        let at = chrono::DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let event = |kind| RunEvent { seq: 3, at, kind };
        let text = |kind| serde_json::to_string(&RunEventData::from(&event(kind))).unwrap();
        assert_eq!(
            text(RunEventKind::Progress { rows: 5, bytes: 40 }),
            r#"{"at":"2025-01-02T03:04:05Z","bytes":40,"rows":5,"status":"progress"}"#
        );
        assert_eq!(
            text(RunEventKind::PartProgress {
                part: 1,
                parts: 2,
                rows: 5,
                bytes: 40
            }),
            r#"{"at":"2025-01-02T03:04:05Z","bytes":40,"part":1,"parts":2,"rows":5,"status":"progress"}"#
        );
        assert_eq!(
            text(RunEventKind::Failed { message: "no".into() }),
            r#"{"at":"2025-01-02T03:04:05Z","error":"no","status":"failed"}"#
        );
        assert_eq!(
            text(RunEventKind::Queued),
            r#"{"at":"2025-01-02T03:04:05Z","status":"queued"}"#
        );
    }
}
