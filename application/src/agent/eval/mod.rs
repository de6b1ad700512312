//! The evaluation harness's building blocks: sample datasets, question sets with gold SQL, their check, the
//! comparison of results as the Spider and BIRD evaluators do it, a set's run against a [`Contestant`] and its
//! report. The agent (a `Contestant`) and the warehouse (an [`Executor`]) are plugged in by the caller.

pub mod check;
pub mod compare;
pub mod datasets;
pub mod report;
pub mod run;
pub mod service;
pub mod sets;
pub mod value;

use std::path::PathBuf;

use thiserror::Error;

use crate::ErrorKind;

pub use check::{check_gold, GoldCheck, GoldFailure, GoldProblem};
pub use compare::{compare, has_top_level_order_by, values_equal, Comparison, Mismatch, RowOrder};
pub use datasets::{
    dataset_plan, ColumnPlan, CsvFile, CsvRead, DatasetPlan, ForeignKeyPlan, PlannedFile, TablePlan, DATASETS,
};
pub use report::{DifficultyTotals, ErrorStage, EvalReport, QuestionReport, TokenUsage, Totals, Verdict};
pub use run::{run_set, Answer, AnswerError, Contestant, ExecutionError, Executor, Progress, Usage};
pub use service::{AgentContestant, EvalRequest, EvalService, ProjectExecutor};
pub use sets::{load_set, load_sets, parse_set, Difficulty, Question, QuestionSet};
pub use value::{ResultSet, Value};

#[derive(Debug, Error)]
pub enum EvalError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// A set file that does not read: the file, the question (its id, or `#n` by position) when there is one.
    #[error("{}: {}{message}", path.display(), question.as_ref().map(|q| format!("question {q}: ")).unwrap_or_default())]
    InvalidSet {
        path: PathBuf,
        question: Option<String>,
        message: String,
    },
    #[error("unknown dataset {name:?} (known: {})", DATASETS.join(", "))]
    UnknownDataset { name: String },
    #[error("dataset {dataset}: {message}")]
    Dataset { dataset: String, message: String },
    #[error("set {set} fails its check: {failures}")]
    GoldCheck { set: String, failures: String },
    /// A result that cannot be read into rows.
    #[error("unreadable result: {0}")]
    Result(String),
}

impl EvalError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EvalError::Io { .. } | EvalError::Dataset { .. } => ErrorKind::Unavailable,
            EvalError::InvalidSet { .. } | EvalError::GoldCheck { .. } => ErrorKind::Invalid,
            EvalError::UnknownDataset { .. } => ErrorKind::NotFound,
            EvalError::Result(_) => ErrorKind::Internal,
        }
    }
}
