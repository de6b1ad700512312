//! The hybrid profile's `SecretStore`: an encrypted table (`encrypted_secrets`) in the control plane, so every
//! server of a fleet reads the secrets any of them stored. Values are sealed with AES-256-GCM under a master
//! key that never reaches the database (each server reads it from an environment variable or a file); a fresh
//! random 96-bit nonce per write, the secret's name as associated data (a row copied under another name does
//! not open). Neither values nor the key are ever logged or put in an error.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use chrono::Utc;
use pluto_duck_application::ports::{validate_secret_name, SecretError, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::dialect::Ts;

/// The 256-bit master key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// 64 hex digits (`openssl rand -hex 32`); surrounding white space is ignored. The error never echoes it.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(format!(
                "the master key must be 64 hex digits (32 bytes, e.g. `openssl rand -hex 32`), not {} characters",
                text.len()
            ));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16)
                .map_err(|_| "the master key must be 64 hex digits".to_owned())?;
        }
        Ok(Self(key))
    }
}

pub struct PgSecretStore {
    pool: PgPool,
    cipher: Aes256Gcm,
}

impl PgSecretStore {
    pub(crate) fn new(pool: PgPool, key: &MasterKey) -> Self {
        Self {
            pool,
            cipher: Aes256Gcm::new(&key.0.into()),
        }
    }

    fn seal(&self, name: &str, value: &str) -> Result<(String, String), SecretError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Internal(format!("no randomness: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Internal("encryption failed".into()))?;
        Ok((hex(&nonce), hex(&sealed)))
    }

    fn open(&self, name: &str, nonce: &str, sealed: &str) -> Result<SecretString, SecretError> {
        let wrong = || {
            SecretError::Unavailable(format!(
                "secret {name:?} does not decrypt: the master key differs from the one it was stored with"
            ))
        };
        let nonce = unhex(nonce).filter(|n| n.len() == 12).ok_or_else(wrong)?;
        let sealed = unhex(sealed).ok_or_else(wrong)?;
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| wrong())?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Internal(format!("secret {name:?} is not text")))
    }
}

fn unavailable(e: sqlx::Error) -> SecretError {
    SecretError::Unavailable(format!("the control plane: {}", crate::dialect::map_err(e)))
}

#[async_trait]
impl SecretStore for PgSecretStore {
    async fn get(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        validate_secret_name(name)?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT nonce, ciphertext FROM encrypted_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        row.map(|(nonce, sealed)| self.open(name, &nonce, &sealed)).transpose()
    }

    async fn put(&self, name: &str, value: SecretString) -> Result<(), SecretError> {
        validate_secret_name(name)?;
        let (nonce, sealed) = self.seal(name, value.expose_secret())?;
        sqlx::query(
            "INSERT INTO encrypted_secrets (name, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(nonce)
        .bind(sealed)
        .bind(Ts(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        validate_secret_name(name)?;
        let done = sqlx::query("DELETE FROM encrypted_secrets WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list(&self) -> Result<Vec<String>, SecretError> {
        sqlx::query_scalar("SELECT name FROM encrypted_secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_hex_digits_and_never_shown() {
        let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
        let err = MasterKey::from_hex("zz").unwrap_err();
        assert!(!err.contains("zz"), "{err}");
        assert!(MasterKey::from_hex(&"g0".repeat(32)).is_err());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
