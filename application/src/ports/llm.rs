//! The language model the agent talks to: one streamed chat call with tools.
//!
//! A reply streams as [`ChatDelta`]s. The contract every adapter keeps:
//! - `ToolCallStart { index, .. }` comes before any `ToolCallArgs` of that index; indices are unique in a reply;
//! - `Usage` comes at most once, before `Finish`;
//! - `Finish` is the last item of a complete reply; a stream that ends without it was cut short;
//! - an `Err` item ends the stream.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool the model may call; `parameters` is the JSON schema of its arguments object.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model asked for. `arguments` is JSON text as the model wrote it: it may be invalid JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Only on assistant messages: the calls the model asked for.
    pub tool_calls: Vec<ToolCall>,
    /// Only on tool messages: the call this message answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// The assistant's turn that asked for tools (its text may be empty).
    pub fn assistant_with_tools(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// A tool's result, answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f32>,
    /// The most tokens the reply may have.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }

    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub prompt: u32,
    pub completion: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// The reply hit `max_tokens` (or the context window).
    Length,
    /// The model stopped to have tools called.
    ToolCalls,
    ContentFilter,
    /// A reason the provider named that has no variant here.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChatDelta {
    Text(String),
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// A piece of the JSON text of the arguments of call `index`; pieces concatenate.
    ToolCallArgs {
        index: u32,
        fragment: String,
    },
    Usage(TokenUsage),
    Finish(FinishReason),
}

/// A reply as it streams. Dropping it closes the connection to the provider.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatDelta, LlmError>> + Send>>;

/// What a provider is, for logs and the settings page. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// `openai`, `ollama`, `scripted`, ...
    pub provider: String,
    pub model: String,
    /// Without credentials or query string.
    pub base_url: Option<String>,
    pub supports_tools: bool,
}

/// Messages never contain an API key.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum LlmError {
    #[error("no language model is configured: {0}")]
    NotConfigured(String),
    #[error("the language model provider is unreachable: {0}")]
    Unreachable(String),
    /// 401/403: the credentials were refused.
    #[error("the language model provider refused the credentials: {0}")]
    Auth(String),
    /// 429: try again later (the provider's `Retry-After` when it sent one).
    #[error("the language model provider is rate limiting: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The account's quota or credit is used up: retrying does not help.
    #[error("the language model provider's quota is exhausted: {0}")]
    QuotaExceeded(String),
    /// 5xx, or the connection broke mid-reply.
    #[error("the language model provider failed: {0}")]
    Upstream(String),
    #[error("the language model call timed out: {0}")]
    Timeout(String),
    /// A reply (body, event or chunk) we cannot parse.
    #[error("the language model provider sent a reply that cannot be read: {0}")]
    Malformed(String),
    /// 4xx other than the above: the provider rejected the request (unknown model, context too long, ...).
    #[error("the language model provider rejected the request: {0}")]
    Invalid(String),
    #[error("the language model call was cancelled")]
    Cancelled,
}

impl LlmError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            // The provider's refusal is the server's configuration problem, not the API caller's credentials.
            LlmError::NotConfigured(_)
            | LlmError::Unreachable(_)
            | LlmError::Auth(_)
            | LlmError::RateLimited { .. }
            | LlmError::QuotaExceeded(_)
            | LlmError::Upstream(_)
            | LlmError::Malformed(_) => ErrorKind::Unavailable,
            LlmError::Invalid(_) => ErrorKind::Invalid,
            // As `WarehouseError::Interrupted`: stopped by its token, a cancel or a timeout.
            LlmError::Timeout(_) | LlmError::Cancelled => ErrorKind::Timeout,
        }
    }

    /// Whether the same request may succeed if sent again a little later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. } | LlmError::Upstream(_) | LlmError::Unreachable(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A chat model: OpenAI-compatible servers, Ollama, a scripted stand-in.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait LlmProvider: Send + Sync {
    fn describe(&self) -> ProviderInfo;

    /// Sends the request. Resolves once the provider accepted it (errors before that, such as a refused key,
    /// surface here), then streams the reply. Cancelling the token ends the stream with `Cancelled`.
    async fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Result<ChatStream, LlmError>;
}

/// Which model the agent talks to: from the configuration, overridden by the settings API. The API key is a
/// secret's value, never stored here or shown.
#[derive(Debug, Clone, Default)]
pub struct LlmSettings {
    /// `openai` (any OpenAI-compatible server), `ollama` or `scripted`.
    pub provider: String,
    pub model: String,
    pub base_url: Option<String>,
    pub api_key: Option<secrecy::SecretString>,
    /// `scripted`: the YAML script's path.
    pub script: Option<String>,
}

/// Builds a provider from settings (bootstrap knows the adapters; the application does not).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait LlmProviders: Send + Sync {
    fn build(&self, settings: &LlmSettings) -> Result<std::sync::Arc<dyn LlmProvider>, LlmError>;
}
