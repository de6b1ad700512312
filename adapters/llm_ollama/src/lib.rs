//! `LlmProvider` on Ollama's native `/api/chat`, streamed (NDJSON) with tool calls.
//!
//! What ollama-rs 0.3.6 gives and where this adapter does without it (read from its source):
//! - its request and reply types (`ChatMessageRequest`, `ChatMessage`, `ToolInfo`, `ToolCall`,
//!   `ModelOptions`, `ChatMessageResponse`) are used as they are;
//! - its client (`Ollama::send_chat_messages_stream`) is not: on a non-2xx answer it returns
//!   `OllamaError::Other(body)` without the status or headers (no telling 401 from 429 from 500, no
//!   `Retry-After`); mid-stream it skips lines that fail to parse (printing to stderr) and reports a broken
//!   body as `Err(())`; it decodes each network chunk as UTF-8 on its own, so a chunk that ends inside a
//!   multi-byte character loses the whole chunk. The adapter sends the same JSON with reqwest itself and reads
//!   the lines on byte boundaries;
//! - what its types lack is added or read from the raw JSON: `stream: true` (a crate-private field),
//!   `tool_name` on tool results (how Ollama matches a result to its call), tool call ids, `done_reason`,
//!   and the token counts (its final-data type fails when Ollama leaves out a zero count).
//!
//! Tool calls stream: Ollama (0.8 and later) sends each call whole in one line, before the closing `done`
//! line; older servers send them with the closing line, which is read the same way. A model without tool
//! support answers 400, mapped to `Invalid`. `thinking` text (reasoning models) is not passed on.

mod errors;
mod stream;
mod wire;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pluto_duck_application::llm::cancellable;
use pluto_duck_application::ports::{ChatRequest, ChatStream, LlmError, LlmProvider, ProviderInfo};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::errors::Errors;

pub const OLLAMA_BASE_URL: &str = "http://127.0.0.1:11434";

#[derive(Debug, Clone)]
pub struct OllamaConfig {
    /// The server's root, e.g. `http://127.0.0.1:11434`.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer` (Ollama behind an authenticating proxy, or a hosted Ollama).
    pub api_key: Option<SecretString>,
    pub connect_timeout: Duration,
    /// The context window (`options.num_ctx`); Ollama's default is small for an agent's prompts.
    pub num_ctx: Option<u64>,
}

impl OllamaConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            num_ctx: None,
        }
    }
}

pub struct OllamaLlm {
    http: reqwest::Client,
    chat_url: reqwest::Url,
    model: String,
    num_ctx: Option<u64>,
    errors: Errors,
}

impl OllamaLlm {
    pub fn new(config: OllamaConfig) -> Result<Self, LlmError> {
        if config.model.trim().is_empty() {
            return Err(LlmError::NotConfigured("no model is named".into()));
        }
        let base = reqwest::Url::parse(config.base_url.trim())
            .map_err(|e| LlmError::NotConfigured(format!("invalid base URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(LlmError::NotConfigured(format!(
                "the base URL must be http or https, not {}",
                base.scheme()
            )));
        }
        let mut public = base.clone();
        let _ = public.set_username("");
        let _ = public.set_password(None);
        public.set_query(None);
        public.set_fragment(None);
        let public = public.as_str().trim_end_matches('/').to_string();
        let chat_url = reqwest::Url::parse(&format!("{}/api/chat", base.as_str().trim_end_matches('/')))
            .map_err(|e| LlmError::NotConfigured(format!("invalid base URL: {e}")))?;
        let mut headers = HeaderMap::new();
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| LlmError::NotConfigured("the API key has characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| LlmError::NotConfigured(format!("HTTP client setup failed: {e}")))?;
        Ok(Self {
            http,
            chat_url,
            model: config.model,
            num_ctx: config.num_ctx,
            errors: Errors {
                base_url: public,
                api_key: config.api_key,
            },
        })
    }

    async fn send(&self, request: &ChatRequest) -> Result<reqwest::Response, LlmError> {
        let body = wire::request(&self.model, request, self.num_ctx)?;
        let response = self
            .http
            .post(self.chat_url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| self.errors.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = errors::retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.unwrap_or_default();
        Err(self
            .errors
            .status(status.as_u16(), retry_after, &errors::error_message(&body)))
    }
}

#[async_trait]
impl LlmProvider for OllamaLlm {
    fn describe(&self) -> ProviderInfo {
        ProviderInfo {
            provider: "ollama".into(),
            model: self.model.clone(),
            base_url: Some(self.errors.base_url.clone()),
            supports_tools: true,
        }
    }

    async fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Result<ChatStream, LlmError> {
        let response = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(LlmError::Cancelled),
            response = self.send(&request) => response?,
        };
        let deltas = stream::deltas(Box::pin(response.bytes_stream()), self.errors.clone());
        Ok(cancellable(deltas, cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_checks() {
        assert!(matches!(
            OllamaLlm::new(OllamaConfig::new("localhost:11434", "llama3")).err(),
            Some(LlmError::NotConfigured(_))
        ));
        assert!(matches!(
            OllamaLlm::new(OllamaConfig::new(OLLAMA_BASE_URL, "")).err(),
            Some(LlmError::NotConfigured(_))
        ));
        let llm = OllamaLlm::new(OllamaConfig::new("http://me:secret@ollama.local:11434/", "llama3")).unwrap();
        assert_eq!(llm.describe().base_url.as_deref(), Some("http://ollama.local:11434"));
        assert_eq!(llm.chat_url.as_str(), "http://me:secret@ollama.local:11434/api/chat");
    }
}
