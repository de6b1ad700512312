//! Wire types of `/api/v1/query`: the submitted job, its state, its parameters.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::HeaderMap;
use pluto_duck_application::agent::Ask;
use pluto_duck_application::ports::{ColumnProfile, ParamValue, ResultPage};
use pluto_duck_application::{QuerySubmission, MAX_SUBMIT_WAIT};
use pluto_duck_domain::{Run, RunStatus};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::extract::{actor, text_header};
use crate::formats::{page_json, ColumnDto};
use crate::openapi::{text_enum, ResultFormat};
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubmitParams {
    /// Wait up to this many seconds (like `Prefer: wait=N`; longer waits are cut to 300) and answer with the
    /// result when it finishes in time; otherwise 202.
    #[param(minimum = 0, maximum = 300)]
    wait: Option<f64>,
    /// Result format for the inline answer (else from `Accept`).
    #[param(value_type = Option<ResultFormat>)]
    pub format: Option<String>,
}

impl SubmitParams {
    /// `?wait=` or `Prefer: wait=N` (RFC 7240), in seconds; none, zero, negative or not a number does not wait.
    pub fn wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let prefer = || {
            headers
                .get_all("prefer")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .find_map(|p| p.trim().strip_prefix("wait=").and_then(|n| n.trim().parse().ok()))
        };
        let secs: f64 = self.wait.or_else(prefer)?;
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_SUBMIT_WAIT.as_secs_f64())))
    }
}

/// The headers a submit reads besides the project's.
pub struct SubmitHeaders;

impl IntoParams for SubmitHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            text_header("Prefer", "`wait=N` (RFC 7240): like `?wait=N`"),
            text_header("X-Pluto-Actor", "Who the query is recorded as run by"),
        ]
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// First row of the page (default 0).
    pub offset: Option<u64>,
    /// Rows in the page (default 100, at most 10000).
    pub limit: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultParams {
    /// The format (overrides `Accept`).
    #[param(value_type = Option<ResultFormat>)]
    pub format: Option<String>,
    pub offset: Option<u64>,
    /// All rows after `offset` when absent.
    pub limit: Option<u64>,
}

text_enum!(
    /// The states of a run.
    RunStatusName,
    "queued, running, succeeded, failed, cancelled or timed_out",
    ["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]
);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only queries in this state.
    #[param(value_type = Option<RunStatusName>, inline)]
    status: Option<String>,
    /// Default 50, at most 1000.
    limit: Option<u32>,
    offset: Option<u64>,
}

impl ListParams {
    pub fn status(&self) -> Result<Option<RunStatus>, ApiError> {
        self.status
            .as_deref()
            .map(RunStatus::parse)
            .transpose()
            .map_err(|e| ApiError::invalid(e.to_string()))
    }

    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }

    pub fn offset(&self) -> u64 {
        self.offset.unwrap_or(0)
    }
}

/// A query parameter's value: null, a boolean, a number or a string.
pub struct QueryParamValue;

impl PartialSchema for QueryParamValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::Null,
                Type::Boolean,
                Type::Number,
                Type::String,
            ]))
            .into()
    }
}

impl ToSchema for QueryParamValue {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("QueryParamValue")
    }
}

/// A query job. `params` bind to `$1, $2, ...` (or `?`) in the last statement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// One or more statements separated by `;`. Several statements run in order in one transaction; the
    /// result is the last one's. Exactly one of `sql` and `question`.
    pub sql: Option<String>,
    /// A question in plain language: the agent answers it (an agent turn, with the same links and events as a
    /// query job; its answer, SQL, preview and chart in `answer`).
    pub question: Option<String>,
    /// With `question`: continue this conversation (a new one starts otherwise).
    pub conversation_id: Option<String>,
    /// With `question`: actions that write run without waiting for approval.
    #[serde(default)]
    pub auto_approve: bool,
    /// With `question`: privacy mode for a new conversation (no row value goes to the model).
    pub privacy: Option<bool>,
    /// Interrupt the query after this many milliseconds (default and maximum from the server's `query`
    /// configuration: 5 minutes and 6 hours unless set).
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// Keep at most this many rows of the result (`truncated` tells whether rows were cut).
    pub max_rows: Option<u64>,
    /// Refuse anything but reads (SELECT, WITH ... SELECT, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE, ...).
    #[serde(default)]
    pub read_only: bool,
    /// Query parameters: null, booleans, numbers and strings.
    #[serde(default)]
    #[schema(value_type = Vec<QueryParamValue>)]
    pub params: Vec<serde_json::Value>,
}

/// What a `POST /query` asks for: SQL to run, or a question for the agent.
pub enum Request {
    Sql(QuerySubmission),
    Question(Ask),
}

impl QueryBody {
    pub fn into_request(self, headers: &HeaderMap) -> Result<Request, ApiError> {
        match (&self.sql, &self.question) {
            (Some(_), None) => Ok(Request::Sql(self.into_submission(headers)?)),
            (None, Some(_)) => {
                if self.timeout_ms.is_some() || self.max_rows.is_some() || self.read_only || !self.params.is_empty() {
                    return Err(ApiError::invalid(
                        "timeout_ms, max_rows, read_only and params go with sql, not with a question",
                    ));
                }
                Ok(Request::Question(Ask {
                    question: self.question.unwrap_or_default(),
                    conversation: self.conversation_id,
                    auto_approve: self.auto_approve,
                    privacy: self.privacy,
                    actor: actor(headers).unwrap_or_else(|| "api".into()),
                }))
            }
            _ => Err(ApiError::invalid("send exactly one of `sql` and `question`")),
        }
    }

