//! The background half every delivering emitter shares: a bounded queue that `emit` fills without waiting (an
//! event that does not fit is dropped and counted), and one task that hands events to a sink in the order they
//! were emitted, so a run's events arrive in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pluto_duck_application::ports::{LineageEvent, LineageStats};
use tokio::sync::{mpsc, oneshot};

/// Where the background task puts events.
#[async_trait]
pub(crate) trait Sink: Send + 'static {
    /// Delivers one event (retrying as the sink sees fit); `false` when it was given up.
    async fn deliver(&mut self, event: LineageEvent) -> bool;
}

enum Message {
    Event(Box<LineageEvent>),
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicU64,
}

pub(crate) struct Pipeline {
    tx: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    what: &'static str,
}

impl Pipeline {
    /// Starts the task on the current tokio runtime. It ends when the pipeline is dropped and the queue drained.
    pub(crate) fn spawn(capacity: usize, what: &'static str, mut sink: impl Sink) -> Self {
        let (tx, mut rx) = mpsc::channel::<Message>(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                match message {
                    Message::Event(event) => {
                        let delivered = sink.deliver(*event).await;
                        c.pending.fetch_sub(1, Ordering::AcqRel);
                        if delivered {
                            c.delivered.fetch_add(1, Ordering::AcqRel);
                        } else {
                            c.dropped.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                    Message::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { tx, counters, what }
    }

    /// Queues `event`, or drops it when the queue is full; never waits.
    pub(crate) fn emit(&self, event: LineageEvent) {
        self.counters.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(Message::Event(Box::new(event))).is_err() {
            self.counters.pending.fetch_sub(1, Ordering::AcqRel);
            let dropped = self.counters.dropped.fetch_add(1, Ordering::AcqRel) + 1;
            // One warning per 1000 drops: a stalled receiver must not flood the log as well.
            if dropped % 1000 == 1 {
                tracing::warn!(dropped, sink = self.what, "lineage queue full: event dropped");
            }
        }
    }

    /// Returns once every event queued before the call is delivered or given up.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub(crate) fn stats(&self) -> LineageStats {
        LineageStats {
            delivered: self.counters.delivered.load(Ordering::Acquire),
            dropped: self.counters.dropped.load(Ordering::Acquire),
            pending: self.counters.pending.load(Ordering::Acquire),
        }
    }
}
