//! `SecretStore` adapters.

mod encrypted_file;

pub use encrypted_file::EncryptedFileSecretStore;
