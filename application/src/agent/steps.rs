//! The agent's workflow as small named steps. A [`Step`] reads and writes one [`Turn`]; a pipeline (names from
//! the config) runs them in order, and a step may send the turn back to an earlier one (the verifier to the
//! generator, for a repair). The tool-calling loop is one more step, for models that call tools.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use pluto_duck_domain::RunId;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::actions::{verify_sql, ActionContext, ActionRegistry, ActionServices};
use super::approvals::{ApprovalRequest, Approvals, Decision};
use super::explorer::Budget;
use super::preview::Preview;
use super::prompts;
use crate::llm::ReplyAssembler;
use crate::ports::{ChatDelta, ChatMessage, ChatRequest, LlmError, LlmProvider, TokenUsage};
use crate::AppError;

/// How far a turn may go.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Attempts after the first the verifier may ask for.
    pub max_repairs: u32,
    /// Model calls in one turn.
    pub max_model_calls: u32,
    /// Tool calls in one turn.
    pub max_tool_calls: u32,
    /// The same call (tool and arguments) more often than this ends the loop.
    pub max_repeats: u32,
    /// Rows a verified query keeps for the preview.
    pub row_limit: u64,
    /// Rows of a result the model reads (privacy mode aside).
    pub model_rows: usize,
    /// What the schema explorer hands the model.
    pub schema_tokens: usize,
    pub schema_tables: usize,
    /// Earlier messages of the conversation the model sees.
    pub history_messages: usize,
    pub history_chars: usize,
    pub approval_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_repairs: 3,
            max_model_calls: 12,
            max_tool_calls: 16,
            max_repeats: 2,
            row_limit: 200,
            model_rows: 20,
            schema_tokens: 2000,
            schema_tables: 10,
            history_messages: 12,
            history_chars: 12_000,
            approval_timeout: Duration::from_secs(600),
        }
    }
}

/// One attempt of the SQL and what the verifier made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub sql: String,
    /// Why it was sent back, if it was.
    pub problem: Option<String>,
}

/// What one step did, for the run's detail.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub step: String,
    pub ms: f64,
}

/// Everything a turn knows, step after step.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    pub question: String,
    /// The question on its own (the planner resolves references to earlier turns).
    pub standalone: Option<String>,
    pub plan: Vec<String>,
    /// Earlier user and assistant messages, oldest first.
    pub history: Vec<ChatMessage>,
    pub schema: String,
    pub schema_tables: Vec<String>,
    /// The SQL in hand: generated, or the last query a tool ran successfully.
    pub sql: Option<String>,
    /// The SQL passed the verifier (or ran through `query.run`).
    pub verified: bool,
    pub attempts: Vec<Attempt>,
    pub repairs: u32,
    pub preview: Option<Preview>,
    pub answer: Option<String>,
    pub chart: Option<Value>,
    pub usage: TokenUsage,
    pub model_calls: u32,
    pub tool_calls: u32,
    pub steps: Vec<StepRecord>,
    /// Tool calls as they went: `{action, args, status, approval?}`.
    pub actions: Vec<Value>,
    /// Why the turn ended without an answer, when it did.
    pub failure: Option<String>,
}

impl Turn {
    pub fn new(question: impl Into<String>) -> Self {
        Self {
            question: question.into(),
            ..Self::default()
        }
    }

    /// The question the steps work on.
    pub fn working_question(&self) -> &str {
        self.standalone.as_deref().unwrap_or(&self.question)
    }

    pub fn detail(&self) -> Value {
        json!({
            "question": self.question,
            "standalone_question": self.standalone,
            "plan": self.plan,
            "answer": self.answer,
            "sql": self.sql,
            "verified": self.verified,
            "preview": self.preview.as_ref().map(Preview::to_json),
            "chart": self.chart,
            "repairs": self.repairs,
            "attempts": self.attempts.iter().map(|a| json!({"sql": a.sql, "problem": a.problem})).collect::<Vec<_>>(),
            "schema_tables": self.schema_tables,
            "steps": self.steps.iter().map(|s| json!({"step": s.step, "ms": s.ms})).collect::<Vec<_>>(),
            "actions": self.actions,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "tokens": {"prompt": self.usage.prompt, "completion": self.usage.completion},
            "failure": self.failure,
        })
    }
}

