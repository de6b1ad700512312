//! The one place our lineage events become OpenLineage JSON (spec 2-0-2): the run event with its `producer` and
//! `schemaURL`, and every facet with `_producer` and the `_schemaURL` of the exact facet schema version it
//! follows. The schema tests validate each facet against the schema its `_schemaURL` names.

use chrono::SecondsFormat;
use pluto_duck_application::ports::{
    ColumnLineageFacet, InputField, LineageDataset, LineageEvent, LineageJob, ParentRun, RunFacets, SchemaField,
    TransformationKind,
};
use serde_json::{json, Map, Value};

/// The producer of our events unless configured otherwise: a URI naming Pluto-Duck and its version.
pub const DEFAULT_PRODUCER: &str = concat!("urn:pluto-duck:", env!("CARGO_PKG_VERSION"));

pub const RUN_EVENT_SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// Facet schema versions, as published with OpenLineage 1.50.
pub mod facet_schema {
    pub const SCHEMA: &str =
        "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
    pub const DATA_SOURCE: &str =
        "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet";
    pub const COLUMN_LINEAGE: &str =
        "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
    pub const ERROR_MESSAGE: &str =
        "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
    pub const PARENT: &str = "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet";
    pub const PROCESSING_ENGINE: &str =
        "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
    pub const JOB_TYPE: &str = "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
    pub const SQL: &str = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
}