    /// The submission, on behalf of `X-Pluto-Actor` when given.
    fn into_submission(self, headers: &HeaderMap) -> Result<QuerySubmission, ApiError> {
        if self.conversation_id.is_some() || self.auto_approve || self.privacy.is_some() {
            return Err(ApiError::invalid(
                "conversation_id, auto_approve and privacy go with a question, not with sql",
            ));
        }
        Ok(QuerySubmission {
            sql: self.sql.unwrap_or_default(),
            timeout_ms: self.timeout_ms,
            max_rows: self.max_rows,
            read_only: self.read_only,
            params: self.params.into_iter().map(param_value).collect::<Result<_, _>>()?,
            actor: actor(headers),
        })
    }
}

fn param_value(v: serde_json::Value) -> Result<ParamValue, ApiError> {
    Ok(match v {
        serde_json::Value::Null => ParamValue::Null,
        serde_json::Value::Bool(b) => ParamValue::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ParamValue::Int(i),
            None => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => ParamValue::Text(s),
        other => {
            return Err(ApiError::invalid(format!(
                "unsupported parameter {other}: use null, booleans, numbers or strings"
            )))
        }
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunErrorDto {
    pub message: String,
    /// 0-based character offset in the submitted SQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueryLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub events: String,
    pub result: String,
    pub profile: String,
    pub cancel: String,
}

/// A query job's state; with a page of rows once it succeeded.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryDto {
    pub id: String,
    pub project: String,
    #[schema(value_type = RunStatusName)]
    pub status: String,
    pub sql: String,
    pub actor: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub elapsed_ms: Option<u64>,
    pub row_count: u64,
    /// Size of the stored result.
    pub bytes: u64,
    pub truncated: bool,
    pub columns: Vec<ColumnDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunErrorDto>,
    /// The requested page of rows (`offset`, `limit`), as arrays in column order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Vec<serde_json::Value>>>)]
    pub rows: Option<Box<serde_json::value::RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub links: QueryLinks,
    /// `query`, or `agent_turn` for a question.
    #[schema(value_type = QueryKindName)]
    pub kind: &'static str,
    /// An agent turn's question (its `sql` is the SQL it settled on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// An agent turn's outcome once it ended: `answer` (text), `sql`, `preview` (columns, rows), `chart`,
    /// `repairs`, `steps`, `actions` (with approvals), `tokens`, `conversation_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub answer: Option<serde_json::Value>,
}

text_enum!(
    /// What a run of `/query` is.
    QueryKindName,
    "query or agent_turn",
    ["query", "agent_turn"]
);

impl QueryDto {
    pub fn from_run(run: Run) -> Self {
        let base = format!("/api/v1/query/{}", run.id);
        let agent = run.kind == pluto_duck_domain::RunKind::AgentTurn;
        let answer: Option<serde_json::Value> = agent
            .then(|| run.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()))
            .flatten();
        let elapsed_ms = run.elapsed_ms(chrono::Utc::now());
        let (sql, question) = if agent {
            let sql = answer
                .as_ref()
                .and_then(|a| a["sql"].as_str())
                .unwrap_or_default()
                .to_owned();
            (sql, Some(run.input))
        } else {
            (run.input, None)
        };
        Self {
            kind: if agent { "agent_turn" } else { "query" },
            question,
            answer,
            id: run.id.to_string(),
            project: run.project.to_string(),
            status: run.status.as_str().to_owned(),
            elapsed_ms,
            sql,
            actor: run.actor,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            row_count: run.rows,
            bytes: run.bytes,
            truncated: run.truncated,
            columns: run.columns.into_iter().map(Into::into).collect(),
            error: run.failure.map(|f| RunErrorDto {
                message: f.message,
                position: f.position,
            }),
            rows: None,
            offset: None,
            links: QueryLinks {
                events: format!("{base}/events"),
                result: format!("{base}/result"),
                profile: format!("{base}/profile"),
                cancel: format!("{base}/cancel"),
                this: base,
            },
        }
    }

    /// 202 with the job and its `Location`.
    pub fn accepted(self) -> axum::response::Response {
        use axum::http::{header, HeaderValue, StatusCode};
        use axum::response::IntoResponse;
        let location = HeaderValue::from_str(&self.links.this).unwrap_or(HeaderValue::from_static("/api/v1/query"));
        (StatusCode::ACCEPTED, [(header::LOCATION, location)], axum::Json(self)).into_response()
    }

    /// The state with a page of rows from `offset`, when there is one.
    pub async fn with_page(run: Run, page: Option<ResultPage>, offset: u64) -> Result<Self, ApiError> {
        let mut dto = Self::from_run(run);
        if let Some(page) = page {
            dto.rows = Some(page_json(page).await?);
            dto.offset = Some(offset);
        }
        Ok(dto)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueryListDto {
    pub items: Vec<QueryDto>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnProfileDto {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub count: u64,
    pub nulls: u64,
    pub distinct_estimate: u64,
    pub min: Option<String>,
    pub max: Option<String>,
    /// `[value, count]`, most frequent first (text columns).
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub top_values: Vec<(String, u64)>,
}

impl From<ColumnProfile> for ColumnProfileDto {
    fn from(p: ColumnProfile) -> Self {
        Self {
            name: p.name,
            data_type: p.data_type,
            count: p.count,
            nulls: p.nulls,
            distinct_estimate: p.distinct_estimate,
            min: p.min,
            max: p.max,
            top_values: p.top_values,
        }
    }
}