/// Where a turn's events go (the run's event stream; a test's vector).
pub type Emit = Arc<dyn Fn(&str, Value) + Send + Sync>;

/// What a step may use.
pub struct StepContext {
    pub llm: Arc<dyn LlmProvider>,
    pub services: ActionServices,
    pub actions: ActionRegistry,
    pub action: ActionContext,
    pub limits: Limits,
    pub approvals: Arc<Approvals>,
    /// Writing actions run without asking (the CLI's `--yes`).
    pub auto_approve: bool,
    pub run: RunId,
    pub conversation: Option<String>,
    pub emit: Emit,
    pub cancel: CancellationToken,
}

impl StepContext {
    pub fn emit(&self, name: &str, data: Value) {
        (self.emit)(name, data)
    }

    /// One model call, streamed: text deltas become `text` events when `stream_text`; usage and counts go to the
    /// turn.
    pub async fn chat(
        &self,
        turn: &mut Turn,
        request: ChatRequest,
        stream_text: bool,
    ) -> Result<crate::llm::ChatResponse, AppError> {
        if turn.model_calls >= self.limits.max_model_calls {
            return Err(AppError::Invalid(format!(
                "the agent reached its limit of {} model calls in one turn",
                self.limits.max_model_calls
            )));
        }
        turn.model_calls += 1;
        let mut stream = self.llm.chat(request, self.cancel.clone()).await.map_err(llm_error)?;
        let mut reply = ReplyAssembler::default();
        while let Some(delta) = stream.next().await {
            let delta = delta.map_err(llm_error)?;
            if let (true, ChatDelta::Text(t)) = (stream_text, &delta) {
                if !t.is_empty() {
                    self.emit("text", json!({"delta": t}));
                }
            }
            reply.push(delta).map_err(llm_error)?;
        }
        let response = reply.finish().map_err(llm_error)?;
        if let Some(u) = response.usage {
            turn.usage.prompt += u.prompt;
            turn.usage.completion += u.completion;
        }
        Ok(response)
    }
}

pub fn llm_error(e: LlmError) -> AppError {
    AppError::Llm(e)
}

/// What the pipeline does after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// Go (back) to the named step.
    Goto(&'static str),
    /// The turn is over.
    Done,
}

#[async_trait]
pub trait Step: Send + Sync {
    fn name(&self) -> &'static str;
    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError>;
}

/// Steps by name: the built-in ones, and any a developer registers to replace one.
#[derive(Clone, Default)]
pub struct StepRegistry {
    steps: BTreeMap<String, Arc<dyn Step>>,
}