/// `event` as an OpenLineage `RunEvent`.
pub fn event_json(event: &LineageEvent, producer: &str) -> Value {
    let mut out = Map::new();
    out.insert("eventType".into(), json!(event.state.as_str()));
    out.insert(
        "eventTime".into(),
        json!(event.event_time.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    out.insert("producer".into(), json!(producer));
    out.insert("schemaURL".into(), json!(RUN_EVENT_SCHEMA_URL));
    let mut run = Map::new();
    run.insert("runId".into(), json!(event.run_id.to_string()));
    insert_facets(&mut run, run_facets(&event.run_facets, producer));
    out.insert("run".into(), Value::Object(run));
    out.insert("job".into(), job(&event.job, producer));
    out.insert(
        "inputs".into(),
        Value::Array(event.inputs.iter().map(|d| dataset(d, producer)).collect()),
    );
    out.insert(
        "outputs".into(),
        Value::Array(event.outputs.iter().map(|d| dataset(d, producer)).collect()),
    );
    Value::Object(out)
}

/// A facet: its fields plus `_producer` and `_schemaURL`.
fn facet(producer: &str, schema_url: &str, fields: Value) -> Value {
    let mut out = Map::new();
    out.insert("_producer".into(), json!(producer));
    out.insert("_schemaURL".into(), json!(schema_url));
    if let Value::Object(fields) = fields {
        out.extend(fields);
    }
    Value::Object(out)
}

fn insert_facets(target: &mut Map<String, Value>, facets: Map<String, Value>) {
    if !facets.is_empty() {
        target.insert("facets".into(), Value::Object(facets));
    }
}

fn job(job: &LineageJob, producer: &str) -> Value {
    let mut facets = Map::new();
    if let Some(t) = &job.job_type {
        let mut fields = json!({ "processingType": t.processing_type, "integration": t.integration });
        if let Some(kind) = &t.job_type {
            fields["jobType"] = json!(kind);
        }
        facets.insert("jobType".into(), facet(producer, facet_schema::JOB_TYPE, fields));
    }
    if let Some(sql) = &job.sql {
        let mut fields = json!({ "query": sql.query });
        if let Some(dialect) = &sql.dialect {
            fields["dialect"] = json!(dialect);
        }
        facets.insert("sql".into(), facet(producer, facet_schema::SQL, fields));
    }
    let mut out = Map::new();
    out.insert("namespace".into(), json!(job.namespace));
    out.insert("name".into(), json!(job.name));
    insert_facets(&mut out, facets);
    Value::Object(out)
}

fn run_facets(facets: &RunFacets, producer: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(e) = &facets.error {
        let mut fields = json!({ "message": e.message, "programmingLanguage": e.programming_language });
        if let Some(trace) = &e.stack_trace {
            fields["stackTrace"] = json!(trace);
        }
        out.insert(
            "errorMessage".into(),
            facet(producer, facet_schema::ERROR_MESSAGE, fields),
        );
    }
    if let Some(parent) = &facets.parent {
        out.insert(
            "parent".into(),
            facet(producer, facet_schema::PARENT, parent_fields(parent)),
        );
    }
    if let Some(engine) = &facets.processing_engine {
        let mut fields = json!({ "name": engine.name, "version": engine.version });
        if let Some(v) = &engine.adapter_version {
            fields["openlineageAdapterVersion"] = json!(v);
        }
        out.insert(
            "processing_engine".into(),
            facet(producer, facet_schema::PROCESSING_ENGINE, fields),
        );
    }
    out
}

fn parent_fields(parent: &ParentRun) -> Value {
    let mut fields = json!({
        "run": { "runId": parent.run_id.to_string() },
        "job": { "namespace": parent.job_namespace, "name": parent.job_name },
    });
    if let Some(root) = &parent.root {
        fields["root"] = json!({
            "run": { "runId": root.run_id.to_string() },
            "job": { "namespace": root.job_namespace, "name": root.job_name },
        });
    }
    fields
}

fn dataset(dataset: &LineageDataset, producer: &str) -> Value {
    let mut facets = Map::new();
    if let Some(fields) = &dataset.schema {
        facets.insert(
            "schema".into(),
            facet(
                producer,
                facet_schema::SCHEMA,
                json!({ "fields": fields.iter().map(schema_field).collect::<Vec<_>>() }),
            ),
        );
    }
    if let Some(source) = &dataset.data_source {
        let mut fields = json!({ "name": source.name });
        if let Some(uri) = &source.uri {
            fields["uri"] = json!(uri);
        }
        facets.insert("dataSource".into(), facet(producer, facet_schema::DATA_SOURCE, fields));
    }
    if let Some(lineage) = &dataset.column_lineage {
        facets.insert(
            "columnLineage".into(),
            facet(producer, facet_schema::COLUMN_LINEAGE, column_lineage(lineage)),
        );
    }
    let mut out = Map::new();
    out.insert("namespace".into(), json!(dataset.name.namespace));
    out.insert("name".into(), json!(dataset.name.name));
    insert_facets(&mut out, facets);
    Value::Object(out)
}

fn schema_field(field: &SchemaField) -> Value {
    let mut out = json!({ "name": field.name });
    if let Some(t) = &field.data_type {
        out["type"] = json!(t);
    }
    if let Some(d) = &field.description {
        out["description"] = json!(d);
    }
    if !field.fields.is_empty() {
        out["fields"] = Value::Array(field.fields.iter().map(schema_field).collect());
    }
    out
}

fn column_lineage(lineage: &ColumnLineageFacet) -> Value {
    let fields: Map<String, Value> = lineage
        .fields
        .iter()
        .map(|(output, inputs)| {
            (
                output.clone(),
                json!({ "inputFields": inputs.iter().map(input_field).collect::<Vec<_>>() }),
            )
        })
        .collect();
    let mut out = json!({ "fields": fields });
    if !lineage.dataset.is_empty() {
        out["dataset"] = Value::Array(lineage.dataset.iter().map(input_field).collect());
    }
    out
}

fn input_field(input: &InputField) -> Value {
    let mut out = json!({
        "namespace": input.dataset.namespace,
        "name": input.dataset.name,
        "field": input.field,
    });
    if !input.transformations.is_empty() {
        let transformations: Vec<Value> = input
            .transformations
            .iter()
            .map(|t| {
                let mut v = json!({
                    "type": match t.kind {
                        TransformationKind::Direct => "DIRECT",
                        TransformationKind::Indirect => "INDIRECT",
                    },
                    "masking": t.masking,
                });
                if let Some(s) = &t.subtype {
                    v["subtype"] = json!(s);
                }
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        out["transformations"] = Value::Array(transformations);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pluto_duck_application::ports::{LineageEvent, LineageJob};

    #[test]
    fn the_envelope_carries_producer_and_schema_urls() {
        let run = uuid_like();
        let event = LineageEvent::complete(run, LineageJob::new("pluto-duck", "q").with_job_type("QUERY"));
        let v = event_json(&event, DEFAULT_PRODUCER);
        assert_eq!(v["eventType"], "COMPLETE");
        assert_eq!(v["producer"], DEFAULT_PRODUCER);
        assert_eq!(v["schemaURL"], RUN_EVENT_SCHEMA_URL);
        assert_eq!(v["run"]["runId"], run.to_string());
        assert!(v["run"].get("facets").is_none(), "no empty facet maps");
        assert_eq!(v["job"]["facets"]["jobType"]["_schemaURL"], facet_schema::JOB_TYPE);
        assert_eq!(v["job"]["facets"]["jobType"]["_producer"], DEFAULT_PRODUCER);
        assert!(v["eventTime"].as_str().unwrap().ends_with('Z'));
    }

    fn uuid_like() -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}
