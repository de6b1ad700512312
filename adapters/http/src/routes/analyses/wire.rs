//! Wire types of `/api/v1/asset`: analyses (their parameters, bodies and definitions) and their runs.

use std::collections::BTreeMap;

use pluto_duck_application::ports::ExportFormat;
use pluto_duck_application::{analysis_relation, AnalysisDraft, ExecuteOptions, StepOutcome};
use pluto_duck_domain::{Analysis, Identifier, Materialization, ParamType, Parameter, Run};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::formats::Format;
use crate::openapi::{text_enum, IdentifierText, ResultFormat};
use crate::problem::ApiError;
use crate::routes::query::RunStatusName;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AnalysisPath {
    /// The analysis.
    #[param(value_type = IdentifierText)]
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only analyses with this tag.
    pub tag: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Also drop its table or view from the warehouse.
    pub drop: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompileParams {
    /// Plan every step to run, fresh or not.
    pub force: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Default 50, at most 1000.
    limit: Option<u32>,
}

impl HistoryParams {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(50)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DataParams {
    /// json (default) or by `Accept`; csv and parquet download as a file.
    #[param(value_type = Option<ResultFormat>)]
    pub format: Option<String>,
    /// Rows (default 1000; 0 for all).
    limit: Option<u64>,
    offset: Option<u64>,
}

impl DataParams {
    pub fn window(&self) -> (u64, u64) {
        (self.limit.unwrap_or(1000), self.offset.unwrap_or(0))
    }
}

text_enum!(
    /// Formats of a file download.
    ExportFormatName,
    "csv (default) or parquet",
    ["csv", "parquet"]
);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    #[param(value_type = Option<ExportFormatName>, inline)]
    format: Option<String>,
}

impl ExportParams {
    pub fn format(&self) -> Result<(Format, ExportFormat), ApiError> {
        match self.format.as_deref().unwrap_or("csv") {
            "csv" => Ok((Format::Csv, ExportFormat::Csv)),
            "parquet" => Ok((Format::Parquet, ExportFormat::Parquet)),
            other => Err(ApiError::invalid(format!(
                "export format must be csv or parquet, not {other:?}"
            ))),
        }
    }
}

text_enum!(
    /// How an analysis materializes.
    MaterializationName,
    "view (default), table, append, incremental, parquet or ephemeral",
    ["view", "table", "append", "incremental", "parquet", "ephemeral"]
);

text_enum!(
    /// Types of analysis parameters.
    ParamTypeName,
    "string, integer, float, boolean, date or timestamp",
    ["string", "integer", "float", "boolean", "date", "timestamp"]
);

/// A typed parameter of an analysis, bound as a real query parameter (`$name` in the SQL).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterDto {
    #[schema(value_type = IdentifierText)]
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = ParamTypeName)]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// Create or replace an analysis. SQL is one query; it reads other analyses as `{{ ref('id') }}` or
/// `analysis.id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisBody {
    /// Required on create, taken from the path on update.
    #[schema(value_type = Option<IdentifierText>)]
    pub id: Option<String>,
    pub name: Option<String>,
    pub sql: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[schema(value_type = Option<MaterializationName>)]
    pub materialization: Option<String>,
    /// incremental: merge on these columns.
    #[serde(default)]
    pub unique_key: Vec<String>,
    /// incremental: only rows past the largest value already loaded.
    pub cursor: Option<String>,
    #[serde(default)]
    pub parameters: Vec<ParameterDto>,
}

impl AnalysisBody {
    /// The draft of a new analysis: its id from the body.
    pub fn into_new_draft(self) -> Result<AnalysisDraft, ApiError> {
        let id = self.id.clone().ok_or_else(|| ApiError::invalid("`id` is required"))?;
        self.into_draft(id)
    }

    /// The draft of the analysis `id` names: the body may repeat the id, never change it.
    pub fn into_draft_of(self, id: String) -> Result<AnalysisDraft, ApiError> {
        if self.id.as_ref().is_some_and(|b| *b != id) {
            return Err(ApiError::invalid(
                "the body's id differs from the path's; an analysis cannot be renamed",
            ));
        }
        self.into_draft(id)
    }

