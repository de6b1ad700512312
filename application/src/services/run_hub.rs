//! Live events of runs, for SSE. Each run keeps its ordered events so a late or reconnecting subscriber gets
//! everything after the last id it saw, then the live tail. Finished runs age out; their history is then
//! rebuilt from the stored run.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::Utc;
use pluto_duck_domain::{Run, RunEvent, RunEventKind, RunId};
use tokio::sync::broadcast;

struct Entry {
    events: Vec<RunEvent>,
    tx: broadcast::Sender<RunEvent>,
}

pub struct RunHub {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<RunId, Entry>,
    order: VecDeque<RunId>,
}

/// Events after the requested id, and the live tail when the run is still going.
pub struct Subscription {
    pub past: Vec<RunEvent>,
    pub live: Option<broadcast::Receiver<RunEvent>>,
}

impl RunHub {
    /// Keeps the events of the `capacity` most recent runs.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    pub fn emit(&self, run: &RunId, kind: RunEventKind) -> RunEvent {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.runs.contains_key(run) {
            // Evict the oldest runs beyond capacity.
            while inner.order.len() >= self.capacity {
                let Some(old) = inner.order.pop_front() else { break };
                inner.runs.remove(&old);
            }
            inner.order.push_back(run.clone());
        }
        let entry = inner.runs.entry(run.clone()).or_insert_with(|| Entry {
            events: Vec::new(),
            tx: broadcast::channel(256).0,
        });
        let event = RunEvent {
            seq: entry.events.len() as u64 + 1,
            at: Utc::now(),
            kind,
        };
        entry.events.push(event.clone());
        let _ = entry.tx.send(event.clone()); // no subscriber is fine
        event
    }

    /// `None` when the hub no longer (or never) saw the run.
    pub fn subscribe(&self, run: &RunId, after: u64) -> Option<Subscription> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = inner.runs.get(run)?;
        let past: Vec<RunEvent> = entry.events.iter().filter(|e| e.seq > after).cloned().collect();
        let finished = entry.events.last().is_some_and(|e| e.kind.is_terminal());
        Some(Subscription {
            past,
            live: (!finished).then(|| entry.tx.subscribe()),
        })
    }

    /// The run's events after `after`: live from the hub, or rebuilt from the stored run once the hub forgot it.
    pub fn events_of(&self, run: &Run, after: u64) -> Subscription {
        self.subscribe(&run.id, after).unwrap_or_else(|| Subscription {
            past: Self::replay(run, after),
            live: None,
        })
    }

    /// Returns when the run has a terminal event or after `max`, whichever comes first.
    pub async fn wait_terminal(&self, run: &RunId, max: std::time::Duration) {
        let Some(Subscription {
            past,
            live: Some(mut rx),
        }) = self.subscribe(run, 0)
        else {
            return;
        };
        if past.iter().any(|e| e.kind.is_terminal()) {
            return;
        }
        let _ = tokio::time::timeout(max, async {
            loop {
                match rx.recv().await {
                    Ok(e) if e.kind.is_terminal() => break,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        })
        .await;
    }

    /// The events a finished run had, rebuilt from its stored state (after a restart or eviction).
    pub fn replay(run: &Run, after: u64) -> Vec<RunEvent> {
        let mut events = vec![RunEvent {
            seq: 1,
            at: run.created_at,
            kind: RunEventKind::Queued,
        }];
        if let Some(at) = run.started_at {
            events.push(RunEvent {
                seq: 2,
                at,
                kind: RunEventKind::Started,
            });
        }
        if let Some(kind) = RunEventKind::terminal_for(run) {
            events.push(RunEvent {
                seq: events.len() as u64 + 1,
                at: run.finished_at.unwrap_or(run.created_at),
                kind,
            });
        }
        events.retain(|e| e.seq > after);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RunId {
        RunId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn replays_after_the_last_seen_id_then_goes_live() {
        let hub = RunHub::new(10);
        hub.emit(&id("a"), RunEventKind::Queued);
        hub.emit(&id("a"), RunEventKind::Started);
        let mut sub = hub.subscribe(&id("a"), 1).unwrap();
        assert_eq!(sub.past.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
        hub.emit(&id("a"), RunEventKind::Completed { rows: 1, bytes: 8 });
        let live = sub.live.as_mut().unwrap().recv().await.unwrap();
        assert_eq!(live.seq, 3);
        assert!(
            hub.subscribe(&id("a"), 0).unwrap().live.is_none(),
            "finished: nothing live"
        );
    }

    #[test]
    fn evicts_the_oldest_runs() {
        let hub = RunHub::new(2);
        for r in ["a", "b", "c"] {
            hub.emit(&id(r), RunEventKind::Queued);
        }
        assert!(hub.subscribe(&id("a"), 0).is_none());
        assert!(hub.subscribe(&id("c"), 0).is_some());
    }
}
