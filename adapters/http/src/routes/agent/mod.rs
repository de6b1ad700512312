//! The agent: conversations (`/chat/sessions`), approvals of the actions it wants to take, the catalog of actions
//! (the agent's tools, callable by people too), the model settings, and evaluations of the agent on question sets.
//! A question itself goes to `POST /query` (or a conversation's messages) and is followed like any job.

mod wire;

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::Response;
use axum::Json;
use futures::Stream;
use pluto_duck_application::agent::Ask;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::QueryDto;
use super::runs::{sse_stream, RunEventFrame, RunPath};
use crate::extract::{ApiJson, ApiPath, LastEventId, ProjectScope};
use crate::problem::ApiError;
use crate::AppState;
use wire::{
    ActionBody, ActionDto, ActionPath, ActionResultDto, ApprovalDto, ApprovalPath, DecisionBody, EvalBody, EvalRunDto,
    LlmSettingsBody, LlmSettingsDto, MessageBody, NewSessionBody, QuestionSetDto, SessionDto, SessionPath,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(get_session, delete_session))
        .routes(routes!(ask_in_session))
        .routes(routes!(list_approvals))
        .routes(routes!(decide_approval))
        .routes(routes!(list_actions))
        .routes(routes!(call_action))
        .routes(routes!(get_llm_settings, put_llm_settings))
        .routes(routes!(list_eval_sets))
        .routes(routes!(start_eval))
        .routes(routes!(get_eval))
        .routes(routes!(eval_events))
        .routes(routes!(cancel_eval))
}

fn actor(headers: &HeaderMap, default: &str) -> String {
    crate::extract::actor(headers).unwrap_or_else(|| default.to_owned())
}

/// The project's conversations, most recently active first.
#[utoipa::path(get, path = "/chat/sessions", tag = "agent", params(ProjectScope), responses((status = 200, body = Vec<SessionDto>)))]
async fn list_sessions(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<SessionDto>>, ApiError> {
    let all = state.app.agent.conversations(&project).await?;
    Ok(Json(all.into_iter().map(|c| SessionDto::new(c, None)).collect()))
}

/// Starts an empty conversation (a question without `conversation_id` starts one too).
#[utoipa::path(post, path = "/chat/sessions", tag = "agent", request_body = NewSessionBody, params(ProjectScope),
    responses((status = 201, body = SessionDto)))]
async fn create_session(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiJson(body): ApiJson<NewSessionBody>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let c = state
        .app
        .agent
        .create_conversation(&project, body.title, body.privacy)
        .await?;
    Ok((StatusCode::CREATED, Json(SessionDto::new(c, None))))
}

/// A conversation with its messages: questions, answers with their SQL, preview and chart.
#[utoipa::path(get, path = "/chat/sessions/{id}", tag = "agent", params(SessionPath, ProjectScope),
    responses((status = 200, body = SessionDto)))]
async fn get_session(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SessionPath { id }): ApiPath<SessionPath>,
) -> Result<Json<SessionDto>, ApiError> {
    let (c, messages) = state.app.agent.conversation(&project, &id).await?;
    Ok(Json(SessionDto::new(c, Some(messages))))
}

/// Deletes the conversation, its messages and its work zone (the agent's scratch tables); a running turn is
/// cancelled.
#[utoipa::path(delete, path = "/chat/sessions/{id}", tag = "agent", params(SessionPath, ProjectScope),
    responses((status = 204, description = "Deleted")))]
async fn delete_session(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(SessionPath { id }): ApiPath<SessionPath>,
) -> Result<StatusCode, ApiError> {
    state.app.agent.delete_conversation(&project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks a question in the conversation: an agent turn, followed at its `links` like a query job.
#[utoipa::path(post, path = "/chat/sessions/{id}/messages", tag = "agent", request_body = MessageBody,
    params(SessionPath, ProjectScope),
    responses((status = 202, body = QueryDto), (status = 503, description = "No language model is configured")))]
async fn ask_in_session(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    headers: HeaderMap,
    ApiPath(SessionPath { id }): ApiPath<SessionPath>,
    ApiJson(body): ApiJson<MessageBody>,
) -> Result<Response, ApiError> {
    let ask = Ask {
        question: body.question,
        conversation: Some(id),
        auto_approve: body.auto_approve,
        privacy: None,
        actor: actor(&headers, "api"),
    };
    Ok(QueryDto::from_run(state.app.agent.ask(&project, ask).await?.0).accepted())
}

