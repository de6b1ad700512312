//! The HTTP exchange under async-openai: our own tower service, so that
//! - async-openai's built-in retry layer (3 retries on 429/5xx/connect errors, used by its default executor)
//!   is not in the path: `ResilientLlm` is the only retry;
//! - an error response keeps its status and its `Retry-After` (async-openai's own error path drops headers and
//!   turns 5xx bodies into a bare message).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use pluto_duck_application::ports::LlmError;
use reqwest_013 as reqwest;
use rustls_platform_verifier::BuilderVerifierExt;

/// A non-2xx answer, carried through async-openai as `OpenAIError::Boxed`.
#[derive(Debug)]
pub(crate) struct HttpFailure {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The provider's error message (from its JSON error body, else the body's text), shortened.
    pub message: String,
    /// The provider's error code, when its body has one (`insufficient_quota`, ...).
    pub code: Option<String>,
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl std::error::Error for HttpFailure {}

impl HttpFailure {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.unwrap_or_default();
        let (message, code) = error_message(&body);
        Self {
            status,
            retry_after,
            message,
            code,
        }
    }
}

/// The provider's wait: OpenAI's `retry-after-ms` first, then `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = |v: &str| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0);
    if let Some(ms) = value("retry-after-ms").and_then(seconds) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let after = value("retry-after")?;
    if let Some(secs) = seconds(after) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(after).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

const MESSAGE_LIMIT: usize = 300;

pub(crate) fn shorten(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `{"error": {"message", "code"}}` (OpenAI), `{"error": "..."}` (Ollama, llama.cpp), `{"message": ...}`, or text.
fn error_message(body: &[u8]) -> (String, Option<String>) {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = json.get("error").unwrap_or(&json);
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .or_else(|| error.as_str())
            .or_else(|| json.get("detail").and_then(|m| m.as_str()));
        let code = error.get("code").and_then(|c| c.as_str()).map(str::to_string);
        if let Some(message) = message {
            return (shorten(message), code);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        ("(no message)".to_string(), None)
    } else {
        (shorten(&text), None)
    }
}

/// Sends each request once and turns any non-2xx answer into an [`HttpFailure`].
#[derive(Clone)]
pub(crate) struct StatusService {
    pub client: reqwest::Client,
}

impl tower::Service<HttpRequestFactory> for StatusService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let request = factory.build().await?;
            let response = client.execute(request).await.map_err(OpenAIError::Reqwest)?;
            if response.status().is_success() {
                Ok(response)
            } else {
                Err(OpenAIError::Boxed(Box::new(HttpFailure::read(response).await)))
            }
        })
    }
}

/// reqwest 0.13 with rustls on ring and the platform's certificate store.
pub(crate) fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, LlmError> {
    let tls_error = |e: rustls::Error| LlmError::NotConfigured(format!("TLS setup failed: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth();
    // This reqwest is built without HTTP/2.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| LlmError::NotConfigured(format!("HTTP client setup failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_in_milliseconds_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "1")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn error_messages_from_the_usual_bodies() {
        assert_eq!(
            error_message(br#"{"error": {"message": "quota", "type": "x", "code": "insufficient_quota"}}"#),
            ("quota".to_string(), Some("insufficient_quota".to_string()))
        );
        assert_eq!(error_message(br#"{"error": "model not found"}"#).0, "model not found");
        assert_eq!(error_message(b"<html>Bad Gateway</html>").0, "<html>Bad Gateway</html>");
        assert_eq!(error_message(b"").0, "(no message)");
        assert!(error_message("x".repeat(1000).as_bytes()).0.chars().count() <= MESSAGE_LIMIT + 1);
    }
}
