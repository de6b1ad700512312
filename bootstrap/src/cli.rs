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
    /// Copy data into the warehouse: a file, folder or glob, a URL, a database table or query, or every entry
    /// of a recipe file. Shows a progress bar; with a recipe, one per entry.
    Ingest(Box<IngestArgs>),
    /// Boards: list them, show one with its items.
    Board {
        #[command(subcommand)]
        command: BoardCommand,
        /// Project (default: the one in use).
        #[arg(long, global = true)]
        project: Option<String>,
    },
    /// Projects: list, create, and choose the one the CLI works in.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Named jobs (SQL, an analysis, an ingest recipe, a dbt selection) with optional cron schedules: list,
    /// create, run (follows the run with a spinner), show (with recent runs and their inputs and outputs), delete.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
        /// Project (default: the one in use).
        #[arg(long, global = true)]
        project: Option<String>,
    },
    /// Saved analyses: list, show, compile (the plan with reasons), lineage.
    Analysis {
        #[command(subcommand)]
        command: AnalysisCommand,
        /// Project (default: default).
        #[arg(long, global = true)]
        project: Option<String>,
    },
    /// dbt over the project's dbt project, through the server: a progress bar per node, then a summary; exits
    /// non-zero when a model or test fails.
    Dbt(DbtArgs),
    /// Ask the agent a question: streams its steps, prints the answer, the SQL and a table; asks on the terminal
    /// when an action needs approval.
    Ask(AskArgs),
    /// Evaluate the agent on a question set (execution accuracy, repairs, tokens, latency), with a progress bar.
    Eval(EvalArgs),
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
    /// Attach a source: `--dsn postgres://user@host:5432/db --password-stdin`, `--kind sqlite --path FILE`,
    /// `--kind file --location "data/*.csv"`, `--kind s3 --location s3://bucket/prefix/ --endpoint H:P ...`.
    Add(Box<SourceAddArgs>),
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

