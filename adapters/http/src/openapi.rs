//! The OpenAPI document: what the operations share, declared once. Ids and the values of enumerated fields are
//! schema components; the problem responses are declared here and attached to every operation by
//! [`ProblemResponses`] from what the operation takes (its parameters, its body, whether it needs the token).

use std::borrow::Cow;

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::auth::BearerScheme;
use crate::formats::{Binary, Rows, RowsDocument};
use crate::problem::{Problem, PROBLEM_JSON};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pluto-Duck API",
        description = "Local-first AI data workbench: DuckDB warehouse, federation, analyses, agent.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "system", description = "Health and diagnostics"),
        (name = "projects", description = "Projects keep work apart"),
        (name = "sources", description = "Live federation: PostgreSQL, MySQL/MariaDB, SQLite and DuckDB files through ATTACH; files, folders, HTTP and S3 read in place; cached copies"),
        (name = "ingest", description = "Ingestion jobs through connectors (replace, append, merge), SSE progress, the ingestion catalog and sync history"),
        (name = "analyses", description = "Saved SQL with ref() dependencies: the DAG, compile plans with freshness, lineage"),
        (name = "boards", description = "Boards of items (markdown, tables, charts, metrics, images) with query snapshots and scheduled refresh"),
        (name = "dbt", description = "dbt invocations as runs with node events, per-node results, the models' status"),
        (name = "query", description = "Ad-hoc SQL as jobs, and questions for the agent: status, events, results in five formats, profiles"),
        (name = "agent", description = "The AI agent: conversations, approvals of its actions, the action catalog, the model settings, evaluations on question sets"),
        (name = "jobs", description = "Named units of work (SQL, an analysis, an ingest, a dbt selection) with cron schedules; their runs with child runs, inputs and outputs; runs reported by outside systems; change events"),
        (name = "datasets", description = "Buckets and objects in the object store (a folder, or an S3-compatible server): streamed uploads and ranged downloads with content type and user metadata, change events"),
        (name = "lake", description = "The hybrid profile's shared warehouse (DuckLake): snapshots for time travel"),
    ),
    components(
        schemas(Problem, IdentifierText, RunIdText, DisplayName, ResultFormat, RowsDocument, Binary),
        responses(Rows)
    ),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// A string schema component with a pattern.
macro_rules! text_schema {
    ($(#[$doc:meta])* $name:ident, $description:literal, pattern = $pattern:literal, example = $example:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl $name {
            pub const PATTERN: &'static str = $pattern;
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .pattern(Some(Self::PATTERN))
                    .examples([$example])
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

text_schema!(
    /// What the domain's `Identifier` accepts: projects, sources, cached tables, analyses, parameters.
    IdentifierText,
    "A letter or underscore, then letters, digits and underscores; at most 63 characters. Compared without regard to case.",
    pattern = "^[A-Za-z_][A-Za-z0-9_]{0,62}$",
    example = "sales"
);

text_schema!(
    /// What the domain's `RunId` accepts.
    RunIdText,
    "A run's id (UUID text as the server makes them).",
    pattern = "^[A-Za-z0-9_-]{1,64}$",
    example = "0192f0c4-7e2a-7cc3-9a61-5b2f4f1f6a10"
);

/// A display name (projects, boards): 1 to 200 characters, not only white space (it is trimmed).
pub struct DisplayName;

impl PartialSchema for DisplayName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1 to 200 characters, not only white space (trimmed on the way in)",
            ))
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some(r"\S"))
            .examples(["Sales"])
            .into()
    }
}

impl ToSchema for DisplayName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DisplayName")
    }
}

/// The values a text field takes, as a string schema with an enumeration (the wire keeps the text; the domain
/// parses it and answers 422 for anything else).
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $description:literal, [$($value:literal),+ $(,)?]) => {
        $(#[$doc])*
        pub struct $name;

        impl $name {
            pub const VALUES: &'static [&'static str] = &[$($value),+];
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .enum_values(Some(Self::VALUES.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Result formats of every endpoint that returns rows.
    ResultFormat,
    "A result format (overrides `Accept`).",
    ["json", "ndjson", "csv", "arrow", "parquet"]
);

/// A standard problem response: its status and its general description.
struct Standard {
    status: &'static str,
    description: &'static str,
}

const STANDARD: [Standard; 12] = [
    Standard {
        status: "400",
        description: "Malformed request: a query or path parameter of the wrong type or unknown, a header that is \
                      not text, a body that is not JSON",
    },
    Standard {
        status: "401",
        description: "The server has an API token and the request does not carry it as `Authorization: Bearer`",
    },
    Standard {
        status: "403",
        description: "A loopback server refuses a `Host` it does not answer to, or a cross-site request that \
                      changes state (`Origin`); or the project's sandbox refuses",
    },
    Standard {
        status: "404",
        description: "The project (`X-Pluto-Project`) or what the path names does not exist",
    },
    Standard {
        status: "406",
        description: "`Accept` names no format the endpoint produces",
    },
    Standard {
        status: "409",
        description: "The request conflicts with the current state",
    },
    Standard {
        status: "413",
        description: "The body is larger than the server takes (`server.body_limit_mb`)",
    },
    Standard {
        status: "415",
        description: "The body is not sent as `application/json`",
    },
    Standard {
        status: "422",
        description: "The request is well formed but breaks a rule: a field missing or of the wrong type, an id \
                      that is not an identifier, a value out of range, a reference to something that does not \
                      exist",
    },
    Standard {
        status: "500",
        description: "Internal error: the detail is in the server log under the request id",
    },
    Standard {
        status: "503",
        description: "The metadata store, the warehouse or a needed extension is not available",
    },
    Standard {
        status: "504",
        description: "The work did not finish in time",
    },
];

/// Operations answered from memory: no store behind them can be unavailable.
const FROM_MEMORY: [&str; 2] = ["health", "list_connectors"];

/// Attaches the standard problem responses to every operation, from what it takes:
/// the layers answer 403 (Host guard) and 500 anywhere and 401 where the token applies; a query or path parameter,
/// the project header or a JSON body can be malformed (400); the project header and path ids can name nothing
/// (404) or no identifier (422); a body can be too large (413); a JSON body can come as another media type (415) or
/// break its schema (422); the stores can be down (503). A status an operation lists itself keeps its own
/// description, and gets the problem body when it has none.
pub struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                attach(op);
            }
        }
    }
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
        .build()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// What about an operation decides its problem responses.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    open: bool,
    query: bool,
    path: bool,
    /// A path parameter is an identifier or a run id: text that is neither answers 422.
    path_id: bool,
    project: bool,
    body: bool,
    json_body: bool,
    from_memory: bool,
}

