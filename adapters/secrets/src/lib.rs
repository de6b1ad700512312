//! `SecretStore` adapters: the OS keyring, and an encrypted file for headless machines.

#[cfg(test)]
mod contract;
mod encrypted_file;
mod keyring_store;

pub use encrypted_file::EncryptedFileSecretStore;
pub use keyring_store::{KeyringBackend, KeyringProbe, KeyringSecretStore};
