//! `LlmProvider` on async-openai: OpenAI, and any server speaking its chat completions API (vLLM, llama.cpp
//! server, LM Studio, Ollama's `/v1`, gateways).
//!
//! How it uses async-openai 0.43:
//! - requests are async-openai's `CreateChatCompletionRequest`, sent with `create_stream_byot` and read as
//!   lenient local chunk types (compatible servers send finish reasons and fields OpenAI's types reject);
//! - the HTTP call is our tower service (`middleware` feature): async-openai's default executor retries 429,
//!   5xx and connect errors 3 times by itself and drops the headers of error responses, so `Retry-After`
//!   would be lost; ours sends once and keeps status, `Retry-After`/`retry-after-ms` and the error body;
//! - its `OpenAIConfig` reads `OPENAI_API_KEY`/`OPENAI_BASE_URL` from the environment and always sends an
//!   `Authorization` header: a small `Config` of ours sends the configured key only, marked sensitive.

mod errors;
mod http;
mod stream;
mod wire;

use std::time::Duration;

use async_openai::config::Config;
use async_openai::Client;
use async_trait::async_trait;
use pluto_duck_application::llm::cancellable;
use pluto_duck_application::ports::{ChatRequest, ChatStream, LlmError, LlmProvider, ProviderInfo};
use reqwest_013::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::errors::Errors;
use crate::wire::Dialect;

pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1`, `http://localhost:8000/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer`; none for local servers without one.
    pub api_key: Option<SecretString>,
    pub model: String,
    pub connect_timeout: Duration,
    /// Ask for token usage in the stream (`stream_options.include_usage`); turn off for servers that reject it.
    pub stream_usage: bool,
    /// Send `max_tokens` instead of `max_completion_tokens`, for servers that only know the former.
    pub legacy_max_tokens: bool,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            connect_timeout: Duration::from_secs(10),
            stream_usage: true,
            legacy_max_tokens: false,
        }
    }

    pub fn with_api_key(mut self, api_key: SecretString) -> Self {
        self.api_key = Some(api_key);
        self
    }
}

/// The configured base URL and headers, nothing from the environment.
#[derive(Debug, Clone)]
struct ClientConfig {
    base_url: String,
    headers: HeaderMap,
    api_key: SecretString,
}

impl Config for ClientConfig {
    fn headers(&self) -> HeaderMap {
        self.headers.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }

    fn api_base(&self) -> &str {
        &self.base_url
    }

    fn api_key(&self) -> &SecretString {
        &self.api_key
    }
}

pub struct OpenAiLlm {
    client: Client<ClientConfig>,
    model: String,
    dialect: Dialect,
    errors: Errors,
}

/// The URL without credentials, query or fragment, and without a trailing slash.
fn public_url(url: &reqwest_013::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str().trim_end_matches('/').to_string()
}

impl OpenAiLlm {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        if config.model.trim().is_empty() {
            return Err(LlmError::NotConfigured("no model is named".into()));
        }
        let url = reqwest_013::Url::parse(config.base_url.trim())
            .map_err(|e| LlmError::NotConfigured(format!("invalid base URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LlmError::NotConfigured(format!(
                "the base URL must be http or https, not {}",
                url.scheme()
            )));
        }
        let public = public_url(&url);
        let mut headers = HeaderMap::new();
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| LlmError::NotConfigured("the API key has characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = http::http_client(config.connect_timeout)?;
        let client_config = ClientConfig {
            base_url: config.base_url.trim().trim_end_matches('/').to_string(),
            headers,
            api_key: config
                .api_key
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        };
        let client = Client::build(http.clone(), client_config).with_http_service(http::StatusService { client: http });
        Ok(Self {
            client,
            model: config.model,
            dialect: Dialect {
                stream_usage: config.stream_usage,
                legacy_max_tokens: config.legacy_max_tokens,
            },
            errors: Errors {
                base_url: public,
                api_key: config.api_key,
            },
        })
    }
}

#[async_trait]
impl LlmProvider for OpenAiLlm {
    fn describe(&self) -> ProviderInfo {
        ProviderInfo {
            provider: "openai".into(),
            model: self.model.clone(),
            base_url: Some(self.errors.base_url.clone()),
            supports_tools: true,
        }
    }

    async fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Result<ChatStream, LlmError> {
        let body = wire::request(&self.model, &request, self.dialect)?;
        let chat = self.client.chat();
        let call = chat.create_stream_byot::<_, wire::Chunk>(body);
        let chunks = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(LlmError::Cancelled),
            chunks = call => chunks.map_err(|e| self.errors.map(e))?,
        };
        Ok(cancellable(stream::deltas(chunks, self.errors.clone()), cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configurations_are_refused_without_the_key() {
        let key = SecretString::from("sk-line\nbreak".to_string());
        let err = OpenAiLlm::new(OpenAiConfig::new("http://localhost:1/v1", "m").with_api_key(key))
            .err()
            .unwrap();
        assert!(matches!(err, LlmError::NotConfigured(_)));
        assert!(!err.to_string().contains("sk-line"));
        assert!(matches!(
            OpenAiLlm::new(OpenAiConfig::new("ftp://x/v1", "m")).err(),
            Some(LlmError::NotConfigured(_))
        ));
        assert!(matches!(
            OpenAiLlm::new(OpenAiConfig::new("http://localhost/v1", " ")).err(),
            Some(LlmError::NotConfigured(_))
        ));
    }

    #[test]
    fn the_described_url_has_no_credentials() {
        let llm = OpenAiLlm::new(OpenAiConfig::new("https://user:pass@gateway.local/v1/?key=abc", "m")).unwrap();
        assert_eq!(llm.describe().base_url.as_deref(), Some("https://gateway.local/v1"));
    }
}
