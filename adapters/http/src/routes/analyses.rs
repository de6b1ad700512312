//! `/api/v1/asset`: saved analyses, their compile plans and lineage.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::Response;
use axum::Json;
use futures::Stream;
use pluto_duck_application::ports::ExportFormat;
use pluto_duck_application::AnalysisDraft;
use pluto_duck_domain::{Identifier, Materialization, ParamType, Parameter, StepAction};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{
    AnalysisBody, AnalysisDto, AnalysisRunDto, ExecuteBody, FreshnessDto, GraphEdgeDto, GraphNodeDto, LineageDto,
    LineageGraphDto, PlanStepDto, Problem, StepOutcomeDto, StepRunDto,
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
        .routes(routes!(execute_analysis))
        .routes(routes!(get_analysis_run))
        .routes(routes!(analysis_run_events))
        .routes(routes!(analysis_history))
        .routes(routes!(analysis_freshness))
        .routes(routes!(analysis_data))
        .routes(routes!(analysis_export))
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg)
}

fn draft(id: String, body: AnalysisBody) -> Result<AnalysisDraft, ApiError> {
    let materialization = Materialization::parse(
        body.materialization.as_deref().unwrap_or("view"),
        body.unique_key.clone(),
        body.cursor.clone(),
    )
    .map_err(|e| invalid(e.to_string()))?;
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeleteParams {
    /// Also drop its table or view from the warehouse.
    drop: Option<bool>,
}

/// Deletes the definition (and with `drop=true` its table or view); refused (409) while other analyses read it.
#[utoipa::path(
    delete, path = "/asset/analysis/{id}", tag = "analyses",
    params(("id" = String, Path), DeleteParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Read by other analyses", body = Problem, content_type = "application/problem+json"))
)]
async fn delete_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .analysis_runs
        .delete(&project, &id, q.drop.unwrap_or(false))
        .await?;
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
        .analysis_runs
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
        columns: l.columns.map(|cols| {
            cols.into_iter()
                .map(|c| crate::dto::ColumnLineageDto {
                    column: c.column,
                    from: c.from,
                })
                .collect()
        }),
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

