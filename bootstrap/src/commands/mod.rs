mod api_client;
mod doctor;
mod ingest;
mod init;
mod logs;
mod misc;
mod serve;
mod source;
mod sql;

pub use doctor::doctor;
pub use ingest::ingest;
pub use init::init;
pub use logs::logs;
pub use misc::{openapi, secret, show_config, version};
pub use serve::{build_router, serve};
pub use source::source;
pub use sql::sql;
