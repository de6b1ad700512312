//! The agent as a use case: a question becomes an agent turn (a `Run` like any other, through `Jobs`), within a
//! conversation that keeps its messages, its events and its work zone; approvals and the model's settings.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use pluto_duck_domain::{
    Conversation, ConversationId, ConversationMessage, MessageRole, ProjectId, Run, RunEventKind, RunKind,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::actions::{ActionContext, ActionOutput, ActionRegistry, ActionServices, ActionSpec};
use super::approvals::{ApprovalRequest, Approvals, Decision};
use super::steps::{default_pipeline, Emit, Limits, StepContext, StepRegistry, Turn};
use crate::ports::{ChatMessage, LlmError, LlmProvider, LlmProviders, LlmSettings, MetadataStore, SecretStore};
use crate::services::{JobContext, JobSpec, Jobs, Outcome, Work};
use crate::AppError;

/// The secret holding the model's API key when it is set through the settings API.
pub const LLM_KEY_SECRET: &str = "llm.api_key";
const LLM_SETTINGS_KEY: &str = "llm.settings";

/// How the agent works, from the configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Step names; by default the tool loop for models that call tools, the step pipeline for the others.
    pub pipeline: Option<Vec<String>>,
    /// `auto` (tools when the model supports them), `tools` or `steps`.
    pub mode: String,
    pub limits: Limits,
    /// Privacy mode for every conversation.
    pub privacy: bool,
    pub turn_timeout: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            pipeline: None,
            mode: "auto".into(),
            limits: Limits::default(),
            privacy: false,
            turn_timeout: Duration::from_secs(900),
        }
    }
}

/// A question to the agent.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub question: String,
    pub conversation: Option<String>,
    /// Writing actions run without asking.
    pub auto_approve: bool,
    /// Turns privacy mode on for a new conversation (the configuration may force it on for all).
    pub privacy: Option<bool>,
    pub actor: String,
}

/// The model settings as clients see them: never the key, only whether one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettingsView {
    pub provider: String,
    pub model: String,
    pub base_url: Option<String>,
    pub script: Option<String>,
    pub api_key_set: bool,
    /// Where the key comes from: `settings` (the secret store), `config` or `none`.
    pub api_key_source: &'static str,
}

/// A change of the model settings; `None` keeps the current value. An empty key removes the stored one.
#[derive(Debug, Clone, Default)]
pub struct LlmSettingsUpdate {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<Option<String>>,
    pub script: Option<Option<String>>,
    pub api_key: Option<SecretString>,
}

pub struct AgentService {
    jobs: Arc<Jobs>,
    metadata: Arc<dyn MetadataStore>,
    secrets: Arc<dyn SecretStore>,
    providers: Arc<dyn LlmProviders>,
    services: ActionServices,
    actions: ActionRegistry,
    steps: StepRegistry,
    config: AgentConfig,
    approvals: Arc<Approvals>,
    /// From the configuration; the settings API overrides it.
    defaults: LlmSettings,
    provider: Mutex<Option<Arc<dyn LlmProvider>>>,
}

