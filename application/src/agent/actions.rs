//! One catalog of actions: what the agent can do, each mapped to an existing use case, with a description, a
//! JSON schema for its arguments and whether it writes (and so waits for a person's approval). The agent's tools
//! and `GET /api/v1/actions` both come from here, so a new capability reaches people and the agent at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pluto_duck_domain::{ItemKind, ItemSource, Materialization, ProjectId};
use serde_json::{json, Value};

use super::explorer::Budget;
use super::knowledge::Knowledge;
use super::preview::Preview;
use crate::ports::{SkillStore, ToolSpec, Warehouse};
use crate::services::{
    AnalysisDraft, AnalysisRunner, AnalysisService, BoardDraft, BoardService, CacheRequest, CacheService,
    ExecuteOptions, ItemDraft, NewSource, QueryService, SourceService,
};
use crate::AppError;

/// What a client or the model sees of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpec {
    /// Dotted: `query.run`. As a tool the dot is an underscore (`query_run`), which every provider accepts.
    pub name: &'static str,
    pub description: &'static str,
    /// The JSON schema of the arguments object.
    pub parameters: Value,
    /// It changes data or definitions, or reaches outside the project: a person approves it first.
    pub writes: bool,
}

impl ActionSpec {
    pub fn tool_name(&self) -> String {
        self.name.replace('.', "_")
    }

    pub fn tool(&self) -> ToolSpec {
        ToolSpec {
            name: self.tool_name(),
            description: self.description.to_owned(),
            parameters: self.parameters.clone(),
        }
    }
}

/// Who acts, where, and how much the model may see.
#[derive(Debug, Clone)]
pub struct ActionContext {
    pub project: ProjectId,
    /// No row value goes to the model.
    pub privacy: bool,
    /// Rows a query keeps for the user's preview.
    pub row_limit: u64,
    /// Rows of a preview the model reads (without privacy).
    pub model_rows: usize,
    /// The conversation's scratch schema.
    pub zone: Option<String>,
    pub actor: String,
}

/// An action's result: what the model reads (privacy applied), and what the user and the run keep.
#[derive(Debug, Clone, Default)]
pub struct ActionOutput {
    pub for_model: String,
    pub data: Value,
    /// The SQL the action ran, if it ran one.
    pub sql: Option<String>,
    pub preview: Option<Preview>,
}

#[async_trait]
pub trait Action: Send + Sync {
    fn spec(&self) -> ActionSpec;
    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError>;
}

#[derive(Default, Clone)]
pub struct ActionRegistry {
    actions: BTreeMap<&'static str, Arc<dyn Action>>,
}

impl ActionRegistry {
    pub fn register(&mut self, action: Arc<dyn Action>) {
        self.actions.insert(action.spec().name, action);
    }

    pub fn specs(&self) -> Vec<ActionSpec> {
        self.actions.values().map(|a| a.spec()).collect()
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.actions.get(name).cloned()
    }

    /// The action a tool call names (`query_run` or `query.run`).
    pub fn by_tool(&self, tool: &str) -> Option<Arc<dyn Action>> {
        self.actions
            .values()
            .find(|a| {
                let s = a.spec();
                s.tool_name() == tool || s.name == tool
            })
            .cloned()
    }

    pub fn tools(&self) -> Vec<ToolSpec> {
        self.actions.values().map(|a| a.spec().tool()).collect()
    }

    /// Every action that ships with Pluto-Duck.
    pub fn builtin(s: &ActionServices) -> Self {
        let mut r = Self::default();
        r.register(Arc::new(RunQuery(s.clone())));
        r.register(Arc::new(SearchSchema(s.clone())));
        r.register(Arc::new(DescribeTable(s.clone())));
        r.register(Arc::new(ListSources(s.clone())));
        r.register(Arc::new(ListAnalyses(s.clone())));
        r.register(Arc::new(LoadSkill(s.clone())));
        r.register(Arc::new(SaveScratch(s.clone())));
        r.register(Arc::new(AttachSource(s.clone())));
        r.register(Arc::new(CacheTable(s.clone())));
        r.register(Arc::new(SaveAnalysis(s.clone())));
        r.register(Arc::new(ExecuteAnalysis(s.clone())));
        r.register(Arc::new(AddBoardItem(s.clone())));
        r
    }
}

