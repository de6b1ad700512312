//! `HttpLineage`: POSTs each event to an OpenLineage HTTP endpoint (`<url>/api/v1/lineage`, as Marquez serves
//! it), from a bounded background queue. Server errors (5xx, 408, 429) and connection failures are retried with
//! exponential backoff; other 4xx answers are given up at once. One event is in flight at a time, so events
//! arrive in the order they were emitted (those of one run in particular); while the endpoint is down the queue
//! fills and further events are dropped and counted, never waited for.

use std::time::Duration;

use async_trait::async_trait;
use pluto_duck_application::ports::{LineageEmitter, LineageEvent, LineageStats};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::json::{event_json, DEFAULT_PRODUCER};
use crate::pipeline::{Pipeline, Sink};
use crate::LineageSetupError;

#[derive(Debug, Clone)]
pub struct HttpLineageConfig {
    /// The server's base URL (`http://localhost:5000`); events go to `<url>/api/v1/lineage`.
    pub url: String,
    /// Sent as `Authorization: Bearer <key>`.
    pub api_key: Option<SecretString>,
    /// Events waiting to be sent before `emit` starts dropping them.
    pub queue_capacity: usize,
    /// Retries of one event after its first attempt.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Per request.
    pub timeout: Duration,
    pub producer: String,
}

impl HttpLineageConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            queue_capacity: 1000,
            max_retries: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            producer: DEFAULT_PRODUCER.to_owned(),
        }
    }
}

pub struct HttpLineage {
    endpoint: String,
    pipeline: Pipeline,
}

impl std::fmt::Debug for HttpLineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpLineage").field("endpoint", &self.endpoint).finish()
    }
}

impl HttpLineage {
    /// Starts the sender on the current tokio runtime.
    pub fn new(config: HttpLineageConfig) -> Result<Self, LineageSetupError> {
        let base = reqwest::Url::parse(config.url.trim_end_matches('/'))
            .map_err(|_| LineageSetupError::Endpoint("the lineage URL is not a URL".into()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(LineageSetupError::Endpoint(
                "the lineage URL must be http(s)://host[:port][/path]".into(),
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(LineageSetupError::Endpoint(
                "the lineage URL must not carry credentials; configure an API key".into(),
            ));
        }
        let endpoint = format!("{}/api/v1/lineage", base.as_str().trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(config.timeout))
            .timeout(config.timeout)
            .build()
            .map_err(|e| LineageSetupError::Endpoint(format!("building the HTTP client: {e}")))?;
        let auth = match &config.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).map_err(|_| {
                    LineageSetupError::Endpoint("the lineage API key is not a valid header value".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let sink = HttpSink {
            client,
            endpoint: endpoint.clone(),
            auth,
            producer: config.producer.clone(),
            max_retries: config.max_retries,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
        };
        Ok(Self {
            pipeline: Pipeline::spawn(config.queue_capacity, "http", sink),
            endpoint,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

struct HttpSink {
    client: reqwest::Client,
    endpoint: String,
    auth: Option<HeaderValue>,
    producer: String,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

enum Attempt {
    Done,
    Retry(String),
    GiveUp(String),
}

impl HttpSink {
    async fn attempt(&self, body: &[u8]) -> Attempt {
        let mut request = self
            .client
            .post(&self.endpoint)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    Attempt::Done
                } else if status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT
                {
                    Attempt::Retry(format!("answered {status}"))
                } else {
                    Attempt::GiveUp(format!("answered {status}"))
                }
            }
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                Attempt::Retry(if e.is_timeout() { "timed out" } else { "unreachable" }.to_owned())
            }
            Err(_) => Attempt::GiveUp("request failed".to_owned()),
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff)
    }
}

#[async_trait]
impl Sink for HttpSink {
    async fn deliver(&mut self, event: LineageEvent) -> bool {
        let run_id = event.run_id;
        let body = match serde_json::to_vec(&event_json(&event, &self.producer)) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "lineage event not encoded");
                return false;
            }
        };
        let mut retry = 0;
        loop {
            match self.attempt(&body).await {
                Attempt::Done => return true,
                Attempt::GiveUp(why) => {
                    tracing::warn!(%run_id, endpoint = %self.endpoint, why, "lineage event refused");
                    return false;
                }
                Attempt::Retry(why) if retry < self.max_retries => {
                    let wait = self.backoff(retry);
                    retry += 1;
                    tracing::debug!(%run_id, retry, why, "lineage event retried");
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry(why) => {
                    tracing::warn!(%run_id, endpoint = %self.endpoint, why, retries = retry, "lineage event given up");
                    return false;
                }
            }
        }
    }
}

#[async_trait]
impl LineageEmitter for HttpLineage {
    async fn emit(&self, event: LineageEvent) {
        self.pipeline.emit(event);
    }

    async fn flush(&self) {
        self.pipeline.flush().await;
    }

    fn stats(&self) -> LineageStats {
        self.pipeline.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_are_checked_and_built() {
        let ok = HttpLineage::new(HttpLineageConfig::new("http://127.0.0.1:5000/")).unwrap();
        assert_eq!(ok.endpoint(), "http://127.0.0.1:5000/api/v1/lineage");
        let ok = HttpLineage::new(HttpLineageConfig::new("https://lineage.example/marquez")).unwrap();
        assert_eq!(ok.endpoint(), "https://lineage.example/marquez/api/v1/lineage");
        for bad in ["not a url", "ftp://h", "http://user:hunter2@h:5000"] {
            let err = HttpLineage::new(HttpLineageConfig::new(bad)).unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