impl AgentService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        jobs: Arc<Jobs>,
        metadata: Arc<dyn MetadataStore>,
        secrets: Arc<dyn SecretStore>,
        providers: Arc<dyn LlmProviders>,
        services: ActionServices,
        config: AgentConfig,
        defaults: LlmSettings,
    ) -> Result<Self, AppError> {
        let steps = StepRegistry::builtin();
        if let Some(p) = &config.pipeline {
            steps.pipeline(p)?;
        }
        if !matches!(config.mode.as_str(), "auto" | "tools" | "steps") {
            return Err(AppError::Invalid(format!(
                "agent mode must be auto, tools or steps, not {:?}",
                config.mode
            )));
        }
        Ok(Self {
            jobs,
            metadata,
            secrets,
            providers,
            actions: ActionRegistry::builtin(&services),
            services,
            steps,
            config,
            approvals: Arc::new(Approvals::default()),
            defaults,
            provider: Mutex::new(None),
        })
    }

    /// Replaces or adds a step (a developer's own planner, say); pipelines name it.
    pub fn register_step(&mut self, step: Arc<dyn super::steps::Step>) {
        self.steps.register(step);
    }

    pub fn actions(&self) -> Vec<ActionSpec> {
        self.actions.specs()
    }

    /// A person calls an action directly (no approval: they are the person).
    pub async fn call_action(
        &self,
        project: &ProjectId,
        name: &str,
        args: Value,
        actor: &str,
    ) -> Result<ActionOutput, AppError> {
        let action = self.actions.get(name).ok_or_else(|| AppError::NotFound {
            what: "action",
            id: name.to_owned(),
        })?;
        if !args.is_object() {
            return Err(AppError::Invalid("an action's arguments are a JSON object".into()));
        }
        let ctx = self.action_context(project, false, None, actor);
        action.call(&ctx, args).await
    }

    fn action_context(&self, project: &ProjectId, privacy: bool, zone: Option<String>, actor: &str) -> ActionContext {
        ActionContext {
            project: project.clone(),
            privacy,
            row_limit: self.config.limits.row_limit,
            model_rows: self.config.limits.model_rows,
            zone,
            actor: if actor.is_empty() {
                "agent".into()
            } else {
                actor.to_owned()
            },
        }
    }

    // --- the model --------------------------------------------------------------------------------------------

    async fn stored_settings(&self) -> Result<Option<Value>, AppError> {
        Ok(self
            .metadata
            .get_setting(LLM_SETTINGS_KEY)
            .await?
            .and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// The effective settings: the configuration, overridden by the settings API; the key from the secret store
    /// when one was set there.
    pub async fn settings(&self) -> Result<(LlmSettings, &'static str), AppError> {
        let mut s = self.defaults.clone();
        if let Some(v) = self.stored_settings().await? {
            if let Some(p) = v["provider"].as_str() {
                s.provider = p.to_owned();
            }
            if let Some(m) = v["model"].as_str() {
                s.model = m.to_owned();
            }
            if v.get("base_url").is_some() {
                s.base_url = v["base_url"].as_str().map(str::to_owned);
            }
            if v.get("script").is_some() {
                s.script = v["script"].as_str().map(str::to_owned);
            }
        }
        let stored_key = self.secrets.get(LLM_KEY_SECRET).await?;
        let source = match (&stored_key, &s.api_key) {
            (Some(_), _) => "settings",
            (None, Some(_)) => "config",
            (None, None) => "none",
        };
        if stored_key.is_some() {
            s.api_key = stored_key;
        }
        Ok((s, source))
    }

    pub async fn settings_view(&self) -> Result<LlmSettingsView, AppError> {
        let (s, source) = self.settings().await?;
        Ok(LlmSettingsView {
            provider: s.provider,
            model: s.model,
            base_url: s.base_url,
            script: s.script,
            api_key_set: s.api_key.is_some(),
            api_key_source: source,
        })
    }

    pub async fn update_settings(&self, update: LlmSettingsUpdate) -> Result<LlmSettingsView, AppError> {
        if let Some(p) = &update.provider {
            if !matches!(p.as_str(), "openai" | "ollama" | "scripted" | "none") {
                return Err(AppError::Invalid(format!(
                    "provider must be openai, ollama, scripted or none, not {p:?}"
                )));
            }
        }
        if let Some(Some(url)) = &update.base_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() <= 2048;
            if !ok {
                return Err(AppError::Invalid("base_url must be an http(s) URL".into()));
            }
        }
        if let Some(m) = &update.model {
            if m.trim().is_empty() || m.len() > 256 {
                return Err(AppError::Invalid(
                    "model must be a non-empty name of at most 256 characters".into(),
                ));
            }
        }
        let mut v = self.stored_settings().await?.unwrap_or_else(|| json!({}));
        if let Some(p) = update.provider {
            v["provider"] = json!(p);
        }
        if let Some(m) = update.model {
            v["model"] = json!(m);
        }
        if let Some(u) = update.base_url {
            v["base_url"] = json!(u);
        }
        if let Some(s) = update.script {
            v["script"] = json!(s);
        }
        self.metadata.put_setting(LLM_SETTINGS_KEY, &v.to_string()).await?;
        if let Some(key) = update.api_key {
            if key.expose_secret().is_empty() {
                self.secrets.delete(LLM_KEY_SECRET).await?;
            } else {
                self.secrets.put(LLM_KEY_SECRET, key).await?;
            }
        }
        *self.provider.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.settings_view().await
    }

    /// The model to talk to, built once per settings change.
    pub async fn provider(&self) -> Result<Arc<dyn LlmProvider>, AppError> {
        if let Some(p) = self.provider.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(p);
        }
        let (settings, _) = self.settings().await?;
        if settings.provider.is_empty() || settings.provider == "none" {
            return Err(LlmError::NotConfigured(
                "set one with PUT /api/v1/settings/llm or the `llm` section of the config".into(),
            )
            .into());
        }
        let built = self.providers.build(&settings)?;
        *self.provider.lock().unwrap_or_else(|e| e.into_inner()) = Some(built.clone());
        Ok(built)
    }

    /// A model other than the configured one, for one evaluation: the settings with `provider`, `model` and
    /// `base_url` replaced (the key stays the configured one).
    pub async fn provider_with(
        &self,
        provider: &str,
        model: Option<String>,
        base_url: Option<String>,
    ) -> Result<Arc<dyn LlmProvider>, AppError> {
        if !matches!(provider, "openai" | "ollama" | "scripted") {
            return Err(AppError::Invalid(format!(
                "provider must be openai, ollama or scripted, not {provider:?}"
            )));
        }
        let (mut settings, _) = self.settings().await?;
        settings.provider = provider.to_owned();
        if let Some(m) = model {
            settings.model = m;
        }
        if base_url.is_some() {
            settings.base_url = base_url;
        }
        Ok(self.providers.build(&settings)?)
    }

    fn pipeline_for(&self, llm: &dyn LlmProvider) -> Vec<String> {
        if let Some(p) = &self.config.pipeline {
            return p.clone();
        }
        let tools = match self.config.mode.as_str() {
            "tools" => true,
            "steps" => false,
            _ => llm.describe().supports_tools,
        };
        default_pipeline(tools)
    }

    // --- turns ------------------------------------------------------------------------------------------------

    /// Starts a turn: the run is returned at once, its work goes on in the background.
    pub async fn ask(&self, project: &ProjectId, ask: Ask) -> Result<(Run, Conversation), AppError> {
        let question = ask.question.trim().to_owned();
        if question.is_empty() {
            return Err(AppError::Invalid("the question is empty".into()));
        }
        if question.len() > 16_000 {
            return Err(AppError::Invalid(
                "the question is longer than 16,000 characters".into(),
            ));
        }
        let llm = self.provider().await?;
        let pipeline = self.steps.pipeline(&self.pipeline_for(llm.as_ref()))?;
        let now = Utc::now();
        let conversation = match &ask.conversation {
            Some(id) => {
                let id = ConversationId::parse(id.clone())?;
                let mut c = self.conversation_of(project, &id).await?;
                if ask.privacy == Some(true) && !c.privacy {
                    c.privacy = true;
                }
                c.updated_at = now;
                c
            }
            None => Conversation {
                id: ConversationId::parse(uuid::Uuid::now_v7().to_string())?,
                project: project.clone(),
                title: question.chars().take(80).collect(),
                privacy: ask.privacy.unwrap_or(false),
                created_at: now,
                updated_at: now,
            },
        };
        self.metadata.put_conversation(&conversation).await?;
        let privacy = conversation.privacy || self.config.privacy;
        let history = self.history(project, &conversation.id).await?;
        let mut turn = Turn::new(question.clone());
        turn.history = history;
        let actor = if ask.actor.is_empty() {
            "agent".to_owned()
        } else {
            ask.actor.clone()
        };
        let work = TurnWork {
            turn: Some(turn),
            pipeline,
            llm,
            services: self.services.clone(),
            actions: self.actions.clone(),
            action: self.action_context(project, privacy, Some(conversation.id.zone_schema()), &actor),
            limits: self.config.limits.clone(),
            approvals: self.approvals.clone(),
            auto_approve: ask.auto_approve,
            conversation: conversation.clone(),
            metadata: self.metadata.clone(),
            jobs: self.jobs.clone(),
        };
        let run = self.jobs.submit(
            JobSpec {
                project: project.clone(),
                kind: RunKind::AgentTurn,
                input: question.clone(),
                actor: Some(actor),
                timeout: Some(self.config.turn_timeout),
            },
            work,
        )?;
        self.metadata
            .put_message(&ConversationMessage {
                id: uuid::Uuid::now_v7().to_string(),
                conversation: conversation.id.clone(),
                project: project.clone(),
                role: MessageRole::User,
                content: question,
                run: Some(run.id.clone()),
                sql: None,
                data: None,
                created_at: now,
            })
            .await?;
        Ok((run, conversation))
    }

    /// Answers one question in-process, without a run or a conversation (the evaluation harness).
    pub async fn answer(
        &self,
        project: &ProjectId,
        question: &str,
        llm: Option<Arc<dyn LlmProvider>>,
        cancel: CancellationToken,
    ) -> Result<Turn, (AppError, Turn)> {
        let mut turn = Turn::new(question);
        let llm = match llm {
            Some(l) => l,
            None => match self.provider().await {
                Ok(l) => l,
                Err(e) => return Err((e, turn)),
            },
        };
        let pipeline = match self.steps.pipeline(&self.pipeline_for(llm.as_ref())) {
            Ok(p) => p,
            Err(e) => return Err((e, turn)),
        };
        let cx = StepContext {
            llm,
            services: self.services.clone(),
            actions: self.actions.clone(),
            action: self.action_context(project, self.config.privacy, None, "eval"),
            limits: self.config.limits.clone(),
            approvals: self.approvals.clone(),
            // Nobody is there to approve: writing actions are refused.
            auto_approve: false,
            run: pluto_duck_domain::RunId::parse(uuid::Uuid::now_v7().to_string())
                .map_err(|e| (e.into(), Turn::default()))?,
            conversation: None,
            emit: Arc::new(|_, _| {}),
            cancel,
        };
        match pipeline.run(&mut turn, &cx).await {
            Ok(()) => Ok(turn),
            Err(e) => Err((e, turn)),
        }
    }

    /// Earlier turns as the model reads them: questions, and answers with their SQL.
    async fn history(&self, project: &ProjectId, id: &ConversationId) -> Result<Vec<ChatMessage>, AppError> {
        let messages = self.metadata.list_messages(project, id).await?;
        Ok(messages
            .into_iter()
            .filter(|m| !m.content.is_empty() || m.sql.is_some())
            .map(|m| match m.role {
                MessageRole::User => ChatMessage::user(m.content),
                MessageRole::Assistant => {
                    let mut text = m.content;
                    if let Some(sql) = m.sql {
                        text.push_str(&format!("\n```sql\n{sql}\n```"));
                    }
                    ChatMessage::assistant(text)
                }
            })
            .collect())
    }

    pub async fn turn(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.get(project, id, RunKind::AgentTurn).await
    }

    pub async fn wait(&self, project: &ProjectId, id: &str, max: Duration) -> Result<Run, AppError> {
        self.jobs.wait(project, id, RunKind::AgentTurn, max).await
    }

    pub async fn cancel(&self, project: &ProjectId, id: &str) -> Result<Run, AppError> {
        self.jobs.cancel(project, id, RunKind::AgentTurn).await
    }

    /// A turn's events after `after`: live while the server remembers the turn, then as the turn stored them.
    pub async fn events(
        &self,
        project: &ProjectId,
        id: &str,
        after: u64,
    ) -> Result<crate::services::Subscription, AppError> {
        self.jobs.events(project, id, RunKind::AgentTurn, after).await
    }

    // --- conversations ----------------------------------------------------------------------------------------

    async fn conversation_of(&self, project: &ProjectId, id: &ConversationId) -> Result<Conversation, AppError> {
        self.metadata
            .get_conversation(project, id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "conversation",
                id: id.to_string(),
            })
    }

    pub async fn conversations(&self, project: &ProjectId) -> Result<Vec<Conversation>, AppError> {
        Ok(self.metadata.list_conversations(project).await?)
    }

    /// Starts an empty conversation (a question may start one too).
    pub async fn create_conversation(
        &self,
        project: &ProjectId,
        title: Option<String>,
        privacy: Option<bool>,
    ) -> Result<Conversation, AppError> {
        let now = Utc::now();
        let title = title.unwrap_or_default();
        if title.len() > 200 {
            return Err(AppError::Invalid(
                "a conversation's title has at most 200 characters".into(),
            ));
        }
        let c = Conversation {
            id: ConversationId::parse(uuid::Uuid::now_v7().to_string())?,
            project: project.clone(),
            title,
            privacy: privacy.unwrap_or(false),
            created_at: now,
            updated_at: now,
        };
        self.metadata.put_conversation(&c).await?;
        Ok(c)
    }

    pub async fn conversation(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> Result<(Conversation, Vec<ConversationMessage>), AppError> {
        let id = ConversationId::parse(id)?;
        let c = self.conversation_of(project, &id).await?;
        let messages = self.metadata.list_messages(project, &id).await?;
        Ok((c, messages))
    }

    /// Deletes the conversation, its messages and its work zone; a turn still running is cancelled first.
    pub async fn delete_conversation(&self, project: &ProjectId, id: &str) -> Result<(), AppError> {
        let id = ConversationId::parse(id)?;
        self.conversation_of(project, &id).await?;
        for m in self.metadata.list_messages(project, &id).await? {
            if let Some(run) = m.run.filter(|_| m.role == MessageRole::User) {
                if let Ok(r) = self.turn(project, run.as_str()).await {
                    if !r.status.is_terminal() {
                        let _ = self.cancel(project, run.as_str()).await;
                    }
                }
            }
        }
        self.services.warehouse.drop_schema(project, &id.zone_schema()).await?;
        self.services.knowledge.forget(project);
        self.metadata.delete_conversation(project, &id).await?;
        Ok(())
    }

    // --- approvals --------------------------------------------------------------------------------------------

    pub fn approvals(&self, project: &ProjectId) -> Vec<ApprovalRequest> {
        self.approvals.list(project)
    }

    pub fn approval(&self, project: &ProjectId, id: &str) -> Result<ApprovalRequest, AppError> {
        self.approvals.get(project, id)
    }

    pub fn decide(
        &self,
        project: &ProjectId,
        id: &str,
        decision: Decision,
        by: &str,
    ) -> Result<ApprovalRequest, AppError> {
        let by = if by.is_empty() { "user" } else { by };
        self.approvals.decide(project, id, decision, by)
    }
}

