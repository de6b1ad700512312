//! The dependency graph of analyses: cycles found and named, a deterministic topological order, and the
//! transitive up- and downstream of a node.

use std::collections::{BTreeMap, BTreeSet};

use crate::{DomainError, Identifier};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dag {
    /// node -> the nodes it reads.
    upstream: BTreeMap<Identifier, BTreeSet<Identifier>>,
    /// node -> the nodes that read it.
    downstream: BTreeMap<Identifier, BTreeSet<Identifier>>,
}

impl Dag {
    /// Builds the graph from each node's direct dependencies. A dependency on an unknown node is an error naming
    /// both; a cycle is an error naming the nodes around it, in order.
    pub fn new(edges: impl IntoIterator<Item = (Identifier, BTreeSet<Identifier>)>) -> Result<Self, DomainError> {
        let mut dag = Dag::default();
        for (node, deps) in edges {
            dag.downstream.entry(node.clone()).or_default();
            for d in &deps {
                dag.downstream.entry(d.clone()).or_default().insert(node.clone());
            }
            dag.upstream.insert(node, deps);
        }
        for (node, deps) in &dag.upstream {
            if let Some(missing) = deps.iter().find(|d| !dag.upstream.contains_key(*d)) {
                return Err(DomainError::UnknownDependency {
                    node: node.to_string(),
                    missing: missing.to_string(),
                });
            }
        }
        if let Some(cycle) = dag.find_cycle() {
            return Err(DomainError::Cycle(
                cycle.iter().map(Identifier::to_string).collect::<Vec<_>>(),
            ));
        }
        Ok(dag)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Identifier> {
        self.upstream.keys()
    }

    pub fn contains(&self, node: &Identifier) -> bool {
        self.upstream.contains_key(node)
    }

    pub fn direct_upstream(&self, node: &Identifier) -> impl Iterator<Item = &Identifier> {
        self.upstream.get(node).into_iter().flatten()
    }

    pub fn direct_downstream(&self, node: &Identifier) -> impl Iterator<Item = &Identifier> {
        self.downstream.get(node).into_iter().flatten()
    }

    /// A cycle as `[a, b, c, a]`, the smallest node first, if there is one.
    fn find_cycle(&self) -> Option<Vec<Identifier>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: BTreeMap<&Identifier, Mark> = BTreeMap::new();
        for start in self.upstream.keys() {
            if marks.contains_key(start) {
                continue;
            }
            // Iterative DFS keeping the path, so deep graphs do not overflow the stack.
            let mut path: Vec<&Identifier> = vec![start];
            let mut iters = vec![self.upstream[start].iter()];
            marks.insert(start, Mark::Open);
            while let Some(it) = iters.last_mut() {
                match it.next() {
                    Some(next) => match marks.get(next) {
                        Some(Mark::Open) => {
                            let at = path.iter().position(|n| *n == next).unwrap_or(0);
                            // Edges point to dependencies; name the cycle in reading order (a reads b reads c).
                            let mut cycle: Vec<Identifier> = path[at..].iter().map(|n| (*n).clone()).collect();
                            let min = cycle
                                .iter()
                                .enumerate()
                                .min_by_key(|(_, n)| (*n).clone())
                                .map(|(i, _)| i)
                                .unwrap_or(0);
                            cycle.rotate_left(min);
                            cycle.push(cycle[0].clone());
                            return Some(cycle);
                        }
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(next, Mark::Open);
                            path.push(next);
                            iters.push(self.upstream[next].iter());
                        }
                    },
                    None => {
                        if let Some(done) = path.pop() {
                            marks.insert(done, Mark::Done);
                        }
                        iters.pop();
                    }
                }
            }
        }
        None
    }

    /// Every node, dependencies before dependents; ties broken by id so the order never varies.
    pub fn topological_order(&self) -> Vec<Identifier> {
        let mut indegree: BTreeMap<&Identifier, usize> =
            self.upstream.iter().map(|(n, deps)| (n, deps.len())).collect();
        let mut ready: BTreeSet<&Identifier> = indegree.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n).collect();
        let mut order = Vec::with_capacity(self.upstream.len());
        while let Some(node) = ready.pop_first() {
            order.push(node.clone());
            for child in self.direct_downstream(node) {
                if let Some(d) = indegree.get_mut(child) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(child);
                    }
                }
            }
        }
        order
    }

    fn closure<'a>(
        &'a self,
        node: &Identifier,
        next: impl Fn(&'a Identifier) -> Box<dyn Iterator<Item = &'a Identifier> + 'a>,
    ) -> BTreeSet<Identifier> {
        let mut seen = BTreeSet::new();
        let Some((start, _)) = self.upstream.get_key_value(node) else {
            return seen;
        };
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for m in next(n) {
                if seen.insert(m.clone()) {
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// Everything `node` reads, transitively.
    pub fn upstream_of(&self, node: &Identifier) -> BTreeSet<Identifier> {
        self.closure(node, |n| Box::new(self.direct_upstream(n)))
    }

    /// Everything that reads `node`, transitively.
    pub fn downstream_of(&self, node: &Identifier) -> BTreeSet<Identifier> {
        self.closure(node, |n| Box::new(self.direct_downstream(n)))
    }

    /// `target` and its upstream, in topological order: what running `target` runs.
    pub fn plan_for(&self, target: &Identifier) -> Vec<Identifier> {
        let mut wanted = self.upstream_of(target);
        wanted.insert(target.clone());
        self.topological_order()
            .into_iter()
            .filter(|n| wanted.contains(n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> Identifier {
        Identifier::parse(s).unwrap()
    }

    fn dag(edges: &[(&str, &[&str])]) -> Result<Dag, DomainError> {
        Dag::new(
            edges
                .iter()
                .map(|(n, deps)| (id(n), deps.iter().map(|d| id(d)).collect())),
        )
    }

    #[test]
    fn chains_order_and_closures() {
        let g = dag(&[("c", &["b"]), ("b", &["a"]), ("a", &[]), ("z", &["a"])]).unwrap();
        assert_eq!(g.topological_order(), [id("a"), id("b"), id("c"), id("z")]);
        assert_eq!(g.plan_for(&id("c")), [id("a"), id("b"), id("c")]);
        assert_eq!(g.downstream_of(&id("a")), [id("b"), id("c"), id("z")].into());
        assert_eq!(g.upstream_of(&id("c")), [id("a"), id("b")].into());
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_named() {
        let e = dag(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]).unwrap_err();
        assert_eq!(
            e,
            DomainError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let e = dag(&[("a", &["a"])]).unwrap_err();
        assert_eq!(e, DomainError::Cycle(vec!["a".into(), "a".into()]));
        let e = dag(&[("a", &["ghost"])]).unwrap_err();
        assert!(e.to_string().contains("ghost"), "{e}");
    }

    /// Random DAGs: node i may depend only on nodes before it.
    fn arb_dag() -> impl Strategy<Value = Vec<(usize, Vec<usize>)>> {
        (1usize..30).prop_flat_map(|n| {
            proptest::collection::vec(proptest::collection::vec(any::<proptest::sample::Index>(), 0..4), n).prop_map(
                move |deps| {
                    deps.into_iter()
                        .enumerate()
                        .map(|(i, ds)| {
                            let ds = if i == 0 {
                                Vec::new()
                            } else {
                                ds.iter().map(|d| d.index(i)).collect()
                            };
                            (i, ds)
                        })
                        .collect()
                },
            )
        })
    }

    fn name(i: usize) -> Identifier {
        // Names whose order differs from the index order, so ties are broken by id, not by insertion.
        id(&format!("n{}", (i * 7919) % 1000))
    }

    fn build(spec: &[(usize, Vec<usize>)]) -> Result<Dag, DomainError> {
        Dag::new(
            spec.iter()
                .map(|(i, ds)| (name(*i), ds.iter().map(|d| name(*d)).collect())),
        )
    }

    proptest! {
        #[test]
        fn order_respects_every_edge_and_is_deterministic(spec in arb_dag()) {
            let g = build(&spec).unwrap();
            let order = g.topological_order();
            prop_assert_eq!(order.len(), spec.len());
            let pos: BTreeMap<_, _> = order.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
            for (i, ds) in &spec {
                for d in ds {
                    prop_assert!(pos[&name(*d)] < pos[&name(*i)]);
                }
            }
            let mut reversed = spec.clone();
            reversed.reverse();
            prop_assert_eq!(build(&reversed).unwrap().topological_order(), order);
        }

        #[test]
        fn a_back_edge_makes_a_named_cycle_that_is_real(spec in arb_dag(), pick in any::<proptest::sample::Index>()) {
            // Make the first node depend on a node that (transitively) depends on it, or on itself.
            let g = build(&spec).unwrap();
            let first = name(0);
            let mut readers: Vec<_> = g.downstream_of(&first).into_iter().collect();
            readers.push(first.clone());
            let back = readers[pick.index(readers.len())].clone();
            let mut edges: Vec<(Identifier, BTreeSet<Identifier>)> =
                spec.iter().map(|(i, ds)| (name(*i), ds.iter().map(|d| name(*d)).collect())).collect();
            edges[0].1.insert(back);
            let Err(DomainError::Cycle(cycle)) = Dag::new(edges.clone()) else {
                return Err(TestCaseError::fail("no cycle found"));
            };
            prop_assert_eq!(cycle.first(), cycle.last());
            let deps: BTreeMap<String, BTreeSet<String>> = edges
                .iter()
                .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
                .collect();
            for pair in cycle.windows(2) {
                prop_assert!(deps[&pair[0]].contains(&pair[1]), "{} does not read {}", pair[0], pair[1]);
            }
        }

        #[test]
        fn closures_agree_with_each_other(spec in arb_dag()) {
            let g = build(&spec).unwrap();
            for a in g.nodes() {
                for b in g.upstream_of(a) {
                    prop_assert!(g.downstream_of(&b).contains(a));
                }
            }
        }
    }
}
