use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("invalid identifier {value:?}: {reason}")]
    InvalidIdentifier { value: String, reason: &'static str },
    #[error("unknown profile {0:?}: expected local or hybrid")]
    UnknownProfile(String),
    #[error("invalid run id {0:?}")]
    InvalidRunId(String),
    #[error("unknown {what} {value:?}")]
    UnknownValue { what: &'static str, value: String },
    #[error("invalid source {0}")]
    InvalidSource(String),
    #[error("no SQL statement given")]
    EmptySql,
    #[error("the SQL is longer than {0} bytes; split it or load the data from a file")]
    SqlTooLarge(usize),
    /// User SQL that would leave its project's sandbox; the message names the statement and the rule.
    #[error("{0}")]
    Sandbox(String),
    #[error("SQL syntax error: {message}")]
    SqlSyntax { message: String, position: Option<u64> },
    #[error("invalid board: {0}")]
    InvalidBoard(String),
    #[error("invalid parameter {0}")]
    InvalidParameter(String),
    #[error("invalid analysis {0}")]
    InvalidAnalysis(String),
    /// The nodes around a dependency cycle, first repeated last: `a -> b -> a`.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("{node} depends on {missing}, which does not exist")]
    UnknownDependency { node: String, missing: String },
    #[error("a {from} run cannot become {to}")]
    InvalidTransition { from: &'static str, to: &'static str },
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName { name: String, reason: &'static str },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidObjectKey { key: String, reason: &'static str },
    /// A list prefix, user metadata or content type that object storage would not keep as given.
    #[error("invalid object request: {0}")]
    InvalidObjectRequest(String),
    /// A lineage dataset or job name part that is empty or otherwise unusable.
    #[error("invalid lineage name: {0}")]
    InvalidLineageName(String),
    #[error("invalid job: {0}")]
    InvalidJob(String),
}
