//! HTTP failures and transport errors as `LlmError`s, with no trace of the API key.

use std::time::{Duration, SystemTime};

use pluto_duck_application::ports::LlmError;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

/// The server's wait: `retry-after-ms`, then `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
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

/// `{"error": "..."}` (Ollama), `{"error": {"message": ...}}` (proxies in front of it), or text.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = json.get("error").unwrap_or(&json);
        if let Some(message) = error.as_str().or_else(|| error.get("message").and_then(|m| m.as_str())) {
            return shorten(message);
        }
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "(no message)".into()
    } else {
        shorten(&text)
    }
}

#[derive(Clone)]
pub(crate) struct Errors {
    pub base_url: String,
    pub api_key: Option<SecretString>,
}

impl Errors {
    /// Drops the key, and what looks like a key or a masked key, from a message.
    pub fn redact(&self, text: &str) -> String {
        let key = self
            .api_key
            .as_ref()
            .map(|k| k.expose_secret())
            .filter(|k| !k.is_empty());
        let text = match key {
            Some(key) => text.replace(key, "[redacted]"),
            None => text.to_string(),
        };
        text.split(' ')
            .map(|word| {
                if word.starts_with("sk-") || word.contains("***") {
                    "[redacted]"
                } else {
                    word
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn status(&self, status: u16, retry_after: Option<Duration>, message: &str) -> LlmError {
        let message = format!("HTTP {status} from {}: {}", self.base_url, self.redact(message));
        match status {
            401 | 403 => LlmError::Auth(message),
            429 => LlmError::RateLimited { retry_after, message },
            404 => LlmError::Invalid(format!("{message} (is the model pulled? `ollama pull <model>`)")),
            408 | 500..=599 => LlmError::Upstream(message),
            400..=499 => LlmError::Invalid(message),
            _ => LlmError::Upstream(message),
        }
    }

    pub fn transport(&self, error: reqwest::Error) -> LlmError {
        let error = error.without_url();
        let detail = self.redact(&chain(&error));
        if error.is_connect() {
            LlmError::Unreachable(format!("cannot connect to {}: {detail}", self.base_url))
        } else if error.is_timeout() {
            LlmError::Timeout(format!("{}: {detail}", self.base_url))
        } else if error.is_builder() {
            LlmError::NotConfigured(format!("cannot build a request for {}: {detail}", self.base_url))
        } else {
            LlmError::Upstream(format!("the connection to {} failed: {detail}", self.base_url))
        }
    }
}

/// An error and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(now + Duration::from_secs(9))).unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(9)));
    }

    #[test]
    fn statuses_and_bodies() {
        let errors = Errors {
            base_url: "http://127.0.0.1:11434".into(),
            api_key: None,
        };
        assert_eq!(
            error_message(br#"{"error": "model \"x\" not found, try pulling it first"}"#),
            "model \"x\" not found, try pulling it first"
        );
        assert!(matches!(errors.status(404, None, "not found"), LlmError::Invalid(_)));
        assert!(matches!(
            errors.status(400, None, "does not support tools"),
            LlmError::Invalid(_)
        ));
        assert!(matches!(errors.status(503, None, "busy"), LlmError::Upstream(_)));
        assert!(matches!(errors.status(401, None, "no"), LlmError::Auth(_)));
    }
}
