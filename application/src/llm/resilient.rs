//! One resilience layer for every provider: retries before the first delta, timeouts, cancellation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::ports::{ChatDelta, ChatRequest, ChatStream, LlmError, LlmProvider, ProviderInfo};

/// How patient a call is. The defaults suit a local model that may need to load first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmPolicy {
    /// Attempts in all, the first one included (1: no retry).
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each later one, with jitter.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` waited for; a provider asking for longer gets its error returned at once.
    pub max_retry_after: Duration,
    /// From sending the request to its first delta (model loading and prompt processing included).
    pub first_delta_timeout: Duration,
    /// The longest silence between two deltas once the reply has started.
    pub idle_timeout: Duration,
    /// The whole call: attempts, waits and the streamed reply.
    pub deadline: Duration,
}

impl Default for LlmPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            first_delta_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(600),
        }
    }
}

impl LlmPolicy {
    /// The wait before retry number `retry` (1 for the first), before jitter: exponential, capped.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// "Equal jitter": half the backoff for sure, the other half at random, so that clients do not retry in step.
fn with_jitter(backoff: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // Each `RandomState` is keyed afresh: a cheap random number without a dependency.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(backoff.subsec_nanos());
    let unit = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    let half = backoff / 2;
    half + half.mul_f64(unit)
}

/// Wraps any provider with the policy: the only place where LLM calls are retried or timed out.
///
/// - Retries `RateLimited`, `Upstream` and `Unreachable` errors, only before the first delta has been received
///   (a reply already shown is never silently restarted), waiting the provider's `Retry-After` when it sent
///   one (up to `max_retry_after`), else an exponential backoff with jitter; never past the deadline.
/// - No first delta within `first_delta_timeout`, a silence longer than `idle_timeout` mid-reply, or the
///   deadline: the stream ends with `Timeout`.
/// - The cancellation token ends the call (or its backoff, or its stream) with `Cancelled` at once and drops
///   the connection to the provider.
pub struct ResilientLlm {
    inner: Arc<dyn LlmProvider>,
    policy: LlmPolicy,
}

impl ResilientLlm {
    pub fn new(inner: Arc<dyn LlmProvider>, policy: LlmPolicy) -> Self {
        Self { inner, policy }
    }

    pub fn policy(&self) -> &LlmPolicy {
        &self.policy
    }

    /// One attempt, up to its first delta.
    async fn attempt(
        &self,
        request: ChatRequest,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<(ChatDelta, ChatStream), LlmError> {
        let first_by = Instant::now() + self.policy.first_delta_timeout;
        let timeout = if first_by < deadline {
            LlmError::Timeout(format!("no reply within {:?}", self.policy.first_delta_timeout))
        } else {
            LlmError::Timeout(format!(
                "no reply within the call's deadline of {:?}",
                self.policy.deadline
            ))
        };
        let work = async {
            let mut stream = self.inner.chat(request, cancel.clone()).await?;
            match stream.next().await {
                Some(Ok(delta)) => Ok((delta, stream)),
                Some(Err(e)) => Err(e),
                None => Err(LlmError::Upstream(
                    "the provider closed the reply before sending anything".into(),
                )),
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(LlmError::Cancelled),
            _ = sleep_until(first_by.min(deadline)) => Err(timeout),
            outcome = work => outcome,
        }
    }
}

#[async_trait]
impl LlmProvider for ResilientLlm {
    fn describe(&self) -> ProviderInfo {
        self.inner.describe()
    }

    async fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Result<ChatStream, LlmError> {
        let deadline = Instant::now() + self.policy.deadline;
        let mut attempt = 1u32;
        loop {
            let error = match self.attempt(request.clone(), &cancel, deadline).await {
                Ok((first, rest)) => {
                    return Ok(guarded(first, rest, cancel, self.policy.idle_timeout, deadline));
                }
                Err(error) => error,
            };
            if !error.is_transient() || attempt >= self.policy.max_attempts {
                return Err(error);
            }
            let delay = match error.retry_after() {
                Some(after) if after > self.policy.max_retry_after => return Err(error),
                Some(after) => after,
                None => with_jitter(self.policy.backoff(attempt)),
            };
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            let provider = self.inner.describe().provider;
            warn!(%provider, attempt, delay_ms = delay.as_millis() as u64, %error, "llm call retried");
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                _ = sleep(delay) => {}
            }
            attempt += 1;
        }
    }
}

struct Guard {
    first: Option<ChatDelta>,
    inner: ChatStream,
    cancel: CancellationToken,
    idle: Duration,
    deadline: Instant,
    done: bool,
}

/// The reply after its first delta, with the idle timeout, the deadline and the token watched.
fn guarded(
    first: ChatDelta,
    inner: ChatStream,
    cancel: CancellationToken,
    idle: Duration,
    deadline: Instant,
) -> ChatStream {
    let state = Guard {
        first: Some(first),
        inner,
        cancel,
        idle,
        deadline,
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if let Some(first) = s.first.take() {
            return Some((Ok(first), s));
        }
        let idle_until = Instant::now() + s.idle;
        let timeout = if idle_until < s.deadline {
            LlmError::Timeout(format!("the reply stalled for {:?}", s.idle))
        } else {
            LlmError::Timeout("the call's deadline passed mid-reply".into())
        };
        let next = tokio::select! {
            biased;
            _ = s.cancel.cancelled() => Some(Err(LlmError::Cancelled)),
            _ = sleep_until(idle_until.min(s.deadline)) => Some(Err(timeout)),
            next = s.inner.next() => next,
        };
        match next {
            None => None,
            Some(Ok(delta)) => Some((Ok(delta), s)),
            Some(Err(error)) => {
                // Drop the provider's stream now: that closes its connection.
                s.inner = Box::pin(futures::stream::empty());
                s.done = true;
                Some((Err(error), s))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::llm::collect;
    use crate::ports::{FinishReason, MockLlmProvider};

    fn policy() -> LlmPolicy {
        LlmPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
            first_delta_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(20),
        }
    }

    fn reply(text: &str) -> ChatStream {
        Box::pin(futures::stream::iter(vec![
            Ok(ChatDelta::Text(text.to_string())),
            Ok(ChatDelta::Finish(FinishReason::Stop)),
        ]))
    }

    /// A reply that sends one delta and then nothing, forever.
    fn stalled(text: &str) -> ChatStream {
        Box::pin(futures::stream::iter(vec![Ok(ChatDelta::Text(text.to_string()))]).chain(futures::stream::pending()))
    }

    fn info() -> ProviderInfo {
        ProviderInfo {
            provider: "mock".into(),
            model: "m".into(),
            base_url: None,
            supports_tools: true,
        }
    }

    /// A provider answering attempt n (from 1) with `answer(n)`; the count of attempts is returned too.
    fn provider(
        answer: impl Fn(u32, &CancellationToken) -> Result<ChatStream, LlmError> + Send + Sync + 'static,
    ) -> (Arc<dyn LlmProvider>, Arc<AtomicU32>) {
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = attempts.clone();
        let mut mock = MockLlmProvider::new();
        mock.expect_describe().returning(info);
        mock.expect_chat().returning(move |_, cancel| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            answer(n, &cancel)
        });
        (Arc::new(mock), attempts)
    }

    fn rate_limited(after: Duration) -> LlmError {
        LlmError::RateLimited {
            retry_after: Some(after),
            message: "slow down".into(),
        }
    }

    #[tokio::test]
    async fn rate_limits_are_retried_after_the_providers_retry_after() {
        let (inner, attempts) = provider(|n, _| {
            if n < 3 {
                Err(rate_limited(Duration::from_millis(30)))
            } else {
                Ok(reply("ok"))
            }
        });
        let llm = ResilientLlm::new(inner, policy());
        let started = std::time::Instant::now();
        let stream = llm
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .unwrap();
        // Two waits of at least the 30 ms asked for (a lower bound: never flaky).
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert_eq!(collect(stream).await.unwrap().text, "ok");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn transient_errors_are_retried_up_to_the_budget() {
        let (inner, attempts) = provider(|_, _| Err(LlmError::Upstream("502".into())));
        let err = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert_eq!(err, LlmError::Upstream("502".into()));
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn unreachable_is_retried_then_succeeds() {
        let (inner, attempts) = provider(|n, _| {
            if n == 1 {
                Err(LlmError::Unreachable("refused".into()))
            } else {
                Ok(reply("up"))
            }
        });
        let stream = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(collect(stream).await.unwrap().text, "up");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn lasting_errors_are_not_retried() {
        for error in [
            LlmError::Auth("401".into()),
            LlmError::Invalid("400".into()),
            LlmError::Malformed("garbage".into()),
            LlmError::QuotaExceeded("billing".into()),
            LlmError::NotConfigured("no model".into()),
        ] {
            let returned = error.clone();
            let (inner, attempts) = provider(move |_, _| Err(returned.clone()));
            let err = ResilientLlm::new(inner, policy())
                .chat(ChatRequest::default(), CancellationToken::new())
                .await
                .err()
                .unwrap();
            assert_eq!(err, error);
            assert_eq!(attempts.load(Ordering::SeqCst), 1, "{error:?}");
        }
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_is_returned_at_once() {
        let (inner, attempts) = provider(|_, _| Err(rate_limited(Duration::from_secs(3600))));
        let err = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_error_before_the_first_delta_is_retried() {
        let (inner, attempts) = provider(|n, _| {
            if n == 1 {
                Ok(Box::pin(futures::stream::iter(vec![Err(LlmError::Upstream(
                    "reset".into(),
                ))])))
            } else {
                Ok(reply("second"))
            }
        });
        let stream = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(collect(stream).await.unwrap().text, "second");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_error_after_the_first_delta_is_not_retried() {
        let (inner, attempts) = provider(|_, _| {
            Ok(Box::pin(futures::stream::iter(vec![
                Ok(ChatDelta::Text("partial".into())),
                Err(LlmError::Upstream("reset".into())),
            ])))
        });
        let stream = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(collect(stream).await.unwrap_err(), LlmError::Upstream("reset".into()));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stall_mid_reply_ends_the_stream_with_timeout() {
        let (inner, _) = provider(|_, _| Ok(stalled("first")));
        let llm = ResilientLlm::new(
            inner,
            LlmPolicy {
                idle_timeout: Duration::from_millis(50),
                ..policy()
            },
        );
        let mut stream = llm
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(stream.next().await, Some(Ok(ChatDelta::Text("first".into()))));
        assert!(matches!(stream.next().await, Some(Err(LlmError::Timeout(_)))));
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn no_first_delta_in_time_is_a_timeout_without_retry() {
        let (inner, attempts) = provider(|_, _| Ok(Box::pin(futures::stream::pending())));
        let llm = ResilientLlm::new(
            inner,
            LlmPolicy {
                first_delta_timeout: Duration::from_millis(50),
                ..policy()
            },
        );
        let err = llm
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, LlmError::Timeout(_)), "{err:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_deadline_bounds_the_retries() {
        let (inner, attempts) = provider(|_, _| Err(LlmError::Upstream("down".into())));
        let llm = ResilientLlm::new(
            inner,
            LlmPolicy {
                max_attempts: 1000,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(20),
                deadline: Duration::from_millis(200),
                ..policy()
            },
        );
        let err = llm
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert_eq!(err, LlmError::Upstream("down".into()));
        assert!(attempts.load(Ordering::SeqCst) < 1000);
    }

    #[tokio::test]
    async fn cancel_mid_reply_ends_the_stream_with_cancelled() {
        let (inner, _) = provider(|_, _| Ok(stalled("first")));
        let cancel = CancellationToken::new();
        let mut stream = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), cancel.clone())
            .await
            .unwrap();
        assert_eq!(stream.next().await, Some(Ok(ChatDelta::Text("first".into()))));
        cancel.cancel();
        assert_eq!(stream.next().await, Some(Err(LlmError::Cancelled)));
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn cancel_during_a_backoff_ends_the_call() {
        let (inner, attempts) = provider(|_, cancel| {
            // The caller gives up while the provider asks to wait.
            cancel.cancel();
            Err(rate_limited(Duration::from_millis(900)))
        });
        let err = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert_eq!(err, LlmError::Cancelled);
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn cancel_before_the_first_delta_ends_the_call() {
        let (inner, _) = provider(|_, cancel| {
            cancel.cancel();
            Ok(Box::pin(futures::stream::pending()))
        });
        let err = ResilientLlm::new(inner, policy())
            .chat(ChatRequest::default(), CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert_eq!(err, LlmError::Cancelled);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_keeps_at_least_half() {
        let policy = LlmPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..LlmPolicy::default()
        };
        let waits: Vec<_> = (1..=4).map(|retry| policy.backoff(retry)).collect();
        assert_eq!(waits, [100, 200, 350, 350].map(Duration::from_millis).to_vec());
        for _ in 0..100 {
            let wait = with_jitter(Duration::from_millis(200));
            assert!(
                wait >= Duration::from_millis(100) && wait <= Duration::from_millis(200),
                "{wait:?}"
            );
        }
    }
}
