use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Pluto-Duck: a local-first AI data workbench on DuckDB.
#[derive(Debug, Parser)]
#[command(
    name = "pluto-duck",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Config file to use instead of ~/.config/pluto-duck/config.yaml (must exist).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (default ~/.pluto-duck); also PLUTODUCK_DATA_DIR.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log level or filter: error, warn, info, debug, trace, or a RUST_LOG-style directive.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format on stderr; default: pretty on a terminal, JSON otherwise.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormatArg {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the config file, the data directory and a copy of the sample dbt project.
    Init(InitArgs),
    /// Start the HTTP API server.
    #[command(visible_alias = "run")]
    Serve(ServeArgs),
    /// Check the installation: DuckDB, extensions, dbt, disk, paths, config sources, Postgres (hybrid).
    Doctor(DoctorArgs),
    /// Run SQL and print the result (through the running server when there is one).
    Sql(SqlArgs),
    /// Attach and browse sources (databases and files queried in place).
    Source {
        #[command(subcommand)]
        command: SourceCommand,
        /// Project (default: default).
        #[arg(long, global = true)]
        project: Option<String>,
    },
    /// Print the OpenAPI document.
    Openapi(OpenapiArgs),
    /// Show the server log.
    Logs(LogsArgs),
    /// Print the effective configuration (secrets appear only as references).
    Config,
    /// Manage secrets in the secret store (values are read from stdin, never from arguments).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Print version information.
    Version,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing config file and sample dbt project.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (default 127.0.0.1). A non-loopback address requires an API token.
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on (default 8000; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OpenapiArgs {
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Number of lines to show from the end.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub lines: usize,
    /// Keep printing new lines as they are written.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret; the value is read from stdin (one line, or all of it when piped).
    Set { name: String },
    /// List secret names.
    List,
    /// Delete a secret.
    Delete { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SqlFormat {
    Table,
    Csv,
    Json,
    Ndjson,
    Arrow,
    Parquet,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL; several statements separated by `;` run in one transaction, the last one's result is shown.
    pub sql: String,
    #[arg(long, short, value_enum, default_value_t = SqlFormat::Table)]
    pub format: SqlFormat,
    /// Write the result to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Interrupt the query after this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Keep at most this many rows.
    #[arg(long)]
    pub max_rows: Option<u64>,
    /// Refuse anything but reads.
    #[arg(long)]
    pub read_only: bool,
    /// Project (default: default).
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Attach a database: `--dsn postgres://user@host:5432/db --password-stdin`, or `--kind sqlite --path FILE`.
    Add(SourceAddArgs),
    /// List sources with their state.
    List,
    /// Show a source: connection (password masked), tables, cached copies.
    Show { name: String },
    /// Detach a source and forget its password.
    Remove { name: String },
    /// List a source's tables (of one schema with --schema).
    Tables {
        name: String,
        #[arg(long)]
        schema: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct SourceAddArgs {
    /// Identifier: letters, digits, underscores.
    pub name: String,
    /// postgres://, mysql://, sqlite:///path or duckdb:///path (prefer --password-stdin to a password in it).
    #[arg(long)]
    pub dsn: Option<String>,
    /// postgres, mysql, sqlite or duckdb.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub database: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    /// SQLite or DuckDB file.
    #[arg(long)]
    pub path: Option<PathBuf>,
    #[arg(long)]
    pub description: Option<String>,
    /// Read the password from stdin (kept in the secret store).
    #[arg(long)]
    pub password_stdin: bool,
    /// Attach read-write (default read-only).
    #[arg(long)]
    pub writable: bool,
}
