//! An evaluation as a run: a question set asked of the agent in a project, the answers executed and compared
//! with the gold SQL's results, progress as events, the report as the run's detail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use pluto_duck_domain::{ProjectId, Run, RunEventKind, RunKind};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    check_gold, dataset_plan, load_set, load_sets, run_set, Answer, AnswerError, Contestant, ExecutionError, Executor,
    Question, QuestionSet, ResultSet, TokenUsage, Usage,
};
use crate::agent::AgentService;
use crate::services::{JobContext, JobSpec, Jobs, Outcome, QueryService, QuerySubmission, Work};
use crate::AppError;

/// What an evaluation asks.
#[derive(Debug, Clone, Default)]
pub struct EvalRequest {
    /// A shipped set's name (`chinook`), or the path of a set file.
    pub set: String,
    /// Only the first questions.
    pub limit: Option<usize>,
    pub actor: String,
    /// Another model than the configured one: (provider, model, base URL).
    pub model: Option<(String, Option<String>, Option<String>)>,
}

pub struct EvalService {
    agent: Arc<AgentService>,
    queries: Arc<QueryService>,
    jobs: Arc<Jobs>,
    /// The sets that ship with the binary.
    shipped: Vec<QuestionSet>,
    /// The user's own sets (`*.yaml` in a folder), when configured.
    user_sets: Option<PathBuf>,
    /// The sample datasets as `scripts/setup.sh` unpacked them.
    datasets_dir: PathBuf,
    /// `<data_dir>`: a project's dataset files are written in its own files folder, which its sandbox reads.
    data_dir: PathBuf,
}

impl EvalService {
    pub fn new(
        agent: Arc<AgentService>,
        queries: Arc<QueryService>,
        jobs: Arc<Jobs>,
        shipped: Vec<QuestionSet>,
        user_sets: Option<PathBuf>,
        datasets_dir: PathBuf,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            agent,
            queries,
            jobs,
            shipped,
            user_sets,
            datasets_dir,
            data_dir,
        }
    }

    /// The shipped sets, then the user's (a user's set of the same name wins).
    pub fn sets(&self) -> Result<Vec<QuestionSet>, AppError> {
        let mut all = self.shipped.clone();
        if let Some(dir) = self.user_sets.as_deref().filter(|d| d.is_dir()) {
            for set in load_sets(dir).map_err(eval_error)? {
                all.retain(|s| s.name != set.name);
                all.push(set);
            }
        }
        Ok(all)
    }

    fn resolve(&self, set: &str) -> Result<QuestionSet, AppError> {
        let as_path = Path::new(set);
        if set.ends_with(".yaml") || set.ends_with(".yml") {
            return load_set(as_path).map_err(eval_error);
        }
        self.sets()?
            .into_iter()
            .find(|s| s.name == set)
            .ok_or_else(|| AppError::NotFound {
                what: "question set",
                id: set.to_owned(),
            })
    }

    /// Starts the evaluation; the run's events report each question, its detail holds the report.
    pub async fn start(&self, project: &ProjectId, request: EvalRequest) -> Result<Run, AppError> {
        let mut set = self.resolve(&request.set)?;
        if let Some(n) = request.limit {
            if n == 0 {
                return Err(AppError::Invalid("limit must be at least 1".into()));
            }
            set.questions.truncate(n);
        }
        // Fail before the run when no model is set: an evaluation without one means nothing.
        let llm = match request.model {
            Some((provider, model, base_url)) => self.agent.provider_with(&provider, model, base_url).await?,
            None => self.agent.provider().await?,
        };
        let work = EvalWork {
            llm,
            set,
            project: project.clone(),
            agent: self.agent.clone(),
            queries: self.queries.clone(),
            datasets_dir: self.datasets_dir.clone(),
            files_dir: project.folder(&self.data_dir).join("files").join("eval"),
        };
        self.jobs.submit(
            JobSpec {
                project: project.clone(),
                kind: RunKind::Eval,
                input: request.set,
                actor: Some(if request.actor.is_empty() {
                    "eval".into()
                } else {
                    request.actor
                }),
                timeout: None,
            },
            work,
        )
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.get(project, id, RunKind::Eval).await
    }

    pub async fn wait(&self, project: &ProjectId, id: &str, max: Duration) -> Result<Run, AppError> {
        self.jobs.wait(project, id, RunKind::Eval, max).await
    }

    pub async fn cancel(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.cancel(project, id, RunKind::Eval).await
    }

    pub async fn events(
        &self,
        project: &ProjectId,
        id: &str,
        after: u64,
    ) -> Result<crate::services::Subscription, AppError> {
        self.jobs.events(project, id, RunKind::Eval, after).await
    }
}

fn eval_error(e: super::EvalError) -> AppError {
    match e.kind() {
        crate::ErrorKind::NotFound => AppError::NotFound {
            what: "dataset",
            id: e.to_string(),
        },
        crate::ErrorKind::Unavailable => AppError::Unavailable(e.to_string()),
        _ => AppError::Invalid(e.to_string()),
    }
}

/// Executes SQL read-only in the project, through the same query service as everything else.
pub struct ProjectExecutor {
    pub queries: Arc<QueryService>,
    pub project: ProjectId,
}