#[derive(Debug, Subcommand)]
pub enum BoardCommand {
    /// Boards in order.
    List,
    /// One board (by id or name) with its items and when their data last ran.
    Show { board: String },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs with their schedule, last run and next due time.
    List,
    /// Define a job: exactly one of --sql, --analysis, --ingest (a JSON ingest request naming a stored source),
    /// --dbt ("build orders+").
    Create {
        name: String,
        #[arg(long)]
        sql: Option<String>,
        #[arg(long)]
        analysis: Option<String>,
        #[arg(long)]
        ingest: Option<std::path::PathBuf>,
        #[arg(long)]
        dbt: Option<String>,
        /// Cron expression (5 fields, or 6 with seconds first).
        #[arg(long)]
        cron: Option<String>,
        /// UTC (default) or a fixed offset such as +02:00.
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Start a run and follow it to its end.
    Run {
        name: String,
        /// Seconds the server waits before answering (the CLI follows the events after).
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
    /// A job with its recent runs.
    Show {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// All projects; the one in use is marked with `*`.
    List,
    /// Create a project (the id is an identifier and never changes).
    Create {
        id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Make the CLI work in this project when a command gets no `--project`.
    Use { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AnalysisCommand {
    /// Analyses of the project (id, materialization, tags, name).
    List {
        /// Only those with this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// One analysis: its definition as JSON.
    Show { id: String },
    /// The plan for running it: each step with run / skip and why.
    Compile {
        id: String,
        /// Plan every step to run.
        #[arg(long)]
        force: bool,
        /// Also print each step's compiled SQL.
        #[arg(long)]
        sql: bool,
    },
    /// Up- and downstream analyses and the inputs it reads.
    Lineage { id: String },
    /// Hybrid profile: copy the project's analyses from the control plane (PostgreSQL) into YAML files, the local
    /// profile's format (`<root>/<project>/analyses/<id>.yaml`).
    Export {
        /// The projects folder to write under (default: this data directory's projects folder).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// Hybrid profile: copy YAML analysis files (`<root>/<project>/analyses/*.yaml`) into the control plane,
    /// replacing definitions of the same id.
    Import {
        /// The projects folder to read from (default: this data directory's projects folder).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// Run it and its stale upstream (all with --force), with a progress bar; prints each step's outcome.
    Run {
        id: String,
        #[arg(long)]
        force: bool,
        /// Keep running branches that do not depend on a failed step.
        #[arg(long)]
        continue_on_failure: bool,
        /// A parameter value: `--param since=2024-01-01` (repeat for several).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Its runs, newest first.
    History {
        id: String,
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("from").args(["recipe", "file", "url", "from_postgres", "from_mysql", "from_sqlite", "from_duckdb", "source"]).required(true)))]
pub struct IngestArgs {
    /// A YAML recipe listing several ingests (see the README).
    pub recipe: Option<PathBuf>,
    /// A local CSV / Parquet / JSON file, folder or glob.
    #[arg(long)]
    pub file: Option<String>,
    /// An http(s):// or s3:// file (s3 needs a stored source for credentials, or --source).
    #[arg(long)]
    pub url: Option<String>,
    /// postgres://user@host:port/db, or env:VAR holding it (a password in the URI shows in the process list).
    #[arg(long)]
    pub from_postgres: Option<String>,
    /// mysql://user@host:port/db, or env:VAR holding it.
    #[arg(long)]
    pub from_mysql: Option<String>,
    #[arg(long)]
    pub from_sqlite: Option<PathBuf>,
    #[arg(long)]
    pub from_duckdb: Option<PathBuf>,
    /// A stored source, by name.
    #[arg(long)]
    pub source: Option<String>,
    /// The table to read (`schema.table` or a name the source has once); a file source's only table by default.
    #[arg(long)]
    pub table: Option<String>,
    /// A query to read instead of a table (in the source's own dialect for PostgreSQL and MySQL).
    #[arg(long)]
    pub query: Option<String>,
    /// Target table (default: the source table's name).
    #[arg(long)]
    pub target: Option<String>,
    /// Target schema (default main).
    #[arg(long)]
    pub schema: Option<String>,
    #[arg(long, value_enum, default_value_t = IngestModeArg::Replace)]
    pub mode: IngestModeArg,
    /// Merge key column (repeat for a composite key).
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// File format when the name does not tell (csv, parquet, json).
    #[arg(long)]
    pub format: Option<String>,
    /// Read the database password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Project (default: default).
    #[arg(long)]
    pub project: Option<String>,
    /// No progress bar (also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum IngestModeArg {
    Replace,
    Append,
    Merge,
}

impl IngestModeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestModeArg::Replace => "replace",
            IngestModeArg::Append => "append",
            IngestModeArg::Merge => "merge",
        }
    }
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
    /// file, http, s3: a path, folder or glob, a URL, or s3://bucket/key, prefix/ or glob.
    #[arg(long)]
    pub location: Option<String>,
    /// csv, parquet or json, when the file names do not tell.
    #[arg(long)]
    pub format: Option<String>,
    /// S3: host:port of an S3-compatible server.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// S3: region.
    #[arg(long)]
    pub region: Option<String>,
    /// S3: path-style URLs (most S3-compatible servers).
    #[arg(long)]
    pub path_style: bool,
    /// S3: plain HTTP to the endpoint.
    #[arg(long)]
    pub no_ssl: bool,
    /// S3: access key id (the secret key is read with --password-stdin).
    #[arg(long)]
    pub key_id: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Read the password (S3: the secret access key) from stdin; kept in the secret store.
    #[arg(long)]
    pub password_stdin: bool,
    /// Attach read-write (default read-only).
    #[arg(long)]
    pub writable: bool,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question, in plain language.
    pub question: String,
    /// Continue this conversation (its id is printed after each answer).
    #[arg(long)]
    pub conversation: Option<String>,
    /// Approve every action that writes without asking.
    #[arg(long)]
    pub yes: bool,
    /// Privacy mode for a new conversation: no row value is sent to the model.
    #[arg(long)]
    pub private: bool,
    /// Project (default: the one in use).
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A question set: `chinook`, `nycflights13`, or one of `eval.sets_dir`.
    pub set: String,
    /// Only the first N questions.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Evaluate another model than the configured one: openai, ollama or scripted.
    #[arg(long)]
    pub provider: Option<String>,
    /// With --provider: the model.
    #[arg(long)]
    pub model: Option<String>,
    /// With --provider: the server's base URL.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Project (default: the one in use).
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DbtCommandArg {
    Run,
    Test,
    Build,
    Seed,
    Compile,
    Ls,
}

impl DbtCommandArg {
    /// As the API's path spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DbtCommandArg::Run => "run",
            DbtCommandArg::Test => "test",
            DbtCommandArg::Build => "build",
            DbtCommandArg::Seed => "seed",
            DbtCommandArg::Compile => "compile",
            DbtCommandArg::Ls => "ls",
        }
    }
}

#[derive(Debug, Args)]
pub struct DbtArgs {
    /// run, test, build, seed, compile or ls.
    #[arg(value_enum)]
    pub command: DbtCommandArg,
    /// dbt node selection (repeat, or several in one value separated by spaces): `--select orders+`.
    #[arg(long, short = 's')]
    pub select: Vec<String>,
    #[arg(long)]
    pub exclude: Vec<String>,
    /// dbt vars as a JSON (or YAML flow) object: `--vars '{"since": "2024-01-01"}'`.
    #[arg(long)]
    pub vars: Option<String>,
    /// Rebuild incremental models and seeds from scratch (run, build, seed, compile).
    #[arg(long)]
    pub full_refresh: bool,
    /// The profile target.
    #[arg(long)]
    pub target: Option<String>,
    /// Project (default: the one in use).
    #[arg(long)]
    pub project: Option<String>,
    /// No progress bars (also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}
