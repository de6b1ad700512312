//! What is known of each analysis's last run (definition hash, status, rows): one JSON document per analysis.

use chrono::{DateTime, Utc};
use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{AnalysisState, Identifier, ProjectId, RunId, RunStatus};

use super::bad;
use crate::dialect::{execute, fetch_all, map_err, Db};

fn state_doc(s: &AnalysisState) -> String {
    serde_json::json!({
        "definition_hash": s.definition_hash,
        "params_hash": s.params_hash,
        "last_run": s.last_run.as_ref().map(|r| r.to_string()),
        "last_status": s.last_status.as_str(),
        "finished_at": s.finished_at.map(|t| t.to_rfc3339()),
        "rows": s.rows,
        "error": s.error,
    })
    .to_string()
}

fn state_from_doc(project: &ProjectId, id: String, doc: &str) -> Result<AnalysisState, RepoError> {
    let v: serde_json::Value = serde_json::from_str(doc).map_err(bad)?;
    Ok(AnalysisState {
        id: Identifier::parse(id).map_err(bad)?,
        project: project.clone(),
        definition_hash: v["definition_hash"].as_str().unwrap_or_default().to_owned(),
        params_hash: v["params_hash"].as_str().map(str::to_owned),
        last_run: v["last_run"].as_str().map(RunId::parse).transpose().map_err(bad)?,
        last_status: RunStatus::parse(v["last_status"].as_str().unwrap_or("failed")).map_err(bad)?,
        finished_at: v["finished_at"]
            .as_str()
            .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)))
            .transpose()
            .map_err(bad)?,
        rows: v["rows"].as_u64().unwrap_or(0),
        error: v["error"].as_str().map(str::to_owned),
    })
}

/// Inserts or replaces what is known of an analysis's last run.
pub(crate) async fn put(db: &Db, state: &AnalysisState) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO analysis_state (project_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(state.project.as_str())
        .bind(state.id.as_str())
        .bind(state_doc(state))
    )
    .map_err(map_err)?;
    Ok(())
}

/// Ordered by id.
pub(crate) async fn list(db: &Db, project: &ProjectId) -> Result<Vec<AnalysisState>, RepoError> {
    let rows: Vec<(String, String)> = fetch_all!(
        db,
        sqlx::query_as("SELECT id, doc FROM analysis_state WHERE project_id = $1 ORDER BY id").bind(project.as_str())
    )
    .map_err(map_err)?;
    rows.into_iter()
        .map(|(id, doc)| state_from_doc(project, id, &doc))
        .collect()
}
