//! Wire types of what `/api/v1/asset` tells about analyses beyond their definitions: compile plans, freshness,
//! lineage and the project's graph.

use pluto_duck_application::{CompiledStep, Freshness, Lineage, LineageGraph};
use pluto_duck_domain::{Identifier, StepAction};
use serde::Serialize;
use utoipa::ToSchema;

use crate::openapi::text_enum;

text_enum!(
    /// What a plan does with a step.
    StepActionName,
    "run, skip or blocked",
    ["run", "skip", "blocked"]
);

/// A step of a compile plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanStepDto {
    pub id: String,
    #[schema(value_type = StepActionName)]
    pub action: String,
    /// Why it runs (never ran, definition changed, upstream runs first, ...), or what blocks it.
    pub reasons: Vec<String>,
    pub materialization: String,
    /// The SELECT the warehouse runs: refs resolved to the project's schema, ephemerals inlined.
    pub sql: String,
}

impl From<CompiledStep> for PlanStepDto {
    fn from(s: CompiledStep) -> Self {
        let (action, reasons) = match s.action {
            StepAction::Run(r) => ("run", r.iter().map(ToString::to_string).collect()),
            StepAction::Skip => ("skip", Vec::new()),
            StepAction::Blocked(by) => ("blocked", vec![format!("upstream {by} failed")]),
        };
        PlanStepDto {
            id: s.id.to_string(),
            action: action.to_owned(),
            reasons,
            materialization: s.materialization.as_str().to_owned(),
            sql: s.sql,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineageDto {
    pub id: String,
    pub upstream: Vec<String>,
    pub downstream: Vec<String>,
    /// Sources, cached and warehouse tables the analysis reads.
    pub relations: Vec<String>,
    pub files: Vec<String>,
    /// Column-level lineage: each output column with the input columns (`relation.column`) it reads; `null` when
    /// the query's shape cannot be resolved by the parser (set operations, derived tables, table functions).
    pub columns: Option<Vec<ColumnLineageDto>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnLineageDto {
    pub column: String,
    pub from: Vec<String>,
}

impl From<Lineage> for LineageDto {
    fn from(l: Lineage) -> Self {
        let strings = |s: std::collections::BTreeSet<Identifier>| s.into_iter().map(|i| i.to_string()).collect();
        Self {
            id: l.id.to_string(),
            upstream: strings(l.upstream),
            downstream: strings(l.downstream),
            relations: l.relations.into_iter().collect(),
            files: l.files.into_iter().collect(),
            columns: l.columns.map(|cols| {
                cols.into_iter()
                    .map(|c| ColumnLineageDto {
                        column: c.column,
                        from: c.from,
                    })
                    .collect()
            }),
        }
    }
}

text_enum!(
    /// Kinds of nodes of the lineage graph.
    GraphNodeKind,
    "analysis, source_table, cached_table, table, file, or a dbt node: dbt_model, dbt_seed, dbt_snapshot, dbt_source, dbt_test",
    ["analysis", "source_table", "cached_table", "table", "file", "dbt_model", "dbt_seed", "dbt_snapshot", "dbt_source", "dbt_test"]
);

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphNodeDto {
    pub id: String,
    #[schema(value_type = GraphNodeKind)]
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphEdgeDto {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineageGraphDto {
    pub nodes: Vec<GraphNodeDto>,
    pub edges: Vec<GraphEdgeDto>,
    /// Column-level edges where the parser can tell (dbt models' plain selects).
    pub columns: Vec<ColumnEdgeDto>,
}

/// `from`.`from_column` flows into `to`.`to_column`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnEdgeDto {
    pub from: String,
    pub from_column: String,
    pub to: String,
    pub to_column: String,
}

impl From<LineageGraph> for LineageGraphDto {
    fn from(g: LineageGraph) -> Self {
        Self {
            nodes: g
                .nodes
                .into_iter()
                .map(|(id, kind)| GraphNodeDto {
                    id,
                    kind: kind.to_owned(),
                })
                .collect(),
            edges: g
                .edges
                .into_iter()
                .map(|(from, to)| GraphEdgeDto { from, to })
                .collect(),
            columns: g
                .columns
                .into_iter()
                .map(|c| ColumnEdgeDto {
                    from: c.from,
                    from_column: c.from_column,
                    to: c.to,
                    to_column: c.to_column,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreshnessDto {
    pub id: String,
    pub fresh: bool,
    /// The steps a run would execute, with why.
    pub stale: Vec<PlanStepDto>,
}

impl FreshnessDto {
    pub fn new(id: String, f: Freshness) -> Self {
        let stale = f
            .stale
            .into_iter()
            .map(|(id, reasons)| PlanStepDto {
                id: id.to_string(),
                action: "run".into(),
                reasons: reasons.iter().map(ToString::to_string).collect(),
                materialization: String::new(),
                sql: String::new(),
            })
            .collect();
        FreshnessDto {
            id,
            fresh: f.fresh,
            stale,
        }
    }
}
