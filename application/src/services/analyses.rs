//! Saved analyses: definitions in the `AnalysisStore`, dependencies from their parsed SQL, the project's DAG
//! checked on every save (a cycle is refused naming it), compile plans with freshness, and lineage.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use pluto_duck_domain::{
    check_user_sql, compile_sql, dependencies, expand_refs, plan, Analysis, Dag, DomainError, Identifier,
    Materialization, NodeState, Parameter, ProjectId, StepAction, ANALYSIS_SCHEMA,
};
use tracing::instrument;

use crate::ports::AnalysisStore;
use crate::AppError;

/// What a client gives to create or replace an analysis.
#[derive(Debug, Clone)]
pub struct AnalysisDraft {
    pub id: String,
    pub name: Option<String>,
    pub sql: String,
    pub description: String,
    pub tags: Vec<String>,
    pub materialization: Materialization,
    pub parameters: Vec<Parameter>,
}

/// One step of a compile plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledStep {
    pub id: Identifier,
    pub action: StepAction,
    pub materialization: Materialization,
    /// The SELECT the warehouse runs (refs resolved, ephemerals inlined).
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub id: Identifier,
    /// Direct and transitive upstream analyses.
    pub upstream: BTreeSet<Identifier>,
    pub downstream: BTreeSet<Identifier>,
    /// Relations (sources, cached tables, warehouse tables) and files read by the analysis itself.
    pub relations: BTreeSet<String>,
    pub files: BTreeSet<String>,
    /// Per output column, the input columns it reads; `None` where the parser cannot resolve the query.
    pub columns: Option<Vec<pluto_duck_domain::ColumnLineage>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineageGraph {
    /// (id, kind): kind is analysis, source_table (`source.schema.table`), cached_table, table or file.
    pub nodes: Vec<(String, &'static str)>,
    /// (from, to): data flows from `from` into `to`.
    pub edges: Vec<(String, String)>,
    /// Column-level edges, where the parser can tell (dbt models' simple selects): a column of one node read
    /// into a column of another.
    pub columns: Vec<ColumnEdge>,
}

/// `from`.`from_column` flows into `to`.`to_column` (node ids as in [`LineageGraph::nodes`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnEdge {
    pub from: String,
    pub from_column: String,
    pub to: String,
    pub to_column: String,
}

pub struct AnalysisService {
    store: Arc<dyn AnalysisStore>,
}

/// Where an analysis materializes in its project's database: `analysis.<id>`.
pub fn analysis_relation(id: &Identifier) -> pluto_duck_domain::Relation {
    pluto_duck_domain::Relation {
        schema: Identifier::canonical(ANALYSIS_SCHEMA).unwrap_or_else(|_| Identifier::sanitize(ANALYSIS_SCHEMA)),
        name: id.clone(),
    }
}

pub(crate) fn dag_of(analyses: &[Analysis]) -> Result<Dag, AppError> {
    let mut edges = Vec::with_capacity(analyses.len());
    for a in analyses {
        edges.push((a.id.clone(), dependencies(&a.sql)?.analyses));
    }
    Dag::new(edges).map_err(|e| match e {
        DomainError::UnknownDependency { node, missing } => AppError::Invalid(format!(
            "{node} refs {missing}, which is not an analysis of this project"
        )),
        other => other.into(),
    })
}

impl AnalysisService {
    pub fn new(store: Arc<dyn AnalysisStore>) -> Self {
        Self { store }
    }

