//! What the AI agent needs before it writes SQL: the project's catalog and the explorer that picks, for one
//! question, the tables and columns worth showing the model.

pub mod actions;
pub mod approvals;
pub mod catalog;
pub mod eval;
pub mod explorer;
pub mod knowledge;
pub mod preview;
pub mod prompts;
pub mod service;
pub mod steps;

pub use approvals::{ApprovalRequest, Approvals, Decision};
pub use catalog::{CatalogColumn, CatalogSnapshot, CatalogTable, ForeignKey, TableKind, TableName};
pub use explorer::{
    estimate_tokens, Budget, Exploration, Explorer, JoinPath, JoinStep, Match, MatchKind, MatchTarget, RankedTable,
    Tuning,
};
pub use service::{AgentConfig, AgentService, Ask, LlmSettingsUpdate, LlmSettingsView, LLM_KEY_SECRET};
pub use steps::{default_pipeline, Limits, Next, Step, StepContext, StepRegistry, Turn};
