//! OpenLineage run events as plain Rust: a run's state change, its job, the datasets it read and wrote and the
//! facets we produce. Only the facets we fill are modelled; each maps to one official facet schema.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pluto_duck_domain::DatasetName;
use uuid::Uuid;

/// The transition a run event reports. Each run sends one `Start` and one of `Complete`, `Fail`, `Abort`;
/// `Running` events may come between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    Start,
    Running,
    Complete,
    Fail,
    Abort,
}

impl RunState {
    /// The spec's `eventType`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Start => "START",
            RunState::Running => "RUNNING",
            RunState::Complete => "COMPLETE",
            RunState::Fail => "FAIL",
            RunState::Abort => "ABORT",
        }
    }

    /// Complete, fail and abort end a run.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Complete | RunState::Fail | RunState::Abort)
    }
}

/// A job: what runs (an analysis, a query, an ingest, a dbt invocation), unique by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageJob {
    /// Set by configuration, like a scheduler's name (`pluto-duck` or `pluto-duck/<project>`).
    pub namespace: String,
    pub name: String,
    pub job_type: Option<JobTypeFacet>,
    pub sql: Option<SqlFacet>,
}

impl LineageJob {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            job_type: None,
            sql: None,
        }
    }

    /// A batch job of this integration (`jobType`): `job_type` says what kind (`QUERY`, `ANALYSIS`, `INGEST`).
    pub fn with_job_type(mut self, job_type: impl Into<String>) -> Self {
        self.job_type = Some(JobTypeFacet {
            processing_type: "BATCH".to_owned(),
            integration: JobTypeFacet::INTEGRATION.to_owned(),
            job_type: Some(job_type.into()),
        });
        self
    }

    /// The SQL the job runs (`sql`), in DuckDB's dialect unless said otherwise.
    pub fn with_sql(mut self, query: impl Into<String>) -> Self {
        self.sql = Some(SqlFacet {
            query: query.into(),
            dialect: Some("duckdb".to_owned()),
        });
        self
    }
}

/// The `jobType` job facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTypeFacet {
    /// `BATCH` or `STREAMING`.
    pub processing_type: String,
    /// Who runs the job, upper case: `PLUTO_DUCK` for ours.
    pub integration: String,
    pub job_type: Option<String>,
}

impl JobTypeFacet {
    pub const INTEGRATION: &'static str = "PLUTO_DUCK";
}

/// The `sql` job facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFacet {
    pub query: String,
    pub dialect: Option<String>,
}

/// A dataset read or written by a run, with the dataset facets we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageDataset {
    pub name: DatasetName,
    /// The `schema` facet: its columns.
    pub schema: Option<Vec<SchemaField>>,
    /// The `dataSource` facet.
    pub data_source: Option<DataSourceFacet>,
    /// The `columnLineage` facet (outputs only): where each column comes from.
    pub column_lineage: Option<ColumnLineageFacet>,
}

impl LineageDataset {
    pub fn new(name: DatasetName) -> Self {
        Self {
            name,
            schema: None,
            data_source: None,
            column_lineage: None,
        }
    }

    pub fn with_schema(mut self, fields: Vec<SchemaField>) -> Self {
        self.schema = Some(fields);
        self
    }

    /// Names the data source; its URI is the dataset's namespace (`postgres://host:5432`) when that is a URI
    /// (`file` and `duckdb://:memory:` are not).
    pub fn with_data_source(mut self, name: impl Into<String>) -> Self {
        self.data_source = Some(DataSourceFacet {
            name: name.into(),
            uri: namespace_uri(&self.name.namespace),
        });
        self
    }

    pub fn with_column_lineage(mut self, lineage: ColumnLineageFacet) -> Self {
        self.column_lineage = Some(lineage);
        self
    }
}

/// `namespace` when it is an absolute URI: a scheme, `://`, an authority whose port (if any) is digits, and no
/// character a URI cannot hold unescaped.
fn namespace_uri(namespace: &str) -> Option<String> {
    let (scheme, rest) = namespace.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let chars_ok = namespace
        .chars()
        .all(|c| c.is_ascii_graphic() && !"\"<>\\^`{|}".contains(c));
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // An IPv6 literal is bracketed; otherwise the host ends at the first `:` and the rest is the port.
    let port = match host_port.strip_prefix('[') {
        Some(v6) => Some(
            v6.split_once(']')
                .map_or("?", |(_, rest)| rest.strip_prefix(':').unwrap_or(rest)),
        ),
        None => host_port.split_once(':').map(|(_, p)| p),
    };
    let port_ok = port.is_none_or(|p| p.chars().all(|c| c.is_ascii_digit()));
    (scheme_ok && chars_ok && port_ok).then(|| namespace.to_owned())
}