/// The use cases the built-in actions call.
#[derive(Clone)]
pub struct ActionServices {
    pub queries: Arc<QueryService>,
    pub sources: Arc<SourceService>,
    pub caches: Arc<CacheService>,
    pub analyses: Arc<AnalysisService>,
    pub runner: Arc<AnalysisRunner>,
    pub boards: Arc<BoardService>,
    pub knowledge: Arc<Knowledge>,
    pub skills: Arc<dyn SkillStore>,
    pub warehouse: Arc<dyn Warehouse>,
}

fn text(args: &Value, key: &str) -> Result<String, AppError> {
    args[key]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| AppError::Invalid(format!("argument `{key}` (text) is required")))
}

fn opt_text(args: &Value, key: &str) -> Option<String> {
    args[key].as_str().filter(|s| !s.trim().is_empty()).map(str::to_owned)
}

/// Runs a read and keeps a preview: the agent's one way to look at data.
async fn run_read(s: &ActionServices, ctx: &ActionContext, sql: String) -> Result<ActionOutput, AppError> {
    let (run, page) = s
        .queries
        .read(
            &ctx.project,
            sql.clone(),
            Some(ctx.row_limit),
            &ctx.actor,
            Duration::from_secs(120),
        )
        .await?;
    let columns = run
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.data_type.clone()))
        .collect();
    let preview = Preview::read(page, columns, run.truncated, ctx.row_limit as usize).await?;
    Ok(ActionOutput {
        for_model: preview.for_model(ctx.privacy, ctx.model_rows),
        data: json!({"run": run.id.as_str(), "preview": preview.to_json()}),
        sql: Some(sql),
        preview: Some(preview),
    })
}

struct RunQuery(ActionServices);

#[async_trait]
impl Action for RunQuery {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "query.run",
            description: "Run one read-only SQL query (DuckDB dialect) in the project and see its columns, row count \
                          and first rows. Tables of the project are `schema.table` (`main.orders`); a source's \
                          tables are `source.schema.table`.",
            parameters: json!({"type": "object", "properties": {"sql": {"type": "string", "description": "One SELECT statement"}}, "required": ["sql"], "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        run_read(&self.0, ctx, text(&args, "sql")?).await
    }
}

struct SearchSchema(ActionServices);

#[async_trait]
impl Action for SearchSchema {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "schema.search",
            description: "Find the tables and columns of the project that fit a question (ranked, with keys, joins \
                          and sample values).",
            parameters: json!({"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"], "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let question = text(&args, "question")?;
        let known = self.0.knowledge.get(&ctx.project).await?;
        let explorer = if ctx.privacy { &known.private } else { &known.explorer };
        let found = explorer.explore(&question, None, Budget::tokens(1500).max_tables(8));
        Ok(ActionOutput {
            data: json!({"tables": found.context_tables.iter().map(ToString::to_string).collect::<Vec<_>>()}),
            for_model: if found.context.is_empty() {
                "no table of the project matches".into()
            } else {
                found.context
            },
            ..ActionOutput::default()
        })
    }
}

struct DescribeTable(ActionServices);

#[async_trait]
impl Action for DescribeTable {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "table.describe",
            description: "Describe one table: its columns with types, keys, row estimate and (outside privacy mode) \
                          sampled values.",
            parameters: json!({"type": "object", "properties": {"table": {"type": "string", "description": "schema.table or source.schema.table"}}, "required": ["table"], "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let wanted = text(&args, "table")?.to_ascii_lowercase();
        let known = self.0.knowledge.get(&ctx.project).await?;
        let table = known
            .snapshot
            .tables
            .iter()
            .find(|t| {
                let full = t.name.to_string().to_ascii_lowercase();
                full == wanted || format!("main.{wanted}") == full || t.name.table.eq_ignore_ascii_case(&wanted)
            })
            .ok_or_else(|| AppError::NotFound {
                what: "table",
                id: wanted.clone(),
            })?;
        let mut out = format!("{} ({})", table.name, table.kind.as_str());
        if let Some(d) = &table.description {
            out.push_str(&format!(": {d}"));
        }
        if let Some(n) = table.row_count {
            out.push_str(&format!("\nabout {n} rows"));
        }
        for c in &table.columns {
            out.push_str(&format!("\n- {} {}", c.name, c.data_type));
            if c.is_primary_key {
                out.push_str(" primary key");
            }
            if let Some(d) = &c.description {
                out.push_str(&format!(" -- {d}"));
            }
            if !ctx.privacy && !c.sample_values.is_empty() {
                out.push_str(&format!(" (e.g. {})", c.sample_values.join(", ")));
            }
        }
        for fk in &table.foreign_keys {
            out.push_str(&format!(
                "\nforeign key ({}) references {} ({})",
                fk.columns.join(", "),
                fk.references,
                fk.referenced_columns.join(", ")
            ));
        }
        Ok(ActionOutput {
            data: json!({"table": table.name.to_string()}),
            for_model: out,
            ..ActionOutput::default()
        })
    }
}

struct ListSources(ActionServices);

#[async_trait]
impl Action for ListSources {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "source.list",
            description: "List the project's sources (attached databases and files) with their state.",
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, _args: Value) -> Result<ActionOutput, AppError> {
        let sources = self.0.sources.list_with_states(&ctx.project).await?;
        let lines: Vec<String> = sources
            .iter()
            .map(|(s, st)| {
                let state = match st {
                    pluto_duck_domain::SourceState::Attached => "attached".to_owned(),
                    pluto_duck_domain::SourceState::Failed(r) => format!("failed: {r}"),
                };
                format!("{} ({}, {state}) {}", s.name, s.kind.as_str(), s.description)
            })
            .collect();
        Ok(ActionOutput {
            for_model: if lines.is_empty() {
                "no sources".into()
            } else {
                lines.join("\n")
            },
            data: json!({"sources": sources.iter().map(|(s, _)| s.name.as_str()).collect::<Vec<_>>()}),
            ..ActionOutput::default()
        })
    }
}

struct ListAnalyses(ActionServices);

#[async_trait]
impl Action for ListAnalyses {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "analysis.list",
            description: "List the project's saved analyses (id, name, description); their data reads as \
                          `analysis.<id>` once executed.",
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, _args: Value) -> Result<ActionOutput, AppError> {
        let all = self.0.analyses.list(&ctx.project, None).await?;
        let lines: Vec<String> = all
            .iter()
            .map(|a| {
                format!(
                    "{} ({}, {}) {}",
                    a.id,
                    a.name,
                    a.materialization.as_str(),
                    a.description
                )
            })
            .collect();
        Ok(ActionOutput {
            for_model: if lines.is_empty() {
                "no analyses".into()
            } else {
                lines.join("\n")
            },
            data: json!({"analyses": all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>()}),
            ..ActionOutput::default()
        })
    }
}

