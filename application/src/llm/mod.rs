//! Provider-independent handling of chat replies: folding a stream into a response, and the one resilience
//! layer (retries, timeouts, cancellation) every provider is wrapped in.

mod collect;
mod resilient;

pub use collect::{collect, ChatResponse, ReplyAssembler};
pub use resilient::{LlmPolicy, ResilientLlm};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::ports::{ChatStream, LlmError};

/// The stream, ended with `Cancelled` as soon as the token is cancelled (dropping the inner stream, and so its
/// connection). Adapters wrap their replies in it to keep the port's promise without the resilience layer.
pub fn cancellable(stream: ChatStream, cancel: CancellationToken) -> ChatStream {
    let state = (Some(stream), cancel);
    Box::pin(futures::stream::unfold(state, |(inner, cancel)| async move {
        let mut inner = inner?;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Some((Err(LlmError::Cancelled), (None, cancel))),
            next = inner.next() => match next {
                Some(Err(e)) => Some((Err(e), (None, cancel))),
                Some(Ok(delta)) => Some((Ok(delta), (Some(inner), cancel))),
                None => None,
            },
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::ChatDelta;

    #[tokio::test]
    async fn cancellable_ends_with_cancelled_and_stops() {
        let cancel = CancellationToken::new();
        let inner: ChatStream =
            Box::pin(futures::stream::iter(vec![Ok(ChatDelta::Text("a".into()))]).chain(futures::stream::pending()));
        let mut stream = cancellable(inner, cancel.clone());
        assert_eq!(stream.next().await, Some(Ok(ChatDelta::Text("a".into()))));
        cancel.cancel();
        assert_eq!(stream.next().await, Some(Err(LlmError::Cancelled)));
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn cancellable_passes_a_whole_reply_through() {
        let inner: ChatStream = Box::pin(futures::stream::iter(vec![
            Ok(ChatDelta::Text("a".into())),
            Err(LlmError::Upstream("x".into())),
            Ok(ChatDelta::Text("never".into())),
        ]));
        let items: Vec<_> = cancellable(inner, CancellationToken::new()).collect().await;
        assert_eq!(
            items,
            vec![Ok(ChatDelta::Text("a".into())), Err(LlmError::Upstream("x".into()))]
        );
    }
}
