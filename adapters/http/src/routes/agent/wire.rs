//! Wire types of the agent's endpoints: conversations, approvals, actions, the model settings, evaluations.

use pluto_duck_application::agent::actions::ActionSpec;
use pluto_duck_application::agent::eval::{EvalRequest, QuestionSet};
use pluto_duck_application::agent::{ApprovalRequest, Decision, LlmSettingsUpdate, LlmSettingsView};
use pluto_duck_domain::{Conversation, ConversationMessage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::openapi::text_enum;
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The conversation.
    #[param(pattern = "^[A-Za-z0-9-]{1,64}$")]
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ApprovalPath {
    /// The approval request.
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ActionPath {
    /// The action's dotted name (`query.run`).
    #[param(pattern = "^[a-z]+\\.[a-z_]+$")]
    pub name: String,
}

/// A new conversation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSessionBody {
    #[schema(max_length = 200)]
    pub title: Option<String>,
    /// Privacy mode: no row value of any table is sent to the model.
    pub privacy: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    pub id: String,
    pub title: String,
    pub privacy: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Oldest first (only on a single conversation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageDto>>,
}

impl SessionDto {
    pub fn new(c: Conversation, messages: Option<Vec<ConversationMessage>>) -> Self {
        Self {
            id: c.id.to_string(),
            title: c.title,
            privacy: c.privacy,
            created_at: c.created_at,
            updated_at: c.updated_at,
            messages: messages.map(|m| m.into_iter().map(MessageDto::from).collect()),
        }
    }
}

text_enum!(
    /// Who wrote a message.
    MessageRoleName,
    "user or assistant",
    ["user", "assistant"]
);

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDto {
    pub id: String,
    #[schema(value_type = MessageRoleName)]
    pub role: &'static str,
    pub content: String,
    /// The agent turn (a run, under `/api/v1/query/{run}`).
    pub run: Option<String>,
    /// The verified SQL of an answer.
    pub sql: Option<String>,
    /// An answer's preview and chart.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<ConversationMessage> for MessageDto {
    fn from(m: ConversationMessage) -> Self {
        Self {
            id: m.id,
            role: m.role.as_str(),
            content: m.content,
            run: m.run.map(|r| r.to_string()),
            sql: m.sql,
            data: m.data.and_then(|d| serde_json::from_str(&d).ok()),
            created_at: m.created_at,
        }
    }
}

/// A question in a conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    #[schema(min_length = 1)]
    pub question: String,
    /// Actions that write run without waiting for approval.
    #[serde(default)]
    pub auto_approve: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalDto {
    pub id: String,
    /// The agent turn waiting for it.
    pub run: String,
    pub conversation_id: Option<String>,
    pub action: String,
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

impl From<ApprovalRequest> for ApprovalDto {
    fn from(a: ApprovalRequest) -> Self {
        Self {
            id: a.id,
            run: a.run.to_string(),
            conversation_id: a.conversation,
            action: a.action,
            args: a.args,
            requested_at: a.requested_at,
        }
    }
}

text_enum!(
    /// A person's decision on an action.
    DecisionName,
    "approve, reject, or edit (approve with other arguments)",
    ["approve", "reject", "edit"]
);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[schema(value_type = DecisionName)]
    pub decision: String,
    /// `edit`: the arguments to run the action with instead.
    #[schema(value_type = Option<Object>)]
    pub args: Option<serde_json::Value>,
    /// `reject`: why, told to the model.
    pub reason: Option<String>,
}

impl DecisionBody {
    pub fn decision(self) -> Result<Decision, ApiError> {
        match (self.decision.as_str(), self.args) {
            ("approve", None) => Ok(Decision::Approve),
            ("reject", None) => Ok(Decision::Reject { reason: self.reason }),
            ("edit", Some(args)) if args.is_object() => Ok(Decision::Edit { args }),
            ("edit", _) => Err(ApiError::invalid("edit takes `args`, a JSON object")),
            ("approve" | "reject", Some(_)) => Err(ApiError::invalid("only edit takes `args`")),
            (other, _) => Err(ApiError::invalid(format!(
                "decision must be approve, reject or edit, not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDto {
    /// Dotted: `query.run`; as a model's tool, `query_run`.
    pub name: &'static str,
    pub tool: String,
    pub description: &'static str,
    /// The JSON schema of the arguments.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// Changes data or definitions (the agent asks a person first).
    pub writes: bool,
}

impl From<ActionSpec> for ActionDto {
    fn from(s: ActionSpec) -> Self {
        Self {
            tool: s.tool_name(),
            name: s.name,
            description: s.description,
            parameters: s.parameters,
            writes: s.writes,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The action's arguments, as its `parameters` schema describes them.
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResultDto {
    /// What the action reports, as text.
    pub text: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub sql: Option<String>,
    /// A read's first rows.
    #[schema(value_type = Option<Object>)]
    pub preview: Option<serde_json::Value>,
}

text_enum!(
    /// The agent's model providers.
    ProviderName,
    "openai (any OpenAI-compatible server), ollama, scripted, or none",
    ["openai", "ollama", "scripted", "none"]
);

#[derive(Debug, Serialize, ToSchema)]
pub struct LlmSettingsDto {
    #[schema(value_type = ProviderName)]
    pub provider: String,
    pub model: String,
    pub base_url: Option<String>,
    pub script: Option<String>,
    /// The key itself is never shown.
    pub api_key_set: bool,
    /// `settings` (the secret store), `config` or `none`.
    pub api_key_source: &'static str,
}

impl From<LlmSettingsView> for LlmSettingsDto {
    fn from(v: LlmSettingsView) -> Self {
        Self {
            provider: v.provider,
            model: v.model,
            base_url: v.base_url,
            script: v.script,
            api_key_set: v.api_key_set,
            api_key_source: v.api_key_source,
        }
    }
}

/// A change of the model settings: absent fields stay, `null` clears `base_url`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSettingsBody {
    #[schema(value_type = Option<ProviderName>)]
    pub provider: Option<String>,
    #[schema(min_length = 1, max_length = 256)]
    pub model: Option<String>,
    #[serde(default, with = "serde_with_double_option")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Option<String>>,
    /// Write-only: kept in the secret store, never returned; an empty string removes it.
    pub api_key: Option<String>,
}

/// `absent` → None, `null` → Some(None), a value → Some(Some(v)).
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

impl From<LlmSettingsBody> for LlmSettingsUpdate {
    fn from(b: LlmSettingsBody) -> Self {
        LlmSettingsUpdate {
            provider: b.provider,
            model: b.model,
            base_url: b.base_url,
            // A script is a file on the server: the configuration names it, never a request.
            script: None,
            api_key: b.api_key.map(Into::into),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalBody {
    /// A set's name (`chinook`, `nycflights13`, or one of your `eval.sets_dir`).
    #[schema(min_length = 1)]
    pub set: String,
    /// Only the first questions.
    #[schema(minimum = 1)]
    pub limit: Option<usize>,
    /// Evaluate another model than the configured one (the configured key is used).
    #[schema(value_type = Option<ProviderName>)]
    pub provider: Option<String>,
    /// With `provider`: its model.
    pub model: Option<String>,
    /// With `provider`: its server.
    pub base_url: Option<String>,
}

impl EvalBody {
    pub fn request(self, actor: String) -> Result<EvalRequest, ApiError> {
        // A path would read any file: over HTTP only the sets the server offers.
        if self.set.contains('/')
            || self.set.contains('\\')
            || self.set.ends_with(".yaml")
            || self.set.ends_with(".yml")
        {
            return Err(ApiError::invalid(
                "set is the name of an offered question set, not a path",
            ));
        }
        let model = match (self.provider, self.model, self.base_url) {
            (Some(p), model, base_url) => Some((p, model, base_url)),
            (None, None, None) => None,
            _ => return Err(ApiError::invalid("model and base_url go with provider")),
        };
        Ok(EvalRequest {
            set: self.set,
            limit: self.limit,
            actor,
            model,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionSetDto {
    pub name: String,
    pub dataset: String,
    pub description: String,
    pub questions: usize,
}

impl From<QuestionSet> for QuestionSetDto {
    fn from(s: QuestionSet) -> Self {
        Self {
            questions: s.questions.len(),
            name: s.name,
            dataset: s.dataset,
            description: s.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvalRunDto {
    pub id: String,
    pub set: String,
    #[schema(value_type = crate::routes::query::RunStatusName)]
    pub status: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub error: Option<String>,
    /// Once finished: totals (accuracy by difficulty, tokens, latency) and each question's verdict, SQL, repairs.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// `self`, `events`, `cancel`.
    #[schema(value_type = Object)]
    pub links: serde_json::Value,
}

impl From<pluto_duck_domain::Run> for EvalRunDto {
    fn from(run: pluto_duck_domain::Run) -> Self {
        let base = format!("/api/v1/eval/runs/{}", run.id);
        Self {
            id: run.id.to_string(),
            set: run.input,
            status: run.status.as_str(),
            created_at: run.created_at,
            finished_at: run.finished_at,
            error: run.failure.map(|f| f.message),
            report: run.detail.and_then(|d| serde_json::from_str(&d).ok()),
            links: serde_json::json!({"self": base, "events": format!("{base}/events"), "cancel": format!("{base}/cancel")}),
        }
    }
}
