//! Use cases and the ports they drive. Adapters implement the ports; bootstrap wires them.

pub mod error;
pub mod ports;
pub mod services;

pub use error::{AppError, ErrorKind};
pub use services::{
    App, CacheRequest, CacheService, NewSource, ProjectService, QueryLimits, QueryService, QuerySubmission, RunHub,
    SourceService, Subscription, SystemService,
};
