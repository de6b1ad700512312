//! `/api/v1/asset`: saved analyses, their compile plans and lineage.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pluto_duck_application::AnalysisDraft;
use pluto_duck_domain::{Identifier, Materialization, ParamType, Parameter, StepAction};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{
    AnalysisBody, AnalysisDto, GraphEdgeDto, GraphNodeDto, LineageDto, LineageGraphDto, PlanStepDto, Problem,
};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_analysis))
        .routes(routes!(list_analyses))
        .routes(routes!(get_analysis, update_analysis, delete_analysis))
        .routes(routes!(compile_analysis))
        .routes(routes!(analysis_lineage))
        .routes(routes!(lineage_graph))
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

fn draft(id: String, body: AnalysisBody) -> Result<AnalysisDraft, ApiError> {
    let materialization = match body.materialization.as_deref().unwrap_or("view") {
        "view" => Materialization::View,
        "table" => Materialization::Table,
        "append" => Materialization::Append,
        "parquet" => Materialization::Parquet,
        "ephemeral" => Materialization::Ephemeral,
        "incremental" => Materialization::Incremental {
            unique_key: body.unique_key.clone(),
            cursor: body.cursor.clone(),
        },
        other => {
            return Err(invalid(format!(
                "unknown materialization {other:?}: view, table, append, incremental, parquet or ephemeral"
            )))
        }
    };
    if !matches!(materialization, Materialization::Incremental { .. })
        && (!body.unique_key.is_empty() || body.cursor.is_some())
    {
        return Err(invalid("unique_key and cursor apply to incremental analyses only"));
    }
    let parameters = body
        .parameters
        .into_iter()
        .map(|p| {
            Ok(Parameter {
                name: Identifier::parse(p.name).map_err(|e| invalid(e.to_string()))?,
                ty: ParamType::parse(&p.ty).map_err(|e| invalid(e.to_string()))?,
                default: p.default,
                required: p.required,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(AnalysisDraft {
        id,
        name: body.name,
        sql: body.sql,
        description: body.description,
        tags: body.tags,
        materialization,
        parameters,
    })
}

/// Saves a new analysis. Its refs must name analyses of the project; a ref that closes a cycle is refused (409,
/// naming the cycle).
#[utoipa::path(
    post, path = "/asset/analysis", tag = "analyses", request_body = AnalysisBody,
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 201, body = AnalysisDto),
        (status = 409, description = "Exists already, or a dependency cycle", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<AnalysisBody>,
) -> Result<(StatusCode, Json<AnalysisDto>), ApiError> {
    let id = body.id.clone().ok_or_else(|| invalid("`id` is required"))?;
    let a = state.app.analyses.create(&project, draft(id, body)?).await?;
    Ok((StatusCode::CREATED, Json(a.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only analyses with this tag.
    tag: Option<String>,
}

#[utoipa::path(
    get, path = "/asset/analyses", tag = "analyses",
    params(ListParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<AnalysisDto>), (status = 422, description = "A hand-edited file is broken", body = Problem, content_type = "application/problem+json"))
)]
async fn list_analyses(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<Vec<AnalysisDto>>, ApiError> {
    let all = state.app.analyses.list(&project, q.tag.as_deref()).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

#[utoipa::path(
    get, path = "/asset/analysis/{id}", tag = "analyses",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = AnalysisDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AnalysisDto>, ApiError> {
    Ok(Json(state.app.analyses.get(&project, &id).await?.into()))
}

/// Replaces the definition (the id comes from the path).
#[utoipa::path(
    put, path = "/asset/analysis/{id}", tag = "analyses", request_body = AnalysisBody,
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 200, body = AnalysisDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A dependency cycle", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AnalysisBody>,
) -> Result<Json<AnalysisDto>, ApiError> {
    if body.id.as_ref().is_some_and(|b| *b != id) {
        return Err(invalid(
            "the body's id differs from the path's; an analysis cannot be renamed",
        ));
    }
    Ok(Json(
        state.app.analyses.update(&project, draft(id, body)?).await?.into(),
    ))
}

/// Deletes the definition; refused (409) while other analyses read it.
#[utoipa::path(
    delete, path = "/asset/analysis/{id}", tag = "analyses",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Read by other analyses", body = Problem, content_type = "application/problem+json"))
)]
async fn delete_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.analyses.delete(&project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CompileParams {
    /// Plan every step to run, fresh or not.
    force: Option<bool>,
}

/// The plan for running the analysis: its upstream and itself in order, each with run / skip and the reasons,
/// and the SQL the warehouse would run.
#[utoipa::path(
    post, path = "/asset/analysis/{id}/compile", tag = "analyses",
    params(("id" = String, Path), CompileParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<PlanStepDto>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A dependency cycle (hand-edited files)", body = Problem, content_type = "application/problem+json"))
)]
async fn compile_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CompileParams>,
) -> Result<Json<Vec<PlanStepDto>>, ApiError> {
    let steps = state
        .app
        .analyses
        .compile(&project, &id, q.force.unwrap_or(false))
        .await?;
    Ok(Json(
        steps
            .into_iter()
            .map(|s| {
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
            })
            .collect(),
    ))
}

#[utoipa::path(
    get, path = "/asset/analysis/{id}/lineage", tag = "analyses",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = LineageDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn analysis_lineage(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LineageDto>, ApiError> {
    let l = state.app.analyses.lineage(&project, &id).await?;
    let strings = |s: std::collections::BTreeSet<Identifier>| s.into_iter().map(|i| i.to_string()).collect();
    Ok(Json(LineageDto {
        id: l.id.to_string(),
        upstream: strings(l.upstream),
        downstream: strings(l.downstream),
        relations: l.relations.into_iter().collect(),
        files: l.files.into_iter().collect(),
    }))
}

/// The project's whole graph: analyses and the relations and files they read, as nodes and edges.
#[utoipa::path(
    get, path = "/asset/lineage-graph", tag = "analyses",
    params(("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = LineageGraphDto))
)]
async fn lineage_graph(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<LineageGraphDto>, ApiError> {
    let g = state.app.analyses.graph(&project).await?;
    Ok(Json(LineageGraphDto {
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
    }))
}
