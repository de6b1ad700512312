//! `/api/v1/jobs`: named units of work (SQL, an analysis, an ingest, a dbt selection) with optional cron
//! schedules; their runs (each doing its work as a child run of that kind, or reported by an outside system) with
//! their inputs and outputs; job change events and per-run events as Server-Sent Events.

mod wire;

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::{stream, Stream};
use pluto_duck_application::{job_run_detail, JobEvent, RunReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{sse_stream, JobWaitParams, RunEventFrame};
use crate::extract::{actor, ApiJson, ApiPath, ApiQuery, LastEventId, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;
use wire::{
    CompleteRunBody, ExternalRunBody, JobBody, JobDto, JobEventData, JobEventFrame, JobPath, JobRunDto, JobRunPath,
    RunDatasetsDto, RunListParams, RunTablesDto,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs, create_job))
        .routes(routes!(job_events))
        .routes(routes!(get_job, replace_job, delete_job))
        .routes(routes!(list_job_runs, start_job_run))
        .routes(routes!(open_external_run))
        .routes(routes!(get_job_run))
        .routes(routes!(job_run_datasets))
        .routes(routes!(job_run_tables))
        .routes(routes!(complete_job_run))
        .routes(routes!(cancel_job_run))
        .routes(routes!(job_run_events))
}

/// The project's jobs with their last run and next scheduled time.
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(ProjectScope), responses((status = 200, body = Vec<JobDto>)))]
async fn list_jobs(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<JobDto>>, ApiError> {
    let jobs = state.app.job_defs.list(&project).await?;
    Ok(Json(jobs.into_iter().map(JobDto::from_status).collect()))
}

/// Defines a job: a name, what it runs and optionally a cron schedule (checked: a bad expression is 422).
#[utoipa::path(
    post, path = "/jobs", tag = "jobs", request_body = JobBody, params(ProjectScope),
    responses(
        (status = 201, body = JobDto),
        (status = 409, description = "The project has a job of that name"),
        (status = 422, description = "A bad name, task or schedule"),
    )
)]
async fn create_job(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<JobBody>,
) -> Result<(StatusCode, Json<JobDto>), ApiError> {
    let name = body.name.clone().ok_or_else(|| ApiError::invalid("name is required"))?;
    let job = state.app.job_defs.create(&project, body.into_draft(name)?).await?;
    Ok((StatusCode::CREATED, Json(JobDto::from_job(job))))
}

/// A job with its last run and next scheduled time.
#[utoipa::path(get, path = "/jobs/{name}", tag = "jobs", params(JobPath, ProjectScope), responses((status = 200, body = JobDto)))]
async fn get_job(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobPath { name }): ApiPath<JobPath>,
) -> Result<Json<JobDto>, ApiError> {
    Ok(Json(JobDto::from_status(
        state.app.job_defs.status(&project, &name).await?,
    )))
}

/// Replaces what the job runs and its schedule (a `name` in the body must be the path's).
#[utoipa::path(
    put, path = "/jobs/{name}", tag = "jobs", request_body = JobBody, params(JobPath, ProjectScope),
    responses((status = 200, body = JobDto), (status = 422, description = "A bad task or schedule"))
)]
async fn replace_job(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobPath { name }): ApiPath<JobPath>,
    ApiJson(body): ApiJson<JobBody>,
) -> Result<Json<JobDto>, ApiError> {
    if body.name.as_ref().is_some_and(|n| !n.eq_ignore_ascii_case(&name)) {
        return Err(ApiError::invalid(
            "the body's name differs from the path's; a job cannot be renamed",
        ));
    }
    let draft = body.into_draft(name.clone())?;
    Ok(Json(JobDto::from_job(
        state.app.job_defs.update(&project, &name, draft).await?,
    )))
}