    fn into_draft(self, id: String) -> Result<AnalysisDraft, ApiError> {
        let invalid = |e: pluto_duck_domain::DomainError| ApiError::invalid(e.to_string());
        let materialization = Materialization::parse(
            self.materialization.as_deref().unwrap_or("view"),
            self.unique_key,
            self.cursor,
        )
        .map_err(invalid)?;
        let parameters = self
            .parameters
            .into_iter()
            .map(|p| {
                Ok(Parameter {
                    name: Identifier::parse(p.name).map_err(invalid)?,
                    ty: ParamType::parse(&p.ty).map_err(invalid)?,
                    default: p.default,
                    required: p.required,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(AnalysisDraft {
            id,
            name: self.name,
            sql: self.sql,
            description: self.description,
            tags: self.tags,
            materialization,
            parameters,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisDto {
    pub id: String,
    pub project: String,
    pub name: String,
    pub sql: String,
    pub description: String,
    pub tags: Vec<String>,
    #[schema(value_type = MaterializationName)]
    pub materialization: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unique_key: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub parameters: Vec<ParameterDto>,
    /// Where it materializes: `analysis.<id>` (`<project>__analysis.<id>` in other projects).
    pub relation: String,
    /// Changes whenever the SQL, materialization or parameters change.
    pub definition_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Analysis> for AnalysisDto {
    fn from(a: Analysis) -> Self {
        let (unique_key, cursor) = match &a.materialization {
            Materialization::Incremental { unique_key, cursor } => (unique_key.clone(), cursor.clone()),
            _ => (Vec::new(), None),
        };
        Self {
            relation: analysis_relation(&a.id).to_string(),
            definition_hash: a.definition_hash(),
            id: a.id.to_string(),
            project: a.project.to_string(),
            name: a.name,
            sql: a.sql,
            description: a.description,
            tags: a.tags,
            materialization: a.materialization.as_str().to_owned(),
            unique_key,
            cursor,
            parameters: a
                .parameters
                .into_iter()
                .map(|p| ParameterDto {
                    name: p.name.to_string(),
                    ty: p.ty.as_str().to_owned(),
                    default: p.default,
                    required: p.required,
                })
                .collect(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A parameter's value: a string, a number or a boolean.
pub struct ParamValueText;

impl utoipa::PartialSchema for ParamValueText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Boolean]))
            .into()
    }
}

impl ToSchema for ParamValueText {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ParamValueText")
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecuteBody {
    /// Run every step, fresh or not.
    pub force: bool,
    /// Keep running branches that do not depend on a failed step.
    pub continue_on_failure: bool,
    /// Parameter values by name; each step takes those it declares.
    #[schema(value_type = BTreeMap<String, ParamValueText>)]
    pub params: BTreeMap<String, serde_json::Value>,
}

impl TryFrom<ExecuteBody> for ExecuteOptions {
    type Error = ApiError;

    /// Values become their text (strings as they are); each step parses those it declares by their type.
    fn try_from(body: ExecuteBody) -> Result<Self, ApiError> {
        let params = body
            .params
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => {
                        return Err(ApiError::invalid(format!("parameter {k}: null is not a value")))
                    }
                    other => other.to_string(),
                };
                Ok((k, text))
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(ExecuteOptions {
            force: body.force,
            continue_on_failure: body.continue_on_failure,
            params,
            actor: Some("api".into()),
        })
    }
}

text_enum!(
    /// What happened to a step of a run.
    StepStatusName,
    "succeeded, failed, skipped, blocked or not_run",
    ["succeeded", "failed", "skipped", "blocked", "not_run"]
);

#[derive(Debug, Serialize, ToSchema)]
pub struct StepOutcomeDto {
    pub id: String,
    #[schema(value_type = StepStatusName)]
    pub status: String,
    /// The step run (see the analysis's history).
    pub run: Option<String>,
    pub rows: u64,
    /// Why it ran, why not, or the error.
    pub detail: String,
}

/// The execution of an analysis's plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisRunDto {
    pub id: String,
    /// The analysis run.
    pub target: String,
    #[schema(value_type = RunStatusName)]
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows written by all steps.
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each step of the plan once the run finished.
    pub steps: Vec<StepOutcomeDto>,
    pub events: String,
}

impl From<(Run, Vec<StepOutcome>)> for AnalysisRunDto {
    fn from((run, steps): (Run, Vec<StepOutcome>)) -> Self {
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
}

/// One run of one analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepRunDto {
    pub id: String,
    #[schema(value_type = RunStatusName)]
    pub status: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Run> for StepRunDto {
    fn from(r: Run) -> Self {
        StepRunDto {
            id: r.id.to_string(),
            status: r.status.as_str().to_owned(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            rows: r.rows,
            error: r.failure.map(|f| f.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values_are_the_ones_the_domain_takes() {
        for m in MaterializationName::VALUES {
            assert!(Materialization::parse(m, Vec::new(), None).is_ok(), "{m}");
        }
        for t in ParamTypeName::VALUES {
            assert!(ParamType::parse(t).is_ok(), "{t}");
        }
    }
}