impl StepRegistry {
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.register(Arc::new(Planner));
        r.register(Arc::new(SchemaExplorer));
        r.register(Arc::new(Generator));
        r.register(Arc::new(Verifier));
        r.register(Arc::new(Answer));
        r.register(Arc::new(ToolLoop));
        r
    }

    pub fn register(&mut self, step: Arc<dyn Step>) {
        self.steps.insert(step.name().to_owned(), step);
    }

    pub fn names(&self) -> Vec<String> {
        self.steps.keys().cloned().collect()
    }

    /// The steps a pipeline names, in its order; an unknown name is a configuration error.
    pub fn pipeline(&self, names: &[String]) -> Result<Pipeline, AppError> {
        if names.is_empty() {
            return Err(AppError::Invalid("an agent pipeline needs at least one step".into()));
        }
        let steps = names
            .iter()
            .map(|n| {
                self.steps.get(n).cloned().ok_or_else(|| {
                    AppError::Invalid(format!("unknown agent step {n:?} (known: {})", self.names().join(", ")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pipeline { steps })
    }
}

/// The step pipeline when the model works without tools, and when it calls them.
pub fn default_pipeline(tools: bool) -> Vec<String> {
    let names: &[&str] = if tools {
        &["explorer", "tools", "answer"]
    } else {
        &["planner", "explorer", "generator", "verifier", "answer"]
    };
    names.iter().map(|s| s.to_string()).collect()
}

#[derive(Clone)]
pub struct Pipeline {
    steps: Vec<Arc<dyn Step>>,
}

impl Pipeline {
    pub fn names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name()).collect()
    }

    /// Runs the steps; the turn holds whatever was reached when an error ends it.
    pub async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<(), AppError> {
        let mut i = 0;
        // Every jump back is bounded by the limits of the steps themselves; this only stops a misbehaving one.
        let mut hops = 0u32;
        while i < self.steps.len() {
            if cx.cancel.is_cancelled() {
                return Err(AppError::Llm(LlmError::Cancelled));
            }
            let step = &self.steps[i];
            cx.emit("step_started", json!({"step": step.name()}));
            let started = Instant::now();
            let next = step.run(turn, cx).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            turn.steps.push(StepRecord {
                step: step.name().to_owned(),
                ms,
            });
            cx.emit(
                "step_finished",
                json!({"step": step.name(), "ms": (ms * 1000.0).round() / 1000.0, "ok": next.is_ok()}),
            );
            match next? {
                Next::Continue => i += 1,
                Next::Done => break,
                Next::Goto(name) => {
                    hops += 1;
                    if hops > 64 {
                        return Err(AppError::Invalid("the agent's steps went in circles".into()));
                    }
                    i = self.steps.iter().position(|s| s.name() == name).ok_or_else(|| {
                        AppError::Invalid(format!(
                            "step {} goes to {name}, which is not in the pipeline",
                            step.name()
                        ))
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Keeps the latest messages within the limits, whole messages only.
pub fn bounded_history(history: &[ChatMessage], limits: &Limits) -> Vec<ChatMessage> {
    let mut kept = Vec::new();
    let mut chars = 0;
    for m in history.iter().rev().take(limits.history_messages) {
        chars += m.content.len();
        if chars > limits.history_chars {
            break;
        }
        kept.push(m.clone());
    }
    kept.reverse();
    kept
}

/// The planner: the question in the context of the conversation, and a plan.
struct Planner;

#[async_trait]
impl Step for Planner {
    fn name(&self) -> &'static str {
        "planner"
    }

    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError> {
        let mut messages = vec![ChatMessage::system(prompts::planner_system())];
        messages.extend(bounded_history(&turn.history, &cx.limits));
        messages.push(ChatMessage::user(turn.question.clone()));
        let reply = cx
            .chat(turn, ChatRequest::new(messages).with_temperature(0.0), false)
            .await?;
        let (standalone, plan) = parse_plan(&reply.text);
        turn.standalone = standalone.filter(|q| !q.trim().is_empty());
        turn.plan = plan;
        cx.emit("plan", json!({"question": turn.working_question(), "plan": turn.plan}));
        Ok(Next::Continue)
    }
}

/// Reads the planner's JSON, tolerating fences and prose around it; a reply that is no JSON is the plan itself.
fn parse_plan(text: &str) -> (Option<String>, Vec<String>) {
    let start = text.find('{');
    let end = text.rfind('}');
    if let (Some(s), Some(e)) = (start, end) {
        if let Ok(v) = serde_json::from_str::<Value>(&text[s..=e]) {
            let question = v["question"].as_str().map(str::to_owned);
            let plan = match &v["plan"] {
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            return (question, plan);
        }
    }
    let plan = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    (None, plan)
}

/// The schema explorer: the tables and columns that fit the question, within a token budget.
struct SchemaExplorer;

#[async_trait]
impl Step for SchemaExplorer {
    fn name(&self) -> &'static str {
        "explorer"
    }

    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError> {
        let known = cx.services.knowledge.get(&cx.action.project).await?;
        let explorer = if cx.action.privacy {
            &known.private
        } else {
            &known.explorer
        };
        // Earlier questions of the conversation help a follow-up find its tables.
        let hint: String = turn
            .history
            .iter()
            .filter(|m| m.role == crate::ports::Role::User)
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let found = explorer.explore(
            turn.working_question(),
            (!hint.is_empty()).then_some(hint.as_str()),
            Budget::tokens(cx.limits.schema_tokens).max_tables(cx.limits.schema_tables),
        );
        turn.schema = if found.context.is_empty() {
            "(the project has no table that matches; say so if the question needs data)".into()
        } else {
            found.context.clone()
        };
        turn.schema_tables = found.context_tables.iter().map(ToString::to_string).collect();
        cx.emit(
            "schema",
            json!({"tables": turn.schema_tables, "tokens": found.estimated_tokens, "catalog_tables": known.snapshot.tables.len()}),
        );
        Ok(Next::Continue)
    }
}

/// The SQL generator: the question, the schema and earlier failed attempts in; one query out.
struct Generator;

#[async_trait]
impl Step for Generator {
    fn name(&self) -> &'static str {
        "generator"
    }

    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError> {
        let mut messages = vec![ChatMessage::system(prompts::generator_system(&turn.schema))];
        messages.extend(bounded_history(&turn.history, &cx.limits));
        messages.push(ChatMessage::user(turn.working_question().to_owned()));
        for a in &turn.attempts {
            messages.push(ChatMessage::assistant(format!("```sql\n{}\n```", a.sql)));
            if let Some(problem) = &a.problem {
                messages.push(ChatMessage::user(prompts::repair(&a.sql, problem)));
            }
        }
        let reply = cx
            .chat(turn, ChatRequest::new(messages).with_temperature(0.0), false)
            .await?;
        let sql = extract_sql(&reply.text);
        cx.emit("sql", json!({"sql": sql, "attempt": turn.attempts.len() + 1}));
        turn.sql = sql;
        turn.verified = false;
        Ok(Next::Continue)
    }
}

/// The SQL of a reply: its ```sql block, else any fenced block, else the reply when it reads as a query.
pub fn extract_sql(text: &str) -> Option<String> {
    let fenced = |tag: &str| -> Option<String> {
        let start = text.find(tag)? + tag.len();
        let rest = &text[start..];
        let end = rest.find("```")?;
        Some(rest[..end].to_owned())
    };
    let body = fenced("```sql")
        .or_else(|| fenced("```SQL"))
        .or_else(|| fenced("```"))
        .or_else(|| {
            let t = text.trim_start();
            let head = t.get(..6).unwrap_or(t).to_ascii_uppercase();
            (head.starts_with("SELECT") || head.starts_with("WITH") || head.starts_with("FROM")).then(|| t.to_owned())
        })?;
    let sql = body.trim().trim_end_matches(';').trim().to_owned();
    (!sql.is_empty()).then_some(sql)
}

/// The verifier: runs the SQL read-only in the project's sandbox with a row limit; an error, an empty or a
/// suspicious result goes back to the generator, a bounded number of times.
struct Verifier;

#[async_trait]
impl Step for Verifier {
    fn name(&self) -> &'static str {
        "verifier"
    }

    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError> {
        let attempt = turn.attempts.len() + 1;
        let Some(sql) = turn.sql.clone() else {
            return self.send_back(turn, cx, String::new(), "The reply held no SQL query.".into());
        };
        match verify_sql(&cx.services, &cx.action, &sql).await {
            Err(e) => {
                let problem = format!("It failed: {e}");
                cx.emit(
                    "sql_failed",
                    json!({"sql": sql, "attempt": attempt, "error": e.to_string()}),
                );
                self.send_back(turn, cx, sql, problem)
            }
            Ok(out) => {
                let preview = out.preview.unwrap_or_default();
                let doubt = suspicion(&preview);
                // The same SQL twice after a doubt: the model stands by it, and an empty answer may be right.
                let repeated = turn.attempts.last().is_some_and(|a| a.sql == sql);
                turn.preview = Some(preview.clone());
                match doubt {
                    Some(d) if !repeated && turn.repairs < cx.limits.max_repairs => {
                        cx.emit("sql_doubted", json!({"sql": sql, "attempt": attempt, "reason": d}));
                        self.send_back(turn, cx, sql, format!("It ran, but {d}."))
                    }
                    _ => {
                        turn.attempts.push(Attempt {
                            sql: sql.clone(),
                            problem: None,
                        });
                        turn.verified = true;
                        cx.emit(
                            "sql_verified",
                            json!({"sql": sql, "attempt": attempt, "rows": preview.row_count, "columns": preview.columns.iter().map(|(n, _)| n).collect::<Vec<_>>()}),
                        );
                        Ok(Next::Continue)
                    }
                }
            }
        }
    }
}

impl Verifier {
    fn send_back(&self, turn: &mut Turn, cx: &StepContext, sql: String, problem: String) -> Result<Next, AppError> {
        turn.attempts.push(Attempt {
            sql: sql.clone(),
            problem: Some(problem.clone()),
        });
        if turn.repairs >= cx.limits.max_repairs {
            turn.failure = Some(format!(
                "no working SQL after {} repairs; the last attempt: {problem}",
                turn.repairs
            ));
            return Err(AppError::Invalid(turn.failure.clone().unwrap_or_default()));
        }
        turn.repairs += 1;
        cx.emit("repair", json!({"attempt": turn.repairs, "reason": problem}));
        Ok(Next::Goto("generator"))
    }
}

/// Why a result that ran may still be wrong.
fn suspicion(preview: &Preview) -> Option<String> {
    if preview.row_count == 0 {
        return Some("it returned no rows".into());
    }
    if preview.rows.is_empty() {
        return None;
    }
    preview.columns.iter().enumerate().find_map(|(i, (name, _))| {
        preview
            .rows
            .iter()
            .all(|r| r.get(i).is_none_or(Value::is_null))
            .then(|| format!("column {name} is NULL in every row"))
    })
}

/// The answer: text from the result, the final SQL, the preview and a chart that suits it.
struct Answer;

#[async_trait]
impl Step for Answer {
    fn name(&self) -> &'static str {
        "answer"
    }

    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError> {
        if turn.answer.is_none() {
            let (Some(sql), Some(preview)) = (turn.sql.clone(), turn.preview.clone()) else {
                let why = turn
                    .failure
                    .clone()
                    .unwrap_or_else(|| "the agent found no query that answers the question".into());
                turn.failure = Some(why.clone());
                return Err(AppError::Invalid(why));
            };
            let result = preview.for_model(cx.action.privacy, cx.limits.model_rows);
            let messages = vec![
                ChatMessage::system(prompts::answer_system()),
                ChatMessage::user(prompts::answer_user(turn.working_question(), &sql, &result)),
            ];
            let reply = cx
                .chat(turn, ChatRequest::new(messages).with_temperature(0.2), true)
                .await?;
            turn.answer = Some(reply.text.trim().to_owned());
        }
        turn.chart = turn.preview.as_ref().and_then(Preview::chart);
        cx.emit(
            "answer",
            json!({"text": turn.answer, "sql": turn.sql, "preview": turn.preview.as_ref().map(Preview::to_json), "chart": turn.chart}),
        );
        Ok(Next::Done)
    }
}

/// The same work as a tool-calling loop: the model calls actions until it answers in plain text.
struct ToolLoop;

#[async_trait]
impl Step for ToolLoop {
    fn name(&self) -> &'static str {
        "tools"
    }

    async fn run(&self, turn: &mut Turn, cx: &StepContext) -> Result<Next, AppError> {
        let skills = cx.services.skills.list(&cx.action.project).await;
        let mut messages = vec![ChatMessage::system(prompts::tools_system(
            &turn.schema,
            &skills,
            cx.action.privacy,
        ))];
        messages.extend(bounded_history(&turn.history, &cx.limits));
        messages.push(ChatMessage::user(turn.question.clone()));
        let tools = cx.actions.tools();
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut unknown_in_a_row = 0u32;
        // Set when a limit is reached: the model gets one last call without tools, to answer with what it has.
        let mut wrap_up: Option<String> = None;
        loop {
            let last_call = wrap_up.is_some() || turn.model_calls + 1 >= cx.limits.max_model_calls;
            let mut request = ChatRequest::new(messages.clone()).with_temperature(0.0);
            if !last_call {
                request = request.with_tools(tools.clone());
            } else if let Some(why) = &wrap_up {
                messages.push(ChatMessage::user(format!(
                    "{why} Answer now in plain text with what you have."
                )));
                request = ChatRequest::new(messages.clone()).with_temperature(0.0);
            }
            let reply = cx.chat(turn, request, true).await?;
            if reply.tool_calls.is_empty() || last_call {
                let text = reply.text.trim().to_owned();
                // A limit was hit: without any working SQL, or without a word from the model, the turn failed.
                if text.is_empty() || (wrap_up.is_some() && turn.sql.is_none()) {
                    let why = wrap_up.unwrap_or_else(|| "the model ended its turn without an answer".into());
                    turn.failure = Some(why.clone());
                    return Err(AppError::Invalid(why));
                }
                turn.answer = Some(text);
                return Ok(Next::Continue);
            }
            messages.push(reply.to_message());
            for call in &reply.tool_calls {
                turn.tool_calls += 1;
                let result = self.call(turn, cx, call, &mut seen, &mut unknown_in_a_row).await;
                let content = match result {
                    Ok(text) => text,
                    Err(stop) => {
                        wrap_up.get_or_insert(stop.clone());
                        stop
                    }
                };
                messages.push(ChatMessage::tool(call.id.clone(), truncate(&content, 6000)));
            }
            if turn.tool_calls >= cx.limits.max_tool_calls && wrap_up.is_none() {
                wrap_up = Some(format!(
                    "The agent reached its limit of {} tool calls in one turn.",
                    cx.limits.max_tool_calls
                ));
            }
        }
    }
}

impl ToolLoop {
    /// One tool call: what the model reads back, or `Err` with why the loop must wrap up.
    async fn call(
        &self,
        turn: &mut Turn,
        cx: &StepContext,
        call: &crate::ports::ToolCall,
        seen: &mut HashMap<String, u32>,
        unknown_in_a_row: &mut u32,
    ) -> Result<String, String> {
        let Some(action) = cx.actions.by_tool(&call.name) else {
            *unknown_in_a_row += 1;
            let msg = format!(
                "error: there is no tool named {:?}; the tools are: {}",
                call.name,
                cx.actions
                    .specs()
                    .iter()
                    .map(|s| s.tool_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            cx.emit(
                "tool_result",
                json!({"id": call.id, "tool": call.name, "ok": false, "error": msg}),
            );
            turn.actions.push(json!({"tool": call.name, "status": "unknown tool"}));
            if *unknown_in_a_row >= 3 {
                return Err(format!(
                    "The model called unknown tools {unknown_in_a_row} times in a row."
                ));
            }
            return Ok(msg);
        };
        *unknown_in_a_row = 0;
        let spec = action.spec();
        let mut args: Value = match serde_json::from_str(if call.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.arguments
        }) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let msg = format!(
                    "error: the arguments of {} are not a JSON object: {}",
                    spec.tool_name(),
                    truncate(&call.arguments, 200)
                );
                cx.emit(
                    "tool_result",
                    json!({"id": call.id, "action": spec.name, "ok": false, "error": msg}),
                );
                return Ok(msg);
            }
        };
        let key = format!("{}:{}", spec.name, args);
        let count = seen.entry(key).or_default();
        *count += 1;
        if *count > cx.limits.max_repeats {
            cx.emit(
                "tool_result",
                json!({"id": call.id, "action": spec.name, "ok": false, "error": "repeated call"}),
            );
            return Err(format!(
                "The model called {} with the same arguments {} times.",
                spec.name, count
            ));
        }
        cx.emit(
            "tool_call",
            json!({"id": call.id, "action": spec.name, "args": args, "writes": spec.writes}),
        );
        let mut record = json!({"action": spec.name, "args": args});
        if spec.writes && !cx.auto_approve {
            match self.approval(cx, spec.name, &args).await {
                (Decision::Approve, by, id) => {
                    record["approval"] = json!({"id": id, "decision": "approved", "by": by});
                }
                (Decision::Edit { args: edited }, by, id) => {
                    record["approval"] = json!({"id": id, "decision": "edited", "by": by, "args": edited});
                    args = edited;
                }
                (Decision::Reject { reason }, by, id) => {
                    record["approval"] = json!({"id": id, "decision": "rejected", "by": by, "reason": reason});
                    record["status"] = json!("rejected");
                    turn.actions.push(record);
                    let msg = format!(
                        "the user declined {}{}. Do not retry it; continue without it or answer.",
                        spec.name,
                        reason.map(|r| format!(": {r}")).unwrap_or_default()
                    );
                    cx.emit(
                        "tool_result",
                        json!({"id": call.id, "action": spec.name, "ok": false, "error": msg}),
                    );
                    return Ok(msg);
                }
            }
        }
        match action.call(&cx.action, args).await {
            Ok(out) => {
                if let (Some(sql), Some(preview)) = (&out.sql, &out.preview) {
                    turn.sql = Some(sql.clone());
                    turn.preview = Some(preview.clone());
                    turn.verified = true;
                    turn.attempts.push(Attempt {
                        sql: sql.clone(),
                        problem: None,
                    });
                }
                record["status"] = json!("ok");
                turn.actions.push(record);
                cx.emit(
                    "tool_result",
                    json!({"id": call.id, "action": spec.name, "ok": true, "data": out.data}),
                );
                Ok(out.for_model)
            }
            Err(e) => {
                if spec.name == "query.run" {
                    turn.repairs += 1;
                    turn.attempts.push(Attempt {
                        sql: call_sql(&record).unwrap_or_default(),
                        problem: Some(e.to_string()),
                    });
                }
                record["status"] = json!("failed");
                record["error"] = json!(e.to_string());
                turn.actions.push(record);
                cx.emit(
                    "tool_result",
                    json!({"id": call.id, "action": spec.name, "ok": false, "error": e.to_string()}),
                );
                Ok(format!("error: {e}"))
            }
        }
    }

    /// Waits for a person; no decision within the limit is a rejection.
    async fn approval(&self, cx: &StepContext, action: &str, args: &Value) -> (Decision, String, String) {
        let id = uuid::Uuid::now_v7().to_string();
        let waiting = cx.approvals.request(ApprovalRequest {
            id: id.clone(),
            project: cx.action.project.clone(),
            run: cx.run.clone(),
            conversation: cx.conversation.clone(),
            action: action.to_owned(),
            args: args.clone(),
            requested_at: chrono::Utc::now(),
        });
        cx.emit(
            "approval_requested",
            json!({"approval": id, "action": action, "args": args, "timeout_secs": cx.limits.approval_timeout.as_secs()}),
        );
        let outcome = tokio::select! {
            d = waiting.decision() => d,
            _ = tokio::time::sleep(cx.limits.approval_timeout) => None,
            _ = cx.cancel.cancelled() => None,
        };
        cx.approvals.withdraw(&id);
        let (decision, by, note) = match outcome {
            Some((d, by)) => (d, by, None),
            None if cx.cancel.is_cancelled() => (
                Decision::Reject {
                    reason: Some("the turn was cancelled".into()),
                },
                "system".into(),
                Some("cancelled"),
            ),
            None => (
                Decision::Reject {
                    reason: Some(format!("no decision within {} s", cx.limits.approval_timeout.as_secs())),
                },
                "timeout".into(),
                Some("timed out"),
            ),
        };
        let mut data = json!({"approval": id, "action": action, "decision": decision.as_str(), "by": by});
        if let Some(n) = note {
            data["note"] = json!(n);
        }
        match &decision {
            Decision::Edit { args } => data["args"] = args.clone(),
            Decision::Reject { reason } => data["reason"] = json!(reason),
            Decision::Approve => {}
        }
        cx.emit("approval_decided", data);
        (decision, by, id)
    }
}

fn call_sql(record: &Value) -> Option<String> {
    record["args"]["sql"].as_str().map(str::to_owned)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... (cut)", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_is_read_from_fences_or_bare_text() {
        assert_eq!(
            extract_sql("Here:\n```sql\nSELECT 1;\n```\n").as_deref(),
            Some("SELECT 1")
        );
        assert_eq!(extract_sql("```\nselect 2\n```").as_deref(), Some("select 2"));
        assert_eq!(
            extract_sql("WITH x AS (SELECT 1) SELECT * FROM x").as_deref(),
            Some("WITH x AS (SELECT 1) SELECT * FROM x")
        );
        assert_eq!(extract_sql("I cannot answer that."), None);
        assert_eq!(extract_sql("```sql\n\n```"), None);
    }

    #[test]
    fn plans_are_read_from_json_or_prose() {
        let (q, plan) =
            parse_plan("```json\n{\"question\": \"orders in 2024\", \"plan\": [\"count\", \"filter\"]}\n```");
        assert_eq!(q.as_deref(), Some("orders in 2024"));
        assert_eq!(plan, vec!["count", "filter"]);
        let (q, plan) = parse_plan("1. look\n2. count");
        assert_eq!(q, None);
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn empty_and_all_null_results_are_suspicious() {
        let mut p = Preview {
            columns: vec![("a".into(), "INTEGER".into()), ("b".into(), "VARCHAR".into())],
            rows: vec![vec![json!(1), Value::Null], vec![json!(2), Value::Null]],
            row_count: 2,
            truncated: false,
        };
        assert_eq!(suspicion(&p).as_deref(), Some("column b is NULL in every row"));
        p.rows[0][1] = json!("x");
        assert_eq!(suspicion(&p), None);
        p.row_count = 0;
        p.rows.clear();
        assert_eq!(suspicion(&p).as_deref(), Some("it returned no rows"));
    }

    #[test]
    fn history_keeps_the_latest_whole_messages() {
        let history: Vec<ChatMessage> = (0..20)
            .map(|i| ChatMessage::user(format!("q{i} {}", "x".repeat(100))))
            .collect();
        let limits = Limits {
            history_messages: 5,
            history_chars: 350,
            ..Limits::default()
        };
        let kept = bounded_history(&history, &limits);
        assert_eq!(kept.len(), 3);
        assert!(kept[2].content.starts_with("q19"));
    }

    #[test]
    fn unknown_steps_are_refused_by_name() {
        let r = StepRegistry::builtin();
        assert!(r.pipeline(&default_pipeline(false)).is_ok());
        assert!(r.pipeline(&default_pipeline(true)).is_ok());
        let err = r.pipeline(&["planner".into(), "nope".into()]).err().unwrap();
        assert!(err.to_string().contains("nope"));
    }
}