/// Deletes the job; its runs stay in the run history.
#[utoipa::path(delete, path = "/jobs/{name}", tag = "jobs", params(JobPath, ProjectScope), responses((status = 204, description = "Deleted")))]
async fn delete_job(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobPath { name }): ApiPath<JobPath>,
) -> Result<StatusCode, ApiError> {
    state.app.job_defs.delete(&project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The job's runs, newest first (a scheduled run skipped because the previous one still ran is listed as
/// cancelled, saying so).
#[utoipa::path(
    get, path = "/jobs/{name}/runs", tag = "jobs", params(JobPath, RunListParams, ProjectScope),
    responses((status = 200, body = Vec<JobRunDto>))
)]
async fn list_job_runs(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobPath { name }): ApiPath<JobPath>,
    ApiQuery(params): ApiQuery<RunListParams>,
) -> Result<Json<Vec<JobRunDto>>, ApiError> {
    let job = state.app.job_defs.get(&project, &name).await?;
    let limit = params.limit.unwrap_or(50).clamp(1, 1000);
    let runs = state.app.job_defs.runs(&project, job.name.as_str(), limit).await?;
    Ok(Json(runs.into_iter().map(JobRunDto::from_run).collect()))
}

/// Starts a run of the job: its work is a child run (query, analysis run, ingest, dbt) linked from it. 202 at
/// once, or 200 when it finished within `wait`.
#[utoipa::path(
    post, path = "/jobs/{name}/runs", tag = "jobs", params(JobPath, JobWaitParams, ProjectScope),
    responses(
        (status = 202, description = "Queued or running", body = JobRunDto),
        (status = 200, description = "Finished within the wait", body = JobRunDto),
    )
)]
async fn start_job_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobPath { name }): ApiPath<JobPath>,
    ApiQuery(params): ApiQuery<JobWaitParams>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<JobRunDto>), ApiError> {
    let wait = params.wait()?;
    let jobs = &state.app.job_defs;
    let run = jobs
        .start(&project, &name, actor(&headers).or(Some("api".into())))
        .await?;
    let run = jobs.wait(&project, &name, run.id.as_str(), wait).await?;
    let code = if run.status.is_terminal() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(JobRunDto::from_run(run))))
}

/// Opens a run of the job whose work an outside system does (running from now, with the inputs and outputs it
/// names); the system ends it with `PUT /jobs/{name}/runs/{id}/complete`.
#[utoipa::path(
    post, path = "/jobs/{name}/runs/external", tag = "jobs", request_body = ExternalRunBody,
    params(JobPath, ProjectScope),
    responses((status = 201, body = JobRunDto), (status = 422, description = "An empty dataset namespace or name"))
)]
async fn open_external_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobPath { name }): ApiPath<JobPath>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ExternalRunBody>,
) -> Result<(StatusCode, Json<JobRunDto>), ApiError> {
    let inputs = body
        .inputs
        .into_iter()
        .map(|d| d.into_lineage())
        .collect::<Result<_, _>>()?;
    let outputs = body
        .outputs
        .into_iter()
        .map(|d| d.into_lineage())
        .collect::<Result<_, _>>()?;
    let who = actor(&headers).or(Some("external".into()));
    let run = state
        .app
        .job_defs
        .open_external(&project, &name, who, inputs, outputs)
        .await?;
    Ok((StatusCode::CREATED, Json(JobRunDto::from_run(run))))
}

/// A run of the job, with its child run, inputs and outputs.
#[utoipa::path(
    get, path = "/jobs/{name}/runs/{id}", tag = "jobs", params(JobRunPath, ProjectScope),
    responses((status = 200, body = JobRunDto))
)]
async fn get_job_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobRunPath { name, id }): ApiPath<JobRunPath>,
) -> Result<Json<JobRunDto>, ApiError> {
    Ok(Json(JobRunDto::from_run(
        state.app.job_defs.run(&project, &name, &id).await?,
    )))
}

/// The datasets (OpenLineage names) the run read and wrote.
#[utoipa::path(
    get, path = "/jobs/{name}/runs/{id}/datasets", tag = "jobs", params(JobRunPath, ProjectScope),
    responses((status = 200, body = RunDatasetsDto))
)]
async fn job_run_datasets(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobRunPath { name, id }): ApiPath<JobRunPath>,
) -> Result<Json<RunDatasetsDto>, ApiError> {
    let d = job_run_detail(&state.app.job_defs.run(&project, &name, &id).await?);
    Ok(Json(RunDatasetsDto {
        inputs: d.inputs.into_iter().map(Into::into).collect(),
        outputs: d.outputs.into_iter().map(Into::into).collect(),
    }))
}

