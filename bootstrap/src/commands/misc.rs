use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use secrecy::SecretString;

use crate::cli::{OpenapiArgs, SecretCommand};
use crate::config::{Config, Loaded};
use crate::error::{CliError, CliResult};
use crate::secrets;

pub fn version() -> CliResult<ExitCode> {
    println!("pluto-duck {}", env!("CARGO_PKG_VERSION"));
    println!("duckdb {} (linked)", pluto_duck_duckdb::DUCKDB_VERSION);
    Ok(ExitCode::SUCCESS)
}

pub fn openapi(args: &OpenapiArgs) -> CliResult<ExitCode> {
    let json = pluto_duck_http::openapi()
        .to_pretty_json()
        .map_err(|e| CliError::internal(e.to_string()))?;
    match &args.output {
        Some(path) => std::fs::write(path, json + "\n")
            .map_err(|e| CliError::unavailable(format!("cannot write {}: {e}", path.display())))?,
        None => println!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show_config(loaded: &Loaded) -> CliResult<ExitCode> {
    // Secrets are references in config, so the effective config is safe to print.
    let out = serde_json::json!({ "config": loaded.config, "sources": loaded.sources });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| CliError::internal(e.to_string()))?
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn secret(config: &Config, command: SecretCommand) -> CliResult<ExitCode> {
    let store = secrets::secret_store(config);
    // The hybrid profile's secrets are the fleet's: the encrypted table in the control plane.
    let store = match config.profile {
        crate::config::ProfileName::Local => store,
        crate::config::ProfileName::Hybrid => crate::wiring::control_plane(config, store.as_ref()).await?.secrets,
    };
    let err = |e: pluto_duck_application::ports::SecretError| CliError::new(e.kind(), e.to_string());
    match command {
        SecretCommand::Set { name } => {
            let mut value = String::new();
            if std::io::stdin().is_terminal() {
                eprint!("value for {name}: ");
                std::io::stdin().read_line(&mut value)?;
            } else {
                std::io::stdin().read_to_string(&mut value)?;
            }
            let value = value.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(CliError::invalid("empty secret value on stdin"));
            }
            store.put(&name, SecretString::from(value)).await.map_err(err)?;
            eprintln!("stored secret {name}");
        }
        SecretCommand::List => {
            for name in store.list().await.map_err(err)? {
                println!("{name}");
            }
        }
        SecretCommand::Delete { name } => {
            if !store.delete(&name).await.map_err(err)? {
                return Err(CliError::new(
                    pluto_duck_application::ErrorKind::NotFound,
                    format!("secret {name:?} not found"),
                ));
            }
            eprintln!("deleted secret {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
