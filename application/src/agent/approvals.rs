//! Approvals: an action that writes waits here for a person. A decision (approve, reject, or edit the arguments)
//! wakes the waiting turn; a turn that gives up (timeout, cancel) withdraws its request.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use pluto_duck_domain::{ProjectId, RunId};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::AppError;

/// What a person is asked to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    pub id: String,
    pub project: ProjectId,
    pub run: RunId,
    pub conversation: Option<String>,
    /// The action's dotted name (`analysis.save`).
    pub action: String,
    pub args: Value,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Approve,
    Reject {
        reason: Option<String>,
    },
    /// Approve with these arguments instead of the model's.
    Edit {
        args: Value,
    },
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject { .. } => "rejected",
            Decision::Edit { .. } => "edited",
        }
    }
}

struct Pending {
    request: ApprovalRequest,
    reply: oneshot::Sender<(Decision, String)>,
}

/// Pending approvals of this process (the turn that waits lives here too).
#[derive(Default)]
pub struct Approvals {
    pending: Mutex<HashMap<String, Pending>>,
}

/// A request's handle: the decision and who made it, or `None` when the request was withdrawn.
pub struct Waiting {
    pub id: String,
    rx: oneshot::Receiver<(Decision, String)>,
}

impl Waiting {
    pub async fn decision(self) -> Option<(Decision, String)> {
        self.rx.await.ok()
    }
}

impl Approvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn request(&self, request: ApprovalRequest) -> Waiting {
        let (tx, rx) = oneshot::channel();
        let id = request.id.clone();
        self.lock().insert(id.clone(), Pending { request, reply: tx });
        Waiting { id, rx }
    }

    /// The request is no longer waited for (timeout, cancel, the turn ended).
    pub fn withdraw(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Pending requests of the project, oldest first.
    pub fn list(&self, project: &ProjectId) -> Vec<ApprovalRequest> {
        let mut all: Vec<ApprovalRequest> = self
            .lock()
            .values()
            .filter(|p| &p.request.project == project)
            .map(|p| p.request.clone())
            .collect();
        all.sort_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.id.cmp(&b.id)));
        all
    }

    pub fn get(&self, project: &ProjectId, id: &str) -> Result<ApprovalRequest, AppError> {
        self.lock()
            .get(id)
            .filter(|p| &p.request.project == project)
            .map(|p| p.request.clone())
            .ok_or_else(|| not_found(id))
    }

    /// Delivers a decision; a request already decided, withdrawn or of another project is not found.
    pub fn decide(
        &self,
        project: &ProjectId,
        id: &str,
        decision: Decision,
        by: &str,
    ) -> Result<ApprovalRequest, AppError> {
        if let Decision::Edit { args } = &decision {
            if !args.is_object() {
                return Err(AppError::Invalid("edited arguments must be a JSON object".into()));
            }
        }
        let pending = {
            let mut map = self.lock();
            match map.get(id) {
                Some(p) if &p.request.project == project => map.remove(id),
                _ => None,
            }
        }
        .ok_or_else(|| not_found(id))?;
        let request = pending.request.clone();
        // The turn may have given up a moment ago: then the decision has no one to reach.
        pending
            .reply
            .send((decision, by.to_owned()))
            .map_err(|_| not_found(id))?;
        Ok(request)
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        what: "approval",
        id: id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(project: &str, id: &str) -> ApprovalRequest {
        ApprovalRequest {
            id: id.into(),
            project: ProjectId::parse(project).unwrap(),
            run: RunId::parse("0190f0d5-0000-7000-8000-000000000001").unwrap(),
            conversation: None,
            action: "analysis.save".into(),
            args: serde_json::json!({"id": "a"}),
            requested_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_decision_reaches_the_waiting_turn_once() {
        let approvals = Approvals::default();
        let waiting = approvals.request(request("alpha", "ap1"));
        let p = ProjectId::parse("alpha").unwrap();
        assert_eq!(approvals.list(&p).len(), 1);
        approvals.decide(&p, "ap1", Decision::Approve, "ann").unwrap();
        assert_eq!(waiting.decision().await, Some((Decision::Approve, "ann".into())));
        assert!(approvals.list(&p).is_empty());
        assert!(approvals.decide(&p, "ap1", Decision::Approve, "ann").is_err());
    }

    #[tokio::test]
    async fn another_project_cannot_decide() {
        let approvals = Approvals::default();
        let _waiting = approvals.request(request("alpha", "ap1"));
        let beta = ProjectId::parse("beta").unwrap();
        assert!(approvals.list(&beta).is_empty());
        assert!(matches!(
            approvals.decide(&beta, "ap1", Decision::Approve, "x"),
            Err(AppError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn withdrawn_requests_are_gone_and_edits_must_be_objects() {
        let approvals = Approvals::default();
        let waiting = approvals.request(request("alpha", "ap1"));
        let p = ProjectId::parse("alpha").unwrap();
        assert!(approvals
            .decide(
                &p,
                "ap1",
                Decision::Edit {
                    args: serde_json::json!(1)
                },
                "x"
            )
            .is_err());
        approvals.withdraw("ap1");
        assert!(approvals.list(&p).is_empty());
        assert_eq!(waiting.decision().await, None);
    }
}