struct LoadSkill(ActionServices);

#[async_trait]
impl Action for LoadSkill {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "skill.load",
            description: "Load the instructions of one of the skills offered in the system prompt, by name.",
            parameters: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let name = text(&args, "name")?;
        let body = self
            .0
            .skills
            .load(&ctx.project, &name)
            .await
            .ok_or_else(|| AppError::NotFound {
                what: "skill",
                id: name.clone(),
            })?;
        Ok(ActionOutput {
            for_model: body,
            data: json!({"skill": name}),
            ..ActionOutput::default()
        })
    }
}

struct SaveScratch(ActionServices);

#[async_trait]
impl Action for SaveScratch {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "scratch.save",
            description: "Keep the result of a query as a scratch table of this conversation (its work zone, \
                          dropped with the conversation), to build on it in later queries.",
            parameters: json!({"type": "object", "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"},
                "sql": {"type": "string", "description": "One SELECT statement"}}, "required": ["name", "sql"], "additionalProperties": false}),
            writes: false,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let zone = ctx
            .zone
            .clone()
            .ok_or_else(|| AppError::Invalid("scratch tables belong to a conversation".into()))?;
        let name = pluto_duck_domain::Identifier::canonical(text(&args, "name")?)?;
        let sql = text(&args, "sql")?;
        let statements = pluto_duck_domain::check_user_sql(&sql)?;
        if statements.len() != 1 || !statements[0].is_read {
            return Err(AppError::Invalid("scratch.save takes one SELECT".into()));
        }
        let relation = pluto_duck_domain::Relation {
            schema: pluto_duck_domain::Identifier::parse(zone.clone())?,
            name: name.clone(),
        };
        let rows = self
            .0
            .warehouse
            .materialize(
                &ctx.project,
                crate::ports::Materialize {
                    relation: relation.clone(),
                    select: statements[0].text.clone(),
                    params: Vec::new(),
                    how: Materialization::Table,
                },
                Default::default(),
            )
            .await?;
        Ok(ActionOutput {
            for_model: format!("saved {rows} rows as {relation}"),
            data: json!({"table": relation.to_string(), "rows": rows}),
            sql: None,
            preview: None,
        })
    }
}

