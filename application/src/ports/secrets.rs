use async_trait::async_trait;
use secrecy::SecretString;
use thiserror::Error;

use crate::ErrorKind;

/// Errors never carry a secret's value, only its name.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error("secret {0:?} not found")]
    NotFound(String),
    #[error("invalid secret name {0:?}: use letters, digits, '_', '-', '.' or ':'")]
    InvalidName(String),
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    #[error("secret store error: {0}")]
    Internal(String),
}

impl SecretError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SecretError::NotFound(_) => ErrorKind::NotFound,
            SecretError::InvalidName(_) => ErrorKind::Invalid,
            SecretError::Unavailable(_) => ErrorKind::Unavailable,
            SecretError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Durable storage of credentials by name (an OS keyring, or an encrypted file on headless machines).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretError>;
    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError>;
    /// Returns whether a secret was removed.
    async fn delete(&self, name: &str) -> Result<bool, SecretError>;
    /// Names only, sorted.
    async fn list(&self) -> Result<Vec<String>, SecretError>;
}

pub fn validate_secret_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::InvalidName(name.chars().take(64).collect()))
    }
}