impl Shape {
    fn of(op: &Operation) -> Self {
        let params = op.parameters.as_deref().unwrap_or_default();
        let is_id = |schema: &Option<RefOr<Schema>>| match schema {
            Some(RefOr::Ref(r)) => [IdentifierText::name(), RunIdText::name()]
                .iter()
                .any(|n| r.ref_location.ends_with(&**n)),
            _ => false,
        };
        Shape {
            open: op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().any(|r| r == &Default::default())),
            query: params.iter().any(|p| p.parameter_in == ParameterIn::Query),
            path: params.iter().any(|p| p.parameter_in == ParameterIn::Path),
            path_id: params
                .iter()
                .any(|p| p.parameter_in == ParameterIn::Path && is_id(&p.schema)),
            project: params
                .iter()
                .any(|p| p.parameter_in == ParameterIn::Header && p.name == crate::extract::PROJECT_HEADER_NAME),
            body: op.request_body.is_some(),
            json_body: op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.contains_key("application/json")),
            from_memory: op.operation_id.as_deref().is_some_and(|id| FROM_MEMORY.contains(&id)),
        }
    }

    fn applies(&self, status: &str) -> bool {
        match status {
            "400" => self.query || self.path || self.project || self.json_body,
            "401" => !self.open,
            "403" | "500" => true,
            "404" => self.path || self.project,
            "413" => self.body,
            "415" => self.json_body,
            "422" => self.json_body || self.project || self.path_id,
            "503" => !self.from_memory,
            _ => false,
        }
    }
}

fn attach(op: &mut Operation) {
    let shape = Shape::of(op);
    let responses = &mut op.responses.responses;
    let is_error = |status: &str| status.parse::<u16>().is_ok_and(|s| s >= 400);
    for response in responses.iter_mut().filter(|(status, _)| is_error(status)) {
        if let (_, RefOr::T(r)) = response {
            if r.content.is_empty() {
                r.content.insert(
                    PROBLEM_JSON.to_owned(),
                    Content::new(Some(Ref::from_schema_name("Problem"))),
                );
            }
        }
    }
    for s in STANDARD.iter().filter(|s| shape.applies(s.status)) {
        responses
            .entry(s.status.to_owned())
            .or_insert_with(|| RefOr::T(problem(s.description)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> serde_json::Value {
        serde_json::to_value(crate::openapi()).unwrap()
    }

    #[test]
    fn every_operation_documents_the_layers_problems_and_its_own() {
        let spec = spec();
        let mut n = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                n += 1;
                let r = &op["responses"];
                for status in ["403", "500"] {
                    assert!(r[status].is_object(), "{method} {path} lacks {status}");
                }
                let open = path == "/health" || path == "/ready";
                assert_eq!(r["401"].is_object(), !open, "{method} {path}");
                if op["requestBody"]["content"]["application/json"].is_object() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(r[status].is_object(), "{method} {path} lacks {status}");
                    }
                }
                for (status, response) in r.as_object().unwrap() {
                    if status.parse::<u16>().unwrap() >= 400 {
                        let problem = &response["content"][PROBLEM_JSON]["schema"]["$ref"];
                        assert_eq!(problem, "#/components/schemas/Problem", "{method} {path} {status}");
                        assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()));
                    }
                }
            }
        }
        assert!(n > 60, "{n} operations");
    }

    #[test]
    fn every_reference_resolves() {
        let spec = spec();
        let mut refs = Vec::new();
        fn walk(v: &serde_json::Value, refs: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        refs.push(r.clone());
                    }
                    m.values().for_each(|v| walk(v, refs));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        walk(&spec, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.trim_start_matches('#');
            assert!(spec.pointer(pointer).is_some(), "dangling {r}");
        }
    }

    #[test]
    fn the_project_header_is_declared_once_and_used_by_project_scoped_operations() {
        let spec = spec();
        let op = &spec["paths"]["/api/v1/query"]["post"];
        let header = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "X-Pluto-Project")
            .unwrap();
        assert_eq!(header["in"], "header");
        assert_eq!(header["schema"]["$ref"], "#/components/schemas/IdentifierText");
        assert!(op["responses"]["404"]["description"]
            .as_str()
            .unwrap()
            .contains("X-Pluto-Project"));
    }
}