struct AttachSource(ActionServices);

#[async_trait]
impl Action for AttachSource {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "source.attach",
            description: "Attach a data source to the project: a file, folder or glob of CSV/Parquet/JSON \
                          (`kind: file`, `location`), an http(s) file, or a SQLite/DuckDB file (`kind`, `path`).",
            parameters: json!({"type": "object", "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"},
                "kind": {"type": "string", "enum": ["file", "http", "sqlite", "duckdb"]},
                "location": {"type": "string"}, "path": {"type": "string"}, "description": {"type": "string"}},
                "required": ["name", "kind"], "additionalProperties": false}),
            writes: true,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let kind = pluto_duck_domain::SourceKind::parse(&text(&args, "kind")?)?;
        let connection = match kind {
            pluto_duck_domain::SourceKind::Sqlite | pluto_duck_domain::SourceKind::Duckdb => {
                pluto_duck_domain::SourceConnection::File {
                    path: text(&args, "path")?,
                }
            }
            pluto_duck_domain::SourceKind::File | pluto_duck_domain::SourceKind::Http => {
                pluto_duck_domain::SourceConnection::Located(pluto_duck_domain::FileLocation {
                    uri: opt_text(&args, "location")
                        .or_else(|| opt_text(&args, "path"))
                        .unwrap_or_default(),
                    format: None,
                    delimiter: None,
                    header: None,
                    lenient: false,
                    s3: None,
                })
            }
            other => {
                return Err(AppError::Invalid(format!(
                    "the agent attaches files and file databases; attach a {} source with its credentials yourself",
                    other.as_str()
                )))
            }
        };
        let (source, state) = self
            .0
            .sources
            .attach(
                &ctx.project,
                NewSource {
                    name: text(&args, "name")?,
                    kind,
                    description: opt_text(&args, "description").unwrap_or_default(),
                    connection,
                    password: None,
                    read_only: true,
                },
            )
            .await?;
        if let pluto_duck_domain::SourceState::Failed(reason) = state {
            return Err(AppError::Invalid(format!(
                "{} was added but does not attach: {reason}",
                source.name
            )));
        }
        let tables = self
            .0
            .sources
            .tables(&ctx.project, source.name.as_str(), None)
            .await
            .unwrap_or_default();
        self.0.knowledge.forget(&ctx.project);
        Ok(ActionOutput {
            for_model: format!(
                "attached {} with tables: {}",
                source.name,
                tables
                    .iter()
                    .map(|t| format!("{}.{}.{}", source.name, t.schema, t.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            data: json!({"source": source.name.as_str()}),
            ..ActionOutput::default()
        })
    }
}

struct CacheTable(ActionServices);

#[async_trait]
impl Action for CacheTable {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "cache.create",
            description: "Copy a source's table into the project (`cache.<name>`), to query it fast and offline.",
            parameters: json!({"type": "object", "properties": {
                "source": {"type": "string"}, "schema": {"type": "string"}, "table": {"type": "string"},
                "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"}},
                "required": ["source", "schema", "table"], "additionalProperties": false}),
            writes: true,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let cache = self
            .0
            .caches
            .create(
                &ctx.project,
                &text(&args, "source")?,
                CacheRequest {
                    schema: text(&args, "schema")?,
                    table: text(&args, "table")?,
                    name: opt_text(&args, "name"),
                    ..CacheRequest::default()
                },
            )
            .await?;
        Ok(ActionOutput {
            for_model: format!("cached {} rows as {}", cache.rows, cache.relation()),
            data: json!({"table": cache.relation().to_string(), "rows": cache.rows}),
            ..ActionOutput::default()
        })
    }
}

struct SaveAnalysis(ActionServices);