/// One column of a `schema` facet; `fields` for the members of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaField {
    pub name: String,
    /// The engine's type name (`VARCHAR`, `DECIMAL(18,3)`, `STRUCT(...)`).
    pub data_type: Option<String>,
    pub description: Option<String>,
    pub fields: Vec<SchemaField>,
}

impl SchemaField {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            data_type: Some(data_type.into()),
            description: None,
            fields: Vec::new(),
        }
    }
}

/// The `dataSource` dataset facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSourceFacet {
    pub name: String,
    pub uri: Option<String>,
}

/// The `columnLineage` facet: for each output column, the input columns it is computed from; and the inputs
/// that shape the whole dataset (filters, joins, grouping) in `dataset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnLineageFacet {
    pub fields: BTreeMap<String, Vec<InputField>>,
    pub dataset: Vec<InputField>,
}

impl ColumnLineageFacet {
    /// Adds `input` to the sources of output column `output`.
    pub fn field(mut self, output: impl Into<String>, input: InputField) -> Self {
        self.fields.entry(output.into()).or_default().push(input);
        self
    }

    pub fn whole_dataset(mut self, input: InputField) -> Self {
        self.dataset.push(input);
        self
    }
}

/// An input column of a column-lineage edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputField {
    pub dataset: DatasetName,
    pub field: String,
    /// Empty when the transformation is not known.
    pub transformations: Vec<Transformation>,
}

impl InputField {
    pub fn new(dataset: DatasetName, field: impl Into<String>) -> Self {
        Self {
            dataset,
            field: field.into(),
            transformations: Vec::new(),
        }
    }

    pub fn with(mut self, transformation: Transformation) -> Self {
        self.transformations.push(transformation);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformationKind {
    /// The output value is computed from the input's (copied, cast, calculated, aggregated).
    Direct,
    /// The input shapes which rows there are (join keys, filters, group-by, sort, window).
    Indirect,
}

/// A transformation as the column-lineage facet lists them: type, subtype and whether it masks the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformation {
    pub kind: TransformationKind,
    /// `IDENTITY`, `TRANSFORMATION`, `AGGREGATION` (direct); `JOIN`, `GROUP_BY`, `FILTER`, `SORT`, `WINDOW`,
    /// `CONDITIONAL` (indirect).
    pub subtype: Option<String>,
    pub description: Option<String>,
    pub masking: bool,
}

impl Transformation {
    fn new(kind: TransformationKind, subtype: &str) -> Self {
        Self {
            kind,
            subtype: Some(subtype.to_owned()),
            description: None,
            masking: false,
        }
    }

    /// The column copied as it is.
    pub fn identity() -> Self {
        Self::new(TransformationKind::Direct, "IDENTITY")
    }

    /// The column computed from the input (an expression, a cast).
    pub fn computed() -> Self {
        Self::new(TransformationKind::Direct, "TRANSFORMATION")
    }

    pub fn aggregation() -> Self {
        Self::new(TransformationKind::Direct, "AGGREGATION")
    }

    /// An indirect influence: `JOIN`, `GROUP_BY`, `FILTER`, `SORT`, `WINDOW` or `CONDITIONAL`.
    pub fn indirect(subtype: &str) -> Self {
        Self::new(TransformationKind::Indirect, subtype)
    }
}

/// The run facets we produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacets {
    /// `errorMessage`, on `Fail` events.
    pub error: Option<ErrorFacet>,
    /// `parent`: the analysis run an analysis step belongs to.
    pub parent: Option<ParentRun>,
    /// `processing_engine`: the engine and its version.
    pub processing_engine: Option<ProcessingEngineFacet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFacet {
    pub message: String,
    /// The observed system's language: `SQL` for an engine error, `Rust` for ours.
    pub programming_language: String,
    pub stack_trace: Option<String>,
}

/// The run (and job) this run was started by, and optionally the root of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRun {
    pub run_id: Uuid,
    pub job_namespace: String,
    pub job_name: String,
    pub root: Option<Box<ParentRun>>,
}

