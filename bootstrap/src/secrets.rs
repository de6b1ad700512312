//! Config never holds a secret, only a reference to one: `env:VAR` or `secret:NAME` (the secret store).

use std::sync::Arc;

use pluto_duck_application::ports::SecretStore;
use pluto_duck_secrets::EncryptedFileSecretStore;
use secrecy::SecretString;

use crate::config::Config;
use crate::error::{CliError, CliResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    Store(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(Self::Env(var.to_owned())),
            Some(("secret", name)) if !name.is_empty() => Ok(Self::Store(name.to_owned())),
            // Do not echo the value: it may be the secret itself, pasted by mistake.
            _ => Err("must be a reference like env:VARIABLE or secret:NAME, not a literal value".into()),
        }
    }
}

pub fn secret_store(config: &Config) -> Arc<dyn SecretStore> {
    Arc::new(EncryptedFileSecretStore::new(
        config.secrets_file(),
        config.secret_key_file(),
    ))
}

pub async fn resolve(store: &dyn SecretStore, key: &str, reference: &str) -> CliResult<SecretString> {
    match SecretRef::parse(reference).map_err(|e| CliError::invalid(format!("{key}: {e}")))? {
        SecretRef::Env(var) => std::env::var(&var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| CliError::invalid(format!("{key}: environment variable {var} is not set"))),
        SecretRef::Store(name) => store
            .get(&name)
            .await
            .map_err(|e| CliError::new(e.kind(), format!("{key}: {e}")))?
            .ok_or_else(|| {
                CliError::invalid(format!(
                    "{key}: secret {name:?} is not in the secret store (add it with `pluto-duck secret set {name}`)"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_and_refuses_literals_without_echoing_them() {
        assert_eq!(SecretRef::parse("env:TOKEN"), Ok(SecretRef::Env("TOKEN".into())));
        assert_eq!(SecretRef::parse("secret:pg"), Ok(SecretRef::Store("pg".into())));
        let err = SecretRef::parse("hunter2").unwrap_err();
        assert!(!err.contains("hunter2"));
        assert!(SecretRef::parse("env:").is_err());
    }
}