#[async_trait]
impl Executor for ProjectExecutor {
    async fn execute(&self, sql: &str) -> Result<ResultSet, ExecutionError> {
        let (_, page) = self
            .queries
            .read(
                &self.project,
                sql.to_owned(),
                Some(100_000),
                "eval",
                Duration::from_secs(120),
            )
            .await
            .map_err(|e| ExecutionError::new(e.to_string()))?;
        let schema = page.schema.clone();
        let batches: Vec<_> = page
            .batches
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| ExecutionError::new(e.to_string()))?;
        ResultSet::from_batches(&schema, &batches).map_err(|e| ExecutionError::new(e.to_string()))
    }
}

/// The agent as a contestant: its steps, driven in-process, without HTTP or a conversation.
pub struct AgentContestant {
    pub agent: Arc<AgentService>,
    /// The model to ask; the configured one when `None`.
    pub llm: Option<Arc<dyn crate::ports::LlmProvider>>,
    pub project: ProjectId,
    pub cancel: CancellationToken,
}

#[async_trait]
impl Contestant for AgentContestant {
    async fn answer(&self, question: &Question) -> Result<Answer, AnswerError> {
        let started = Instant::now();
        let usage = |turn: &crate::agent::Turn| Usage {
            repairs: turn.repairs,
            steps: turn.model_calls + turn.tool_calls,
            tokens: TokenUsage {
                prompt: u64::from(turn.usage.prompt),
                completion: u64::from(turn.usage.completion),
            },
            latency: started.elapsed(),
        };
        match self
            .agent
            .answer(&self.project, &question.question, self.llm.clone(), self.cancel.clone())
            .await
        {
            Ok(turn) => match turn.sql.clone() {
                Some(sql) => Ok(Answer {
                    sql,
                    usage: usage(&turn),
                }),
                None => Err(AnswerError {
                    message: "the agent answered without SQL".into(),
                    usage: usage(&turn),
                }),
            },
            Err((e, turn)) => Err(AnswerError {
                message: e.to_string(),
                usage: usage(&turn),
            }),
        }
    }
}

struct EvalWork {
    llm: Arc<dyn crate::ports::LlmProvider>,
    set: QuestionSet,
    project: ProjectId,
    agent: Arc<AgentService>,
    queries: Arc<QueryService>,
    datasets_dir: PathBuf,
    files_dir: PathBuf,
}

impl EvalWork {
    /// Loads the set's dataset into the project unless its tables are there already.
    async fn ensure_dataset(&self, ctx: &JobContext, executor: &ProjectExecutor) -> Result<(), AppError> {
        let plan = dataset_plan(&self.set.dataset, &self.datasets_dir).map_err(eval_error)?;
        let mut present = true;
        for t in &plan.tables {
            if executor
                .execute(&format!("SELECT 1 FROM main.\"{}\" LIMIT 0", t.name))
                .await
                .is_err()
            {
                present = false;
                break;
            }
        }
        if present {
            return Ok(());
        }
        ctx.emit(RunEventKind::Custom {
            name: "dataset_loading".into(),
            data: json!({"dataset": plan.dataset, "tables": plan.tables.len()}).to_string(),
        });
        let dir = self.files_dir.join(&plan.dataset);
        let files = plan.files.clone();
        let target = dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&target)?;
            for f in &files {
                std::fs::write(target.join(&f.name), &f.contents)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .map_err(|e| AppError::Unavailable(format!("cannot write the dataset files: {e}")))?;
        let mut script = plan.drop_statements().join(";\n");
        for s in plan.statements(&dir) {
            script.push_str(";\n");
            script.push_str(&s);
        }
        // One request: the statements run in one transaction, so a failed load leaves nothing half made.
        let run = self
            .queries
            .submit(
                &self.project,
                QuerySubmission {
                    sql: script,
                    timeout_ms: Some(600_000),
                    max_rows: Some(0),
                    read_only: false,
                    params: Vec::new(),
                    actor: Some("eval".into()),
                },
            )
            .await?;
        let run = self
            .queries
            .wait(&self.project, run.id.as_str(), Duration::from_secs(600))
            .await?;
        if run.status != pluto_duck_domain::RunStatus::Succeeded {
            return Err(AppError::Invalid(format!(
                "loading dataset {} failed: {}",
                plan.dataset,
                run.failure.map(|f| f.message).unwrap_or_default()
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Work for EvalWork {
    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let executor = ProjectExecutor {
            queries: self.queries.clone(),
            project: self.project.clone(),
        };
        self.ensure_dataset(&ctx, &executor).await?;
        let check = check_gold(&self.set, &executor).await;
        check.into_result().map_err(eval_error)?;
        let contestant = AgentContestant {
            agent: self.agent.clone(),
            llm: Some(self.llm.clone()),
            project: self.project.clone(),
            cancel: ctx.cancel.clone(),
        };
        let events = ctx.clone();
        let report = run_set(&self.set, &contestant, &executor, move |p| {
            events.emit(RunEventKind::Custom {
                name: "question".into(),
                data: json!({
                    "index": p.index,
                    "total": p.total,
                    "id": p.question.id,
                    "verdict": p.question.verdict.label(),
                })
                .to_string(),
            });
        })
        .await;
        if ctx.cancel.is_cancelled() {
            return Err(AppError::Llm(crate::ports::LlmError::Cancelled));
        }
        Ok(Outcome {
            rows: report.questions.len() as u64,
            detail: Some(report.to_json()),
            ..Outcome::default()
        })
    }
}
