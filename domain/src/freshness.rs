//! Freshness and the compile plan: which analyses a run of a target must rebuild, and why.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::{Dag, Identifier};

/// What is known about an analysis's last run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub succeeded: bool,
    pub finished_at: DateTime<Utc>,
    /// Hash of the SQL and settings the run used.
    pub definition_hash: String,
    /// Hash of the parameter values the run used (`None` for runs recorded before parameters counted).
    pub params_hash: Option<String>,
}

/// The state compile needs of one analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub definition_hash: String,
    /// Hash of the parameter values this execution gives the analysis: a result built with other values is stale.
    pub params_hash: String,
    pub last_run: Option<LastRun>,
    /// The latest change of each input it reads that is not an analysis (a cached table's refresh, a file's
    /// modification time, an ingest), when known.
    pub inputs_changed_at: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleReason {
    NeverRan,
    LastRunFailed,
    DefinitionChanged,
    ParametersChanged,
    /// An upstream analysis ran after this one did.
    UpstreamNewer(Identifier),
    /// An upstream analysis runs earlier in this same plan.
    UpstreamRuns(Identifier),
    InputChanged(String),
    Forced,
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaleReason::NeverRan => write!(f, "never ran"),
            StaleReason::LastRunFailed => write!(f, "its last run failed"),
            StaleReason::DefinitionChanged => write!(f, "its definition changed since it last ran"),
            StaleReason::ParametersChanged => write!(f, "its last result was built with other parameter values"),
            StaleReason::UpstreamNewer(u) => write!(f, "upstream {u} ran after it"),
            StaleReason::UpstreamRuns(u) => write!(f, "upstream {u} runs first"),
            StaleReason::InputChanged(i) => write!(f, "input {i} changed after it ran"),
            StaleReason::Forced => write!(f, "forced"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    Run(Vec<StaleReason>),
    Skip,
    /// An upstream failed in this run (only when running with continue-on-failure).
    Blocked(Identifier),
}

/// The hash of "no parameter values" (an analysis without parameters): runs recorded before parameters were
/// part of freshness compare equal to it.
pub const NO_PARAMS: &str = "-";

/// Hash of the values an analysis is given, by name (FNV-1a over the sorted pairs; stable across builds).
pub fn params_hash<'a>(values: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut pairs: Vec<(&str, String)> = values.into_iter().collect();
    if pairs.is_empty() {
        return NO_PARAMS.to_owned();
    }
    pairs.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in pairs {
        for b in k.bytes().chain([0u8]).chain(v.bytes()).chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Why `node` is stale on its own (not counting this plan), empty when fresh.
pub fn stale_reasons(dag: &Dag, node: &Identifier, states: &BTreeMap<Identifier, NodeState>) -> Vec<StaleReason> {
    let Some(state) = states.get(node) else {
        return vec![StaleReason::NeverRan];
    };
    let Some(last) = &state.last_run else {
        return vec![StaleReason::NeverRan];
    };
    let mut reasons = Vec::new();
    if !last.succeeded {
        reasons.push(StaleReason::LastRunFailed);
    }
    if last.definition_hash != state.definition_hash {
        reasons.push(StaleReason::DefinitionChanged);
    }
    if last.params_hash.as_deref().unwrap_or(NO_PARAMS) != state.params_hash {
        reasons.push(StaleReason::ParametersChanged);
    }
    for up in dag.direct_upstream(node) {
        let newer = states
            .get(up)
            .and_then(|s| s.last_run.as_ref())
            .is_some_and(|u| u.succeeded && u.finished_at > last.finished_at);
        if newer {
            reasons.push(StaleReason::UpstreamNewer(up.clone()));
        }
    }
    for (input, at) in &state.inputs_changed_at {
        if *at > last.finished_at {
            reasons.push(StaleReason::InputChanged(input.clone()));
        }
    }
    reasons
}

/// The plan for running `target`: its upstream and itself in topological order, each to run (with the reasons)
/// or to skip. A step runs when it is stale, when `force` is set, or when an upstream runs before it in this plan.
pub fn plan(
    dag: &Dag,
    target: &Identifier,
    states: &BTreeMap<Identifier, NodeState>,
    force: bool,
) -> Vec<(Identifier, StepAction)> {
    let mut running: BTreeSet<Identifier> = BTreeSet::new();
    let mut steps = Vec::new();
    for node in dag.plan_for(target) {
        let mut reasons = if force {
            vec![StaleReason::Forced]
        } else {
            stale_reasons(dag, &node, states)
        };
        for up in dag.direct_upstream(&node) {
            if running.contains(up) && !force {
                reasons.push(StaleReason::UpstreamRuns(up.clone()));
            }
        }
        if reasons.is_empty() {
            steps.push((node, StepAction::Skip));
        } else {
            running.insert(node.clone());
            steps.push((node, StepAction::Run(reasons)));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn id(s: &str) -> Identifier {
        Identifier::parse(s).unwrap()
    }

    fn chain() -> Dag {
        Dag::new([
            (id("a"), BTreeSet::new()),
            (id("b"), [id("a")].into()),
            (id("c"), [id("b")].into()),
        ])
        .unwrap()
    }

    fn ran(at: DateTime<Utc>, ok: bool) -> NodeState {
        NodeState {
            definition_hash: "h".into(),
            params_hash: NO_PARAMS.into(),
            last_run: Some(LastRun {
                succeeded: ok,
                finished_at: at,
                definition_hash: "h".into(),
                params_hash: None,
            }),
            inputs_changed_at: BTreeMap::new(),
        }
    }

    fn actions(p: &[(Identifier, StepAction)]) -> Vec<(&str, bool)> {
        p.iter()
            .map(|(n, a)| (n.as_str(), matches!(a, StepAction::Run(_))))
            .collect()
    }

    #[test]
    fn the_chain_scenario() {
        let g = chain();
        let t0 = Utc::now();
        // Never ran: everything runs.
        let p = plan(&g, &id("c"), &BTreeMap::new(), false);
        assert_eq!(actions(&p), [("a", true), ("b", true), ("c", true)]);
        // All ran in order: nothing to do.
        let mut states: BTreeMap<_, _> = [
            (id("a"), ran(t0, true)),
            (id("b"), ran(t0 + Duration::seconds(1), true)),
            (id("c"), ran(t0 + Duration::seconds(2), true)),
        ]
        .into();
        assert_eq!(
            actions(&plan(&g, &id("c"), &states, false)),
            [("a", false), ("b", false), ("c", false)]
        );
        // a ran again on its own: b and c are stale, transitively within the plan.
        states.insert(id("a"), ran(t0 + Duration::seconds(10), true));
        let p = plan(&g, &id("c"), &states, false);
        assert_eq!(actions(&p), [("a", false), ("b", true), ("c", true)]);
        assert_eq!(p[2].1, StepAction::Run(vec![StaleReason::UpstreamRuns(id("b"))]));
        // Editing b's SQL.
        states.insert(id("a"), ran(t0, true));
        states.get_mut(&id("b")).unwrap().definition_hash = "h2".into();
        let p = plan(&g, &id("c"), &states, false);
        assert_eq!(p[1].1, StepAction::Run(vec![StaleReason::DefinitionChanged]));
        assert!(matches!(p[2].1, StepAction::Run(_)));
        // A failed run of b.
        states.insert(id("b"), ran(t0 + Duration::seconds(1), false));
        let p = plan(&g, &id("c"), &states, false);
        assert_eq!(p[1].1, StepAction::Run(vec![StaleReason::LastRunFailed]));
        // An input changed after c ran.
        states.insert(id("b"), ran(t0 + Duration::seconds(1), true));
        states
            .get_mut(&id("c"))
            .unwrap()
            .inputs_changed_at
            .insert("cache.fx".into(), t0 + Duration::seconds(5));
        let p = plan(&g, &id("c"), &states, false);
        assert_eq!(
            p[2].1,
            StepAction::Run(vec![StaleReason::InputChanged("cache.fx".into())])
        );
        // Other parameter values than the last result was built with.
        states.get_mut(&id("c")).unwrap().inputs_changed_at.clear();
        states.get_mut(&id("c")).unwrap().params_hash = params_hash([("who", "k2".to_owned())]);
        let p = plan(&g, &id("c"), &states, false);
        assert_eq!(p[2].1, StepAction::Run(vec![StaleReason::ParametersChanged]));
        assert_ne!(
            params_hash([("who", "k1".to_owned())]),
            params_hash([("who", "k2".to_owned())])
        );
        // force runs all.
        assert!(plan(&g, &id("c"), &states, true)
            .iter()
            .all(|(_, a)| *a == StepAction::Run(vec![StaleReason::Forced])));
    }
}
