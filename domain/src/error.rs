use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("invalid identifier {value:?}: {reason}")]
    InvalidIdentifier { value: String, reason: &'static str },
    #[error("unknown profile {0:?}: expected local or hybrid")]
    UnknownProfile(String),
}
