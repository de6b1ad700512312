//! async-openai's errors as `LlmError`s, with no trace of the API key.

use async_openai::error::{OpenAIError, StreamError};
use pluto_duck_application::ports::LlmError;
use secrecy::{ExposeSecret, SecretString};

use crate::http::{shorten, HttpFailure};

/// Builds error messages: names the server, never the key.
#[derive(Clone)]
pub(crate) struct Errors {
    /// The base URL without credentials.
    pub base_url: String,
    pub api_key: Option<SecretString>,
}

impl Errors {
    /// Drops the key, and what looks like a key or a masked key (`sk-...`, `sk-abc***xyz`), from a message.
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

    fn http(&self, failure: &HttpFailure) -> LlmError {
        let status = failure.status;
        let message = format!(
            "HTTP {status} from {}: {}",
            self.base_url,
            self.redact(&failure.message)
        );
        match status {
            401 | 403 => LlmError::Auth(message),
            429 if failure.code.as_deref() == Some("insufficient_quota") => LlmError::QuotaExceeded(message),
            429 => LlmError::RateLimited {
                retry_after: failure.retry_after,
                message,
            },
            404 => LlmError::Invalid(format!("{message} (check the base URL and the model name)")),
            408 | 500..=599 => LlmError::Upstream(message),
            400..=499 => LlmError::Invalid(message),
            _ => LlmError::Upstream(message),
        }
    }

    fn transport(&self, error: reqwest_013::Error) -> LlmError {
        // The URL is the base URL's plus a path: named once, by us.
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

    pub fn map(&self, error: OpenAIError) -> LlmError {
        match error {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
                Ok(failure) => self.http(&failure),
                Err(other) => LlmError::Upstream(self.redact(&other.to_string())),
            },
            OpenAIError::ApiError(api) => self.http(&HttpFailure {
                status: api.status_code.as_u16(),
                retry_after: None,
                message: shorten(&api.api_error.message),
                code: api.api_error.code,
            }),
            OpenAIError::Reqwest(e) => self.transport(e),
            OpenAIError::JSONDeserialize(e, content) => {
                LlmError::Malformed(format!("{e} in {:?}", shorten(&self.redact(&content))))
            }
            OpenAIError::StreamError(stream) => match *stream {
                // eventsource-stream reports a broken body as a transport error, bad framing otherwise.
                StreamError::EventStream(message) if message.starts_with("Transport error") => LlmError::Upstream(
                    format!("the reply from {} broke off: {}", self.base_url, self.redact(&message)),
                ),
                StreamError::EventStream(message) => LlmError::Malformed(self.redact(&message)),
                StreamError::UnknownEvent(event) => LlmError::Malformed(format!("unexpected event {:?}", event.event)),
            },
            OpenAIError::InvalidArgument(message) => LlmError::Invalid(self.redact(&message)),
            other => LlmError::Upstream(self.redact(&other.to_string())),
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

    fn errors(key: Option<&str>) -> Errors {
        Errors {
            base_url: "http://llm.local/v1".into(),
            api_key: key.map(|k| SecretString::from(k.to_string())),
        }
    }

    fn failure(status: u16, message: &str, code: Option<&str>) -> OpenAIError {
        OpenAIError::Boxed(Box::new(HttpFailure {
            status,
            retry_after: Some(std::time::Duration::from_secs(2)),
            message: message.into(),
            code: code.map(str::to_string),
        }))
    }

    #[test]
    fn statuses_map_to_kinds() {
        let e = errors(None);
        assert!(matches!(e.map(failure(401, "bad key", None)), LlmError::Auth(_)));
        assert!(matches!(e.map(failure(403, "region", None)), LlmError::Auth(_)));
        assert_eq!(
            e.map(failure(429, "slow", None)).retry_after(),
            Some(std::time::Duration::from_secs(2))
        );
        assert!(matches!(
            e.map(failure(429, "pay", Some("insufficient_quota"))),
            LlmError::QuotaExceeded(_)
        ));
        assert!(matches!(e.map(failure(500, "oops", None)), LlmError::Upstream(_)));
        assert!(matches!(e.map(failure(503, "busy", None)), LlmError::Upstream(_)));
        assert!(matches!(e.map(failure(404, "no model", None)), LlmError::Invalid(_)));
        assert!(matches!(e.map(failure(422, "bad schema", None)), LlmError::Invalid(_)));
    }

    #[test]
    fn the_key_and_masked_keys_are_redacted() {
        let e = errors(Some("sk-proj-abcdef123456"));
        let message = e
            .map(failure(
                401,
                "Incorrect API key provided: sk-proj-abcdef123456. Also sk-pro***3456 and xsk-proj-abcdef123456x",
                None,
            ))
            .to_string();
        assert!(!message.contains("abcdef123456"), "{message}");
        assert!(!message.contains("***"), "{message}");
        assert!(message.contains("Incorrect API key provided"), "{message}");
    }
}
