//! The official OpenLineage JSON schemas, vendored in `tests/schemas/openlineage` (see its README), and the
//! events every test emits: each run state and each facet we produce.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use jsonschema::{Registry, Validator};
use pluto_duck_application::ports::{
    ColumnLineageFacet, InputField, LineageDataset, LineageEvent, LineageJob, ParentRun, SchemaField, Transformation,
};
use pluto_duck_domain::{BucketName, DatasetName};
use serde_json::{json, Value};
use uuid::Uuid;

/// The vendored schemas: `OpenLineage.json` and `facets/*.json`.
pub const SCHEMAS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemas/openlineage");
pub const CORE_ID: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";

pub struct Schemas {
    registry: Registry<'static>,
    /// `$id` of every file loaded.
    pub ids: BTreeSet<String>,
    validators: Mutex<HashMap<String, std::sync::Arc<Validator>>>,
}

impl Schemas {
    /// Fails when the vendored files are not there: these tests never pass without them.
    pub fn load() -> Self {
        let dir = PathBuf::from(SCHEMAS_DIR);
        let core = dir.join("OpenLineage.json");
        assert!(core.is_file(), "no OpenLineage.json in {}", dir.display());
        let mut files = vec![core];
        let mut facets: Vec<PathBuf> = std::fs::read_dir(dir.join("facets"))
            .unwrap_or_else(|e| panic!("no facets folder in {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        facets.sort();
        files.extend(facets);
        let mut registry = Registry::new();
        let mut ids = BTreeSet::new();
        for file in files {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let id = doc["$id"]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no $id", file.display()))
                .to_owned();
            registry = registry.add(id.clone(), doc).unwrap();
            ids.insert(id);
        }
        assert!(ids.contains(CORE_ID), "the core schema is spec 2-0-2: {ids:?}");
        Self {
            registry: registry.prepare().unwrap(),
            ids,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// A validator of the definition `url` names (`<schema $id>#/$defs/<Name>`), resolved in the loaded files
    /// only: a `$ref` to a file that is not there fails rather than being fetched.
    fn validator(&self, url: &str) -> Result<std::sync::Arc<Validator>, String> {
        if let Some(v) = self.validators.lock().unwrap().get(url) {
            return Ok(std::sync::Arc::clone(v));
        }
        let base = url.split('#').next().unwrap_or_default();
        if !self.ids.contains(base) {
            return Err(format!(
                "{url} names a schema that is not among the official files loaded: {:?}",
                self.ids
            ));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&json!({ "$ref": url }))
            .unwrap_or_else(|e| panic!("building a validator for {url}: {e}"));
        let validator = std::sync::Arc::new(validator);
        self.validators
            .lock()
            .unwrap()
            .insert(url.to_owned(), std::sync::Arc::clone(&validator));
        Ok(validator)
    }

    fn check(&self, url: &str, instance: &Value, what: &str) -> Result<(), String> {
        let validator = self.validator(url)?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{what} at {}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Validates a run event against the core schema (the whole document and the definition its `schemaURL`
    /// names) and every facet against the schema its `_schemaURL` names. Returns the facet names seen.
    pub fn validate_event(&self, event: &Value) -> Result<BTreeSet<String>, String> {
        self.check(CORE_ID, event, "event")?;
        let url = event["schemaURL"].as_str().ok_or("event without schemaURL")?;
        self.check(url, event, "event")?;
        let mut seen = BTreeSet::new();
        let mut facet_maps: Vec<(&Value, String)> = vec![
            (&event["run"]["facets"], "run".to_owned()),
            (&event["job"]["facets"], "job".to_owned()),
        ];
        for side in ["inputs", "outputs"] {
            for (i, d) in event[side].as_array().into_iter().flatten().enumerate() {
                facet_maps.push((&d["facets"], format!("{side}[{i}]")));
                facet_maps.push((&d["inputFacets"], format!("{side}[{i}].inputFacets")));
                facet_maps.push((&d["outputFacets"], format!("{side}[{i}].outputFacets")));
            }
        }
        for (map, place) in facet_maps {
            let Some(map) = map.as_object() else { continue };
            for (name, facet) in map {
                let url = facet["_schemaURL"]
                    .as_str()
                    .ok_or_else(|| format!("{place}.{name} has no _schemaURL"))?;
                assert_eq!(
                    facet["_producer"].as_str().map(|p| !p.is_empty()),
                    Some(true),
                    "{place}.{name} has no _producer"
                );
                self.check(url, facet, &format!("{place}.{name}"))?;
                seen.insert(name.clone());
            }
        }
        Ok(seen)
    }
}

/// Every state and every facet we produce, across a few events.
pub fn sample_events() -> Vec<LineageEvent> {
    let analysis_run = Uuid::now_v7();
    let step_run = Uuid::now_v7();
    let root_job = LineageJob::new("pluto-duck", "sales");
    let job = LineageJob::new("pluto-duck", "sales.revenue_by_month")
        .with_job_type("ANALYSIS")
        .with_sql("select date_trunc('month', o.ordered_at) as month, sum(o.amount) as revenue from orders o join customers c using (customer_id) where c.active group by 1");
    let orders = DatasetName::postgres("db.internal", 5432, "shop", "public", "orders").unwrap();
    let customers = DatasetName::mysql("crm.internal", 3306, "crm", "customers").unwrap();
    let output = DatasetName::duckdb(
        "/home/ana/.local/share/pluto-duck/sales.duckdb",
        "sales",
        "main",
        "revenue_by_month",
    )
    .unwrap();
    let lineage = ColumnLineageFacet::default()
        .field(
            "month",
            InputField::new(orders.clone(), "ordered_at").with(Transformation::computed()),
        )
        .field(
            "revenue",
            InputField::new(orders.clone(), "amount").with(Transformation::aggregation()),
        )
        .whole_dataset(InputField::new(customers.clone(), "customer_id").with(Transformation::indirect("JOIN")))
        .whole_dataset(InputField::new(customers.clone(), "active").with(Transformation::indirect("FILTER")))
        .whole_dataset(InputField::new(orders.clone(), "ordered_at").with(Transformation::indirect("GROUP_BY")));
    let mut parent = ParentRun::new(analysis_run, &root_job);
    parent.root = Some(Box::new(ParentRun::new(analysis_run, &root_job)));
    let mut address = SchemaField::new("address", "STRUCT(city VARCHAR, zip VARCHAR)");
    address.fields = vec![SchemaField::new("city", "VARCHAR"), SchemaField::new("zip", "VARCHAR")];
    address.description = Some("where the customer lives".into());

    let start = LineageEvent::start(step_run, job.clone())
        .input(
            LineageDataset::new(orders.clone())
                .with_schema(vec![
                    SchemaField::new("ordered_at", "TIMESTAMP"),
                    SchemaField::new("amount", "DECIMAL(18,2)"),
                ])
                .with_data_source("shop"),
        )
        .input(
            LineageDataset::new(customers)
                .with_schema(vec![SchemaField::new("customer_id", "BIGINT"), address])
                .with_data_source("crm"),
        )
        .output(
            LineageDataset::new(output.clone())
                .with_schema(vec![
                    SchemaField::new("month", "DATE"),
                    SchemaField::new("revenue", "DECIMAL(38,2)"),
                ])
                .with_data_source("warehouse")
                .with_column_lineage(lineage.clone()),
        )
        .parent(parent.clone())
        .engine("DuckDB", "1.5.5");
    let running = LineageEvent::running(step_run, job.clone()).parent(parent.clone());
    let bucket = BucketName::parse("lake").unwrap();
    let complete = LineageEvent::complete(step_run, job.clone())
        .output(LineageDataset::new(output).with_column_lineage(lineage))
        .output(LineageDataset::new(DatasetName::s3(&bucket, "exports/revenue/").unwrap()).with_data_source("lake"))
        .output(
            LineageDataset::new(DatasetName::local_file("/home/ana/exports/revenue.csv").unwrap())
                .with_data_source("local files"),
        )
        .output(LineageDataset::new(
            DatasetName::remote_file("nas01", "/exports/revenue.parquet").unwrap(),
        ))
        .output(
            LineageDataset::new(DatasetName::duckdb(":memory:", "memory", "main", "scratch").unwrap())
                .with_data_source("scratch"),
        )
        .parent(parent)
        .engine("DuckDB", "1.5.5");
    let mut fail = LineageEvent::fail(
        Uuid::now_v7(),
        LineageJob::new("pluto-duck", "sales.broken").with_job_type("QUERY"),
        "Catalog Error: Table with name missing does not exist!",
    );
    if let Some(e) = fail.run_facets.error.as_mut() {
        e.stack_trace = Some("LINE 1: select * from missing\n                      ^".into());
    }
    let abort = LineageEvent::abort(Uuid::now_v7(), LineageJob::new("pluto-duck", "sales.cancelled"));
    vec![start, running, complete, fail, abort]
}

/// The facets `sample_events` must produce between them.
pub const ALL_FACETS: [&str; 8] = [
    "columnLineage",
    "dataSource",
    "errorMessage",
    "jobType",
    "parent",
    "processing_engine",
    "schema",
    "sql",
];