/// One turn as a job's work.
struct TurnWork {
    turn: Option<Turn>,
    pipeline: super::steps::Pipeline,
    llm: Arc<dyn LlmProvider>,
    services: ActionServices,
    actions: ActionRegistry,
    action: ActionContext,
    limits: Limits,
    approvals: Arc<Approvals>,
    auto_approve: bool,
    conversation: Conversation,
    metadata: Arc<dyn MetadataStore>,
    jobs: Arc<Jobs>,
}

#[async_trait]
impl Work for TurnWork {
    async fn run(&mut self, ctx: JobContext) -> Result<Outcome, AppError> {
        let mut turn = self.turn.take().unwrap_or_default();
        let events = ctx.clone();
        let emit: Emit = Arc::new(move |name: &str, data: Value| {
            events.emit(RunEventKind::Custom {
                name: name.to_owned(),
                data: data.to_string(),
            })
        });
        let cx = StepContext {
            llm: self.llm.clone(),
            services: self.services.clone(),
            actions: self.actions.clone(),
            action: self.action.clone(),
            limits: self.limits.clone(),
            approvals: self.approvals.clone(),
            auto_approve: self.auto_approve,
            run: ctx.run.clone(),
            conversation: Some(self.conversation.id.to_string()),
            emit: emit.clone(),
            cancel: ctx.cancel.clone(),
        };
        let result = self.pipeline.run(&mut turn, &cx).await;
        let mut detail = turn.detail();
        detail["conversation_id"] = json!(self.conversation.id.as_str());
        detail["privacy"] = json!(self.action.privacy);
        let outcome = Outcome {
            rows: turn.preview.as_ref().map(|p| p.row_count).unwrap_or(0),
            detail: Some(detail.to_string()),
            ..Outcome::default()
        };
        self.turn = Some(turn);
        match result {
            Ok(()) => Ok(outcome),
            // Cancelled or timed out: `Jobs` says which.
            Err(e) if ctx.cancel.is_cancelled() => Err(e),
            Err(e) => {
                let message = e.to_string();
                emit("error", json!({"message": message, "type": e.kind().problem().slug}));
                Ok(Outcome {
                    failed: Some(message),
                    ..outcome
                })
            }
        }
    }

