//! `ObjectStore` adapters: `LocalObjectStore`, a directory tree on this machine (the local profile), and
//! `S3ObjectStore`, any S3-compatible server (the hybrid profile: MinIO, AWS; moto in tests).

mod listing;
mod local;
mod s3;

pub use local::LocalObjectStore;
pub use s3::{S3Config, S3ObjectStore};
