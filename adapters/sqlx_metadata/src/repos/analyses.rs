//! Analysis definitions in the control plane (the hybrid profile's `AnalysisStore`): one JSON document per
//! analysis with what the local profile's YAML file holds.

use pluto_duck_application::ports::AnalysisStoreError;
use pluto_duck_domain::{Analysis, Identifier, Materialization, ParamType, Parameter, ProjectId};
use serde_json::{json, Value};

use crate::dialect::{execute, fetch_all, fetch_optional, Db, Ts};

fn doc(a: &Analysis) -> String {
    let (unique_key, cursor) = match &a.materialization {
        Materialization::Incremental { unique_key, cursor } => (unique_key.clone(), cursor.clone()),
        _ => (Vec::new(), None),
    };
    json!({
        "name": a.name,
        "description": a.description,
        "tags": a.tags,
        "materialization": a.materialization.as_str(),
        "unique_key": unique_key,
        "cursor": cursor,
        "parameters": a.parameters.iter().map(|p| json!({
            "name": p.name.as_str(),
            "type": p.ty.as_str(),
            "default": p.default,
            "required": p.required,
        })).collect::<Vec<_>>(),
        "sql": a.sql,
    })
    .to_string()
}

fn invalid(project: &ProjectId, id: &str, e: impl std::fmt::Display) -> AnalysisStoreError {
    AnalysisStoreError::Invalid(format!("analysis {project}/{id} in the control plane: {e}"))
}

fn from_row(project: &ProjectId, row: (String, String, Ts, Ts)) -> Result<Analysis, AnalysisStoreError> {
    let (id, text, created, updated) = row;
    let bad = |e: String| invalid(project, &id, e);
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let materialization = Materialization::parse(
        v["materialization"].as_str().unwrap_or("view"),
        strings("unique_key"),
        v["cursor"].as_str().map(str::to_owned),
    )
    .map_err(|e| bad(e.to_string()))?;
    let parameters = v["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    Ok(Parameter {
                        name: Identifier::parse(p["name"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?,
                        ty: ParamType::parse(p["type"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?,
                        default: p["default"].as_str().map(str::to_owned),
                        required: p["required"].as_bool().unwrap_or(false),
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()
        .map_err(bad)?
        .unwrap_or_default();
    let analysis = Analysis {
        id: Identifier::parse(id.clone()).map_err(|e| bad(e.to_string()))?,
        project: project.clone(),
        name: v["name"].as_str().unwrap_or(&id).to_owned(),
        sql: v["sql"].as_str().unwrap_or_default().to_owned(),
        description: v["description"].as_str().unwrap_or_default().to_owned(),
        tags: strings("tags"),
        materialization,
        parameters,
        created_at: created.0,
        updated_at: updated.0,
    };
    analysis.validate().map_err(|e| bad(e.to_string()))?;
    Ok(analysis)
}

fn internal(e: sqlx::Error) -> AnalysisStoreError {
    AnalysisStoreError::Internal(crate::dialect::map_err(e).to_string())
}

pub(crate) async fn list(db: &Db, project: &ProjectId) -> Result<Vec<Analysis>, AnalysisStoreError> {
    let rows: Vec<(String, String, Ts, Ts)> = fetch_all!(
        db,
        sqlx::query_as(
            "SELECT id, doc, created_at, updated_at FROM analysis_definitions WHERE project_id = $1 ORDER BY id"
        )
        .bind(project.as_str())
    )
    .map_err(internal)?;
    rows.into_iter().map(|r| from_row(project, r)).collect()
}

pub(crate) async fn get(db: &Db, project: &ProjectId, id: &Identifier) -> Result<Option<Analysis>, AnalysisStoreError> {
    let row: Option<(String, String, Ts, Ts)> = fetch_optional!(
        db,
        sqlx::query_as(
            "SELECT id, doc, created_at, updated_at FROM analysis_definitions WHERE project_id = $1 AND id = $2"
        )
        .bind(project.as_str())
        .bind(id.as_str())
    )
    .map_err(internal)?;
    row.map(|r| from_row(project, r)).transpose()
}

/// Creates or replaces in one statement.
pub(crate) async fn put(db: &Db, a: &Analysis) -> Result<(), AnalysisStoreError> {
    execute!(
        db,
        sqlx::query(
            "INSERT INTO analysis_definitions (project_id, id, doc, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (project_id, id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
        )
        .bind(a.project.as_str())
        .bind(a.id.as_str())
        .bind(doc(a))
        .bind(Ts(a.created_at))
        .bind(Ts(a.updated_at))
    )
    .map_err(internal)?;
    Ok(())
}

pub(crate) async fn delete(db: &Db, project: &ProjectId, id: &Identifier) -> Result<bool, AnalysisStoreError> {
    let n = execute!(
        db,
        sqlx::query("DELETE FROM analysis_definitions WHERE project_id = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id.as_str())
    )
    .map_err(internal)?;
    Ok(n > 0)
}
