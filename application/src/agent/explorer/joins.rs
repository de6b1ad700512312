//! Join paths between the tables put in a context: shortest paths in the join graph, as a tree.

use std::collections::VecDeque;

use super::{render, Explorer, JoinPath, JoinStep};

impl Explorer {
    /// A tree over `tables`: each one after the first is linked to the nearest earlier one by a shortest path of
    /// at most `max_join_hops` joins. A path is `(table, edge into the next table)` steps.
    pub(super) fn join_paths(&self, tables: &[usize]) -> Vec<Vec<(usize, u32)>> {
        let n = self.snapshot.tables.len();
        let mut paths = Vec::new();
        for (i, &target) in tables.iter().enumerate().skip(1) {
            let earlier = &tables[..i];
            // Breadth-first from `target` until an earlier table is reached.
            let mut prev: Vec<Option<(usize, u32)>> = vec![None; n];
            let mut depth = vec![usize::MAX; n];
            depth[target] = 0;
            let mut queue = VecDeque::from([target]);
            let mut found = None;
            while let Some(u) = queue.pop_front() {
                if earlier.contains(&u) {
                    found = Some(u);
                    break;
                }
                if depth[u] >= self.tuning.max_join_hops {
                    continue;
                }
                for &(v, e) in &self.index.adjacency[u] {
                    let v = v as usize;
                    if depth[v] == usize::MAX {
                        depth[v] = depth[u] + 1;
                        prev[v] = Some((u, e));
                        queue.push_back(v);
                    }
                }
            }
            let Some(mut at) = found else { continue };
            // Walk back from the earlier table to `target`: steps run earlier -> target.
            let mut path = Vec::new();
            while let Some((u, e)) = prev[at] {
                path.push((at, e));
                at = u;
            }
            paths.push(path);
        }
        paths
    }

    pub(super) fn join_path(&self, path: &[(usize, u32)]) -> JoinPath {
        let tables = &self.snapshot.tables;
        let steps: Vec<JoinStep> = path
            .iter()
            .map(|&(_, e)| {
                let edge = &self.index.edges[e as usize];
                let names = |t: u32, cols: &[u32]| {
                    cols.iter()
                        .map(|&c| tables[t as usize].columns[c as usize].name.clone())
                        .collect()
                };
                JoinStep {
                    left: tables[edge.from as usize].name.clone(),
                    left_columns: names(edge.from, &edge.columns),
                    right: tables[edge.to as usize].name.clone(),
                    right_columns: names(edge.to, &edge.to_columns),
                    inferred: edge.inferred,
                }
            })
            .collect();
        let first = path.first().map_or(0, |s| s.0);
        let last = path.last().map(|&(_, e)| {
            let edge = &self.index.edges[e as usize];
            // The step's far end: the endpoint that is not the step's own table.
            let own = path.last().map_or(0, |s| s.0);
            if edge.from as usize == own {
                edge.to as usize
            } else {
                edge.from as usize
            }
        });
        JoinPath {
            from: tables[first].name.clone(),
            to: tables[last.unwrap_or(first)].name.clone(),
            steps,
        }
    }

    /// `-- join: a.x = b.y` for an inferred join.
    pub(super) fn join_line(&self, e: u32) -> String {
        let edge = &self.index.edges[e as usize];
        let tables = &self.snapshot.tables;
        let side = |t: u32, cols: &[u32]| {
            let name = render::qualified(&tables[t as usize].name);
            cols.iter()
                .map(|&c| format!("{name}.{}", render::ident(&tables[t as usize].columns[c as usize].name)))
                .collect::<Vec<_>>()
        };
        let (l, r) = (side(edge.from, &edge.columns), side(edge.to, &edge.to_columns));
        let cond: Vec<String> = l.iter().zip(&r).map(|(a, b)| format!("{a} = {b}")).collect();
        format!("-- join (inferred): {}\n", cond.join(" AND "))
    }
}