    async fn finished(&mut self, run: &Run) {
        let turn = self.turn.take().unwrap_or_default();
        let content = turn
            .answer
            .clone()
            .or_else(|| run.failure.as_ref().map(|e| format!("(no answer: {})", e.message)))
            .unwrap_or_else(|| format!("(the turn ended: {})", run.status.as_str()));
        let data = json!({
            "preview": turn.preview.as_ref().map(super::preview::Preview::to_json),
            "chart": turn.chart,
            "status": run.status.as_str(),
        });
        let message = ConversationMessage {
            id: uuid::Uuid::now_v7().to_string(),
            conversation: self.conversation.id.clone(),
            project: run.project.clone(),
            role: MessageRole::Assistant,
            content,
            run: Some(run.id.clone()),
            sql: turn.sql.clone().filter(|_| turn.verified),
            data: Some(data.to_string()),
            created_at: Utc::now(),
        };
        if let Err(e) = self.metadata.put_message(&message).await {
            warn!(error = %e, "the agent's answer was not stored");
        }
        let mut c = self.conversation.clone();
        c.updated_at = Utc::now();
        if let Err(e) = self.metadata.put_conversation(&c).await {
            warn!(error = %e, "the conversation was not updated");
        }
        // The terminal event comes right after this; the events are stored once it is there.
        let jobs = self.jobs.clone();
        let metadata = self.metadata.clone();
        let id = run.id.clone();
        tokio::spawn(async move {
            jobs.hub().wait_terminal(&id, Duration::from_secs(10)).await;
            if let Some(sub) = jobs.hub().subscribe(&id, 0) {
                if let Err(e) = metadata.put_run_events(&id, &sub.past).await {
                    warn!(error = %e, "the turn's events were not stored");
                }
            }
        });
    }
}