fn run_dto(run: pluto_duck_domain::Run, steps: Vec<pluto_duck_application::StepOutcome>) -> AnalysisRunDto {
    AnalysisRunDto {
        events: format!("/api/v1/asset/runs/{}/events", run.id),
        id: run.id.to_string(),
        target: run.input,
        status: run.status.as_str().to_owned(),
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        rows: run.rows,
        error: run.failure.map(|f| f.message),
        steps: steps
            .into_iter()
            .map(|o| StepOutcomeDto {
                id: o.id.to_string(),
                status: o.status.to_owned(),
                run: o.run.map(|r| r.to_string()),
                rows: o.rows,
                detail: o.detail,
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WaitParams {
    /// Wait up to this many seconds for the run to finish (default 0: 202 at once).
    wait: Option<f64>,
}

/// Runs the analysis and its stale upstream (all of them with `force`) as a job. Each step materializes
/// atomically and records a step run; with `continue_on_failure` independent branches go on and dependents of a
/// failure are blocked. Missing or ill-typed parameters answer 422 before anything runs.
#[utoipa::path(
    post, path = "/asset/analysis/{id}/execute", tag = "analyses", request_body = ExecuteBody,
    params(("id" = String, Path), WaitParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses(
        (status = 202, body = AnalysisRunDto),
        (status = 200, description = "Finished within the wait (status may be failed; see steps)", body = AnalysisRunDto),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn execute_analysis(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WaitParams>,
    ApiJson(body): ApiJson<ExecuteBody>,
) -> Result<(StatusCode, Json<AnalysisRunDto>), ApiError> {
    let wait = q.wait.unwrap_or(0.0);
    if !(0.0..=3600.0).contains(&wait) {
        return Err(invalid("wait must be between 0 and 3600 seconds"));
    }
    let params = body
        .params
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => return Err(invalid(format!("parameter {k}: null is not a value"))),
                other => other.to_string(),
            };
            Ok((k, text))
        })
        .collect::<Result<_, ApiError>>()?;
    let run = state
        .app
        .analysis_runs
        .execute(
            &project,
            &id,
            pluto_duck_application::ExecuteOptions {
                force: body.force,
                continue_on_failure: body.continue_on_failure,
                params,
                actor: Some("api".into()),
            },
        )
        .await?;
    let (run, steps) = state
        .app
        .analysis_runs
        .wait(&project, &run.id, Duration::from_secs_f64(wait))
        .await?;
    let status = if run.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(run_dto(run, steps))))
}

#[utoipa::path(
    get, path = "/asset/runs/{id}", tag = "analyses",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = AnalysisRunDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_analysis_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AnalysisRunDto>, ApiError> {
    let (run, steps) = state.app.analysis_runs.get(&project, &id).await?;
    Ok(Json(run_dto(run, steps)))
}

/// SSE of an analysis run: queued, started, progress after each step (part, parts, rows), then completed / failed.
#[utoipa::path(
    get, path = "/asset/runs/{id}/events", tag = "analyses",
    params(("id" = String, Path), ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
        ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn analysis_run_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let sub = state
        .app
        .analysis_runs
        .events(&project, &id, super::query::last_event_id(&headers))
        .await?;
    Ok(super::query::sse_stream(sub))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryParams {
    /// Default 50.
    limit: Option<u32>,
}

/// The step runs of an analysis, newest first: status, times, rows written, error.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/history", tag = "analyses",
    params(("id" = String, Path), HistoryParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = Vec<StepRunDto>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn analysis_history(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> Result<Json<Vec<StepRunDto>>, ApiError> {
    let runs = state
        .app
        .analysis_runs
        .history(&project, &id, q.limit.unwrap_or(50))
        .await?;
    Ok(Json(
        runs.into_iter()
            .map(|r| StepRunDto {
                id: r.id.to_string(),
                status: r.status.as_str().to_owned(),
                started_at: r.started_at,
                finished_at: r.finished_at,
                rows: r.rows,
                error: r.failure.map(|f| f.message),
            })
            .collect(),
    ))
}

/// Whether the analysis and its upstream are fresh, and why not.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/freshness", tag = "analyses",
    params(("id" = String, Path), ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, body = FreshnessDto), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn analysis_freshness(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FreshnessDto>, ApiError> {
    let plan = state.app.analysis_runs.freshness(&project, &id).await?;
    let stale: Vec<(String, Vec<String>)> = plan
        .iter()
        .filter_map(|(n, a)| match a {
            StepAction::Run(r) => Some((n.to_string(), r.iter().map(ToString::to_string).collect())),
            _ => None,
        })
        .collect();
    let own = plan
        .last()
        .map(|(_, a)| matches!(a, StepAction::Run(_)))
        .unwrap_or(true);
    Ok(Json(FreshnessDto {
        id,
        fresh: !own,
        stale: stale
            .into_iter()
            .map(|(id, reasons)| PlanStepDto {
                id,
                action: "run".into(),
                reasons,
                materialization: String::new(),
                sql: String::new(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DataParams {
    /// json (default), ndjson, csv, arrow, parquet; or by `Accept`. csv and parquet download as a file.
    format: Option<String>,
    /// Rows (default 1000; 0 for all).
    limit: Option<u64>,
    offset: Option<u64>,
}

/// The materialized rows of the analysis, in every result format of the query API.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/data", tag = "analyses",
    params(("id" = String, Path), DataParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, description = "Rows in the asked format", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not materialized yet", body = Problem, content_type = "application/problem+json"))
)]
async fn analysis_data(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DataParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = crate::formats::Format::negotiate(q.format.as_deref(), &headers)?;
    rows_response(
        &state,
        &project,
        &id,
        format,
        q.limit.unwrap_or(1000),
        q.offset.unwrap_or(0),
    )
    .await
}

/// The rows of an analysis in `format`; CSV and Parquet as a file download.
async fn rows_response(
    state: &AppState,
    project: &pluto_duck_domain::ProjectId,
    id: &str,
    format: crate::formats::Format,
    limit: u64,
    offset: u64,
) -> Result<Response, ApiError> {
    let (run, page) = state.app.analysis_runs.data(project, id, limit, offset).await?;
    let mut response = super::query::respond_page(&run, page, format, offset);
    attachment(&mut response, id, format);
    Ok(response)
}

fn attachment(response: &mut Response, id: &str, format: crate::formats::Format) {
    if matches!(format, crate::formats::Format::Csv | crate::formats::Format::Parquet) {
        let ext = if format == crate::formats::Format::Csv {
            "csv"
        } else {
            "parquet"
        };
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{id}.{ext}\"")) {
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_DISPOSITION, v);
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// csv (default) or parquet.
    format: Option<String>,
}

/// Every row of the analysis as a CSV or Parquet file download.
#[utoipa::path(
    get, path = "/asset/analysis/{id}/export", tag = "analyses",
    params(("id" = String, Path), ExportParams, ("X-Pluto-Project" = Option<String>, Header, description = "Project (default: default)")),
    responses((status = 200, description = "The file", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not materialized yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not csv or parquet", body = Problem, content_type = "application/problem+json"))
)]
async fn analysis_export(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let (format, export) = match q.format.as_deref().unwrap_or("csv") {
        "csv" => (crate::formats::Format::Csv, ExportFormat::Csv),
        "parquet" => (crate::formats::Format::Parquet, ExportFormat::Parquet),
        other => return Err(invalid(format!("export format must be csv or parquet, not {other:?}"))),
    };
    let file = state.app.analysis_runs.export(&project, &id, export).await?;
    let mut response = crate::formats::file_response(file, format).await?;
    attachment(&mut response, &id, format);
    Ok(response)
}