    pub async fn list(&self, project: &ProjectId, tag: Option<&str>) -> Result<Vec<Analysis>, AppError> {
        let all = self.store.list(project).await?;
        Ok(match tag {
            Some(t) => all.into_iter().filter(|a| a.tags.iter().any(|x| x == t)).collect(),
            None => all,
        })
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<Analysis, AppError> {
        let id = Identifier::canonical(id)?;
        self.store.get(project, &id).await?.ok_or_else(|| AppError::NotFound {
            what: "analysis",
            id: id.to_string(),
        })
    }

    /// Validates the draft and checks the project's graph with it in place: unknown refs are refused, and so is
    /// a cycle (conflict, naming it).
    async fn save(
        &self,
        project: &ProjectId,
        draft: AnalysisDraft,
        existing: Option<Analysis>,
    ) -> Result<Analysis, AppError> {
        let id = Identifier::canonical(draft.id)?;
        let now = Utc::now();
        let analysis = Analysis {
            name: draft
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| id.to_string()),
            id,
            project: project.clone(),
            sql: draft.sql.trim().trim_end_matches(';').trim_end().to_owned(),
            description: draft.description,
            tags: draft.tags,
            materialization: draft.materialization,
            parameters: draft.parameters,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        analysis.validate()?;
        // It runs in the project's sandbox: its SQL obeys the same rules as a query's.
        check_user_sql(&expand_refs(&analysis.sql)?)?;
        let mut all: Vec<Analysis> = self
            .store
            .list(project)
            .await?
            .into_iter()
            .filter(|a| a.id != analysis.id)
            .collect();
        all.push(analysis.clone());
        dag_of(&all)?;
        self.store.put(&analysis).await?;
        Ok(analysis)
    }

    #[instrument(skip_all, fields(project = %project, analysis = %draft.id))]
    pub async fn create(&self, project: &ProjectId, draft: AnalysisDraft) -> Result<Analysis, AppError> {
        let id = Identifier::canonical(draft.id.clone())?;
        if self.store.get(project, &id).await?.is_some() {
            return Err(AppError::Conflict(format!("analysis {id} already exists")));
        }
        self.save(project, draft, None).await
    }

    #[instrument(skip_all, fields(project = %project, analysis = %draft.id))]
    pub async fn update(&self, project: &ProjectId, draft: AnalysisDraft) -> Result<Analysis, AppError> {
        let existing = self.get(project, &draft.id).await?;
        self.save(project, draft, Some(existing)).await
    }

    /// Removes the definition regardless of readers (a project reset or delete removes them all).
    pub(crate) async fn remove_file(&self, project: &ProjectId, id: &Identifier) -> Result<(), AppError> {
        self.store.delete(project, id).await?;
        Ok(())
    }

    /// Refused while other analyses ref it (conflict naming them).
    pub async fn delete(&self, project: &ProjectId, id: &str) -> Result<Analysis, AppError> {
        let analysis = self.get(project, id).await?;
        let all = self.store.list(project).await?;
        let dag = dag_of(&all)?;
        let readers: Vec<String> = dag.direct_downstream(&analysis.id).map(Identifier::to_string).collect();
        if !readers.is_empty() {
            return Err(AppError::Conflict(format!(
                "analysis {} is read by {}; change or delete those first",
                analysis.id,
                readers.join(", ")
            )));
        }
        self.store.delete(project, &analysis.id).await?;
        Ok(analysis)
    }

    /// What running `id` would do given the analyses' `states`: each step in order with run / skip and the
    /// reasons, and its compiled SQL.
    pub async fn compile(
        &self,
        project: &ProjectId,
        id: &str,
        force: bool,
        states: &BTreeMap<Identifier, NodeState>,
    ) -> Result<Vec<CompiledStep>, AppError> {
        let target = self.get(project, id).await?;
        let all = self.store.list(project).await?;
        let dag = dag_of(&all)?;
        let by_id: BTreeMap<&Identifier, &Analysis> = all.iter().map(|a| (&a.id, a)).collect();
        let mut compiled: BTreeMap<Identifier, String> = BTreeMap::new();
        let mut ephemeral: BTreeMap<Identifier, String> = BTreeMap::new();
        for node in dag.plan_for(&target.id) {
            let Some(a) = by_id.get(&node) else { continue };
            let sql = compile_sql(&a.sql, &ephemeral)?;
            if a.materialization == Materialization::Ephemeral {
                ephemeral.insert(node.clone(), sql.clone());
            }
            compiled.insert(node, sql);
        }
        Ok(plan(&dag, &target.id, states, force)
            .into_iter()
            .filter_map(|(node, action)| {
                let a = by_id.get(&node)?;
                let action = if a.materialization == Materialization::Ephemeral {
                    // Inlined into its readers; nothing to build.
                    StepAction::Skip
                } else {
                    action
                };
                Some(CompiledStep {
                    sql: compiled.remove(&node).unwrap_or_default(),
                    materialization: a.materialization.clone(),
                    id: node,
                    action,
                })
            })
            .collect())
    }

    pub async fn lineage(&self, project: &ProjectId, id: &str) -> Result<Lineage, AppError> {
        let analysis = self.get(project, id).await?;
        let all = self.store.list(project).await?;
        let dag = dag_of(&all)?;
        let deps = dependencies(&analysis.sql)?;
        Ok(Lineage {
            columns: pluto_duck_domain::column_lineage(&analysis.sql)?,
            upstream: dag.upstream_of(&analysis.id),
            downstream: dag.downstream_of(&analysis.id),
            relations: deps.relations,
            files: deps.files,
            id: analysis.id,
        })
    }

    /// The project's whole graph: analyses, and the relations and files they read.
    pub async fn graph(&self, project: &ProjectId) -> Result<LineageGraph, AppError> {
        let all = self.store.list(project).await?;
        dag_of(&all)?;
        let mut graph = LineageGraph::default();
        let mut inputs: BTreeMap<String, &'static str> = BTreeMap::new();
        for a in &all {
            graph.nodes.push((a.id.to_string(), "analysis"));
            let deps = dependencies(&a.sql)?;
            for up in deps.analyses {
                graph.edges.push((up.to_string(), a.id.to_string()));
            }
            for r in deps.relations {
                graph.edges.push((r.clone(), a.id.to_string()));
                let kind = if r.split('.').count() == 3 {
                    "source_table"
                } else if r.to_ascii_lowercase().starts_with("cache.") {
                    "cached_table"
                } else {
                    "table"
                };
                inputs.insert(r, kind);
            }
            for f in deps.files {
                graph.edges.push((f.clone(), a.id.to_string()));
                inputs.insert(f, "file");
            }
        }
        graph.nodes.extend(inputs);
        graph.edges.sort();
        Ok(graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockAnalysisStore;
    use std::sync::Mutex;

    /// A mock store backed by a map, so the service's rules are tested without files.
    fn store() -> MockAnalysisStore {
        let data: Arc<Mutex<BTreeMap<Identifier, Analysis>>> = Arc::default();
        let mut m = MockAnalysisStore::new();
        let d = data.clone();
        m.expect_list()
            .returning(move |_| Ok(d.lock().unwrap().values().cloned().collect()));
        let d = data.clone();
        m.expect_get()
            .returning(move |_, id| Ok(d.lock().unwrap().get(id).cloned()));
        let d = data.clone();
        m.expect_put().returning(move |a| {
            d.lock().unwrap().insert(a.id.clone(), a.clone());
            Ok(())
        });
        let d = data;
        m.expect_delete()
            .returning(move |_, id| Ok(d.lock().unwrap().remove(id).is_some()));
        m
    }

    fn draft(id: &str, sql: &str) -> AnalysisDraft {
        AnalysisDraft {
            id: id.into(),
            name: None,
            sql: sql.into(),
            description: String::new(),
            tags: Vec::new(),
            materialization: Materialization::Table,
            parameters: Vec::new(),
        }
    }

    #[tokio::test]
    async fn cycles_unknown_refs_and_readers_are_refused() {
        let svc = AnalysisService::new(Arc::new(store()));
        let p = ProjectId::default_project();
        svc.create(&p, draft("a", "SELECT 1 AS x")).await.unwrap();
        svc.create(&p, draft("b", "SELECT * FROM {{ ref('a') }}"))
            .await
            .unwrap();
        let e = svc
            .create(&p, draft("c", "SELECT * FROM analysis.nope"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{e}");
        let e = svc
            .update(&p, draft("a", "SELECT * FROM analysis.b"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        assert!(e.to_string().contains("a -> b -> a"), "{e}");
        let e = svc.delete(&p, "a").await.unwrap_err();
        assert!(e.to_string().contains("read by b"), "{e}");
        let e = svc.create(&p, draft("bad-id", "SELECT 1")).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Invalid);
        assert_eq!(svc.get(&p, "zzz").await.unwrap_err().kind(), crate::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn compile_plans_the_chain_and_inlines_ephemerals() {
        let svc = AnalysisService::new(Arc::new(store()));
        let p = ProjectId::parse("team").unwrap();
        let mut e = draft("e", "SELECT 1 AS x");
        e.materialization = Materialization::Ephemeral;
        svc.create(&p, e).await.unwrap();
        svc.create(&p, draft("a", "SELECT * FROM analysis.e")).await.unwrap();
        svc.create(&p, draft("b", "SELECT * FROM {{ ref('a') }}"))
            .await
            .unwrap();
        let steps = svc.compile(&p, "b", false, &BTreeMap::new()).await.unwrap();
        let ids: Vec<_> = steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["e", "a", "b"]);
        assert_eq!(steps[0].action, StepAction::Skip);
        assert!(
            steps[1].sql.starts_with("WITH __pd_ephemeral_e AS (SELECT 1 AS x)"),
            "{}",
            steps[1].sql
        );
        assert_eq!(steps[2].sql, "SELECT * FROM analysis.a");
        let lineage = svc.lineage(&p, "a").await.unwrap();
        assert_eq!(lineage.upstream, [Identifier::parse("e").unwrap()].into());
        assert_eq!(lineage.downstream, [Identifier::parse("b").unwrap()].into());
    }
}
