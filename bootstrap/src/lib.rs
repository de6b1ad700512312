//! The `pluto-duck` binary's library half: config, telemetry, wiring and commands. A library so the
//! integration tests can build the same router the binary serves.

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod llm;
pub mod secrets;
pub mod telemetry;
pub mod wiring;

use std::process::ExitCode;

use cli::{Cli, Command};
use config::ServeFlags;
use error::{CliError, CliResult};

pub fn run(cli: Cli) -> CliResult<ExitCode> {
    let serve_flags = match &cli.command {
        Command::Serve(a) => ServeFlags {
            host: a.host.clone(),
            port: a.port,
        },
        _ => ServeFlags::default(),
    };
    // Commands that need no configuration work even when the config is broken.
    match &cli.command {
        Command::Version => return commands::version(),
        Command::Openapi(a) => return commands::openapi(a),
        _ => {}
    }
    let mut loaded = config::load(&cli.global, &serve_flags)?;
    // `sql` prints results; keep routine logs out of the way unless asked for.
    if matches!(cli.command, Command::Sql(_) | Command::Ask(_) | Command::Eval(_))
        && cli.global.log_level.is_none()
        && std::env::var_os("RUST_LOG").is_none()
    {
        loaded.config.log.level = "warn".into();
    }
    let log_file = matches!(cli.command, Command::Serve(_)).then(|| loaded.config.log_file());
    let _telemetry = telemetry::init(&loaded.config.log, cli.global.log_level.is_some(), log_file.as_deref())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Init(a) => commands::init(&loaded, &a),
            Command::Serve(_) => commands::serve(&loaded.config).await,
            Command::Doctor(a) => commands::doctor(&loaded, &a).await,
            Command::Logs(a) => commands::logs(&loaded.config, &a).await,
            Command::Config => commands::show_config(&loaded),
            Command::Sql(mut a) => {
                a.project = commands::current_project(&loaded.config, a.project.take());
                commands::sql(&loaded.config, a).await
            }
            Command::Source { command, project } => {
                let project = commands::current_project(&loaded.config, project);
                commands::source(&loaded.config, command, project).await
            }
            Command::Analysis { command, project } => {
                let project = commands::current_project(&loaded.config, project);
                commands::analysis(&loaded.config, command, project).await
            }
            Command::Project(command) => commands::project(&loaded.config, command).await,
            Command::Jobs { command, project } => {
                let project = commands::current_project(&loaded.config, project);
                commands::jobs(&loaded.config, command, project).await
            }
            Command::Board { command, project } => {
                let project = commands::current_project(&loaded.config, project);
                commands::board(&loaded.config, command, project).await
            }
            Command::Ingest(mut args) => {
                args.project = commands::current_project(&loaded.config, args.project.take());
                commands::ingest(&loaded.config, *args).await
            }
            Command::Dbt(mut a) => {
                a.project = commands::current_project(&loaded.config, a.project.take());
                commands::dbt(&loaded.config, a).await
            }
            Command::Secret(c) => commands::secret(&loaded.config, c).await,
            Command::Ask(mut a) => {
                a.project = commands::current_project(&loaded.config, a.project.take());
                commands::ask(&loaded.config, a).await
            }
            Command::Eval(mut a) => {
                a.project = commands::current_project(&loaded.config, a.project.take());
                commands::eval(&loaded.config, a).await
            }
            Command::Version | Command::Openapi(_) => Ok(ExitCode::SUCCESS),
        }
    })
}