#[async_trait]
impl Action for SaveAnalysis {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "analysis.save",
            description: "Save a query as an analysis of the project (readable by others as `analysis.<id>` once \
                          executed), replacing one of the same id.",
            parameters: json!({"type": "object", "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"},
                "sql": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
                "materialization": {"type": "string", "enum": ["view", "table"]}},
                "required": ["id", "sql"], "additionalProperties": false}),
            writes: true,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let materialization = match opt_text(&args, "materialization").as_deref() {
            None | Some("view") => Materialization::View,
            Some("table") => Materialization::Table,
            Some(other) => {
                return Err(AppError::Invalid(format!(
                    "materialization must be view or table, not {other}"
                )))
            }
        };
        let draft = AnalysisDraft {
            id: text(&args, "id")?,
            name: opt_text(&args, "name"),
            sql: text(&args, "sql")?,
            description: opt_text(&args, "description").unwrap_or_default(),
            tags: vec!["agent".into()],
            materialization,
            parameters: Vec::new(),
        };
        let exists = self.0.analyses.get(&ctx.project, &draft.id).await.is_ok();
        let saved = if exists {
            self.0.analyses.update(&ctx.project, draft).await?
        } else {
            self.0.analyses.create(&ctx.project, draft).await?
        };
        Ok(ActionOutput {
            for_model: format!("saved analysis {}", saved.id),
            data: json!({"analysis": saved.id.as_str()}),
            sql: None,
            preview: None,
        })
    }
}

struct ExecuteAnalysis(ActionServices);

#[async_trait]
impl Action for ExecuteAnalysis {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "analysis.execute",
            description: "Run a saved analysis (and its stale upstream) so its data is current.",
            parameters: json!({"type": "object", "properties": {
                "id": {"type": "string"}, "params": {"type": "object"}}, "required": ["id"], "additionalProperties": false}),
            writes: true,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let id = text(&args, "id")?;
        let params = args["params"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let run = self
            .0
            .runner
            .execute(
                &ctx.project,
                &id,
                ExecuteOptions {
                    params,
                    actor: Some(ctx.actor.clone()),
                    ..ExecuteOptions::default()
                },
            )
            .await?;
        let (run, steps) = self
            .0
            .runner
            .wait(&ctx.project, &run.id, Duration::from_secs(600))
            .await?;
        Ok(ActionOutput {
            for_model: format!(
                "analysis {id} {}: {}",
                run.status.as_str(),
                steps
                    .iter()
                    .map(|s| format!("{} {}", s.id, s.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            data: json!({"run": run.id.as_str(), "status": run.status.as_str()}),
            ..ActionOutput::default()
        })
    }
}

struct AddBoardItem(ActionServices);

#[async_trait]
impl Action for AddBoardItem {
    fn spec(&self) -> ActionSpec {
        ActionSpec {
            name: "board.add_item",
            description: "Put a query's result on a board (created when no board has that name) as a table, chart \
                          or metric item.",
            parameters: json!({"type": "object", "properties": {
                "board": {"type": "string"}, "title": {"type": "string"},
                "kind": {"type": "string", "enum": ["table", "chart", "metric"]},
                "sql": {"type": "string"}, "chart": {"type": "object"}},
                "required": ["board", "kind", "sql"], "additionalProperties": false}),
            writes: true,
        }
    }

    async fn call(&self, ctx: &ActionContext, args: Value) -> Result<ActionOutput, AppError> {
        let board_name = text(&args, "board")?;
        let boards = self.0.boards.list(&ctx.project).await?;
        let board = match boards.into_iter().find(|b| b.name == board_name || b.id == board_name) {
            Some(b) => b,
            None => {
                self.0
                    .boards
                    .create(
                        &ctx.project,
                        BoardDraft {
                            name: Some(board_name.clone()),
                            ..BoardDraft::default()
                        },
                    )
                    .await?
            }
        };
        let kind = ItemKind::parse(&text(&args, "kind")?)?;
        let config = match (&kind, args.get("chart")) {
            (ItemKind::Chart, Some(c)) => c.to_string(),
            _ => "{}".into(),
        };
        let item = self
            .0
            .boards
            .add_item(
                &ctx.project,
                &board.id,
                ItemDraft {
                    kind: Some(kind),
                    title: opt_text(&args, "title"),
                    config: Some(config),
                    source: Some(Some(ItemSource::Sql(text(&args, "sql")?))),
                    ..ItemDraft::default()
                },
            )
            .await?;
        let _ = self.0.boards.execute(&ctx.project, &board.id, &item.id).await;
        Ok(ActionOutput {
            for_model: format!("added item {} to board {}", item.id, board.name),
            data: json!({"board": board.id, "item": item.id}),
            ..ActionOutput::default()
        })
    }
}

/// Runs a warehouse read outside an action (the pipeline's verifier): same preview, same privacy.
pub async fn verify_sql(s: &ActionServices, ctx: &ActionContext, sql: &str) -> Result<ActionOutput, AppError> {
    run_read(s, ctx, sql.to_owned()).await
}