impl ParentRun {
    pub fn new(run_id: Uuid, job: &LineageJob) -> Self {
        Self {
            run_id,
            job_namespace: job.namespace.clone(),
            job_name: job.name.clone(),
            root: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingEngineFacet {
    /// `DuckDB`.
    pub name: String,
    pub version: String,
    /// Our version: the producer of the lineage.
    pub adapter_version: Option<String>,
}

/// One OpenLineage run event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageEvent {
    pub state: RunState,
    pub event_time: DateTime<Utc>,
    pub run_id: Uuid,
    pub job: LineageJob,
    pub inputs: Vec<LineageDataset>,
    pub outputs: Vec<LineageDataset>,
    pub run_facets: RunFacets,
}

impl LineageEvent {
    /// An event of `run_id` at the current time with no datasets.
    pub fn new(state: RunState, run_id: Uuid, job: LineageJob) -> Self {
        Self {
            state,
            event_time: Utc::now(),
            run_id,
            job,
            inputs: Vec::new(),
            outputs: Vec::new(),
            run_facets: RunFacets::default(),
        }
    }

    pub fn start(run_id: Uuid, job: LineageJob) -> Self {
        Self::new(RunState::Start, run_id, job)
    }

    pub fn running(run_id: Uuid, job: LineageJob) -> Self {
        Self::new(RunState::Running, run_id, job)
    }

    pub fn complete(run_id: Uuid, job: LineageJob) -> Self {
        Self::new(RunState::Complete, run_id, job)
    }

    /// A failed run with its error (`errorMessage`, language `SQL` unless changed).
    pub fn fail(run_id: Uuid, job: LineageJob, message: impl Into<String>) -> Self {
        let mut event = Self::new(RunState::Fail, run_id, job);
        event.run_facets.error = Some(ErrorFacet {
            message: message.into(),
            programming_language: "SQL".to_owned(),
            stack_trace: None,
        });
        event
    }

    pub fn abort(run_id: Uuid, job: LineageJob) -> Self {
        Self::new(RunState::Abort, run_id, job)
    }

    pub fn at(mut self, time: DateTime<Utc>) -> Self {
        self.event_time = time;
        self
    }

    pub fn input(mut self, dataset: LineageDataset) -> Self {
        self.inputs.push(dataset);
        self
    }

    pub fn output(mut self, dataset: LineageDataset) -> Self {
        self.outputs.push(dataset);
        self
    }

    /// Marks the run as a step of `parent` (an analysis step inside an analysis run).
    pub fn parent(mut self, parent: ParentRun) -> Self {
        self.run_facets.parent = Some(parent);
        self
    }

    pub fn engine(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.run_facets.processing_engine = Some(ProcessingEngineFacet {
            name: name.into(),
            version: version.into(),
            adapter_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> DatasetName {
        DatasetName::postgres("db", 5432, "shop", "public", "orders").unwrap()
    }

    #[test]
    fn builders_fill_the_facets() {
        let run = Uuid::now_v7();
        let parent_job = LineageJob::new("pluto-duck", "sales.kpis");
        let job = LineageJob::new("pluto-duck", "sales.kpis.revenue")
            .with_job_type("ANALYSIS")
            .with_sql("select sum(amount) from orders");
        let out = DatasetName::duckdb("/w/pluto.duckdb", "pluto", "sales", "revenue").unwrap();
        let event = LineageEvent::start(run, job.clone())
            .input(
                LineageDataset::new(orders())
                    .with_schema(vec![SchemaField::new("amount", "DECIMAL(18,2)")])
                    .with_data_source("shop"),
            )
            .output(
                LineageDataset::new(out).with_column_lineage(ColumnLineageFacet::default().field(
                    "revenue",
                    InputField::new(orders(), "amount").with(Transformation::aggregation()),
                )),
            )
            .parent(ParentRun::new(Uuid::now_v7(), &parent_job))
            .engine("DuckDB", "1.5.5");
        assert_eq!(event.state.as_str(), "START");
        assert_eq!(event.job.job_type.as_ref().unwrap().integration, "PLUTO_DUCK");
        assert_eq!(
            event.inputs[0].data_source.as_ref().unwrap().uri.as_deref(),
            Some("postgres://db:5432")
        );
        assert_eq!(
            event.outputs[0].column_lineage.as_ref().unwrap().fields["revenue"].len(),
            1
        );
        assert_eq!(event.run_facets.parent.as_ref().unwrap().job_name, "sales.kpis");
        for (ns, uri) in [
            ("postgres://db:5432", true),
            ("s3://lake", true),
            ("duckdb:///w/pluto.duckdb", true),
            ("postgres://[::1]:5432", true),
            ("file", false),
            ("duckdb://:memory:", false),
            ("duckdb:///with space.duckdb", false),
            ("postgres://[::1]x", false),
            ("postgres://[::1", false),
            ("mysql://h:3306:1", false),
        ] {
            assert_eq!(namespace_uri(ns).is_some(), uri, "{ns}");
        }
        let failed = LineageEvent::fail(run, job, "Catalog Error: table x does not exist");
        assert!(failed.state.is_terminal() && failed.run_facets.error.is_some());
        assert!(!RunState::Running.is_terminal());
    }
}