/// The project's tables (`schema.table`) the run read and wrote.
#[utoipa::path(
    get, path = "/jobs/{name}/runs/{id}/tables", tag = "jobs", params(JobRunPath, ProjectScope),
    responses((status = 200, body = RunTablesDto))
)]
async fn job_run_tables(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobRunPath { name, id }): ApiPath<JobRunPath>,
) -> Result<Json<RunTablesDto>, ApiError> {
    let d = job_run_detail(&state.app.job_defs.run(&project, &name, &id).await?);
    let tables = |v: Vec<pluto_duck_application::RunDataset>| v.into_iter().filter_map(|d| d.table).collect();
    Ok(Json(RunTablesDto {
        inputs: tables(d.inputs),
        outputs: tables(d.outputs),
    }))
}

/// Ends a run an outside system reported (opened with `POST /jobs/{name}/runs/external`): its state, rows,
/// inputs and outputs, reported as OpenLineage like every run.
#[utoipa::path(
    put, path = "/jobs/{name}/runs/{id}/complete", tag = "jobs", request_body = CompleteRunBody,
    params(JobRunPath, ProjectScope),
    responses(
        (status = 200, body = JobRunDto),
        (status = 409, description = "Already finished, or a run this server does"),
        (status = 422, description = "A bad status or dataset name"),
    )
)]
async fn complete_job_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobRunPath { name, id }): ApiPath<JobRunPath>,
    ApiJson(body): ApiJson<CompleteRunBody>,
) -> Result<Json<JobRunDto>, ApiError> {
    let report = RunReport {
        status: body.status()?,
        message: body.message,
        rows: body.rows,
        inputs: body
            .inputs
            .into_iter()
            .map(|d| d.into_lineage())
            .collect::<Result<_, _>>()?,
        outputs: body
            .outputs
            .into_iter()
            .map(|d| d.into_lineage())
            .collect::<Result<_, _>>()?,
    };
    let run = state.app.job_defs.complete(&project, &name, &id, report).await?;
    Ok(Json(JobRunDto::from_run(run)))
}

/// Cancels a queued or running run (and its child run).
#[utoipa::path(
    post, path = "/jobs/{name}/runs/{id}/cancel", tag = "jobs", params(JobRunPath, ProjectScope),
    responses((status = 200, body = JobRunDto), (status = 409, description = "Already finished"))
)]
async fn cancel_job_run(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobRunPath { name, id }): ApiPath<JobRunPath>,
) -> Result<Json<JobRunDto>, ApiError> {
    Ok(Json(JobRunDto::from_run(
        state.app.job_defs.cancel(&project, &name, &id).await?,
    )))
}

/// Server-Sent Events of a job run: queued, started, `child` (the child run's kind and id), then one of
/// completed, failed, cancelled, timed_out. Send `Last-Event-ID` to resume.
#[utoipa::path(
    get, path = "/jobs/{name}/runs/{id}/events", tag = "jobs", params(JobRunPath, LastEventId, ProjectScope),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = RunEventFrame))
)]
async fn job_run_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(JobRunPath { name, id }): ApiPath<JobRunPath>,
    LastEventId(after): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse_stream(
        state.app.job_defs.events(&project, &name, &id, after).await?,
    ))
}

/// Server-Sent Events of the project's job changes from now on: job.created, job.updated, job.deleted,
/// run.started, run.finished, run.skipped. The stream does not end.
#[utoipa::path(
    get, path = "/jobs/events", tag = "jobs", params(ProjectScope),
    responses((status = 200, description = "The changes as they happen", content_type = "text/event-stream", body = JobEventFrame))
)]
async fn job_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.app.job_defs.subscribe();
    let events = stream::unfold((rx, project), |(mut rx, project)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.project == project => return Some((Ok(sse_event(&e)), (rx, project))),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "job event follower fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn sse_event(e: &JobEvent) -> Event {
    let data = serde_json::to_string(&JobEventData::from(e)).unwrap_or_default();
    Event::default().id(e.seq.to_string()).event(e.change).data(data)
}