/// Actions the agent is waiting to take, each waiting for a person's decision, oldest first.
#[utoipa::path(get, path = "/approvals", tag = "agent", params(ProjectScope), responses((status = 200, body = Vec<ApprovalDto>)))]
async fn list_approvals(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
) -> Result<Json<Vec<ApprovalDto>>, ApiError> {
    Ok(Json(
        state
            .app
            .agent
            .approvals(&project)
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Approves, rejects, or edits (approves with other arguments) a pending action; recorded on the turn.
#[utoipa::path(post, path = "/approvals/{id}", tag = "agent", request_body = DecisionBody, params(ApprovalPath, ProjectScope),
    responses((status = 200, body = ApprovalDto)))]
async fn decide_approval(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    headers: HeaderMap,
    ApiPath(ApprovalPath { id }): ApiPath<ApprovalPath>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<ApprovalDto>, ApiError> {
    let decided = state
        .app
        .agent
        .decide(&project, &id, body.decision()?, &actor(&headers, "user"))?;
    Ok(Json(decided.into()))
}

/// The catalog of actions: the agent's tools, with their argument schemas and whether they write.
#[utoipa::path(get, path = "/actions", tag = "agent", responses((status = 200, body = Vec<ActionDto>)))]
async fn list_actions(State(state): State<AppState>) -> Json<Vec<ActionDto>> {
    Json(state.app.agent.actions().into_iter().map(Into::into).collect())
}

/// Calls an action as a person (no approval: the caller is the person).
#[utoipa::path(post, path = "/actions/{name}", tag = "agent", request_body = ActionBody, params(ActionPath, ProjectScope),
    responses((status = 200, body = ActionResultDto), (status = 409, description = "The action conflicts with what exists")))]
async fn call_action(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    headers: HeaderMap,
    ApiPath(ActionPath { name }): ApiPath<ActionPath>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Json<ActionResultDto>, ApiError> {
    let out = state
        .app
        .agent
        .call_action(&project, &name, body.args, &actor(&headers, "api"))
        .await?;
    Ok(Json(ActionResultDto {
        text: out.for_model,
        data: out.data,
        sql: out.sql,
        preview: out.preview.map(|p| p.to_json()),
    }))
}

/// The model the agent talks to (the key only as `api_key_set`).
#[utoipa::path(get, path = "/settings/llm", tag = "agent", responses((status = 200, body = LlmSettingsDto)))]
async fn get_llm_settings(State(state): State<AppState>) -> Result<Json<LlmSettingsDto>, ApiError> {
    Ok(Json(state.app.agent.settings_view().await?.into()))
}

/// Changes the model settings; the key goes to the secret store and is never returned.
#[utoipa::path(put, path = "/settings/llm", tag = "agent", request_body = LlmSettingsBody,
    responses((status = 200, body = LlmSettingsDto)))]
async fn put_llm_settings(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LlmSettingsBody>,
) -> Result<Json<LlmSettingsDto>, ApiError> {
    Ok(Json(state.app.agent.update_settings(body.into()).await?.into()))
}

/// The question sets an evaluation can run: the shipped ones and the configured folder's.
#[utoipa::path(get, path = "/eval/sets", tag = "agent", responses((status = 200, body = Vec<QuestionSetDto>)))]
async fn list_eval_sets(State(state): State<AppState>) -> Result<Json<Vec<QuestionSetDto>>, ApiError> {
    Ok(Json(state.app.eval.sets()?.into_iter().map(Into::into).collect()))
}

/// Evaluates the agent on a question set in the project (its dataset loaded first when missing): a run with
/// one `question` event per question and the report once finished.
#[utoipa::path(post, path = "/eval/runs", tag = "agent", request_body = EvalBody, params(ProjectScope),
    responses((status = 202, body = EvalRunDto), (status = 503, description = "No language model is configured")))]
async fn start_eval(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EvalBody>,
) -> Result<(StatusCode, Json<EvalRunDto>), ApiError> {
    let run = state
        .app
        .eval
        .start(&project, body.request(actor(&headers, "api"))?)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// An evaluation: its status and, once finished, the report.
#[utoipa::path(get, path = "/eval/runs/{id}", tag = "agent", params(RunPath, ProjectScope), responses((status = 200, body = EvalRunDto)))]
async fn get_eval(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<EvalRunDto>, ApiError> {
    Ok(Json(state.app.eval.get(&project, &id).await?.into()))
}

/// Server-Sent Events of an evaluation: `dataset_loading`, one `question` per question judged, then the end.
#[utoipa::path(get, path = "/eval/runs/{id}/events", tag = "agent", params(RunPath, LastEventId, ProjectScope),
    responses((status = 200, description = "The run's events, then the end of the stream", content_type = "text/event-stream", body = RunEventFrame)))]
async fn eval_events(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
    LastEventId(after): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Ok(sse_stream(state.app.eval.events(&project, &id, after).await?))
}

/// Stops an evaluation; answers its final state.
#[utoipa::path(post, path = "/eval/runs/{id}/cancel", tag = "agent", params(RunPath, ProjectScope),
    responses((status = 200, body = EvalRunDto), (status = 409, description = "Already finished")))]
async fn cancel_eval(
    State(state): State<AppState>,
    ProjectScope(project): ProjectScope,
    ApiPath(RunPath { id }): ApiPath<RunPath>,
) -> Result<Json<EvalRunDto>, ApiError> {
    Ok(Json(state.app.eval.cancel(&project, &id).await?.into()))
}
